package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/sys"
)

// buildTree makes a directory with one of everything Pack and Apply carry.
func buildTree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	must(os.MkdirAll(j("bin"), 0o755))
	must(os.MkdirAll(j("empty"), 0o700))
	must(os.MkdirAll(j("etc/deep/er"), 0o751))
	must(os.WriteFile(j("bin/su"), []byte("#!/bin/su\n"), 0o755))
	must(syscall.Chmod(j("bin/su"), 0o4755))
	must(os.WriteFile(j("bin/sg"), []byte("sg"), 0o755))
	must(syscall.Chmod(j("bin/sg"), 0o2711))
	must(syscall.Chmod(j("empty"), 0o1777))
	must(os.WriteFile(j("etc/hostname"), []byte("box\n"), 0o644))
	must(os.WriteFile(j("etc/deep/er/big"), bytes.Repeat([]byte("0123456789abcdef"), 10000), 0o600))
	must(os.WriteFile(j("etc/zeros"), make([]byte, 100000), 0o600))
	must(os.WriteFile(j("etc/empty-file"), nil, 0o640))
	must(os.Symlink("../etc/hostname", j("bin/hn")))
	must(os.Symlink("/nonexistent/abs", j("dangling")))
	must(os.Link(j("etc/hostname"), j("bin/hardlink")))
	must(syscall.Mkfifo(j("fifo"), 0o620))
	must(syscall.Setxattr(j("etc/hostname"), "user.skiff", []byte("v1"), 0))
	must(syscall.Setxattr(j("etc/deep"), "user.dirattr", []byte("d"), 0))
	must(syscall.Setxattr(j("etc/hostname"), "trusted.skiff", []byte("t"), 0))
	must(syscall.Chmod(j("fifo"), 0o620)) // the umask applied to mkfifo
	if os.Geteuid() == 0 {
		must(syscall.Mknod(j("null"), syscall.S_IFCHR|0o666, int(sys.Makedev(1, 3))))
		must(syscall.Mknod(j("sda"), syscall.S_IFBLK|0o660, int(sys.Makedev(8, 0))))
		must(syscall.Chmod(j("null"), 0o666))
		must(syscall.Chmod(j("sda"), 0o660))
		must(os.Lchown(j("etc/hostname"), 1000, 1001))
		must(os.Lchown(j("bin/hn"), 7, 8))
		must(os.Lchown(j("etc/deep"), 33, 33))
		must(syscall.Chmod(j("bin/su"), 0o4755)) // chown cleared it
	}
	// Times last, deepest first, whole seconds as tar keeps them.
	stamp := time.Unix(1600000000, 0)
	var paths []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	slices.Reverse(paths)
	for i, p := range paths {
		ts := []syscall.Timespec{syscall.NsecToTimespec(stamp.Add(time.Duration(i) * time.Hour).UnixNano()),
			syscall.NsecToTimespec(stamp.Add(time.Duration(i) * time.Minute).UnixNano())}
		dfd, err := syscall.Open(filepath.Dir(p), sys.O_PATH|syscall.O_DIRECTORY, 0)
		must(err)
		must(utimesAt(dfd, filepath.Base(p), time.Unix(0, ts[0].Nano()), time.Unix(0, ts[1].Nano())))
		syscall.Close(dfd)
	}
}

func packBytes(t *testing.T, dir string, opts PackOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(context.Background(), &buf, dir, opts); err != nil {
		t.Fatalf("Pack(%s): %v", dir, err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	needRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buildTree(t, src)
	packed := packBytes(t, src, PackOptions{})

	size, err := Apply(context.Background(), dst, bytes.NewReader(packed), ApplyOptions{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if want := int64(10 + 2 + 4 + 160000 + 100000); size != want {
		t.Errorf("Apply size = %d, want %d", size, want)
	}

	// Hard-link counts and everything else must match; atimes are not
	// compared (tar does not carry them by default).
	a, b := snapshot(t, src, true), snapshot(t, dst, true)
	delete(a, ".")
	delete(b, ".")
	if d := diffSnapshots(a, b); len(d) > 0 {
		t.Errorf("round trip differs:\n%s", strings.Join(d, "\n"))
	}
	var s1, s2 syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "bin/hardlink"), &s1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(dst, "etc/hostname"), &s2); err != nil {
		t.Fatal(err)
	}
	if s1.Ino != s2.Ino {
		t.Errorf("bin/hardlink and etc/hostname are inodes %d and %d, want one", s1.Ino, s2.Ino)
	}
	var zs syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "etc/zeros"), &zs); err != nil {
		t.Fatal(err)
	}
	if zs.Blocks > 8 {
		t.Errorf("etc/zeros uses %d blocks, want it written sparse", zs.Blocks)
	}

	// The copy packs to the same bytes: same order, same metadata.
	if again := packBytes(t, dst, PackOptions{}); !bytes.Equal(packed, again) {
		t.Errorf("Pack(copy) differs from Pack(original):\n%v\n%v", tarNames(t, packed), tarNames(t, again))
	}
	if again := packBytes(t, src, PackOptions{}); !bytes.Equal(packed, again) {
		t.Errorf("Pack is not deterministic")
	}

	// Applying over an existing tree replaces entries in place.
	if _, err := Apply(context.Background(), dst, bytes.NewReader(packed), ApplyOptions{}); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if d := diffSnapshots(a, snapshot(t, dst, true)); len(d) > 1 { // "." may differ
		t.Errorf("second Apply differs:\n%s", strings.Join(d, "\n"))
	}
}

