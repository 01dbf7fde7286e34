package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tarEntry is one entry of a test layer.
type tarEntry struct {
	hdr  tar.Header
	body string
}

var testTime = time.Unix(1700000000, 0)

func file(name, body string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func dir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: testTime}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644, ModTime: testTime}}
}

func device(name string, typ byte, major, minor int64) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: typ, Mode: 0o600, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

// whiteout hides name of lower layers; opaque hides all of dir's lower content.
func whiteout(name string) tarEntry {
	i := strings.LastIndexByte(name, '/')
	return file(name[:i+1]+".wh."+name[i+1:], "")
}

func opaque(dir string) tarEntry { return file(dir+"/.wh..wh..opq", "") }

// withFormat sets the tar format of every entry.
func withFormat(f tar.Format, entries ...tarEntry) []tarEntry {
	out := make([]tarEntry, len(entries))
	for i, e := range entries {
		e.hdr.Format = f
		out[i] = e
	}
	return out
}

// buildTar writes entries as a tar; a failure is a bug in the test.
func buildTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("WriteHeader(%q): %v", e.hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("Write(%q): %v", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar Close: %v", err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zstdBytes compresses b with the zstd tool, as BuildKit would a layer;
// .ci/run installs the tool.
func zstdBytes(t testing.TB, b []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("zstd", append([]string{"-c", "-q"}, args...)...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd %v: %v", args, err)
	}
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: layers hold devices, owners and trusted xattrs")
	}
}

// newStore opens a store in a fresh temporary directory.
func newStore(t testing.TB) *Store {
	t.Helper()
	needRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// register registers a tar that must be accepted.
func register(t testing.TB, s *Store, b []byte, parent string) Layer {
	t.Helper()
	l, err := s.Register(context.Background(), bytes.NewReader(b), parent, "")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return l
}

func writeTar(t testing.TB, s *Store, chainID string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteTar(context.Background(), chainID, &buf); err != nil {
		t.Fatalf("WriteTar(%s): %v", chainID, err)
	}
	return buf.Bytes()
}

// leftovers lists the temporary entries in the store's root.
func leftovers(t testing.TB, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}
