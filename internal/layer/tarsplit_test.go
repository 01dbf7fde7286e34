package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reproduceCases are layers whose exact bytes WriteTar must give back.
func reproduceCases(t testing.TB) []struct {
	name string
	tar  []byte
} {
	long := strings.Repeat("very-long-directory-name/", 8) + "file-with-a-long-name.txt"
	paxFile := file("pax/xattr", "with xattrs")
	paxFile.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.skiff": "value", "comment": "a PAX record"}
	paxFile.hdr.Format = tar.FormatPAX
	big := strings.Repeat("\x00", 100<<10) + strings.Repeat("data", 50<<10) + strings.Repeat("\x00", 70000)
	plain := buildTar(t, dir("etc"), file("etc/hostname", "skiff\n"), file("etc/empty", ""), file("bin/tool", "#!/bin/sh\n"))
	withTrailer := append(bytes.Clone(plain), make([]byte, 10240)...)
	noEndMarker := plain[:len(plain)-1024]
	return []struct {
		name string
		tar  []byte
	}{
		{"plain", plain},
		{"empty stream", nil},
		{"only the end marker", make([]byte, 1024)},
		{"trailing zeros after the end marker", withTrailer},
		{"no end marker", noEndMarker},
		{"big file with holes", buildTar(t, file("big", big), file("after", "x"))},
		{"pax records and long names", buildTar(t, withFormat(tar.FormatPAX,
			file(long, "long name"), symlink("sym-long", long), hardlink("hard-long", long))...)},
		{"pax xattrs", buildTar(t, paxFile)},
		{"gnu long names", buildTar(t, withFormat(tar.FormatGNU, file(long, "gnu"), symlink("s", long+"/target-"+long))...)},
		{"hardlinks", buildTar(t, file("a", "shared"), hardlink("b", "a"), hardlink("c", "/a"))},
		{"symlinks", buildTar(t, symlink("abs", "/etc/passwd"), symlink("sub/rel", "../x"), symlink("dangling", "nowhere"))},
		{"devices", buildTar(t, device("dev/null", tar.TypeChar, 1, 3), device("dev/sda", tar.TypeBlock, 8, 0),
			device("dev/fifo", tar.TypeFifo, 0, 0))},
		{"duplicate path", buildTar(t, file("dup", "first content"), file("other", "o"), file("dup", "second, longer content"))},
		{"duplicate of a hardlinked file", buildTar(t, file("a", "one"), hardlink("b", "a"), file("a", "two!"))},
		{"whiteouts and opaque dir", buildTar(t, file("keep", "k"), whiteout("gone"), dir("opq"), opaque("opq"),
			file("opq/new", "n"))},
		{"whiteout of own file", buildTar(t, file("d/f", "created then whited out"), whiteout("d/f"))},
		{"whiteout of own dir", buildTar(t, file("d/x/1", "one"), file("d/x/2", "two"), hardlink("d/keep", "d/x/1"),
			whiteout("d/x"))},
		{"file replaced by a directory", buildTar(t, file("p", "was a file"), dir("p"), file("p/q", "now inside"))},
		{"directory replaced by a file", buildTar(t, file("p/q", "inside"), file("p/r", "also"), file("p", "file now"))},
		{"through a symlinked parent", buildTar(t, file("real/f", "first"), symlink("link", "/real"), file("link/f", "second"),
			symlink("link", "elsewhere"), file("link", "replaced link"))},
		{"aufs metadata and whiteout bodies", buildTar(t, file(".wh..wh.plnk/123.456", "aufs link data"),
			file("d/.wh.x", "a whiteout with a body"), file("after", "a"))},
		{"global pax header", buildTar(t, tarEntry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "global",
			PAXRecords: map[string]string{"comment": "global"}, Format: tar.FormatPAX}}, file("f", "x"))},
		{"root entry", buildTar(t, dir("./"), file("./f", "dot slash"))},
	}
}

