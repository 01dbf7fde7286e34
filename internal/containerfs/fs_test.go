package containerfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/archive"
	"skiffd/internal/errdefs"
	"skiffd/internal/skifftest"
	"skiffd/internal/sys"
)

func TestAbsContainerPath(t *testing.T) {
	for _, tc := range []struct {
		in, abs, dir, base string
	}{
		{"/tmp/", "/tmp/", "tmp", ""},
		{"/tmp", "/tmp", "", "tmp"},
		{"tmp/x", "/tmp/x", "tmp", "x"},
		{"/tmp/.", "/tmp/.", "tmp", "."},
		{"/tmp/./", "/tmp/./", "tmp", ""},
		{".", "/.", "", "."},
		{"/", "/", "", ""},
		{"", "/.", "", "."},
		{"/../../etc/passwd", "/etc/passwd", "etc", "passwd"},
		{"a/../../b/", "/b/", "b", ""},
		{"//x//y", "/x/y", "x", "y"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			abs := absContainerPath(tc.in)
			dir, base := splitContainerPath(abs)
			if abs != tc.abs || dir != tc.dir || base != tc.base {
				t.Errorf("absContainerPath(%q) = %q split %q %q, want %q split %q %q", tc.in, abs, dir, base, tc.abs, tc.dir, tc.base)
			}
		})
	}
}

// FuzzAbsContainerPath checks that any client path becomes an absolute
// path without ".." whose split parts stay below the root.
func FuzzAbsContainerPath(f *testing.F) {
	for _, s := range []string{"/tmp/", "/tmp/.", "..", "../../etc", "a/./b//", "", ".", "/..", "x/../../../y/."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		abs := absContainerPath(p)
		dir, base := splitContainerPath(abs)
		if !strings.HasPrefix(abs, "/") {
			t.Fatalf("absContainerPath(%q) = %q, not absolute", p, abs)
		}
		for _, part := range strings.Split(dir, "/") {
			if part == ".." {
				t.Fatalf("absContainerPath(%q) = %q: dir %q climbs", p, abs, dir)
			}
		}
		if base == ".." || strings.Contains(base, "/") {
			t.Fatalf("absContainerPath(%q) = %q: base %q", p, abs, base)
		}
		if strings.HasPrefix(dir, "/") {
			t.Fatalf("split(%q) dir %q is not relative", abs, dir)
		}
	})
}

func TestUnderDest(t *testing.T) {
	for _, tc := range []struct {
		p, dest string
		want    bool
	}{
		{"/tmp/a", "/tmp", true}, {"/tmp", "/tmp", true}, {"/tmpx", "/tmp", false}, {"/etc", "/tmp", false}, {"/x", "/", true},
	} {
		if got := underDest(tc.p, tc.dest); got != tc.want {
			t.Errorf("underDest(%q, %q) = %v, want %v", tc.p, tc.dest, got, tc.want)
		}
	}
	if got, want := withDest(`cannot overwrite directory "/tmp/x" with non-directory "/"`, "/tmp"), `cannot overwrite directory "/tmp/x" with non-directory "/tmp"`; got != want {
		t.Errorf("withDest = %q, want %q", got, want)
	}
}

// testFS opens a plain directory as a container file system, the
// container named "ctr" unless opts names it.
func testFS(t testing.TB, root string, opts Options) *FS {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "ctr"
	}
	fs, err := Open(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.Close)
	return fs
}

