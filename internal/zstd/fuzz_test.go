package zstd

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzDecode feeds arbitrary bytes to the Reader: it must never panic or
// hang, must stop with an error or io.EOF, and must decode the same bytes
// whether its input arrives all at once or a byte at a time. The seeds are
// real frames written by the zstd tool, so mutations reach every block and
// literals type.
func FuzzDecode(f *testing.F) {
	for _, seed := range []struct {
		data []byte
		args []string
	}{
		{nil, []string{"-3"}},
		{[]byte("a"), []string{"-1"}},
		{bytes.Repeat([]byte("abcd"), 1000), []string{"-19"}},
		{mixed(3000, 1), []string{"-1", "--no-check"}},
		{mixed(40000, 2), []string{"-9"}},
		{mixed(150000, 3), []string{"--ultra", "-22"}},
		{mixedRandom(2000), []string{"-3"}},
		{bytes.Repeat([]byte{7}, 300000), []string{"-3"}},
	} {
		f.Add(compress(f, seed.data, seed.args...))
	}
	f.Add(append(frameHeader(0x20, 3), append(blockHdr(true, 1, 3), 'a')...))
	f.Add([]byte{0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 8 << 20
		whole, err1 := decodeLimited(bytes.NewReader(in), limit)
		bytewise, err2 := decodeLimited(iotest.OneByteReader(bytes.NewReader(in)), limit)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(whole, bytewise) {
			t.Fatalf("whole input: %d bytes, %v; byte at a time: %d bytes, %v", len(whole), err1, len(bytewise), err2)
		}
	})
}

// decodeLimited decodes at most limit bytes; running past the limit is not
// an error (RLE blocks legitimately expand 4 bytes into 128 KiB).
func decodeLimited(r io.Reader, limit int64) ([]byte, error) {
	zr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var out bytes.Buffer
	_, err = io.CopyN(&out, zr, limit)
	if err == io.EOF {
		err = nil
	}
	return out.Bytes(), err
}
