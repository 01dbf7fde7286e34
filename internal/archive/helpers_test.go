package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/sys"
)

// ent is one tar entry for a test archive.
type ent struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	major    int64
	minor    int64
	xattrs   map[string]string
	mtime    time.Time
	size     int64 // overrides len(body) in the header, to lie about sizes
}

func reg(name, body string) ent { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dirEnt(name string) ent    { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlinkEnt(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlinkEnt(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// makeTar builds an archive; a failure to encode is a bug in the test.
func makeTar(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, Devmajor: e.major, Devminor: e.minor,
			ModTime: e.mtime, Format: tar.FormatPAX,
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = time.Unix(1700000000, 0)
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("WriteHeader(%q): %v", e.name, err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatalf("Write(%q): %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar Close: %v", err)
	}
	return buf.Bytes()
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// fileState is everything about one path that a test compares.
type fileState struct {
	mode   fs.FileMode
	uid    uint32
	gid    uint32
	size   int64
	mtime  int64
	rdev   uint64
	nlink  uint64
	link   string
	sum    [32]byte
	xattrs string
}

func (s fileState) String() string {
	return fmt.Sprintf("mode=%v uid=%d gid=%d size=%d mtime=%d rdev=%d nlink=%d link=%q sum=%x xattrs=%q",
		s.mode, s.uid, s.gid, s.size, s.mtime, s.rdev, s.nlink, s.link, s.sum[:4], s.xattrs)
}

// snapshot records every path under root (relative names), including
// xattrs, so a test can prove nothing changed.
func snapshot(t testing.TB, root string, withTimes bool) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		s := fileState{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, rdev: uint64(st.Rdev)}
		if withTimes {
			s.mtime = st.Mtim.Sec
		}
		if !fi.IsDir() {
			s.size = st.Size
			s.nlink = uint64(st.Nlink)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			s.link, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.sum = sha256.Sum256(b)
		}
		dfd, err := syscall.Open(filepath.Dir(p), sys.O_PATH|syscall.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		attrs, err := listXattrsAt(dfd, filepath.Base(p))
		syscall.Close(dfd)
		if err != nil {
			return err
		}
		var kv []string
		for k, v := range attrs {
			kv = append(kv, k+"="+string(v))
		}
		slices.Sort(kv)
		s.xattrs = strings.Join(kv, ",")
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

func diffSnapshots(a, b map[string]fileState) []string {
	var diffs []string
	for k, v := range a {
		w, ok := b[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing after", k))
		case v != w:
			diffs = append(diffs, fmt.Sprintf("%s: %v -> %v", k, v, w))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: appeared", k))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// tarNames lists the entry names (with type letters) of an archive.
func tarNames(t testing.TB, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, fmt.Sprintf("%c %s", hdr.Typeflag, hdr.Name))
	}
	return names
}
