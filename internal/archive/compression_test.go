package archive

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"skiffd/internal/errdefs"
)

// bzip2Hello is "hello bzip2" compressed by bzip2; the standard library
// can only read the format.
var bzip2Hello = []byte{0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x55, 0x5a, 0x44, 0xf7, 0x00, 0x00, 0x02,
	0x19, 0x80, 0x40, 0x00, 0x10, 0x00, 0x12, 0x64, 0xc0, 0x10, 0x20, 0x00, 0x22, 0x00, 0x69, 0xea, 0x10, 0x03, 0x05, 0xd3, 0xb6,
	0x21, 0x83, 0xc5, 0xdc, 0x91, 0x4e, 0x14, 0x24, 0x15, 0x56, 0x91, 0x3d, 0xc0}

// zstdHello is "hello zstd" compressed by `zstd -19`.
var zstdHello = []byte{0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68, 0x51, 0x00, 0x00, 0x68, 0x65, 0x6c,
	0x6c, 0x6f, 0x20, 0x7a, 0x73, 0x74, 0x64, 0xcf, 0xdb, 0x60, 0x9c}

func gzipped(t *testing.T, b []byte) []byte {
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

func TestDecompressStream(t *testing.T) {
	plainTar := makeTar(t, reg("f", "content"))
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr string
	}{
		{name: "plain tar", in: plainTar, want: plainTar},
		{name: "gzip tar", in: gzipped(t, plainTar), want: plainTar},
		{name: "bzip2", in: bzip2Hello, want: []byte("hello bzip2")},
		{name: "empty", in: nil, want: nil},
		{name: "short", in: []byte{0x1f}, want: []byte{0x1f}},
		{name: "xz", in: []byte{0xfd, '7', 'z', 'X', 'Z', 0x00, 0, 0}, wantErr: "unsupported compression format: tar.xz"},
		{name: "zstd", in: zstdHello, want: []byte("hello zstd")},
		{name: "broken zstd", in: []byte{0x28, 0xb5, 0x2f, 0xfd, 0x08, 0}, wantErr: "read zstd header: zstd: corrupt input: reserved bit set in frame header"},
		{name: "broken gzip", in: []byte{0x1f, 0x8b, 0x08, 0xff}, wantErr: "read gzip header: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := DecompressStream(bytes.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("DecompressStream() error = %v, want %q", err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("DecompressStream() error %v is not invalid parameter", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecompressStream() error = %v", err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("DecompressStream() read %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestDetectCompression(t *testing.T) {
	tests := []struct {
		in   []byte
		want Compression
	}{
		{[]byte("BZh91AY"), Bzip2},
		{[]byte{0x1f, 0x8b, 0x08, 0}, Gzip},
		{[]byte{0x1f, 0x8b}, Uncompressed},
		{[]byte("ustar"), Uncompressed},
		{nil, Uncompressed},
	}
	for _, tt := range tests {
		if got := DetectCompression(tt.in); got != tt.want {
			t.Errorf("DetectCompression(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
