// Package zstd decompresses Zstandard streams (RFC 8878), the compression
// that BuildKit and registries such as GHCR use for image layers
// (application/vnd.oci.image.layer.v1.tar+zstd). It was written from the
// RFC for skiffd (issue 11) and uses the standard library only.
//
// The Reader streams: it decodes one block at a time as its caller reads,
// so memory is bounded by the frame's window (at most MaxWindow) plus a
// block, never by the content size.
//
//	zr, err := zstd.NewReader(layer)
//	if err != nil {
//		return err
//	}
//	defer zr.Close()
//	_, err = io.Copy(dst, zr)
//
// Dictionaries are not supported: a frame that names one is refused with
// ErrDictionary. Frames whose window exceeds MaxWindow are refused with
// ErrWindowTooLarge rather than allocating it.
package zstd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxWindow is the largest Window_Size the Reader accepts: 128 MiB, the
// window of `zstd --long` (window log 27). RFC 8878 recommends decoders
// support at least 8 MiB; dockerd and containerd cap theirs through their
// decoder's options too. A larger window would let one layer make the
// daemon allocate gigabytes.
const MaxWindow = 1 << maxWindowLog

const maxWindowLog = 27

const (
	frameMagic       = 0xFD2FB528
	skippableMagic   = 0x184D2A50 // low 4 bits free
	skippableMask    = 0xFFFFFFF0
	maxBlockSize     = 128 << 10 // Block_Maximum_Size cap
	blockHeaderSize  = 3
	checksumSize     = 4
	maxFrameHeaderSz = 14
)

var (
	// ErrCorrupt is wrapped by every error about malformed input.
	ErrCorrupt = errors.New("zstd: corrupt input")
	// ErrChecksum reports a Content_Checksum that does not match the
	// decompressed bytes.
	ErrChecksum = errors.New("zstd: content checksum mismatch")
	// ErrDictionary reports a frame that needs a dictionary.
	ErrDictionary = errors.New("zstd: dictionaries are not supported")
	// ErrWindowTooLarge reports a frame whose window exceeds MaxWindow.
	ErrWindowTooLarge = errors.New("zstd: window too large")
	errClosed         = errors.New("zstd: reader closed")
)

// corruptError is ErrCorrupt with what is wrong. Not fmt.Errorf: one of
// these is a package variable (errSeqBits), and formatting it at package
// initialisation cost every process of the binary fmt's first use.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return ErrCorrupt.Error() + ": " + e.msg }
func (e *corruptError) Unwrap() error { return ErrCorrupt }

func errCorrupt(msg string) error { return &corruptError{msg} }

// IsZstd reports whether header starts with a Zstandard frame's magic
// number. It does not recognise a stream that starts with a skippable
// frame, as `file` and dockerd's layer detection do not either.
func IsZstd(header []byte) bool {
	return len(header) >= 4 && binary.LittleEndian.Uint32(header) == frameMagic
}

// Reader decompresses a stream of concatenated Zstandard and skippable
// frames. It does not close the underlying reader.
type Reader struct {
	in  *bufio.Reader
	err error // sticky: io.EOF at the clean end

	frames int // frames started, skippable ones included

	// Current frame.
	inFrame     bool
	lastBlock   bool
	hasChecksum bool
	contentSize int64 // -1 when absent
	produced    int64
	window      int
	blockMax    int
	hash        xxh64

	scratch [maxFrameHeaderSz]byte // headers; a field so reads do not allocate

	hist []byte // frame history, then the block being read out
	rpos int    // hist[rpos:] is not yet returned to the caller
	blk  []byte // compressed block
	dec  blockDecoder
}

// NewReader returns a Reader decompressing r. It reads up to the first
// frame's header, so that input that is not Zstandard fails here.
func NewReader(r io.Reader) (*Reader, error) {
	z := &Reader{in: bufio.NewReaderSize(r, 64<<10)}
	for !z.inFrame {
		if err := z.nextFrame(); err != nil {
			if err == io.EOF && z.frames > 0 {
				// Only skippable frames: empty content.
				z.err = io.EOF
				break
			}
			if err == io.EOF {
				err = fmt.Errorf("%w: empty input", ErrCorrupt)
			}
			return nil, err
		}
	}
	return z, nil
}

