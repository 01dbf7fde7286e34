package sys

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openDir opens dir as an O_PATH descriptor closed at the end of the test.
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := syscall.Open(dir, O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return fd
}

// sameFile reports whether fd and path name the same inode.
func sameFile(t *testing.T, fd int, path string) bool {
	t.Helper()
	var a, b syscall.Stat_t
	if err := syscall.Fstat(fd, &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(path, &b); err != nil {
		t.Fatal(err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func TestOpenat2InRootClampsSymlinks(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	for _, d := range []string{"root/etc", "etc"} {
		if err := os.MkdirAll(filepath.Join(outer, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Both links lead out of root when followed on the host; inside root
	// they must resolve to root/etc.
	if err := os.Symlink("/etc", filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../etc", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	rootfd := openDir(t, root)
	how := &OpenHow{Flags: O_PATH | syscall.O_DIRECTORY | syscall.O_CLOEXEC, Resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS}
	for _, name := range []string{"abs", "rel", "../etc", "/etc"} {
		fd, err := Openat2(rootfd, name, how)
		if err != nil {
			t.Errorf("Openat2(root, %q) = %v", name, err)
			continue
		}
		if !sameFile(t, fd, filepath.Join(root, "etc")) {
			t.Errorf("Openat2(root, %q) left the root; want root/etc", name)
		}
		syscall.Close(fd)
	}
	// RESOLVE_BENEATH refuses what RESOLVE_IN_ROOT clamps.
	if fd, err := Openat2(rootfd, "rel", &OpenHow{Flags: how.Flags, Resolve: RESOLVE_BENEATH}); err != syscall.EXDEV {
		t.Errorf("Openat2(root, rel, RESOLVE_BENEATH) = %d, %v; want EXDEV", fd, err)
		if err == nil {
			syscall.Close(fd)
		}
	}
	if _, err := Openat2(rootfd, "missing", how); err != syscall.ENOENT {
		t.Errorf("Openat2(root, missing) = %v, want ENOENT", err)
	}
}

func TestSymlinkatReadlinkatRoundTrip(t *testing.T) {
	dir := t.TempDir()
	dirfd := openDir(t, dir)
	// The long target needs more than Readlinkat's first buffer.
	for _, target := range []string{"/etc/passwd", "../x y", strings.Repeat("d/", 600) + "f"} {
		name := "l"
		if err := Symlinkat(target, dirfd, name); err != nil {
			t.Fatalf("Symlinkat(%.20q...) = %v", target, err)
		}
		if got, err := Readlinkat(dirfd, name); err != nil || got != target {
			t.Errorf("Readlinkat after Symlinkat(%.20q...) = %.20q..., %v (len %d, want %d)", target, got, err, len(got), len(target))
		}
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
			t.Errorf("os.Readlink = %.20q..., %v", got, err)
		}
		if err := Unlinkat(dirfd, name, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Readlinkat(dirfd, "."); err != syscall.EINVAL {
		t.Errorf("Readlinkat(dir) = %v, want EINVAL", err)
	}
}

func TestUnlinkatLinkat(t *testing.T) {
	dir := t.TempDir()
	dirfd := openDir(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Symlinkat("f", dirfd, "s"); err != nil {
		t.Fatal(err)
	}
	// Without AT_SYMLINK_FOLLOW the link is to the symlink itself.
	if err := Linkat(dirfd, "s", dirfd, "s2", 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "s2")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Linkat(s) made %v, %v; want a symlink", fi, err)
	}
	if err := Unlinkat(dirfd, "d", 0); err != syscall.EISDIR {
		t.Errorf("Unlinkat(dir, 0) = %v, want EISDIR", err)
	}
	if err := Unlinkat(dirfd, "f", AT_REMOVEDIR); err != syscall.ENOTDIR {
		t.Errorf("Unlinkat(file, AT_REMOVEDIR) = %v, want ENOTDIR", err)
	}
	if err := Unlinkat(dirfd, "d", AT_REMOVEDIR); err != nil {
		t.Errorf("Unlinkat(dir, AT_REMOVEDIR) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Errorf("d still exists: %v", err)
	}
}

func TestUtimensat(t *testing.T) {
	dir := t.TempDir()
	dirfd := openDir(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Symlinkat("f", dirfd, "s"); err != nil {
		t.Fatal(err)
	}
	at, mt := time.Unix(1000, 5), time.Unix(2000, 7)
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(at.UnixNano()), syscall.NsecToTimespec(mt.UnixNano())}
	// With AT_SYMLINK_NOFOLLOW the link changes, not its target.
	if err := Utimensat(dirfd, "s", &ts, AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	ls, _ := os.Lstat(filepath.Join(dir, "s"))
	fs, _ := os.Stat(filepath.Join(dir, "f"))
	if !ls.ModTime().Equal(mt) || fs.ModTime().Equal(mt) {
		t.Errorf("after Utimensat(s, NOFOLLOW): link mtime %v, file mtime %v; want only the link at %v", ls.ModTime(), fs.ModTime(), mt)
	}
	// An empty path acts on the fd itself, which must be a real open file.
	if err := Utimensat(dirfd, "", &ts, 0); err != syscall.EBADF {
		t.Errorf("Utimensat(O_PATH fd, \"\") = %v, want EBADF", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := Utimensat(int(d.Fd()), "", &ts, 0); err != nil {
		t.Fatal(err)
	}
	if ds, _ := os.Stat(dir); !ds.ModTime().Equal(mt) {
		t.Errorf("after Utimensat(dirfd, \"\"): dir mtime %v, want %v", ds.ModTime(), mt)
	}
}

func TestXattrRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const name = "user.skiffd-test"
	if err := Fsetxattr(int(f.Fd()), name, []byte("v1")); err == syscall.ENOTSUP {
		// This host's temp file system has no user attributes: then
		// listing says so too.
		if _, err := Llistxattr(p); err != syscall.ENOTSUP {
			t.Errorf("Llistxattr on a file system without xattrs = %v, want ENOTSUP", err)
		}
		return
	} else if err != nil {
		t.Fatal(err)
	}
	if v, err := Lgetxattr(p, name); err != nil || string(v) != "v1" {
		t.Errorf("Lgetxattr after Fsetxattr = %q, %v; want v1", v, err)
	}
	long := strings.Repeat("y", 1000)
	if err := Lsetxattr(p, name, []byte(long)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := Fgetxattr(int(f.Fd()), name, buf); err != syscall.ERANGE {
		t.Errorf("Fgetxattr into 1 byte = %v, want ERANGE", err)
	}
	if n, err := Fgetxattr(int(f.Fd()), name, nil); err != nil || n != len(long) {
		t.Errorf("Fgetxattr(size) = %d, %v; want %d", n, err, len(long))
	}
	if err := Lsetxattr(p, "user.empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := Lgetxattr(p, "user.empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("Lgetxattr(empty) = %#v, %v; want a non-nil empty value", v, err)
	}
	names, err := Llistxattr(p)
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"user.empty", name}) {
		t.Errorf("Llistxattr = %q, %v", names, err)
	}
	if _, err := Lgetxattr(p, "user.missing"); err != syscall.ENODATA {
		t.Errorf("Lgetxattr(missing) = %v, want ENODATA", err)
	}
}

func TestSyncfs(t *testing.T) {
	f, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Syncfs(int(f.Fd())); err != nil {
		t.Errorf("Syncfs = %v", err)
	}
	if err := Syncfs(-1); err != syscall.EBADF {
		t.Errorf("Syncfs(-1) = %v, want EBADF", err)
	}
}
