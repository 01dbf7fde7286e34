package layer

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"skiffd/internal/atomicfile"
)

// TestInitLayer: Open makes the init layer once, whole (root's, 0755
// directories and empty 0644 files), removes a half-made one a crash left
// behind, and keeps the one it finds.
func TestInitLayer(t *testing.T) {
	// Not the daemon's umask: the container sees these modes.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	root := t.TempDir()
	// What a crash in the middle of making it leaves.
	half := filepath.Join(root, atomicfile.TempPrefix+InitDirName+"-123")
	if err := os.MkdirAll(filepath.Join(half, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("half-made init layer after Open: %v", err)
	}
	dir := s.InitDir()
	var got []string
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		want := os.FileMode(0o644)
		if fi.IsDir() {
			want = 0o755 | os.ModeDir
		} else if fi.Size() != 0 {
			t.Errorf("%s has %d bytes", rel, fi.Size())
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), want)
		}
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"."}, initLayerDirs...)
	want = append(want, initLayerFiles...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("init layer holds %q, want %q", got, want)
	}

	// Kept as it is by the next Open.
	mark := filepath.Join(dir, "etc", "kept")
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the init layer was made again: %v", err)
	}
}
