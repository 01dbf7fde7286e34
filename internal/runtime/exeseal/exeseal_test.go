package exeseal

import (
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestSeal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		seal func(string) (*Exe, error)
		kind string
		werr error
	}{
		{"overlay", Seal, KindOverlay, syscall.EROFS},
		{"memfd", ForceMemfd, KindMemfd, syscall.EPERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.seal("")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			if e.Kind() != tc.kind {
				t.Fatalf("Kind() = %q, want %q", e.Kind(), tc.kind)
			}
			got, err := os.ReadFile(e.Path())
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Fatal("sealed content differs from the binary")
			}
			// Reopening for write is what the CVE-2019-5736 attack does.
			// A memfd may be opened for writing, but writes fail.
			w, err := os.OpenFile(e.Path(), os.O_WRONLY, 0)
			if err == nil {
				_, err = w.Write([]byte("pwned"))
				w.Close()
			}
			if !errors.Is(err, tc.werr) {
				t.Errorf("open sealed exe for write: %v, want %v", err, tc.werr)
			}
			mi, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(mi), ".skiffd-seal-") {
				t.Error("the seal shows in mountinfo")
			}
		})
	}
}

// BenchmarkSeal measures making the seal of this (test) binary: the overlay
// seal is a few syscalls and shares the page cache; the memfd copies the
// whole binary into shmem.
func BenchmarkSeal(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	st, err := os.Stat("/proc/self/exe")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		seal func(string) (*Exe, error)
	}{{"overlay", Seal}, {"memfd", ForceMemfd}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				e, err := tc.seal("")
				if err != nil {
					b.Fatal(err)
				}
				e.Close()
			}
			b.ReportMetric(float64(st.Size())/(1<<20), "binary-MiB")
		})
	}
}