// Read reads decompressed bytes. Each call decodes at most one block when
// no decoded bytes are pending.
func (z *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if z.rpos < len(z.hist) {
			n := copy(p, z.hist[z.rpos:])
			z.rpos += n
			return n, nil
		}
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.step()
	}
}

// Close releases the buffers; later Reads fail. It does not close the
// underlying reader.
func (z *Reader) Close() error {
	z.hist, z.blk, z.dec = nil, nil, blockDecoder{}
	z.rpos = 0
	if z.err == nil || z.err == io.EOF {
		z.err = errClosed
	}
	return nil
}

// step advances by one block, one frame end or one frame header.
func (z *Reader) step() error {
	if !z.inFrame {
		return z.nextFrame()
	}
	if z.lastBlock {
		return z.endFrame()
	}
	return z.block()
}

func (z *Reader) readFull(p []byte, what string) error {
	if _, err := io.ReadFull(z.in, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: truncated %s: %w", ErrCorrupt, what, io.ErrUnexpectedEOF)
		}
		return err
	}
	return nil
}

// nextFrame reads a frame header, or skips a skippable frame. It returns
// io.EOF at a clean end of input between frames.
func (z *Reader) nextFrame() error {
	hdr := z.scratch[:]
	n, err := io.ReadFull(z.in, hdr[:4])
	if err != nil {
		if err == io.EOF && n == 0 {
			return io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: truncated magic number: %w", ErrCorrupt, err)
		}
		return err
	}
	magic := binary.LittleEndian.Uint32(hdr[:])
	z.frames++
	if magic&skippableMask == skippableMagic {
		if err := z.readFull(hdr[:4], "skippable frame"); err != nil {
			return err
		}
		size := int64(binary.LittleEndian.Uint32(hdr[:]))
		if m, err := io.CopyN(io.Discard, z.in, size); err != nil {
			if err == io.EOF || m < size {
				return fmt.Errorf("%w: truncated skippable frame: %w", ErrCorrupt, io.ErrUnexpectedEOF)
			}
			return err
		}
		return nil
	}
	if magic != frameMagic {
		return fmt.Errorf("%w: unknown frame magic number %#08x", ErrCorrupt, magic)
	}
	if err := z.readFull(hdr[:1], "frame header"); err != nil {
		return err
	}
	fhd := hdr[0]
	fcsFlag := fhd >> 6
	single := fhd&0x20 != 0
	if fhd&0x08 != 0 {
		return errCorrupt("reserved bit set in frame header")
	}
	didSize := [4]int{0, 1, 2, 4}[fhd&3]
	fcsSize := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsSize = 1
	}
	wdSize := 1
	if single {
		wdSize = 0
	}
	rest := hdr[:wdSize+didSize+fcsSize]
	if err := z.readFull(rest, "frame header"); err != nil {
		return err
	}
	var window uint64
	if !single {
		wd := rest[0]
		wlog := 10 + uint(wd>>3)
		base := uint64(1) << wlog
		window = base + base/8*uint64(wd&7)
		rest = rest[1:]
	}
	var dictID uint32
	for i := didSize - 1; i >= 0; i-- {
		dictID = dictID<<8 | uint32(rest[i])
	}
	rest = rest[didSize:]
	z.contentSize = -1
	if fcsSize > 0 {
		var fcs uint64
		for i := fcsSize - 1; i >= 0; i-- {
			fcs = fcs<<8 | uint64(rest[i])
		}
		if fcsSize == 2 {
			fcs += 256
		}
		if fcs > 1<<62 {
			return errCorrupt("frame content size out of range")
		}
		z.contentSize = int64(fcs)
		if single {
			window = fcs
		}
	}
	if dictID != 0 {
		return fmt.Errorf("%w (frame needs dictionary %d)", ErrDictionary, dictID)
	}
	if window > MaxWindow {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrWindowTooLarge, window, MaxWindow)
	}
	z.window = int(window)
	z.blockMax = min(z.window, maxBlockSize)
	z.hasChecksum = fhd&0x04 != 0
	z.hash.reset()
	z.produced = 0
	z.inFrame = true
	z.lastBlock = false
	z.hist = z.hist[:0]
	z.rpos = 0
	z.dec.resetFrame()
	return nil
}

