package layer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"skiffd/internal/errdefs"
)

func TestChainID(t *testing.T) {
	const (
		a = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
		b = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
	)
	tests := []struct {
		parent, diffID, want string
	}{
		{"", a, a},
		// sha256 of "sha256:a3ed... sha256:5f70...", as moby's layer store and
		// the OCI image spec compute it.
		{a, b, "sha256:" + digest([]byte(a + " " + b))[len("sha256:"):]},
	}
	for _, tt := range tests {
		if got := ChainID(tt.parent, tt.diffID); got != tt.want {
			t.Errorf("ChainID(%q, %q) = %q, want %q", tt.parent, tt.diffID, got, tt.want)
		}
	}
	if ChainID(a, b) == ChainID(b, a) {
		t.Errorf("ChainID is symmetric in parent and diffID; the order must matter")
	}
}

func TestRegisterChain(t *testing.T) {
	s := newStore(t)
	base := buildTar(t, file("etc/os-release", "ID=skiff\n"), symlink("bin", "usr/bin"))
	top := buildTar(t, file("etc/motd", "hello\n"))
	lb := register(t, s, base, "")
	lt := register(t, s, top, lb.ChainID)
	want := Layer{ChainID: ChainID(lb.ChainID, digest(top)), DiffID: digest(top), Parent: lb.ChainID,
		Size: int64(len("hello\n")), TarSize: int64(len(top))}
	if lt != want {
		t.Errorf("Register(top) = %+v, want %+v", lt, want)
	}
	if lb.Size != int64(len("ID=skiff\n")+len("usr/bin")) {
		t.Errorf("base Size = %d, want file bytes plus symlink target", lb.Size)
	}
	got, err := s.Get(lt.ChainID)
	if err != nil || got != lt {
		t.Errorf("Get(%s) = %+v, %v, want %+v", lt.ChainID, got, err, lt)
	}
	if list := s.List(); len(list) != 2 || !slices.Contains(list, lb) || !slices.Contains(list, lt) {
		t.Errorf("List() = %+v, want the two layers", list)
	}
	dirs, err := s.DiffDirs(lt.ChainID)
	wantDirs := []string{filepath.Join(s.dir(lt.ChainID), "diff"), filepath.Join(s.dir(lb.ChainID), "diff")}
	if err != nil || !slices.Equal(dirs, wantDirs) {
		t.Errorf("DiffDirs = %q, %v, want %q", dirs, err, wantDirs)
	}
	b, err := os.ReadFile(filepath.Join(dirs[0], "etc/motd"))
	if err != nil || string(b) != "hello\n" {
		t.Errorf("top diff etc/motd = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "etc/os-release")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("top diff holds the base's file: %v", err)
	}
	var meta bytes.Buffer
	raw, err := os.ReadFile(filepath.Join(s.dir(lt.ChainID), "layer.json"))
	if err != nil {
		t.Fatal(err)
	}
	meta.Write(raw)
	for _, key := range []string{`"chainID"`, `"diffID"`, `"parent"`, `"size"`, `"tarSize"`} {
		if !strings.Contains(meta.String(), key) {
			t.Errorf("layer.json = %s, missing %s", raw, key)
		}
	}
}

// TestRegisterZstd registers zstd-compressed layers, as BuildKit writes
// them and GHCR serves them (issue 11): the diffID is the digest of the
// uncompressed tar and the files are unpacked.
func TestRegisterZstd(t *testing.T) {
	s := newStore(t)
	base := buildTar(t, dir("etc"), file("etc/os-release", "ID=skiff\n"), file("big", strings.Repeat("layer data ", 50000)))
	for _, args := range [][]string{{"-3"}, {"-19", "--no-check"}} {
		lb, err := s.Register(context.Background(), bytes.NewReader(zstdBytes(t, base, args...)), "", "")
		if err != nil {
			t.Fatalf("Register(zstd %v): %v", args, err)
		}
		if lb.DiffID != digest(base) {
			t.Errorf("DiffID of the zstd %v layer = %s, want %s", args, lb.DiffID, digest(base))
		}
		dirs, err := s.DiffDirs(lb.ChainID)
		if err != nil || len(dirs) != 1 {
			t.Fatalf("DiffDirs = %q, %v", dirs, err)
		}
		got, err := os.ReadFile(filepath.Join(dirs[0], "etc/os-release"))
		if err != nil || string(got) != "ID=skiff\n" {
			t.Errorf("unpacked etc/os-release = %q, %v", got, err)
		}
	}
}

func TestRegisterErrors(t *testing.T) {
	s := newStore(t)
	good := buildTar(t, file("f", "x"))
	zstdGood := zstdBytes(t, good, "-3")
	badZstd := bytes.Clone(zstdGood)
	badZstd[len(badZstd)-1] ^= 0xff // the content checksum
	tests := []struct {
		name         string
		input        []byte
		parent, want string
		kind         errdefs.Kind
	}{
		{"diffID mismatch", good, "", digest([]byte("other")), errdefs.ErrInvalidParameter},
		{"malformed diffID", good, "", "sha256:xyz", errdefs.ErrInvalidParameter},
		{"missing parent", good, digest([]byte("nothing")), "", errdefs.ErrNotFound},
		{"not a tar", bytes.Repeat([]byte("garbage!"), 200), "", "", errdefs.ErrInvalidParameter},
		{"escaping entry", buildTar(t, file("../escape", "x")), "", "", errdefs.ErrInvalidParameter},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00, 1, 2, 3}, "", "", errdefs.ErrInvalidParameter},
		{"zstd checksum mismatch", badZstd, "", "", errdefs.ErrInvalidParameter},
		{"truncated zstd", zstdGood[:len(zstdGood)-10], "", "", errdefs.ErrInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Register(context.Background(), bytes.NewReader(tt.input), tt.parent, tt.want)
			if !errors.Is(err, tt.kind) {
				t.Errorf("Register = %v, want a %v error", err, tt.kind)
			}
			if l := s.List(); len(l) != 0 {
				t.Errorf("List() after failed Register = %+v, want empty", l)
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("temporary entries left: %v", l)
			}
		})
	}
	_, err := s.Register(context.Background(), bytes.NewReader(good), "", digest([]byte("other")))
	var mismatch *DiffIDMismatchError
	if !errors.As(err, &mismatch) || mismatch.Actual != digest(good) {
		t.Errorf("Register(wrong diffID) = %v, want a *DiffIDMismatchError with the actual diffID", err)
	}
}