// hostileTree builds a container root with the symlinks an attacker would
// plant, next to a sentinel directory on the "host" side.
func hostileTree(t *testing.T) (root, sentinelDir string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	sentinelDir = filepath.Join(base, "host")
	for _, d := range []string{"root/etc", "root/run", "root/var", "root/tmp", "host"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"host/secret":        "host secret\n",
		"root/etc/hostname":  "ctr\n",
		"root/run/inside":    "run file\n",
		"root/tmp/plain.txt": "plain\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(base, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/var/run":    "/run",           // absolute, common in images
		"root/tmp/abs":    sentinelDir,      // the host directory, as an absolute path
		"root/tmp/up":     "../../../../..", // relative, climbing out
		"root/tmp/secret": filepath.Join(sentinelDir, "secret"),
		"root/tmp/magic":  "/proc/self/root" + sentinelDir,
		"root/tmp/dangle": "/nowhere/at/all",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, sentinelDir
}

func checkSentinel(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secret" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("host directory holds %q, want only secret", names)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "secret")); err != nil || string(b) != "host secret\n" {
		t.Errorf("host secret = %q, %v; it must never change", b, err)
	}
}

func archiveOf(t *testing.T, fs *FS, p string) ([]byte, *types.PathStat, error) {
	t.Helper()
	r, err := fs.Resolve(p)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	st := r.Stat()
	var buf bytes.Buffer
	if err := fs.Pack(context.Background(), &buf, r); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), st, nil
}

func TestResolveAndStat(t *testing.T) {
	skifftest.RequireRoot(t)
	root, sentinel := hostileTree(t)
	fs := testFS(t, root, Options{})
	for _, tc := range []struct {
		path       string
		name       string
		mode       os.FileMode
		linkTarget string
		size       int64
		wantErr    errdefs.Kind
	}{
		{path: "/etc/hostname", name: "hostname", mode: 0o644, size: 4},
		{path: "/var/run", name: "run", mode: os.ModeSymlink | 0o777, linkTarget: "/run", size: int64(len("/run"))},
		{path: "/var/run/", name: "run", mode: os.ModeDir | 0o755},
		{path: "/var/run/inside", name: "inside", mode: 0o644, size: 9},
		{path: "/tmp/abs/secret", wantErr: errdefs.ErrNotFound},
		{path: "/tmp/up/etc/hostname", name: "hostname", mode: 0o644, size: 4},
		{path: "/tmp/secret", name: "secret", mode: os.ModeSymlink | 0o777, linkTarget: filepath.Join(sentinel, "secret"), size: int64(len(filepath.Join(sentinel, "secret")))},
		{path: "/tmp/dangle", name: "dangle", mode: os.ModeSymlink | 0o777, linkTarget: "/nowhere/at/all", size: 15},
		{path: "/tmp/magic/secret", wantErr: errdefs.ErrNotFound},
		{path: "/no/such", wantErr: errdefs.ErrNotFound},
		{path: "/etc/hostname/", wantErr: errdefs.ErrSystem},
		{path: "/", name: "/", mode: os.ModeDir | 0o755},
		{path: "/tmp/..", name: "/", mode: os.ModeDir | 0o755},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r, err := fs.Resolve(tc.path)
			if tc.wantErr != 0 {
				if errdefs.KindOf(err) != tc.wantErr {
					t.Fatalf("resolve(%q) = %v, want a %s error", tc.path, err, tc.wantErr)
				}
				if tc.wantErr == errdefs.ErrNotFound && err.Error() != "Could not find the file "+tc.path+" in container ctr" {
					t.Errorf("resolve(%q) error %q, want dockerd's wording", tc.path, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve(%q): %v", tc.path, err)
			}
			defer r.Close()
			st := r.Stat()
			if st.Name != tc.name || st.Mode != tc.mode || st.LinkTarget != tc.linkTarget || (tc.size != 0 && st.Size != tc.size) {
				t.Errorf("stat(%q) = %+v, want name %q mode %v link %q size %d", tc.path, st, tc.name, tc.mode, tc.linkTarget, tc.size)
			}
		})
	}
	checkSentinel(t, sentinel)
}

