package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"

	"skiffd/internal/errdefs"
	"skiffd/internal/zstd"
)

// Compression is a compression format recognised by its magic bytes.
type Compression int

// The formats that can be recognised. Uncompressed, Gzip, Bzip2 and Zstd
// (internal/zstd, issue 11) can be read; Xz cannot.
const (
	Uncompressed Compression = iota
	Bzip2
	Gzip
	Xz
	Zstd
)

// Extension is the file name extension dockerd gives an archive in the
// format ("tar.gz"), also used in its error text.
func (c Compression) Extension() string {
	switch c {
	case Uncompressed:
		return "tar"
	case Bzip2:
		return "tar.bz2"
	case Gzip:
		return "tar.gz"
	case Xz:
		return "tar.xz"
	case Zstd:
		return "tar.zst"
	}
	return ""
}

var magics = []struct {
	c     Compression
	magic []byte
}{
	{Bzip2, []byte{'B', 'Z', 'h'}},
	{Gzip, []byte{0x1f, 0x8b, 0x08}},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
}

// DetectCompression names the format whose magic bytes start source.
func DetectCompression(source []byte) Compression {
	for _, m := range magics {
		if bytes.HasPrefix(source, m.magic) {
			return m.c
		}
	}
	return Uncompressed
}

// DecompressStream returns a reader of the uncompressed content of r,
// which may be a plain tar, gzip, bzip2 or zstd. Xz is refused with an
// invalid-parameter error. An empty r reads as an empty plain stream.
// Closing the result does not close r.
func DecompressStream(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, copyBufferSize)
	head, err := br.Peek(10)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, fmt.Errorf("read archive header: %w", err)
	}
	switch c := DetectCompression(head); c {
	case Uncompressed:
		return io.NopCloser(br), nil
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("read gzip header: %w", err))
		}
		return zr, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), nil
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("read zstd header: %w", err))
		}
		return zr, nil
	default:
		return nil, errdefs.InvalidParameter(fmt.Errorf("unsupported compression format: %s", c.Extension()))
	}
}
