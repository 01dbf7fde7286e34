package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mountRootfs mounts chainID for a new container directory and unmounts it
// when the test ends.
func mountRootfs(t *testing.T, s *Store, chainID string) (containerDir, rootfs string) {
	t.Helper()
	containerDir = t.TempDir()
	rootfs, err := s.MountRootfs(chainID, containerDir)
	if err != nil {
		t.Fatalf("MountRootfs: %v", err)
	}
	t.Cleanup(func() {
		if err := UnmountRootfs(containerDir); err != nil {
			t.Errorf("UnmountRootfs: %v", err)
		}
	})
	return containerDir, rootfs
}

func readDirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestMountRootfs(t *testing.T) {
	s := newStore(t)
	l1 := register(t, s, buildTar(t, file("etc/motd", "base"), file("etc/passwd", "root:x:0:0"),
		file("etc/hosts", "127.0.0.1 image"), file("data/a", "a"), file("data/b", "b"), file("keep", "k")), "")
	l2 := register(t, s, buildTar(t, whiteout("etc/motd")), l1.ChainID)
	l3 := register(t, s, buildTar(t, dir("data"), opaque("data"), file("data/c", "c")), l2.ChainID)

	containerDir, rootfs := mountRootfs(t, s, l3.ChainID)
	if want := filepath.Join(containerDir, "rootfs"); rootfs != want {
		t.Errorf("MountRootfs = %q, want %q", rootfs, want)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/motd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited-out etc/motd: Stat = %v, want not exist", err)
	}
	// The init layer's mount points are there, the image's /etc/hosts
	// replaced by one, as in dockerd (TestInitLayer has the rest); the
	// upper directory has none of them.
	for _, p := range []string{"proc", "sys", "dev", "dev/pts", "etc/hostname", "etc/hosts", "etc/resolv.conf"} {
		if st, err := os.Stat(filepath.Join(rootfs, p)); err != nil || !st.IsDir() && st.Size() != 0 {
			t.Errorf("mount point %s: %v", p, err)
		}
	}
	if got := readDirNames(t, filepath.Join(containerDir, "upper")); len(got) != 0 {
		t.Errorf("upper directory of a fresh mount lists %q, want nothing", got)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd")); err != nil || string(b) != "root:x:0:0" {
		t.Errorf("etc/passwd = %q, %v, want the base layer's", b, err)
	}
	if got := readDirNames(t, filepath.Join(rootfs, "data")); !slices.Equal(got, []string{"c"}) {
		t.Errorf("opaque data/ lists %q, want only the top layer's [c]", got)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "written"), []byte("new"), 0o644); err != nil {
		t.Fatalf("write through the mount: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(containerDir, "upper", "written")); err != nil || string(b) != "new" {
		t.Errorf("upper/written = %q, %v, want the file written through the mount", b, err)
	}
	for _, d := range []string{l1.ChainID, l2.ChainID, l3.ChainID} {
		if _, err := os.Stat(filepath.Join(s.dir(d), "diff", "written")); err == nil {
			t.Errorf("a write through the mount reached the layer %s", d)
		}
	}

	// A second mount of the same container directory is the same mount.
	again, err := s.MountRootfs(l3.ChainID, containerDir)
	if err != nil || again != rootfs {
		t.Errorf("MountRootfs again = %q, %v, want %q", again, err, rootfs)
	}

	if err := UnmountRootfs(containerDir); err != nil {
		t.Fatalf("UnmountRootfs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "keep")); err == nil {
		t.Errorf("rootfs/keep still visible after UnmountRootfs")
	}
	if b, err := os.ReadFile(filepath.Join(containerDir, "upper", "written")); err != nil || string(b) != "new" {
		t.Errorf("upper/written after unmount = %q, %v, want it kept for commit", b, err)
	}
	if err := UnmountRootfs(containerDir); err != nil {
		t.Errorf("UnmountRootfs of an unmounted rootfs = %v, want nil", err)
	}
}

// TestMountImage: an image mount shows the image's files alone (no init
// layer's mount points or replaced /etc/hosts), one layer or several.
func TestMountImage(t *testing.T) {
	s := newStore(t)
	l1 := register(t, s, buildTar(t, file("etc/hosts", "127.0.0.1 image"), file("data/a", "a")), "")
	l2 := register(t, s, buildTar(t, whiteout("data/a"), file("data/b", "b")), l1.ChainID)
	for _, tc := range []struct {
		chain string
		want  []string
	}{{l1.ChainID, []string{"a"}}, {l2.ChainID, []string{"b"}}} {
		dir := t.TempDir()
		root, err := s.MountImage(tc.chain, dir)
		if err != nil {
			t.Fatalf("MountImage: %v", err)
		}
		t.Cleanup(func() { UnmountRootfs(dir) })
		if got := readDirNames(t, root); !slices.Equal(got, []string{"data", "etc"}) {
			t.Errorf("image mount lists %q, want the image's data and etc only", got)
		}
		if got := readDirNames(t, filepath.Join(root, "data")); !slices.Equal(got, tc.want) {
			t.Errorf("data/ lists %q, want %q", got, tc.want)
		}
		if b, err := os.ReadFile(filepath.Join(root, "etc/hosts")); err != nil || string(b) != "127.0.0.1 image" {
			t.Errorf("etc/hosts = %q, %v, want the image's", b, err)
		}
		if err := UnmountRootfs(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mount point after unmount: %v, want it removed", err)
		}
	}
}

func TestMountRootfsManyLayers(t *testing.T) {
	const n = 130
	s := newStore(t)
	parent := ""
	for i := range n {
		l := register(t, s, buildTar(t, file(fmt.Sprintf("layer-%03d", i), fmt.Sprint(i)), file("top", fmt.Sprint(i))), parent)
		parent = l.ChainID
	}
	dirs, err := s.DiffDirs(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != n {
		t.Fatalf("DiffDirs gave %d directories, want %d", len(dirs), n)
	}
	if opts := len(strings.Join(dirs, ":")); opts <= os.Getpagesize() {
		t.Fatalf("lowerdir option of %d bytes fits in a page; the test must exceed it", opts)
	}
	// mount(2) alone cannot do it.
	err = mountOverlayClassic(dirs, filepath.Join(t.TempDir(), "u"), filepath.Join(t.TempDir(), "w"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "lowerdir+") {
		t.Errorf("mountOverlayClassic(%d layers) = %v, want an error naming the page limit", n, err)
	}

	_, rootfs := mountRootfs(t, s, parent)
	if got := readDirNames(t, rootfs); len(got) != n+1+5 {
		t.Errorf("rootfs lists %d entries, want %d layer files, top and the init layer's dev, proc, sys, etc and .dockerenv", len(got), n)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "top")); err != nil || string(b) != fmt.Sprint(n-1) {
		t.Errorf("top = %q, %v, want the top layer's %d", b, err, n-1)
	}
}

// TestMountRootfsClassic mounts through mount(2), the fallback for kernels
// without "lowerdir+".
func TestMountRootfsClassic(t *testing.T) {
	s := newStore(t)
	l1 := register(t, s, buildTar(t, file("a", "1"), file("b", "1")), "")
	l2 := register(t, s, buildTar(t, file("a", "2"), whiteout("b")), l1.ChainID)
	dirs, err := s.DiffDirs(l2.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	containerDir := t.TempDir()
	target := filepath.Join(containerDir, "rootfs")
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(containerDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := mountOverlayClassic(dirs, filepath.Join(containerDir, "upper"), filepath.Join(containerDir, "work"), target); err != nil {
		t.Fatalf("mountOverlayClassic: %v", err)
	}
	t.Cleanup(func() { UnmountRootfs(containerDir) })
	if b, err := os.ReadFile(filepath.Join(target, "a")); err != nil || string(b) != "2" {
		t.Errorf("a = %q, %v, want the top layer's", b, err)
	}
	if _, err := os.Stat(filepath.Join(target, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited-out b: Stat = %v, want not exist", err)
	}
}

func TestMountRootfsMissingLayer(t *testing.T) {
	s := newStore(t)
	if _, err := s.MountRootfs(digest([]byte("none")), t.TempDir()); err == nil {
		t.Error("MountRootfs(unknown chain) succeeded, want error")
	}
}

// TestMountRootfsSingleLayer mounts an image of one layer: overlay then
// has one lower directory and the container's upper.
func TestMountRootfsSingleLayer(t *testing.T) {
	s := newStore(t)
	l := register(t, s, buildTar(t, file("bin/sh", "#!"), dir("tmp")), "")
	containerDir, rootfs := mountRootfs(t, s, l.ChainID)
	if b, err := os.ReadFile(filepath.Join(rootfs, "bin/sh")); err != nil || string(b) != "#!" {
		t.Errorf("bin/sh = %q, %v, want the layer's", b, err)
	}
	if err := os.Remove(filepath.Join(rootfs, "bin/sh")); err != nil {
		t.Fatalf("remove through the mount: %v", err)
	}
	st, err := os.Lstat(filepath.Join(containerDir, "upper", "bin", "sh"))
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("upper/bin/sh = %v, %v, want the whiteout overlay leaves for a removed lower file", st, err)
	}
	if _, err := os.Stat(filepath.Join(s.dir(l.ChainID), "diff", "bin", "sh")); err != nil {
		t.Errorf("the layer lost bin/sh to a removal in the container: %v", err)
	}
}