// TestPathStatHeader checks the header encoding against dockerd's trace.
func TestPathStatHeader(t *testing.T) {
	mtime, _ := time.Parse(time.RFC3339Nano, "2026-11-26T09:09:12.305839819Z")
	st := types.PathStat{Name: "tmp", Size: 4096, Mode: sys.FileMode(syscall.S_IFDIR | 0o755), Mtime: mtime}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	const want = "eyJuYW1lIjoidG1wIiwic2l6ZSI6NDA5NiwibW9kZSI6MjE0NzQ4NDE0MSwibXRpbWUiOiIyMDI2LTExLTI2VDA5OjA5OjEyLjMwNTgzOTgxOVoiLCJsaW5rVGFyZ2V0IjoiIn0="
	if got := base64.StdEncoding.EncodeToString(b); got != want {
		t.Errorf("header = %s (%s), want dockerd's %s", got, b, want)
	}
}

func TestArchiveNames(t *testing.T) {
	skifftest.RequireRoot(t)
	root, sentinel := hostileTree(t)
	if err := os.MkdirAll(filepath.Join(root, "srv/dir/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "srv/dir/a"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(root, "srv/dir/sub/b"), []byte("b\n"), 0o644)
	os.Symlink("/srv/dir", filepath.Join(root, "srv/link"))
	fs := testFS(t, root, Options{})
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/etc/hostname", []string{"hostname"}},
		{"/srv/dir", []string{"dir/", "dir/a", "dir/sub/", "dir/sub/b"}},
		{"/srv/dir/", []string{"dir/", "dir/a", "dir/sub/", "dir/sub/b"}},
		{"/srv/dir/.", []string{"./", "./a", "./sub/", "./sub/b"}},
		{"/srv/link", []string{"link"}},
		{"/srv/link/", []string{"link/", "link/a", "link/sub/", "link/sub/b"}},
		{"/tmp/secret", []string{"secret"}},
		{"/var/run/", []string{"run/", "run/inside"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			b, _, err := archiveOf(t, fs, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := skifftest.TarNames(t, b); !slices.Equal(got, tc.want) {
				t.Errorf("archive of %q = %q, want %q", tc.path, got, tc.want)
			}
			for name, body := range skifftest.TarContents(t, b) {
				if strings.Contains(body, "host secret") {
					t.Errorf("archive of %q leaked the host secret in %s", tc.path, name)
				}
			}
		})
	}
	checkSentinel(t, sentinel)
}

func tarOf(t testing.TB, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = h.Linkname // the test's way of giving content
			h.Linkname = ""
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name, body string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: body}
}

func TestExtract(t *testing.T) {
	skifftest.RequireRoot(t)
	for _, tc := range []struct {
		name    string
		dest    string
		tar     []byte
		opts    types.ExtractOptions
		user    string
		ro      bool
		wantErr errdefs.Kind
		msg     string
		check   map[string]string // path in root -> content
		owner   map[string][2]int
	}{
		{name: "file", dest: "/tmp", tar: tarOf(t, reg("f", "hi\n")), check: map[string]string{"tmp/f": "hi\n"}},
		{name: "gzip", dest: "/tmp", tar: gzipped(t, tarOf(t, reg("z", "zipped\n"))), check: map[string]string{"tmp/z": "zipped\n"}},
		{name: "not a tar", dest: "/tmp", tar: []byte("hello, this is not a tar archive at all, nor anything compressed; it goes on for a while to fill a header block"), wantErr: errdefs.ErrInvalidParameter},
		{name: "through absolute symlink", dest: "/var/run", tar: tarOf(t, reg("f", "x")), check: map[string]string{"run/f": "x"}},
		{name: "into symlink to host dir", dest: "/tmp/abs", wantErr: errdefs.ErrNotFound, tar: tarOf(t, reg("f", "x"))},
		{name: "dotdot name", dest: "/tmp", tar: tarOf(t, reg("../escape", "x")), wantErr: errdefs.ErrInvalidParameter, msg: `"../escape" is outside of "/tmp"`},
		{name: "absolute name", dest: "/tmp", tar: tarOf(t, reg("/etc/new", "x")), check: map[string]string{"tmp/etc/new": "x"}},
		{name: "write through planted symlink", dest: "/tmp", tar: tarOf(t, reg("abs/secret", "pwned")), wantErr: errdefs.ErrSystem},
		{name: "write through planted file symlink", dest: "/tmp", tar: tarOf(t, reg("secret", "pwned")), check: map[string]string{"tmp/secret": "pwned"}},
		{name: "symlink then write through it", dest: "/tmp", tar: tarOf(t,
			&tar.Header{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: "/etc"}, reg("evil/pwned", "x")),
			check: map[string]string{"etc/pwned": "x"}},
		{name: "relative symlink climbing out", dest: "/tmp", tar: tarOf(t,
			&tar.Header{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: "../../x"}), wantErr: errdefs.ErrInvalidParameter},
		{name: "hardlink out", dest: "/tmp", tar: tarOf(t,
			&tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../etc/hostname"}), wantErr: errdefs.ErrInvalidParameter},
		{name: "dotdot name clamped at the root", dest: "/", tar: tarOf(t, reg("../../tmp/clamped", "x")), check: map[string]string{"tmp/clamped": "x"}},
		{name: "dotdot name back inside", dest: "/tmp", tar: tarOf(t, reg("../tmp/back", "x")), check: map[string]string{"tmp/back": "x"}},
		{name: "relative symlink staying inside", dest: "/tmp", tar: tarOf(t,
			&tar.Header{Typeflag: tar.TypeSymlink, Name: "d/l", Linkname: "../plain.txt"}), check: map[string]string{"tmp/d/l": "plain\n"}},
		{name: "hardlink out message", dest: "/tmp", tar: tarOf(t,
			&tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../etc/hostname"}), wantErr: errdefs.ErrInvalidParameter, msg: `invalid hardlink "/etc/hostname" -> "../etc/hostname"`},
		{name: "overwrite message", dest: "/tmp", opts: types.ExtractOptions{NoOverwriteDirNonDir: true},
			tar: tarOf(t, &tar.Header{Typeflag: tar.TypeDir, Name: "plain.txt/"}), wantErr: errdefs.ErrInvalidParameter,
			msg: `cannot overwrite non-directory "/tmp/plain.txt" with directory "/tmp"`},
		{name: "hardlink in", dest: "/tmp", tar: tarOf(t, reg("a", "A"),
			&tar.Header{Typeflag: tar.TypeLink, Name: "b", Linkname: "a"}), check: map[string]string{"tmp/b": "A"}},
		{name: "whiteout kept literal", dest: "/tmp", tar: tarOf(t, reg(".wh.plain.txt", "")), check: map[string]string{"tmp/plain.txt": "plain\n", "tmp/.wh.plain.txt": ""}},
		{name: "not a directory", dest: "/etc/hostname", tar: tarOf(t, reg("f", "x")), wantErr: errdefs.ErrInvalidParameter, msg: "extraction point is not a directory"},
		{name: "missing", dest: "/no/such/dir/", tar: tarOf(t, reg("f", "x")), wantErr: errdefs.ErrNotFound, msg: "Could not find the file /no/such/dir/ in container ctr"},
		{name: "read-only", dest: "/tmp", ro: true, tar: tarOf(t, reg("f", "x")), wantErr: errdefs.ErrInvalidParameter, msg: "container rootfs is marked read-only"},
		{name: "no overwrite dir", dest: "/", opts: types.ExtractOptions{NoOverwriteDirNonDir: true}, tar: tarOf(t, reg("tmp", "x")), wantErr: errdefs.ErrInvalidParameter},
		{name: "ownership kept", dest: "/tmp", tar: tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "o", Uid: 1234, Gid: 5678}), owner: map[string][2]int{"tmp/o": {1234, 5678}}},
		{name: "copyUIDGID", dest: "/tmp", user: "user", opts: types.ExtractOptions{CopyUIDGID: true},
			tar: tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "o", Uid: 1234, Gid: 5678}), owner: map[string][2]int{"tmp/o": {1000, 1000}}},
		{name: "copyUIDGID numeric", dest: "/tmp", user: "7:8", opts: types.ExtractOptions{CopyUIDGID: true},
			tar: tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "o", Uid: 1234, Gid: 5678}), owner: map[string][2]int{"tmp/o": {7, 8}}},
		{name: "copyUIDGID unknown user", dest: "/tmp", user: "nobody-here", opts: types.ExtractOptions{CopyUIDGID: true},
			tar: tarOf(t, reg("o", "")), wantErr: errdefs.ErrInvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, sentinel := hostileTree(t)
			os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"), 0o644)
			fs := testFS(t, root, Options{ReadOnly: tc.ro, User: tc.user})
			err := fs.Extract(context.Background(), tc.dest, tc.opts, bytes.NewReader(tc.tar))
			checkSentinel(t, sentinel)
			if tc.wantErr != 0 {
				if errdefs.KindOf(err) != tc.wantErr || (tc.msg != "" && err.Error() != tc.msg) {
					t.Fatalf("extract = %v (%s), want a %s error %q", err, errdefs.KindOf(err), tc.wantErr, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			for p, want := range tc.check {
				b, err := os.ReadFile(filepath.Join(root, p))
				if err != nil || string(b) != want {
					t.Errorf("%s = %q, %v, want %q", p, b, err, want)
				}
			}
			for p, want := range tc.owner {
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(root, p), &st); err != nil || int(st.Uid) != want[0] || int(st.Gid) != want[1] {
					t.Errorf("%s owner = %d:%d (%v), want %d:%d", p, st.Uid, st.Gid, err, want[0], want[1])
				}
			}
		})
	}
}

