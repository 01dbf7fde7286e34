package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

const (
	benchTotal    = 256 << 20
	benchFileSize = 8 << 20
)

// writeBenchTar streams total bytes of non-zero file data as a tar to
// w, generating it on the fly so the archive never sits in memory.
func writeBenchTar(w io.Writer, total int) error {
	tw := tar.NewWriter(w)
	chunk := make([]byte, copyBufferSize)
	for i := range chunk {
		chunk[i] = byte(i%251) + 1
	}
	for i := 0; i < total/benchFileSize; i++ {
		hdr := &tar.Header{Name: fmt.Sprintf("d%d/f%d", i%4, i), Typeflag: tar.TypeReg, Mode: 0o644,
			Size: benchFileSize, ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		for n := 0; n < benchFileSize; n += len(chunk) {
			if _, err := tw.Write(chunk); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func BenchmarkApply(b *testing.B) {
	b.SetBytes(benchTotal)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dest := filepath.Join(b.TempDir(), fmt.Sprint(i))
		if err := os.Mkdir(dest, 0o755); err != nil {
			b.Fatal(err)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeBenchTar(pw, benchTotal)) }()
		b.StartTimer()
		if _, err := Apply(context.Background(), dest, pr, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dest)
		b.StartTimer()
	}
}

func BenchmarkPack(b *testing.B) {
	src := b.TempDir()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBenchTar(pw, benchTotal)) }()
	if _, err := Apply(context.Background(), src, pr, ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchTotal)
	for b.Loop() {
		if err := Pack(context.Background(), io.Discard, src, PackOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestApplyMemoryFlat applies a 128 MiB stream and checks the heap did not
// grow with it: data is streamed through fixed buffers.
func TestApplyMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MiB")
	}
	dest := t.TempDir()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBenchTar(pw, 128<<20)) }()
	var before, after runtimeMem
	before.read()
	size, err := Apply(context.Background(), dest, pr, ApplyOptions{})
	if err != nil || size != 128<<20 {
		t.Fatalf("Apply = %d, %v; want %d bytes", size, err, 128<<20)
	}
	after.read()
	// The count includes the generator's own small allocations.
	if grew := after.totalAlloc - before.totalAlloc; grew > 8<<20 {
		t.Errorf("Apply of 128 MiB allocated %d MiB, want under 8", grew>>20)
	}
}

type runtimeMem struct{ totalAlloc uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.totalAlloc = s.TotalAlloc
}
