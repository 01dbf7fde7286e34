package sys

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestExchangeFiles swaps two files' names, and fails with ENOENT, leaving
// things as they were, when one of them is missing.
func TestExchangeFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ExchangeFiles(a, b); err != nil {
		t.Fatalf("ExchangeFiles: %v", err)
	}
	for _, f := range []struct{ path, want string }{{a, "old"}, {b, "new"}} {
		if got, err := os.ReadFile(f.path); err != nil || string(got) != f.want {
			t.Errorf("%s = %q, %v; want %q", filepath.Base(f.path), got, err, f.want)
		}
	}
	missing := filepath.Join(dir, "missing")
	if err := ExchangeFiles(a, missing); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("ExchangeFiles with a missing file = %v, want ENOENT", err)
	}
	if got, err := os.ReadFile(a); err != nil || string(got) != "old" {
		t.Errorf("a = %q, %v after the failed exchange", got, err)
	}
}