// TestSymlinkSwapRace is CVE-2018-15664: while a "container" keeps
// swapping a directory for a symlink to the host directory, copies in and
// out of that path must never reach the host.
func TestSymlinkSwapRace(t *testing.T) {
	skifftest.RequireRoot(t)
	root, sentinel := hostileTree(t)
	dir := filepath.Join(root, "tmp/swap")
	real := filepath.Join(root, "tmp/swap.real")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(real, "secret"), []byte("container file\n"), 0o644)
	fs := testFS(t, root, Options{})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var swaps atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Rename(real, dir)
			os.Rename(dir, real)
			os.Symlink(sentinel, dir)
			os.Remove(dir)
			swaps.Add(1)
		}
	}()
	payload := tarOf(t, reg("secret", "pwned\n"), reg("new", "pwned\n"))
	deadline := time.Now().Add(2 * time.Second)
	rounds := 0
	for time.Now().Before(deadline) || rounds < 200 {
		rounds++
		for _, p := range []string{"/tmp/swap", "/tmp/swap/", "/tmp/swap/secret", "/tmp/swap/."} {
			if b, _, err := archiveOf(t, fs, p); err == nil {
				for name, body := range skifftest.TarContents(t, b) {
					if strings.Contains(body, "host secret") {
						t.Fatalf("GET %s leaked the host file as %s", p, name)
					}
				}
			}
		}
		fs.Extract(context.Background(), "/tmp/swap", types.ExtractOptions{}, bytes.NewReader(payload))
		fs.Extract(context.Background(), "/tmp", types.ExtractOptions{},
			bytes.NewReader(tarOf(t, reg("swap/secret", "pwned\n"))))
	}
	close(stop)
	wg.Wait()
	if swaps.Load() < 100 {
		t.Errorf("only %d swaps happened; the race was not exercised", swaps.Load())
	}
	checkSentinel(t, sentinel)
}