// failingReader fails the test if anything reads it.
type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Error("Register read the stream of a layer it already has")
	return 0, io.ErrUnexpectedEOF
}

func TestRegisterExisting(t *testing.T) {
	s := newStore(t)
	b := buildTar(t, file("f", "x"))
	first := register(t, s, b, "")
	again, err := s.Register(context.Background(), failingReader{t}, "", first.DiffID)
	if err != nil || again != first {
		t.Errorf("Register(existing, want) = %+v, %v, want %+v", again, err, first)
	}
	again = register(t, s, b, "")
	if again != first {
		t.Errorf("Register(existing) = %+v, want %+v", again, first)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left: %v", l)
	}
}

func TestRegisterConcurrent(t *testing.T) {
	s := newStore(t)
	b := buildTar(t, file("a", strings.Repeat("a", 100000)), file("b", "b"))
	const n = 8
	results := make([]Layer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			want := ""
			if i%2 == 0 {
				want = digest(b)
			}
			results[i], errs[i] = s.Register(context.Background(), bytes.NewReader(b), "", want)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] != results[0] {
			t.Errorf("Register #%d = %+v, %v, want %+v", i, results[i], errs[i], results[0])
		}
	}
	if l := s.List(); len(l) != 1 {
		t.Errorf("List() = %+v, want one layer", l)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left: %v", l)
	}
	if got := writeTar(t, s, results[0].ChainID); !bytes.Equal(got, b) {
		t.Errorf("WriteTar differs from the registered tar")
	}
}

func TestRegisterCancelled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Register(ctx, bytes.NewReader(buildTar(t, file("f", "x"))), "", "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Register(cancelled) = %v, want %v", err, context.Canceled)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left: %v", l)
	}
}

func TestGetMissing(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{digest([]byte("x")), "", "sha256:../../etc"} {
		if _, err := s.Get(id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want not found", id, err)
		}
		if err := s.Remove(id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Remove(%q) = %v, want not found", id, err)
		}
		if _, err := s.DiffDirs(id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("DiffDirs(%q) = %v, want not found", id, err)
		}
		if err := s.WriteTar(context.Background(), id, io.Discard); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("WriteTar(%q) = %v, want not found", id, err)
		}
	}
}

func TestRemove(t *testing.T) {
	s := newStore(t)
	base := register(t, s, buildTar(t, file("f", "base")), "")
	top := register(t, s, buildTar(t, file("g", "top")), base.ChainID)
	if err := s.Remove(base.ChainID); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove(parent of a layer) = %v, want conflict", err)
	}
	if _, err := s.Get(base.ChainID); err != nil {
		t.Errorf("Get(base) after refused Remove = %v", err)
	}
	for _, l := range []Layer{top, base} {
		if err := s.Remove(l.ChainID); err != nil {
			t.Fatalf("Remove(%s): %v", l.ChainID, err)
		}
		if _, err := s.Get(l.ChainID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get after Remove = %v, want not found", err)
		}
		if _, err := os.Stat(s.dir(l.ChainID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("layer directory after Remove: %v, want gone", err)
		}
	}
	entries, err := os.ReadDir(s.root)
	if err != nil || len(entries) != 0 {
		t.Errorf("store root after removing everything = %v, %v, want empty", entries, err)
	}
}

func TestOpenReloads(t *testing.T) {
	s := newStore(t)
	base := buildTar(t, file("f", "base"))
	lb := register(t, s, base, "")
	lt := register(t, s, buildTar(t, file("g", "top")), lb.ChainID)

	// Leftovers of a crash, and a directory with no usable record.
	for _, d := range []string{".tmp-register-123/diff", ".tmp-remove-456", strings.Repeat("ab", 32) + "/diff"} {
		if err := os.MkdirAll(filepath.Join(s.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	reopened, err := Open(s.root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got, want := reopened.List(), s.List(); !slices.Equal(got, want) {
		t.Errorf("List() after Open = %+v, want %+v", got, want)
	}
	if l := leftovers(t, reopened); len(l) != 0 {
		t.Errorf("Open left temporary entries: %v", l)
	}
	if got := writeTar(t, reopened, lb.ChainID); !bytes.Equal(got, base) {
		t.Errorf("WriteTar after Open differs from the registered tar")
	}
	if _, err := reopened.DiffDirs(lt.ChainID); err != nil {
		t.Errorf("DiffDirs after Open: %v", err)
	}
	// The unreadable directory does not stop a registration of its chain.
	again := register(t, reopened, base, "")
	if again != lb {
		t.Errorf("Register after Open = %+v, want %+v", again, lb)
	}
}
