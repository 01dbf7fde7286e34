package jsonlog

import (
	"bytes"
	"path/filepath"
	"testing"
)

// BenchmarkStreamWrite logs 44-byte lines handed over in 64 KiB chunks, as
// the shim's copier reads them from a busy container's pipe, to a file:
// the writer's cost per byte of output (bench/logs.sh measures the whole
// path through the shim).
func BenchmarkStreamWrite(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "c-json.log"), 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	chunk := bytes.Repeat([]byte("the quick brown fox jumps over the lazy d\n"), 64<<10/42)
	s := w.Stream("stdout")
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := s.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendString escapes a line of mixed output: ASCII with a few
// characters that need escapes, some UTF-8.
func BenchmarkAppendString(b *testing.B) {
	line := []byte("2026-12-07 level=info msg=\"request done\" path=/v1/x?a=1&b=<2> dur=1.2ms héllo wörld\t\n")
	var buf []byte
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		buf = appendString(buf[:0], line)
	}
}
