package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestOverlayMount applies two layers into their own directories, mounts
// them with overlayfs and checks the merged view, then changes files through
// the mount and packs the upper directory back into a layer.
func TestOverlayMount(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		dirs[d] = filepath.Join(base, d)
		if err := os.Mkdir(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	layer1 := makeTar(t,
		dirEnt("etc/"), reg("etc/hostname", "h"), reg("etc/passwd", "p"),
		dirEnt("data/"), reg("data/a", "a"), reg("data/b", "b"),
		reg("keep", "k"), reg("rm-later", "r"),
	)
	layer2 := makeTar(t,
		reg("etc/.wh.hostname", ""),
		dirEnt("data/"), reg("data/.wh..wh..opq", ""), reg("data/c", "c"),
	)
	for _, l := range []struct {
		dir string
		tar []byte
	}{{dirs["l1"], layer1}, {dirs["l2"], layer2}} {
		if _, err := Apply(ctx, l.dir, bytes.NewReader(l.tar), ApplyOptions{WhiteoutFormat: OverlayWhiteouts}); err != nil {
			t.Fatalf("Apply into %s: %v", l.dir, err)
		}
	}
	opts := "lowerdir=" + dirs["l2"] + ":" + dirs["l1"] + ",upperdir=" + dirs["upper"] + ",workdir=" + dirs["work"]
	if err := syscall.Mount("overlay", dirs["merged"], "overlay", 0, opts); err != nil {
		if errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EPERM) {
			t.Skipf("overlayfs not available: %v", err)
		}
		t.Fatalf("mount overlay: %v", err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if err := syscall.Unmount(dirs["merged"], 0); err != nil {
				t.Errorf("unmount: %v", err)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)

	m := func(p string) string { return filepath.Join(dirs["merged"], p) }
	if _, err := os.Lstat(m("etc/hostname")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("merged etc/hostname: Lstat = %v, want hidden by whiteout", err)
	}
	if b, err := os.ReadFile(m("etc/passwd")); err != nil || string(b) != "p" {
		t.Errorf("merged etc/passwd = %q, %v; want p from the lower layer", b, err)
	}
	ents, err := os.ReadDir(m("data"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"c"}) {
		t.Errorf("merged data/ = %q, want only c (opaque)", names)
	}

	// Change the container: delete a lower file, replace a directory's
	// content, add a file.
	if err := os.Remove(m("rm-later")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(m("etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m("etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m("etc/new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()

	diff := packBytes(t, dirs["upper"], PackOptions{WhiteoutFormat: OverlayWhiteouts})
	got := tarNames(t, diff)
	want := []string{"5 etc/", "0 etc/.wh..wh..opq", "0 etc/new", "0 .wh.rm-later"}
	if !slices.Equal(got, want) {
		t.Errorf("Pack(upper) = %q, want %q", got, want)
	}

	// The diff applied as deletions onto a copy of the merged view gives
	// the same result as the overlay did.
	flat := filepath.Join(base, "flat")
	if err := os.Mkdir(flat, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][]byte{layer1, layer2, diff} {
		if _, err := Apply(ctx, flat, bytes.NewReader(l), ApplyOptions{}); err != nil {
			t.Fatalf("Apply flat: %v", err)
		}
	}
	var files []string
	filepath.WalkDir(flat, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(flat, p)
		files = append(files, rel)
		return err
	})
	wantFiles := []string{".", "data", "data/c", "etc", "etc/new", "keep"}
	if !slices.Equal(files, wantFiles) {
		t.Errorf("flattened tree = %q, want %q", files, wantFiles)
	}
}