// FuzzExtract feeds arbitrary archives to the extraction, over a tree full
// of symlinks aimed at a host directory that must stay untouched.
func FuzzExtract(f *testing.F) {
	f.Add(tarOf(f, reg("a", "x")))
	f.Add(tarOf(f, &tar.Header{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: "/"}, reg("evil/x", "x")))
	f.Add(tarOf(f, reg("../x", "x")))
	f.Add(tarOf(f, reg("abs/x", "x"), reg("up/x", "x"), reg("magic/x", "x")))
	f.Add(tarOf(f, &tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "/tmp/secret"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		// Entries claiming large sizes (sparse files expand to up to a
		// GiB of zeros) cost seconds each without testing anything here.
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if hdr.Size > 1<<20 {
				t.Skip("large entry")
			}
		}
		root, sentinel := hostileTree(t)
		fs := testFS(t, root, Options{})
		for _, dest := range []string{"/tmp", "/"} {
			err := fs.Extract(context.Background(), dest, types.ExtractOptions{}, bytes.NewReader(b))
			if err != nil && errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
		}
		checkSentinel(t, sentinel)
	})
}

// TestMounts covers paths in the engine's files, volumes and binds, which
// the host-side rootfs does not show: by name, through symlinks, and with
// links inside a volume that must stay inside it.
func TestMounts(t *testing.T) {
	skifftest.RequireRoot(t)
	root, sentinel := hostileTree(t)
	base := filepath.Dir(root)
	hostname := filepath.Join(base, "hostname")
	vol := filepath.Join(base, "vol")
	ro := filepath.Join(base, "ro")
	os.WriteFile(hostname, []byte("abcdef123456\n"), 0o644)
	os.MkdirAll(filepath.Join(vol, "sub"), 0o755)
	os.MkdirAll(ro, 0o755)
	os.WriteFile(filepath.Join(vol, "f"), []byte("in volume\n"), 0o644)
	os.Symlink("/", filepath.Join(vol, "esc"))
	os.Symlink(sentinel, filepath.Join(vol, "hostlink"))
	os.MkdirAll(filepath.Join(root, "data"), 0o755) // the mount points, as the runtime leaves them
	os.WriteFile(filepath.Join(root, "data/hidden"), []byte("under the mount\n"), 0o644)
	os.Symlink("/data", filepath.Join(root, "datalink"))
	// The order does not matter: Open sorts the mounts, longest
	// destination first.
	fs := testFS(t, root, Options{Mounts: []Mount{
		{Destination: "/ro", Source: ro},
		{Destination: "etc/hostname", Source: hostname, RW: true, File: true},
		{Destination: "/data/", Source: vol, RW: true},
	}})
	for _, tc := range []struct {
		path    string
		names   []string
		content map[string]string
		wantErr errdefs.Kind
	}{
		{path: "/etc/hostname", names: []string{"hostname"}, content: map[string]string{"hostname": "abcdef123456\n"}},
		{path: "/etc/hostname/", wantErr: errdefs.ErrSystem},
		{path: "/data/f", names: []string{"f"}, content: map[string]string{"f": "in volume\n"}},
		{path: "/datalink/f", names: []string{"f"}, content: map[string]string{"f": "in volume\n"}},
		{path: "/data", names: []string{"data/", "data/esc", "data/f", "data/hostlink", "data/sub/"}},
		{path: "/datalink/", names: []string{"datalink/", "datalink/esc", "datalink/f", "datalink/hostlink", "datalink/sub/"}},
		{path: "/data/esc/f", names: []string{"f"}, content: map[string]string{"f": "in volume\n"}},
		{path: "/data/hostlink/secret", wantErr: errdefs.ErrNotFound},
		{path: "/data/hidden", wantErr: errdefs.ErrNotFound},
		{path: "/etc", names: []string{"etc/", "etc/hostname"}, content: map[string]string{"etc/hostname": "abcdef123456\n"}},
		{path: "/etc/.", names: []string{"./", "./hostname"}, content: map[string]string{"./hostname": "abcdef123456\n"}},
		{path: "/", content: map[string]string{"/data/f": "in volume\n", "/etc/hostname": "abcdef123456\n", "/tmp/plain.txt": "plain\n"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			b, _, err := archiveOf(t, fs, tc.path)
			if tc.wantErr != 0 {
				if errdefs.KindOf(err) != tc.wantErr {
					t.Fatalf("archive of %s = %v, want a %s error", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := skifftest.TarNames(t, b); tc.names != nil && !slices.Equal(got, tc.names) {
				t.Errorf("archive of %s = %q, want %q", tc.path, got, tc.names)
			}
			got := skifftest.TarContents(t, b)
			for n, body := range got {
				if strings.Contains(body, "under the mount") || strings.Contains(body, "host secret") {
					t.Errorf("archive of %s has %s = %q, which no container sees", tc.path, n, body)
				}
			}
			for n, want := range tc.content {
				if got[n] != want {
					t.Errorf("archive of %s: %s = %q, want %q", tc.path, n, got[n], want)
				}
			}
		})
	}
	if r, err := fs.Resolve("/datalink"); err != nil {
		t.Error(err)
	} else {
		if st := r.Stat(); st.LinkTarget != "/data" {
			t.Errorf("stat /datalink = %+v, want link target /data", st)
		}
		r.Close()
	}
	if r, err := fs.Resolve("/data/esc"); err != nil {
		t.Error(err)
	} else {
		if st := r.Stat(); st.LinkTarget != "/data" {
			t.Errorf("stat /data/esc = %+v, want link target /data (the volume's top)", st)
		}
		r.Close()
	}

	extract := func(dest string, files ...string) error {
		var hdrs []*tar.Header
		for _, f := range files {
			hdrs = append(hdrs, reg(f, "new "+f+"\n"))
		}
		return fs.Extract(context.Background(), dest, types.ExtractOptions{}, bytes.NewReader(tarOf(t, hdrs...)))
	}
	if err := extract("/data", "a"); err != nil {
		t.Fatal(err)
	}
	if err := extract("/datalink/sub", "b"); err != nil {
		t.Fatal(err)
	}
	if err := extract("/data/esc", "c"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "sub/b", "c"} {
		if _, err := os.Stat(filepath.Join(vol, f)); err != nil {
			t.Errorf("extracted %s missing from the volume: %v", f, err)
		}
	}
	if err := extract("/ro", "x"); errdefs.KindOf(err) != errdefs.ErrInvalidParameter || err.Error() != "mounted volume is marked read-only" {
		t.Errorf("extract into a read-only mount = %v", err)
	}
	if err := extract("/etc/hostname", "x"); err == nil || err.Error() != "extraction point is not a directory" {
		t.Errorf("extract into /etc/hostname = %v", err)
	}
	if err := extract("/data/hostlink", "x"); errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Errorf("extract through a volume link to the host = %v", err)
	}
	checkSentinel(t, sentinel)
}

// benchTree writes n files of size bytes under root/data.
func benchTree(b *testing.B, root string, n, size int) {
	b.Helper()
	body := bytes.Repeat([]byte("x"), size)
	for i := range n {
		p := filepath.Join(root, "data", fmt.Sprintf("d%02d", i%16), fmt.Sprintf("f%04d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArchiveOut measures docker cp out of a container (64 MiB in
// 256 files) without the HTTP layer.
func BenchmarkArchiveOut(b *testing.B) {
	root := b.TempDir()
	benchTree(b, root, 256, 256<<10)
	fs := testFS(b, root, Options{Name: "bench"})
	b.SetBytes(256 << 18)
	for b.Loop() {
		r, err := fs.Resolve("/data")
		if err != nil {
			b.Fatal(err)
		}
		if err := fs.Pack(context.Background(), io.Discard, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkExtractIn measures docker cp into a container (64 MiB in 256
// files) without the HTTP layer.
func BenchmarkExtractIn(b *testing.B) {
	src := b.TempDir()
	benchTree(b, src, 256, 256<<10)
	var tarBuf bytes.Buffer
	if err := archive.Pack(context.Background(), &tarBuf, src, archive.PackOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256 << 18)
	for b.Loop() {
		b.StopTimer()
		root := filepath.Join(b.TempDir(), "root")
		os.MkdirAll(filepath.Join(root, "tmp"), 0o755)
		fs, err := Open(root, Options{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := fs.Extract(context.Background(), "/tmp", types.ExtractOptions{}, bytes.NewReader(tarBuf.Bytes())); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fs.Close()
		b.StartTimer()
	}
}
