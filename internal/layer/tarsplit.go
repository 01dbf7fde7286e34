package layer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The tar-split file keeps what is needed to give back a layer's tar stream
// byte for byte once it is unpacked: every byte of the stream except the
// contents of regular files, which are read back from the diff directory.
// Moby keeps the same information with vbatts/tar-split; this is our own
// compact binary form:
//
//	magic "SKTSPLT1"
//	records, each a type byte and uvarint fields:
//	  'r' n, then n bytes     raw stream bytes (headers, PAX and GNU records, ...)
//	  'z' n                   n raw zero bytes (padding, end-of-archive blocks)
//	  'f' n, len, path        the content of diff/<path>, n bytes; the k-th 'f' is file k
//	  'i' k, n, then n bytes  the content of file k, kept here because a later
//	                          entry of the same tar removed or replaced diff/<path>
//	  'e'                     end of the stream
//	index: uvarint count, then count times (k, offset, n) of the 'i' contents
//	footer: 8-byte big-endian offset of the index, magic "SKTSEND1"
//
// Replay reads the index first, so it knows which files to take from 'i'
// records, then the records in order, skipping 'i'.
const (
	splitMagic  = "SKTSPLT1"
	splitEnd    = "SKTSEND1"
	footerSize  = 8 + len(splitEnd)
	recRaw      = 'r'
	recZeros    = 'z'
	recFile     = 'f'
	recInline   = 'i'
	recEnd      = 'e'
	maxPathSize = 64 << 10
	// minZeroRun is the shortest run of zero bytes worth a 'z' record;
	// shorter runs (the NUL after a name) stay in the raw bytes.
	minZeroRun = 32
	// maxLiteral bounds the raw bytes buffered before a record is written.
	maxLiteral = 64 << 10
)

// inlined locates the content of one file kept in the split file.
type inlined struct {
	off, n int64
}

// splitWriter encodes the tar-split of a stream as it is read.
type splitWriter struct {
	w   *bufio.Writer
	off int64 // bytes written so far, for the index

	lit   []byte // raw bytes not yet written
	zeros int64  // zero bytes that follow lit, not yet written

	files  int // number of 'f' records written
	inline map[int]inlined
	err    error
}

func newSplitWriter(w io.Writer) (*splitWriter, error) {
	sw := &splitWriter{w: bufio.NewWriterSize(w, 256<<10), inline: make(map[int]inlined)}
	sw.write([]byte(splitMagic))
	return sw, sw.err
}

func (sw *splitWriter) write(p []byte) {
	if sw.err != nil {
		return
	}
	n, err := sw.w.Write(p)
	sw.off += int64(n)
	sw.err = err
}

func (sw *splitWriter) uvarint(v uint64) {
	var b [binary.MaxVarintLen64]byte
	sw.write(b[:binary.PutUvarint(b[:], v)])
}

// raw records p as bytes of the stream.
func (sw *splitWriter) raw(p []byte) error {
	for len(p) > 0 {
		if p[0] == 0 {
			i := 1
			for i < len(p) && p[i] == 0 {
				i++
			}
			sw.zeros += int64(i)
			p = p[i:]
			continue
		}
		sw.settleZeros()
		i := 0
		for i < len(p) && p[i] != 0 {
			i++
		}
		sw.lit = append(sw.lit, p[:i]...)
		p = p[i:]
		if len(sw.lit) >= maxLiteral {
			sw.flushLiteral()
		}
	}
	return sw.err
}

// settleZeros turns pending zeros into a 'z' record or, if few, literal
// bytes.
func (sw *splitWriter) settleZeros() {
	if sw.zeros == 0 {
		return
	}
	if sw.zeros >= minZeroRun {
		sw.flushLiteral()
		sw.write([]byte{recZeros})
		sw.uvarint(uint64(sw.zeros))
	} else {
		for range sw.zeros {
			sw.lit = append(sw.lit, 0)
		}
	}
	sw.zeros = 0
}

func (sw *splitWriter) flushLiteral() {
	if len(sw.lit) == 0 {
		return
	}
	sw.write([]byte{recRaw})
	sw.uvarint(uint64(len(sw.lit)))
	sw.write(sw.lit)
	sw.lit = sw.lit[:0]
}

// flushRaw writes every pending raw byte, so that what follows is in order.
func (sw *splitWriter) flushRaw() error {
	sw.settleZeros()
	sw.flushLiteral()
	return sw.err
}

// file records n bytes of file content at path and returns its number.
func (sw *splitWriter) file(path string, n int64) (int, error) {
	if err := sw.flushRaw(); err != nil {
		return 0, err
	}
	sw.write([]byte{recFile})
	sw.uvarint(uint64(n))
	sw.uvarint(uint64(len(path)))
	sw.write([]byte(path))
	k := sw.files
	sw.files++
	return k, sw.err
}