func TestPackEntries(t *testing.T) {
	needRoot(t)
	src := t.TempDir()
	buildTree(t, src)
	packed := packBytes(t, src, PackOptions{})
	got := map[string]*tar.Header{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(packed))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		got[hdr.Name] = hdr
		order = append(order, hdr.Name)
	}
	if !slices.IsSorted(order) {
		t.Errorf("entries not in walk order: %v", order)
	}
	tests := []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}{
		{"bin/", tar.TypeDir, 0o755, ""},
		{"bin/su", tar.TypeReg, 0o4755, ""},
		{"bin/sg", tar.TypeReg, 0o2711, ""},
		{"empty/", tar.TypeDir, 0o1777, ""},
		{"bin/hardlink", tar.TypeReg, 0o644, ""},
		{"etc/hostname", tar.TypeLink, 0o644, "bin/hardlink"},
		{"bin/hn", tar.TypeSymlink, 0o777, "../etc/hostname"},
		{"fifo", tar.TypeFifo, 0o620, ""},
		{"null", tar.TypeChar, 0o666, ""},
		{"sda", tar.TypeBlock, 0o660, ""},
	}
	for _, tt := range tests {
		h := got[tt.name]
		if h == nil {
			t.Errorf("entry %q missing; have %v", tt.name, order)
			continue
		}
		if h.Typeflag != tt.typ || h.Mode != tt.mode || h.Linkname != tt.linkname {
			t.Errorf("entry %q = type %c mode %o link %q; want %c %o %q", tt.name, h.Typeflag, h.Mode, h.Linkname, tt.typ, tt.mode, tt.linkname)
		}
	}
	if h := got["null"]; h != nil && (h.Devmajor != 1 || h.Devminor != 3) {
		t.Errorf("null device = %d:%d, want 1:3", h.Devmajor, h.Devminor)
	}
	if h := got["bin/hardlink"]; h != nil && (h.Uid != 1000 || h.Gid != 1001 || h.PAXRecords[paxXattrPrefix+"user.skiff"] != "v1") {
		t.Errorf("bin/hardlink uid/gid %d/%d xattrs %v; want 1000/1001 with user.skiff=v1", h.Uid, h.Gid, h.PAXRecords)
	}
	if _, ok := got["."]; ok {
		t.Errorf("whole-tree pack has a root entry")
	}
}

func TestPackIncludeRebase(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "etc/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"etc/hosts", "etc/sub/x", "other"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		opts PackOptions
		want []string
	}{
		{"file", PackOptions{IncludeFiles: []string{"etc/hosts"}}, []string{"0 etc/hosts"}},
		{"file renamed", PackOptions{IncludeFiles: []string{"etc/hosts"}, RebaseNames: map[string]string{"etc/hosts": "hosts.bak"}}, []string{"0 hosts.bak"}},
		{"dir renamed", PackOptions{IncludeFiles: []string{"etc"}, RebaseNames: map[string]string{"etc": "conf"}},
			[]string{"5 conf/", "0 conf/hosts", "5 conf/sub/", "0 conf/sub/x"}},
		{"overlapping", PackOptions{IncludeFiles: []string{"etc/sub", "etc"}}, []string{"5 etc/sub/", "0 etc/sub/x", "5 etc/", "0 etc/hosts"}},
		{"absolute include", PackOptions{IncludeFiles: []string{"/other"}}, []string{"0 other"}},
		{"missing include", PackOptions{IncludeFiles: []string{"nope"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tarNames(t, packBytes(t, src, tt.opts)); !slices.Equal(got, tt.want) {
				t.Errorf("Pack(%+v) = %q, want %q", tt.opts, got, tt.want)
			}
		})
	}
	var buf bytes.Buffer
	if err := Pack(context.Background(), &buf, src, PackOptions{IncludeFiles: []string{"../x"}}); err == nil {
		t.Errorf("Pack(include ../x) succeeded, want error")
	}
}