// endFrame checks the frame's content size and checksum.
func (z *Reader) endFrame() error {
	z.inFrame = false
	if z.contentSize >= 0 && z.produced != z.contentSize {
		return fmt.Errorf("%w: frame content size is %d, decoded %d bytes", ErrCorrupt, z.contentSize, z.produced)
	}
	if z.hasChecksum {
		sum := z.scratch[:checksumSize]
		if err := z.readFull(sum, "content checksum"); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(sum) != uint32(z.hash.sum()) {
			return ErrChecksum
		}
	}
	return nil
}

// room makes space for one more block at the end of hist, keeping the
// last window bytes of history. All of hist has been read by the caller.
//
// The history slides down only once slack bytes have accumulated past the
// window, so each output byte is copied about window/slack times; slack is
// at least half the window, which bounds memory to 1.5 windows plus a few
// blocks.
func (z *Reader) room() {
	need := len(z.hist) + z.blockMax
	if need <= cap(z.hist) {
		return
	}
	if len(z.hist) > z.window {
		keep := z.hist[len(z.hist)-z.window:]
		z.hist = z.hist[:copy(z.hist, keep)]
		z.rpos = len(z.hist)
		need = len(z.hist) + z.blockMax
		if need <= cap(z.hist) {
			return
		}
	}
	slack := max(z.window/2, 4*z.blockMax)
	newCap := max(2*cap(z.hist), need, 64<<10)
	newCap = min(newCap, z.window+slack)
	if newCap < need {
		newCap = need
	}
	h := make([]byte, len(z.hist), newCap)
	copy(h, z.hist)
	z.hist = h
}

// block decodes the next block into hist.
func (z *Reader) block() error {
	bh := z.scratch[:blockHeaderSize]
	if err := z.readFull(bh, "block header"); err != nil {
		return err
	}
	h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
	z.lastBlock = h&1 != 0
	btype := h >> 1 & 3
	size := int(h >> 3)
	z.room()
	start := len(z.hist)
	switch btype {
	case 0: // Raw_Block
		if size > z.blockMax {
			return errCorrupt("raw block larger than the block maximum")
		}
		z.hist = z.hist[:start+size]
		if err := z.readFull(z.hist[start:], "raw block"); err != nil {
			z.hist = z.hist[:start]
			return err
		}
	case 1: // RLE_Block
		if size > z.blockMax {
			return errCorrupt("RLE block larger than the block maximum")
		}
		b := z.scratch[:1]
		if err := z.readFull(b, "RLE block"); err != nil {
			return err
		}
		z.hist = z.hist[:start+size]
		for i := start; i < len(z.hist); i++ {
			z.hist[i] = b[0]
		}
	case 2: // Compressed_Block
		if size > z.blockMax {
			return errCorrupt("compressed block larger than the block maximum")
		}
		if cap(z.blk) < size {
			z.blk = make([]byte, size, max(size, z.blockMax))
		}
		z.blk = z.blk[:size]
		if err := z.readFull(z.blk, "compressed block"); err != nil {
			return err
		}
		end, err := z.dec.decode(z.blk, z.hist[:cap(z.hist)], start, z.blockMax, z.window)
		if err != nil {
			return err
		}
		z.hist = z.hist[:end]
	default:
		return errCorrupt("reserved block type")
	}
	z.rpos = start
	out := z.hist[start:]
	z.produced += int64(len(out))
	if z.contentSize >= 0 && z.produced > z.contentSize {
		z.hist = z.hist[:start]
		return fmt.Errorf("%w: frame decodes to more than its content size %d", ErrCorrupt, z.contentSize)
	}
	if z.hasChecksum {
		z.hash.write(out)
	}
	return nil
}