func TestWriteTarReproducesLayer(t *testing.T) {
	s := newStore(t)
	for _, tc := range reproduceCases(t) {
		for _, compressed := range []bool{false, true} {
			name := tc.name
			input := tc.tar
			if compressed {
				name += " gzip"
				input = gzipBytes(t, tc.tar)
			}
			t.Run(name, func(t *testing.T) {
				want := digest(tc.tar)
				l, err := s.Register(context.Background(), bytes.NewReader(input), "", want)
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				if l.DiffID != want || l.ChainID != want || l.TarSize != int64(len(tc.tar)) {
					t.Errorf("Register = %+v, want diffID and chainID %s, tarSize %d", l, want, len(tc.tar))
				}
				got := writeTar(t, s, l.ChainID)
				if !bytes.Equal(got, tc.tar) {
					t.Errorf("WriteTar gave %d bytes (%s), want the %d registered bytes (%s)", len(got), digest(got), len(tc.tar), want)
				}
				if err := s.Remove(l.ChainID); err != nil {
					t.Fatalf("Remove: %v", err)
				}
			})
		}
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left: %v", l)
	}
}

// TestWriteTarKeepsReplacedContent checks the case WriteTar could get wrong
// silently: a file of the same size written twice in one layer.
func TestWriteTarKeepsReplacedContent(t *testing.T) {
	s := newStore(t)
	b := buildTar(t, file("f", "AAAA"), file("f", "BBBB"))
	l := register(t, s, b, "")
	if got := writeTar(t, s, l.ChainID); !bytes.Equal(got, b) {
		t.Fatalf("WriteTar differs from the registered tar")
	}
	content, err := os.ReadFile(filepath.Join(s.dir(l.ChainID), diffDirName, "f"))
	if err != nil || string(content) != "BBBB" {
		t.Errorf("diff/f = %q, %v, want %q", content, err, "BBBB")
	}
}

func TestWriteTarRefusesChangedFile(t *testing.T) {
	tests := []struct {
		name   string
		change func(p string) error
	}{
		{"grown", func(p string) error { return os.WriteFile(p, []byte("longer content"), 0o644) }},
		{"shrunk", func(p string) error { return os.WriteFile(p, []byte("s"), 0o644) }},
		{"removed", func(p string) error { return os.Remove(p) }},
		{"made a symlink outside", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("/etc/hostname", p)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			l := register(t, s, buildTar(t, file("f", "content")), "")
			if err := tt.change(filepath.Join(s.dir(l.ChainID), diffDirName, "f")); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := s.WriteTar(context.Background(), l.ChainID, &buf); err == nil {
				t.Errorf("WriteTar after the file was %s succeeded, want error", tt.name)
			}
		})
	}
}

func TestWriteTarRefusesCorruptSplit(t *testing.T) {
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-5] }},
		{"empty", func([]byte) []byte { return nil }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"bad record", func(b []byte) []byte { b[len(splitMagic)] = 'Q'; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			l := register(t, s, buildTar(t, file("f", "content"), dir("d")), "")
			p := filepath.Join(s.dir(l.ChainID), splitFileName)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			err = s.WriteTar(context.Background(), l.ChainID, io.Discard)
			if !errors.Is(err, errCorruptSplit) {
				t.Errorf("WriteTar with a %s tar-split = %v, want %v", tt.name, err, errCorruptSplit)
			}
		})
	}
}

func TestWriteTarCancelled(t *testing.T) {
	s := newStore(t)
	l := register(t, s, buildTar(t, file("f", "content")), "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WriteTar(ctx, l.ChainID, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteTar(cancelled) = %v, want %v", err, context.Canceled)
	}
}

// TestSplitWriterZeroRuns checks the raw encoding on its own: zero runs of
// every length around the threshold, split across writes.
func TestSplitWriterZeroRuns(t *testing.T) {
	var stream []byte
	for n := range 70 {
		stream = append(stream, byte(n+1))
		stream = append(stream, make([]byte, n)...)
	}
	for _, chunk := range []int{1, 7, 512, len(stream)} {
		var split bytes.Buffer
		sw, err := newSplitWriter(&split)
		if err != nil {
			t.Fatal(err)
		}
		for b := stream; len(b) > 0; {
			c := min(chunk, len(b))
			if err := sw.raw(b[:c]); err != nil {
				t.Fatal(err)
			}
			b = b[c:]
		}
		if err := sw.finish(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		n, err := replaySplit(bytes.NewReader(split.Bytes()), int64(split.Len()), int64(len(stream)), nil, &out, func() error { return nil })
		if err != nil || n != int64(len(stream)) || !bytes.Equal(out.Bytes(), stream) {
			t.Errorf("replay of %d-byte writes = %d bytes, %v; want the %d bytes written", chunk, n, err, len(stream))
		}
	}
}
