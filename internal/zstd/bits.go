package zstd

import (
	"encoding/binary"
	"math/bits"
)

// revBits reads a backward bitstream (RFC 8878 section 4.1): the stream is
// written forward but read from its last byte towards its first, and the
// highest set bit of the last byte marks where the data starts.
//
// cont holds n valid bits at its top, the next bit to read in bit 63, and
// zeros below them, so a read is two shifts. Reads past the start of the
// stream yield zeros and are counted in over, so callers check for an
// overread once, at the end or where the format defines it.
type revBits struct {
	in   []byte
	off  int // bytes of in not yet loaded into cont: in[:off]
	cont uint64
	n    uint // valid bits in cont
	over int  // bits read past the start of the stream
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
	b.load()
	// Skip the zero padding and the marker bit itself.
	b.skip(uint(bits.LeadingZeros8(last)) + 1)
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
		m := (64 - b.n) >> 3 // whole bytes that fit
		w := binary.LittleEndian.Uint64(b.in[b.off-8:]) >> (64 - 8*m)
		b.cont |= w << (64 - b.n - 8*m)
		b.off -= int(m)
		b.n += 8 * m
		return
	}
	for b.n <= 56 && b.off > 0 {
		b.off--
		b.cont |= uint64(b.in[b.off]) << (56 - b.n)
		b.n += 8
	}
}

// read returns the next k bits (k <= 56), most significant first.
func (b *revBits) read(k uint) uint64 {
	if b.n < k {
		b.short(k)
	}
	v := b.cont >> (64 - k)
	b.cont <<= k
	b.n -= k
	return v
}

// short refills for a read of k bits; past the start of the stream it
// counts the missing bits as overread, and the zeros below the valid bits
// of cont stand in for them.
func (b *revBits) short(k uint) {
	b.refill()
	if b.n < k {
		b.over += int(k - b.n)
		b.n = k
	}
}

// peek returns the next k bits without consuming them, zero-padded past the
// start of the stream. The caller must have refilled.
func (b *revBits) peek(k uint) uint64 {
	return b.cont >> (64 - k)
}

// skip consumes k bits after a peek.
func (b *revBits) skip(k uint) {
	if k > b.n {
		b.over += int(k - b.n)
		b.cont, b.n = 0, 0
		return
	}
	b.cont <<= k
	b.n -= k
}

// remaining reports the bits not yet read; negative after an overread.
func (b *revBits) remaining() int {
	return int(b.n) + 8*b.off - b.over
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