// TestPackDoesNotFollowSymlinks proves a symlinked include or child is packed
// as a link, not as what it points to.
func TestPackDoesNotFollowSymlinks(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(src, "up")); err != nil {
		t.Fatal(err)
	}
	for _, inc := range [][]string{nil, {"up"}, {"up/secret"}} {
		got := tarNames(t, packBytes(t, src, PackOptions{IncludeFiles: inc}))
		for _, n := range got {
			if strings.Contains(n, "secret") {
				t.Errorf("Pack(include %q) = %q: read through a symlink", inc, got)
			}
		}
	}
}

func TestApplyNoWhiteouts(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"keep", "gone", "d/old1", "d/sub/old2", "d/sub/kept", "e/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("lower"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	layer := makeTar(t,
		reg(".wh.gone", ""),
		reg("d/sub/kept", "upper"),
		reg("d/.wh..wh..opq", ""),
		reg("d/new", "upper"),
		reg("e/.wh.x", ""),
		reg("nodir/.wh.nothing", ""),
	)
	if _, err := Apply(context.Background(), dir, bytes.NewReader(layer), ApplyOptions{}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		got = append(got, rel)
		return err
	})
	want := []string{".", "d", "d/new", "d/sub", "d/sub/kept", "e", "keep"}
	if !slices.Equal(got, want) {
		t.Errorf("tree after whiteouts = %q, want %q", got, want)
	}
}

func TestApplyLiteralWhiteouts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	layer := makeTar(t, reg(".wh.x", "user data"), reg("d/.wh..wh..opq", ""))
	if _, err := Apply(context.Background(), dir, bytes.NewReader(layer), ApplyOptions{WhiteoutFormat: LiteralWhiteouts}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, p := range []string{"x", ".wh.x", "d/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("Lstat(%s) = %v, want the file kept or extracted as is", p, err)
		}
	}
}

func TestOverlayWhiteoutConversion(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	layer := makeTar(t,
		dirEnt("d/"),
		reg("d/.wh..wh..opq", ""),
		reg("d/new", "n"),
		ent{name: "e/.wh.gone", typ: tar.TypeReg, mode: 0o600, uid: 5, gid: 6},
		reg("f", "f"),
		reg(".wh.f", ""),
	)
	if _, err := Apply(context.Background(), dir, bytes.NewReader(layer), ApplyOptions{WhiteoutFormat: OverlayWhiteouts}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, p := range []string{"e/gone", "f"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatalf("Lstat(%s): %v", p, err)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0:0 char device", p, st.Mode, st.Rdev)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "e/gone"), &st); err == nil && (st.Uid != 5 || st.Gid != 6) {
		t.Errorf("e/gone owner %d:%d, want 5:6", st.Uid, st.Gid)
	}
	buf := make([]byte, 8)
	n, err := syscall.Getxattr(filepath.Join(dir, "d"), overlayOpaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("d %s = %q, %v; want y", overlayOpaqueXattr, buf[:n], err)
	}
	for _, p := range []string{".wh.f", "d/.wh..wh..opq", "e/.wh.gone"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s was written as a file", p)
		}
	}

	// And back: Pack with OverlayWhiteouts restores the AUFS entries.
	got := tarNames(t, packBytes(t, dir, PackOptions{WhiteoutFormat: OverlayWhiteouts}))
	want := []string{"5 d/", "0 d/.wh..wh..opq", "0 d/new", "5 e/", "0 e/.wh.gone", "0 .wh.f"}
	if !slices.Equal(got, want) {
		t.Errorf("Pack(overlay) = %q, want %q", got, want)
	}
	// Without conversion the devices are packed as they are.
	plain := tarNames(t, packBytes(t, dir, PackOptions{}))
	if !slices.Contains(plain, "3 f") || slices.Contains(plain, "0 d/.wh..wh..opq") {
		t.Errorf("Pack(plain) = %q, want char device f and no opaque marker", plain)
	}
}