// inlineFile copies n bytes from r into the split file as the content of
// file k.
func (sw *splitWriter) inlineFile(k int, r io.Reader, n int64) error {
	sw.write([]byte{recInline})
	sw.uvarint(uint64(k))
	sw.uvarint(uint64(n))
	if sw.err != nil {
		return sw.err
	}
	off := sw.off
	copied, err := io.CopyN(sw.w, r, n)
	sw.off += copied
	if err != nil {
		sw.err = fmt.Errorf("keep content of file %d: %w", k, err)
		return sw.err
	}
	sw.inline[k] = inlined{off: off, n: n}
	return nil
}

// finish writes the end record, the index and the footer, and flushes.
func (sw *splitWriter) finish() error {
	if err := sw.flushRaw(); err != nil {
		return err
	}
	sw.write([]byte{recEnd})
	indexOff := sw.off
	sw.uvarint(uint64(len(sw.inline)))
	for k := range sw.files {
		if in, ok := sw.inline[k]; ok {
			sw.uvarint(uint64(k))
			sw.uvarint(uint64(in.off))
			sw.uvarint(uint64(in.n))
		}
	}
	var footer [footerSize]byte
	binary.BigEndian.PutUint64(footer[:8], uint64(indexOff))
	copy(footer[8:], splitEnd)
	sw.write(footer[:])
	if sw.err != nil {
		return sw.err
	}
	return sw.w.Flush()
}

// fileOpener opens the content of a file the split data names, checking
// that it is a regular file of size bytes.
type fileOpener func(path string, size int64) (io.ReadCloser, error)

// replaySplit writes the tar stream that split (size bytes) describes to
// w, taking file contents from open, and returns the bytes written. A
// stream longer than limit bytes is refused as corrupt before it is
// written, which also bounds the work damaged data can cause.
func replaySplit(split io.ReaderAt, size, limit int64, open fileOpener, w io.Writer, cancelled func() error) (int64, error) {
	if size < int64(len(splitMagic)+1+1+footerSize) {
		return 0, fmt.Errorf("%w: %d bytes", errCorruptSplit, size)
	}
	var footer [footerSize]byte
	if _, err := split.ReadAt(footer[:], size-int64(footerSize)); err != nil {
		return 0, fmt.Errorf("read tar-split footer: %w", err)
	}
	var magic [len(splitMagic)]byte
	if _, err := split.ReadAt(magic[:], 0); err != nil {
		return 0, fmt.Errorf("read tar-split header: %w", err)
	}
	indexOff := int64(binary.BigEndian.Uint64(footer[:8]))
	if string(footer[8:]) != splitEnd || string(magic[:]) != splitMagic ||
		indexOff < int64(len(splitMagic))+1 || indexOff > size-int64(footerSize) {
		return 0, fmt.Errorf("%w: bad header or footer", errCorruptSplit)
	}
	inline, err := readIndex(io.NewSectionReader(split, indexOff, size-int64(footerSize)-indexOff), indexOff)
	if err != nil {
		return 0, err
	}

	br := bufio.NewReaderSize(io.NewSectionReader(split, int64(len(splitMagic)), indexOff-int64(len(splitMagic))), 64<<10)
	cw := &countWriter{w: w}
	zeros := make([]byte, 32<<10)
	for k := 0; ; {
		if err := cancelled(); err != nil {
			return cw.n, err
		}
		typ, err := br.ReadByte()
		if err != nil {
			return cw.n, fmt.Errorf("%w: no end record: %v", errCorruptSplit, err)
		}
		remaining := limit - cw.n
		switch typ {
		case recRaw:
			n, err := readLen(br, min(indexOff, remaining))
			if err != nil {
				return cw.n, err
			}
			if _, err := io.CopyN(cw, br, n); err != nil {
				return cw.n, replayErr(err)
			}
		case recZeros:
			n, err := readLen(br, remaining)
			if err != nil {
				return cw.n, err
			}
			for n > 0 {
				c := min(n, int64(len(zeros)))
				if _, err := cw.Write(zeros[:c]); err != nil {
					return cw.n, err
				}
				n -= c
			}
		case recFile:
			n, err := readLen(br, remaining)
			if err != nil {
				return cw.n, err
			}
			plen, err := readLen(br, maxPathSize)
			if err != nil {
				return cw.n, err
			}
			p := make([]byte, plen)
			if _, err := io.ReadFull(br, p); err != nil {
				return cw.n, fmt.Errorf("%w: %v", errCorruptSplit, err)
			}
			if in, ok := inline[k]; ok {
				if in.n != n {
					return cw.n, fmt.Errorf("%w: kept content of %q is %d bytes, want %d", errCorruptSplit, p, in.n, n)
				}
				if _, err := io.Copy(cw, io.NewSectionReader(split, in.off, in.n)); err != nil {
					return cw.n, err
				}
			} else if err := copyFile(cw, open, string(p), n); err != nil {
				return cw.n, err
			}
			k++
		case recInline:
			if _, err := readLen(br, 1<<62); err != nil {
				return cw.n, err
			}
			n, err := readLen(br, indexOff)
			if err != nil {
				return cw.n, err
			}
			if _, err := br.Discard(int(n)); err != nil {
				return cw.n, replayErr(err)
			}
		case recEnd:
			if _, err := br.ReadByte(); err != io.EOF {
				return cw.n, fmt.Errorf("%w: data after the end record", errCorruptSplit)
			}
			return cw.n, nil
		default:
			return cw.n, fmt.Errorf("%w: unknown record type %#x", errCorruptSplit, typ)
		}
	}
}

