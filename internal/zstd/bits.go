package zstd

import (
	"encoding/binary"
	"math/bits"
)

// revBits reads a backward bitstream (RFC 8878 section 4.1): the stream is
// written forward but read from its last byte towards its first, and the
// highest set bit of the last byte marks where the data starts.
//
// cont holds n valid bits in its low bits; the next bits to read are the
// highest of those. Reads past the start of the stream yield zeros and are
// counted in over, so callers check for an overread once, at the end or
// where the format defines it.
type revBits struct {
	in   []byte
	off  int // bytes of in not yet loaded into cont: in[:off]
	cont uint64
	n    int // valid bits in cont
	over int // bits read past the start of the stream
}

func (b *revBits) init(in []byte) error {
	if len(in) == 0 {
		return errCorrupt("empty bitstream")
	}
	last := in[len(in)-1]
	if last == 0 {
		return errCorrupt("bitstream end marker missing")
	}
	*b = revBits{in: in, off: len(in)}
	b.refill()
	// Skip the zero padding and the marker bit itself.
	b.n -= bits.LeadingZeros8(last) + 1
	return nil
}

// refill loads bytes until cont holds at least 57 bits or the input is
// exhausted.
func (b *revBits) refill() {
	if b.n <= 56 {
		b.load()
	}
}

func (b *revBits) load() {
	if b.off >= 8 {
		m := (63 - b.n) >> 3 // whole bytes that fit
		v := binary.LittleEndian.Uint64(b.in[b.off-8:])
		b.cont = b.cont<<(8*m) | v>>(64-8*m)
		b.off -= m
		b.n += 8 * m
		return
	}
	for b.n <= 56 && b.off > 0 {
		b.off--
		b.cont = b.cont<<8 | uint64(b.in[b.off])
		b.n += 8
	}
}

// read returns the next k bits (k <= 56), most significant first.
func (b *revBits) read(k int) uint64 {
	if b.n >= k {
		b.n -= k
		return (b.cont >> b.n) & (1<<k - 1)
	}
	return b.readSlow(k)
}

func (b *revBits) readSlow(k int) uint64 {
	b.refill()
	if b.n < k {
		// Past the start: the missing low bits are zeros.
		var v uint64
		if b.n > 0 {
			v = (b.cont & (1<<b.n - 1)) << (k - b.n)
			b.over += k - b.n
		} else {
			b.over += k
		}
		b.n = 0
		return v
	}
	b.n -= k
	return (b.cont >> b.n) & (1<<k - 1)
}

// peek returns the next k bits without consuming them, zero-padded past the
// start of the stream. The caller must have refilled.
func (b *revBits) peek(k int) uint64 {
	if b.n >= k {
		return (b.cont >> (b.n - k)) & (1<<k - 1)
	}
	return (b.cont & (1<<b.n - 1)) << (k - b.n)
}

// skip consumes k bits after a peek.
func (b *revBits) skip(k int) {
	if k > b.n {
		b.over += k - b.n
		b.n = 0
		return
	}
	b.n -= k
}

// remaining reports the bits not yet read; negative after an overread.
func (b *revBits) remaining() int {
	return b.n + 8*b.off - b.over
}

// fwdBits reads a forward, little-endian bitstream as used by FSE table
// descriptions (RFC 8878 section 4.1.1).
type fwdBits struct {
	in  []byte
	pos int // bit position
}

// read returns the next k bits (k <= 32); bits past the end read as zero
// and are caught by the caller through overrun.
func (b *fwdBits) read(k int) uint32 {
	v := b.peek(k)
	b.pos += k
	return v
}

func (b *fwdBits) peek(k int) uint32 {
	byteOff := b.pos >> 3
	var w uint64
	if byteOff+8 <= len(b.in) {
		w = binary.LittleEndian.Uint64(b.in[byteOff:])
	} else {
		for i := 0; byteOff+i < len(b.in) && i < 8; i++ {
			w |= uint64(b.in[byteOff+i]) << (8 * i)
		}
	}
	return uint32(w>>(b.pos&7)) & (1<<k - 1)
}

func (b *fwdBits) overrun() bool { return b.pos > 8*len(b.in) }
