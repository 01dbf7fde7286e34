package zstd

import (
	"encoding/binary"
	"math/bits"
)

// XXH64 primes, from the xxHash specification that RFC 8878 section 3.1.1
// refers to for the content checksum. Variables, not constants, because the
// algorithm relies on wrapping uint64 arithmetic.
var (
	prime1 uint64 = 0x9E3779B185EBCA87
	prime2 uint64 = 0xC2B2AE3D27D4EB4F
	prime3 uint64 = 0x165667B19E3779F9
	prime4 uint64 = 0x85EBCA77C2B2AE63
	prime5 uint64 = 0x27D4EB2F165667C5
)

// xxh64 is a streaming XXH64 digest with seed 0, the hash whose low 32 bits
// form a frame's Content_Checksum.
type xxh64 struct {
	v     [4]uint64
	total uint64
	buf   [32]byte
	n     int // bytes held in buf
}

func (h *xxh64) reset() {
	h.v = [4]uint64{prime1 + prime2, prime2, 0, -prime1}
	h.total = 0
	h.n = 0
}

func xxhRound(acc, in uint64) uint64 {
	acc += in * prime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime1
}

func xxhMerge(acc, v uint64) uint64 {
	acc ^= xxhRound(0, v)
	return acc*prime1 + prime4
}

func (h *xxh64) write(p []byte) {
	h.total += uint64(len(p))
	if h.n > 0 {
		c := copy(h.buf[h.n:], p)
		h.n += c
		p = p[c:]
		if h.n < 32 {
			return
		}
		h.stripes(h.buf[:])
		h.n = 0
	}
	if len(p) >= 32 {
		m := len(p) &^ 31
		h.stripes(p[:m])
		p = p[m:]
	}
	h.n = copy(h.buf[:], p)
}

// stripes consumes a multiple of 32 bytes.
func (h *xxh64) stripes(p []byte) {
	v0, v1, v2, v3 := h.v[0], h.v[1], h.v[2], h.v[3]
	for ; len(p) >= 32; p = p[32:] {
		v0 = xxhRound(v0, binary.LittleEndian.Uint64(p))
		v1 = xxhRound(v1, binary.LittleEndian.Uint64(p[8:]))
		v2 = xxhRound(v2, binary.LittleEndian.Uint64(p[16:]))
		v3 = xxhRound(v3, binary.LittleEndian.Uint64(p[24:]))
	}
	h.v = [4]uint64{v0, v1, v2, v3}
}

func (h *xxh64) sum() uint64 {
	var acc uint64
	if h.total >= 32 {
		v := h.v
		acc = bits.RotateLeft64(v[0], 1) + bits.RotateLeft64(v[1], 7) +
			bits.RotateLeft64(v[2], 12) + bits.RotateLeft64(v[3], 18)
		for _, x := range v {
			acc = xxhMerge(acc, x)
		}
	} else {
		acc = h.v[2] + prime5 // seed + prime5
	}
	acc += h.total
	p := h.buf[:h.n]
	for ; len(p) >= 8; p = p[8:] {
		acc ^= xxhRound(0, binary.LittleEndian.Uint64(p))
		acc = bits.RotateLeft64(acc, 27)*prime1 + prime4
	}
	if len(p) >= 4 {
		acc ^= uint64(binary.LittleEndian.Uint32(p)) * prime1
		acc = bits.RotateLeft64(acc, 23)*prime2 + prime3
		p = p[4:]
	}
	for _, b := range p {
		acc ^= uint64(b) * prime5
		acc = bits.RotateLeft64(acc, 11) * prime1
	}
	acc ^= acc >> 33
	acc *= prime2
	acc ^= acc >> 29
	acc *= prime3
	acc ^= acc >> 32
	return acc
}