// copyFile copies exactly n bytes of the file path to w, failing if the
// file has another size, so that a damaged layer never yields a tar with
// shifted contents.
func copyFile(w io.Writer, open fileOpener, path string, n int64) error {
	f, err := open(path, n)
	if err != nil {
		return err
	}
	defer f.Close()
	copied, err := io.Copy(w, io.LimitReader(f, n))
	if err != nil {
		return fmt.Errorf("copy %q: %w", path, err)
	}
	if copied != n {
		return fmt.Errorf("copy %q: file has %d bytes, the layer recorded %d", path, copied, n)
	}
	return nil
}

func readIndex(r io.Reader, limit int64) (map[int]inlined, error) {
	br := bufio.NewReader(r)
	count, err := readLen(br, limit)
	if err != nil {
		return nil, err
	}
	inline := make(map[int]inlined)
	for range count {
		k, err := readLen(br, 1<<31)
		if err != nil {
			return nil, err
		}
		off, err := readLen(br, limit)
		if err != nil {
			return nil, err
		}
		n, err := readLen(br, limit-off)
		if err != nil {
			return nil, err
		}
		inline[int(k)] = inlined{off: off, n: n}
	}
	return inline, nil
}

// readLen reads a uvarint that must not exceed limit.
func readLen(br io.ByteReader, limit int64) (int64, error) {
	v, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errCorruptSplit, err)
	}
	if v > uint64(limit) {
		return 0, fmt.Errorf("%w: length %d out of range", errCorruptSplit, v)
	}
	return int64(v), nil
}

func replayErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated record", errCorruptSplit)
	}
	return err
}

// countWriter counts what it passes on. It forwards ReadFrom so that file
// contents can still be spliced when w is a file or socket.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.w, r)
	c.n += n
	return n, err
}

// openRegular opens path in root for reading and checks it is a regular
// file of size bytes. The recorded paths have no symbolic links in them
// (the applier resolved them); os.Root keeps any reading inside root
// whatever the directory holds.
func openRegular(root *os.Root, path string, size int64) (io.ReadCloser, error) {
	f, err := root.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open layer file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open layer file: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() != size {
		f.Close()
		return nil, fmt.Errorf("layer file %q changed: %v of %d bytes, the layer recorded a regular file of %d bytes",
			path, st.Mode().Type(), st.Size(), size)
	}
	return f, nil
}

// WriteTar writes the layer's tar stream exactly as it was registered, so
// that its sha256 is the layer's diff ID: the recorded headers, padding and
// trailer, and each file's content read back from the layer's diff
// directory (through os.Root, so nothing outside it is read). It fails,
// rather than write a different tar, when a file no longer has the size it
// was unpacked with; what was written before the failure stays written.
func (s *Store) WriteTar(ctx context.Context, chainID string, w io.Writer) error {
	l, err := s.Get(chainID)
	if err != nil {
		return err
	}
	dir := s.dir(chainID)
	f, err := os.Open(filepath.Join(dir, splitFileName))
	if err != nil {
		return fmt.Errorf("write tar of layer %s: %w", chainID, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("write tar of layer %s: %w", chainID, err)
	}
	root, err := os.OpenRoot(filepath.Join(dir, diffDirName))
	if err != nil {
		return fmt.Errorf("write tar of layer %s: %w", chainID, err)
	}
	defer root.Close()
	open := func(p string, size int64) (io.ReadCloser, error) { return openRegular(root, p, size) }
	n, err := replaySplit(f, st.Size(), l.TarSize, open, w, ctx.Err)
	if err != nil {
		return fmt.Errorf("write tar of layer %s: %w", chainID, err)
	}
	if n != l.TarSize {
		return fmt.Errorf("write tar of layer %s: wrote %d bytes, the layer recorded %d", chainID, n, l.TarSize)
	}
	return nil
}
