package sys

import (
	"syscall"
	"testing"
)

// TestMapBufferPages checks that a MapBuffer buffer is resident only where
// written, and not at all after DropPages, while it stays usable.
func TestMapBufferPages(t *testing.T) {
	page := syscall.Getpagesize()
	b, err := MapBuffer(64 * page)
	if err != nil {
		t.Fatal(err)
	}
	defer UnmapBuffer(b)
	if n, err := ResidentPages(b); err != nil || n != 0 {
		t.Fatalf("ResidentPages of a fresh buffer = %d, %v; want 0", n, err)
	}
	for i := 0; i < 3*page; i++ {
		b[i] = 'x'
	}
	if n, err := ResidentPages(b); err != nil || n != 3 {
		t.Fatalf("ResidentPages after writing 3 pages = %d, %v; want 3", n, err)
	}
	if err := DropPages(b[:0]); err != nil {
		t.Fatal(err)
	}
	if n, err := ResidentPages(b); err != nil || n != 0 {
		t.Fatalf("ResidentPages after DropPages = %d, %v; want 0", n, err)
	}
	b[len(b)-1] = 1
	if n, _ := ResidentPages(b); n != 1 {
		t.Errorf("ResidentPages after writing the last byte = %d, want 1", n)
	}
	if b[0] != 0 {
		t.Errorf("b[0] after DropPages = %q, want 0", b[0])
	}
}
