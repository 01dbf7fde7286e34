package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// removal is one BeforeRemove call.
type removal struct {
	path string
	dir  bool
}

// applyEntries drives an Applier over an archive, recording BeforeRemove
// calls and, per regular-file entry, how many content bytes it consumed.
func applyEntries(t *testing.T, dir string, archive []byte, opts ApplyOptions) ([]removal, map[string]int64) {
	t.Helper()
	ap, err := NewApplier(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("NewApplier: %v", err)
	}
	t.Cleanup(func() { ap.Close() })
	var removed []removal
	ap.BeforeRemove = func(p string, dir bool) error {
		removed = append(removed, removal{p, dir})
		return nil
	}
	consumed := make(map[string]int64)
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		cr := &countReader{r: tr}
		if err := ap.ApplyEntry(hdr, cr); err != nil {
			t.Fatalf("ApplyEntry(%q): %v", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			consumed[hdr.Name] += cr.n
		}
	}
	if err := ap.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return removed, consumed
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestApplierBeforeRemove(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name    string
		entries []ent
		opts    ApplyOptions
		want    []removal
	}{
		{
			name:    "no removals",
			entries: []ent{dirEnt("d"), reg("d/a", "x"), dirEnt("d")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
		},
		{
			name:    "duplicate file",
			entries: []ent{reg("a", "one"), reg("a", "two")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			want:    []removal{{"a", false}},
		},
		{
			name:    "whiteout of own file, overlay",
			entries: []ent{reg("d/a", "one"), reg("d/.wh.a", ""), reg("d/.wh.missing", "")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			want:    []removal{{"d/a", false}},
		},
		{
			name:    "file replaced by directory",
			entries: []ent{reg("a", "one"), dirEnt("a")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			want:    []removal{{"a", false}},
		},
		{
			name:    "directory replaced by file",
			entries: []ent{reg("d/x", "one"), reg("d", "two")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			want:    []removal{{"d", true}},
		},
		{
			name:    "whiteout through a symlinked parent",
			entries: []ent{reg("real/a", "one"), symlinkEnt("link", "/real"), reg("link/.wh.a", "")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			want:    []removal{{"real/a", false}},
		},
		{
			name:    "file through a symlinked parent",
			entries: []ent{reg("real/a", "one"), symlinkEnt("link", "real"), reg("link/a", "two")},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			want:    []removal{{"real/a", false}},
		},
		{
			name:    "whiteout as deletion",
			entries: []ent{reg("a", "one"), reg(".wh.a", "")},
			want:    []removal{{"a", false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			removed, _ := applyEntries(t, dir, makeTar(t, tt.entries...), tt.opts)
			if !slices.Equal(removed, tt.want) {
				t.Errorf("BeforeRemove calls = %v, want %v", removed, tt.want)
			}
		})
	}
}

// TestApplierReadsOnlyWrittenContent checks the promise the layer store
// relies on: content is consumed for regular files written, and left alone
// for entries skipped.
func TestApplierReadsOnlyWrittenContent(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	archive := makeTar(t,
		reg("a", "hello"),
		reg(".wh..wh.plnk/123", "aufs metadata"),
		reg("d/.wh.gone", "whiteout with a body"),
	)
	_, consumed := applyEntries(t, dir, archive, ApplyOptions{WhiteoutFormat: OverlayWhiteouts})
	want := map[string]int64{"a": 5, ".wh..wh.plnk/123": 0, "d/.wh.gone": 0}
	for name, n := range want {
		if consumed[name] != n {
			t.Errorf("content read for %q = %d bytes, want %d", name, consumed[name], n)
		}
	}
}

func TestApplierResolve(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	archive := makeTar(t, reg("real/a", "one"), symlinkEnt("abs", "/real"), symlinkEnt("rel", "real"))
	ap, err := NewApplier(context.Background(), dir, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := ap.ApplyEntry(hdr, tr); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ in, want string }{
		{"real/a", "real/a"},
		{"/real/a", "real/a"},
		{"abs/a", "real/a"},
		{"rel/a", "real/a"},
		{"abs", "abs"},
		{".", "."},
	}
	for _, tt := range tests {
		got, err := ap.Resolve(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ap.Resolve("../x"); err == nil {
		t.Errorf("Resolve(%q) succeeded, want error", "../x")
	}
}

// TestApplierInPopulatedDir checks that paths are resolved when the target
// had symbolic links before the archive.
func TestApplierInPopulatedDir(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "real", "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	removed, _ := applyEntries(t, dir, makeTar(t, reg("link/a", "y")), ApplyOptions{})
	want := []removal{{"real/a", false}}
	if !slices.Equal(removed, want) {
		t.Errorf("BeforeRemove calls = %v, want %v", removed, want)
	}
}

func TestRelativeTo(t *testing.T) {
	tests := []struct {
		top, p, want string
		ok           bool
	}{
		{"/a/b", "/a/b", ".", true},
		{"/a/b", "/a/b/c", "c", true},
		{"/a/b", "/a/bc", "", false},
		{"/a/b", "/a", "", false},
		{"/", "/x/y", "x/y", true},
		{"/", "/", ".", true},
	}
	for _, tt := range tests {
		got, ok := relativeTo(tt.top, tt.p)
		if got != tt.want || ok != tt.ok {
			t.Errorf("relativeTo(%q, %q) = %q, %v, want %q, %v", tt.top, tt.p, got, ok, tt.want, tt.ok)
		}
	}
}

func TestApplierAfterFailure(t *testing.T) {
	needRoot(t)
	ap, err := NewApplier(context.Background(), t.TempDir(), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	bad := &tar.Header{Name: "../escape", Typeflag: tar.TypeReg}
	if err := ap.ApplyEntry(bad, strings.NewReader("")); err == nil {
		t.Fatal("ApplyEntry(../escape) succeeded, want error")
	}
	good := &tar.Header{Name: "ok", Typeflag: tar.TypeDir, Mode: 0o755}
	if err := ap.ApplyEntry(good, strings.NewReader("")); err == nil {
		t.Error("ApplyEntry after a failed entry succeeded, want error")
	}
	if err := ap.Finish(); err != nil {
		t.Errorf("Finish after failure = %v, want nil", err)
	}
}
