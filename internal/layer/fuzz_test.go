package layer

import (
	"bytes"
	"context"
	"io"
	"testing"

	"skiffd/internal/archive"
)

// FuzzRegister feeds arbitrary streams to Register. Whatever it accepts,
// WriteTar must give back byte for byte (after decompression), and the
// diff ID must be the digest of those bytes.
func FuzzRegister(f *testing.F) {
	for _, tc := range reproduceCases(f) {
		f.Add(tc.tar)
	}
	f.Add(gzipBytes(f, buildTar(f, file("z", "gzip"), whiteout("w"))))
	f.Add([]byte("not a tar at all"))
	s := newStore(f)
	s.noSync = true
	f.Fuzz(func(t *testing.T, input []byte) {
		l, err := s.Register(context.Background(), bytes.NewReader(input), "", "")
		if err != nil {
			return
		}
		defer func() {
			if err := s.Remove(l.ChainID); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		}()
		rc, err := archive.DecompressStream(bytes.NewReader(input))
		if err != nil {
			t.Fatalf("Register accepted a stream DecompressStream refuses: %v", err)
		}
		want, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("Register accepted a stream that does not decompress: %v", err)
		}
		if l.DiffID != digest(want) || l.TarSize != int64(len(want)) {
			t.Errorf("Register = %+v, want diffID %s and tarSize %d", l, digest(want), len(want))
		}
		var got bytes.Buffer
		if err := s.WriteTar(context.Background(), l.ChainID, &got); err != nil {
			t.Fatalf("WriteTar: %v", err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("WriteTar gave %d bytes (%s), want the %d registered (%s)", got.Len(), digest(got.Bytes()), len(want), digest(want))
		}
	})
}

// FuzzReplaySplit checks that damaged tar-split data fails cleanly: no
// panic, no endless loop, no huge allocation.
func FuzzReplaySplit(f *testing.F) {
	var split bytes.Buffer
	sw, err := newSplitWriter(&split)
	if err != nil {
		f.Fatal(err)
	}
	sw.raw([]byte("header\x00\x00"))
	sw.raw(make([]byte, 100))
	sw.file("f", 3)
	sw.inlineFile(0, bytes.NewReader([]byte("abc")), 3)
	if err := sw.finish(); err != nil {
		f.Fatal(err)
	}
	f.Add(split.Bytes())
	f.Add([]byte(splitMagic + "e\x00\x00\x00\x00\x00\x00\x00\x00\x09" + splitEnd))
	open := func(string, int64) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte("xyz"))), nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		replaySplit(bytes.NewReader(data), int64(len(data)), 1<<20, open, io.Discard, func() error { return nil })
	})
}
