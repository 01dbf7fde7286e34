package layer

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// Benchmarks move 200 MiB of generated files: large files show the
// streaming rate, small ones the per-entry cost.
const benchTotal = 200 << 20

var benchShapes = []struct {
	name     string
	fileSize int
}{
	{"1MiB-files", 1 << 20},
	{"16KiB-files", 16 << 10},
}

// registerGenerated registers a generated layer streamed through a pipe.
func registerGenerated(b *testing.B, s *Store, fileSize int) Layer {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeGenerated(pw, benchTotal/fileSize, fileSize, nil)) }()
	l, err := s.Register(context.Background(), pr, "", "")
	pr.Close()
	if err != nil {
		b.Fatalf("Register: %v", err)
	}
	return l
}

// BenchmarkRegister includes making the layer durable (syncfs).
func BenchmarkRegister(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			s := newStore(b)
			b.SetBytes(benchTotal)
			for b.Loop() {
				l := registerGenerated(b, s, shape.fileSize)
				b.StopTimer()
				if err := s.Remove(l.ChainID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func BenchmarkWriteTar(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			s := newStore(b)
			l := registerGenerated(b, s, shape.fileSize)
			b.SetBytes(l.TarSize)
			for b.Loop() {
				if err := s.WriteTar(context.Background(), l.ChainID, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate is the cost of producing the benchmark's input alone,
// to subtract from BenchmarkRegister.
func BenchmarkGenerate(b *testing.B) {
	b.SetBytes(benchTotal)
	for b.Loop() {
		if err := writeGenerated(io.Discard, benchTotal/(1<<20), 1<<20, nil); err != nil {
			b.Fatal(fmt.Errorf("generate: %w", err))
		}
	}
}
