package zstd

import (
	"encoding/binary"
	"sync"
)

// errSeqBits reports a sequences bitstream with bits left over (or read
// past its start) once all sequences are decoded. No encoder writes such a
// block; libzstd 1.5.4 (the zstd tool the tests compare with) checks this on
// only some of its decoding paths and decodes some of these corrupted
// blocks, which this decoder always refuses.
var errSeqBits = errCorrupt("sequences bitstream not consumed exactly")

// Code tables of RFC 8878 section 3.1.1.3.2.1: baseline and extra bits per
// literals-length and match-length code.
var (
	llBase = [36]uint32{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
		8192, 16384, 32768, 65536}
	llBits = [36]uint8{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
		13, 14, 15, 16}
	mlBase = [53]uint32{
		3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
		19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
		35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
		4099, 8195, 16387, 32771, 65539}
	mlBits = [53]uint8{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
		12, 13, 14, 15, 16}
)

// Predefined distributions, RFC 8878 section 3.1.1.3.2.2.
var (
	llDefaultNorm = []int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
		2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
		-1, -1, -1, -1}
	mlDefaultNorm = []int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
		-1, -1, -1, -1, -1}
	ofDefaultNorm = []int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}

	llDefault, mlDefault, ofDefault fseTable
)

// buildDefaults builds the predefined tables, on first use: every process
// of the binary (init and the exec helper on every container start and
// exec, issue 13) ran this at its start, and few ever read zstd.
var buildDefaults = sync.OnceFunc(func() {
	for _, d := range []struct {
		t    *fseTable
		norm []int16
		log  int
	}{{&llDefault, llDefaultNorm, 6}, {&mlDefault, mlDefaultNorm, 6}, {&ofDefault, ofDefaultNorm, 5}} {
		if err := d.t.build(d.norm, d.log); err != nil {
			panic("zstd: bad predefined distribution: " + err.Error())
		}
	}
})

const (
	maxLLSym = 35
	maxMLSym = 52
	maxOFSym = 31
)

// blockDecoder holds the state that compressed blocks of one frame share:
// the last Huffman tree, the last FSE tables and the repeat offsets.
type blockDecoder struct {
	huf           hufTable
	hufOK         bool
	scratch       fseTable  // for Huffman weights
	llT, mlT, ofT fseTable  // storage for RLE and FSE-compressed modes
	ll, ml, of    *fseTable // tables in use; nil before the first block
	rep           [3]int
	lits          []byte
	norm          [maxMLSym + 1]int16
}

func (d *blockDecoder) resetFrame() {
	d.hufOK = false
	d.ll, d.ml, d.of = nil, nil, nil
	d.rep = [3]int{1, 4, 8}
}

// decode decompresses one Compressed_Block into out, starting at out[op:].
// out has room for blockMax bytes after op; bytes before op are history
// that matches may reach, up to window bytes back. It returns the new end.
func (d *blockDecoder) decode(blk, out []byte, op, blockMax, window int) (int, error) {
	lits, n, err := d.literals(blk, blockMax)
	if err != nil {
		return 0, err
	}
	return d.sequences(blk[n:], lits, out, op, blockMax, window)
}

// literals decodes the Literals_Section at the start of blk (RFC 8878
// section 3.1.1.3.1) and returns the literals and the bytes consumed.
func (d *blockDecoder) literals(blk []byte, blockMax int) ([]byte, int, error) {
	if len(blk) == 0 {
		return nil, 0, errCorrupt("empty compressed block")
	}
	b0 := blk[0]
	ltype := b0 & 3
	sf := (b0 >> 2) & 3
	if ltype < 2 {
		var regen, hsz int
		switch sf {
		case 0, 2:
			regen, hsz = int(b0>>3), 1
		case 1:
			if len(blk) < 2 {
				return nil, 0, errCorrupt("truncated literals header")
			}
			regen, hsz = int(b0>>4)|int(blk[1])<<4, 2
		case 3:
			if len(blk) < 3 {
				return nil, 0, errCorrupt("truncated literals header")
			}
			regen, hsz = int(b0>>4)|int(blk[1])<<4|int(blk[2])<<12, 3
		}
		if regen > blockMax {
			return nil, 0, errCorrupt("literals larger than the block maximum")
		}
		if ltype == 0 { // Raw_Literals_Block
			if hsz+regen > len(blk) {
				return nil, 0, errCorrupt("truncated raw literals")
			}
			return blk[hsz : hsz+regen], hsz + regen, nil
		}
		// RLE_Literals_Block
		if hsz+1 > len(blk) {
			return nil, 0, errCorrupt("truncated RLE literals")
		}
		lits := d.litBuf(regen)
		c := blk[hsz]
		for i := range lits {
			lits[i] = c
		}
		return lits, hsz + 1, nil
	}

	// Compressed_Literals_Block or Treeless_Literals_Block.
	var regen, csize, hsz int
	streams := 4
	switch sf {
	case 0, 1:
		if len(blk) < 3 {
			return nil, 0, errCorrupt("truncated literals header")
		}
		h := uint32(b0) | uint32(blk[1])<<8 | uint32(blk[2])<<16
		regen, csize, hsz = int(h>>4&0x3FF), int(h>>14&0x3FF), 3
		if sf == 0 {
			streams = 1
		}
	case 2:
		if len(blk) < 4 {
			return nil, 0, errCorrupt("truncated literals header")
		}
		h := binary.LittleEndian.Uint32(blk)
		regen, csize, hsz = int(h>>4&0x3FFF), int(h>>18&0x3FFF), 4
	case 3:
		if len(blk) < 5 {
			return nil, 0, errCorrupt("truncated literals header")
		}
		h := uint64(binary.LittleEndian.Uint32(blk)) | uint64(blk[4])<<32
		regen, csize, hsz = int(h>>4&0x3FFFF), int(h>>22&0x3FFFF), 5
	}
	if regen > blockMax {
		return nil, 0, errCorrupt("literals larger than the block maximum")
	}
	if hsz+csize > len(blk) {
		return nil, 0, errCorrupt("truncated compressed literals")
	}
	src := blk[hsz : hsz+csize]
	if ltype == 2 {
		n, err := d.huf.read(src, &d.scratch)
		if err != nil {
			return nil, 0, err
		}
		d.hufOK = true
		src = src[n:]
	} else if !d.hufOK {
		return nil, 0, errCorrupt("treeless literals without a previous Huffman tree")
	}
	lits := d.litBuf(regen)
	if streams == 1 {
		if err := d.huf.decode(lits, src); err != nil {
			return nil, 0, err
		}
		return lits, hsz + csize, nil
	}
	if len(src) < 6 {
		return nil, 0, errCorrupt("truncated literals jump table")
	}
	s1 := int(binary.LittleEndian.Uint16(src))
	s2 := int(binary.LittleEndian.Uint16(src[2:]))
	s3 := int(binary.LittleEndian.Uint16(src[4:]))
	src = src[6:]
	if s1+s2+s3 > len(src) {
		return nil, 0, errCorrupt("literals jump table out of range")
	}
	seg := (regen + 3) / 4
	if 3*seg > regen {
		return nil, 0, errCorrupt("too few literals for four streams")
	}
	ends := [4]int{s1, s1 + s2, s1 + s2 + s3, len(src)}
	start := 0
	for i := 0; i < 4; i++ {
		o := lits[i*seg:]
		if i < 3 {
			o = o[:seg]
		}
		if err := d.huf.decode(o, src[start:ends[i]]); err != nil {
			return nil, 0, err
		}
		start = ends[i]
	}
	return lits, hsz + csize, nil
}

func (d *blockDecoder) litBuf(n int) []byte {
	if cap(d.lits) < n {
		d.lits = make([]byte, n, maxBlockSize)
	}
	return d.lits[:n]
}

// table applies one symbol compression mode (RFC 8878 section
// 3.1.1.3.2.1) and returns the table to use and the bytes consumed.
func (d *blockDecoder) table(mode byte, in []byte, cur, store, def *fseTable, maxLog, maxSym int) (*fseTable, int, error) {
	switch mode {
	case 0: // Predefined_Mode
		return def, 0, nil
	case 1: // RLE_Mode
		if len(in) < 1 {
			return nil, 0, errCorrupt("truncated RLE sequence table")
		}
		if int(in[0]) > maxSym {
			return nil, 0, errCorrupt("RLE sequence symbol out of range")
		}
		store.rle(in[0])
		return store, 1, nil
	case 2: // FSE_Compressed_Mode
		norm := d.norm[:maxSym+1]
		accLog, nsym, n, err := readFSEDist(in, maxLog, maxSym, norm)
		if err != nil {
			return nil, 0, err
		}
		if err := store.build(norm[:nsym], accLog); err != nil {
			return nil, 0, err
		}
		return store, n, nil
	default: // Repeat_Mode
		if cur == nil {
			return nil, 0, errCorrupt("repeat sequence table without a previous table")
		}
		return cur, 0, nil
	}
}

// sequences decodes the Sequences_Section and executes it (RFC 8878
// sections 3.1.1.3.2 and 3.1.1.4).
func (d *blockDecoder) sequences(in, lits, out []byte, op, blockMax, window int) (int, error) {
	if len(in) == 0 {
		return 0, errCorrupt("missing sequences section")
	}
	limit := op + blockMax
	var nseq, pos int
	switch b0 := int(in[0]); {
	case b0 < 128:
		nseq, pos = b0, 1
	case b0 < 255:
		if len(in) < 2 {
			return 0, errCorrupt("truncated sequences header")
		}
		nseq, pos = (b0-128)<<8|int(in[1]), 2
	default:
		if len(in) < 3 {
			return 0, errCorrupt("truncated sequences header")
		}
		nseq, pos = int(in[1])|int(in[2])<<8+0x7F00, 3
	}
	if nseq == 0 {
		if pos != len(in) {
			return 0, errCorrupt("data after an empty sequences section")
		}
		if len(lits) > blockMax {
			return 0, errCorrupt("block larger than the maximum")
		}
		return op + copy(out[op:limit], lits), nil
	}
	if pos >= len(in) {
		return 0, errCorrupt("truncated sequences header")
	}
	modes := in[pos]
	pos++
	if modes&3 != 0 {
		return 0, errCorrupt("reserved bits set in symbol compression modes")
	}
	buildDefaults()
	var n int
	var err error
	if d.ll, n, err = d.table(modes>>6, in[pos:], d.ll, &d.llT, &llDefault, maxLLLog, maxLLSym); err != nil {
		return 0, err
	}
	pos += n
	if d.of, n, err = d.table(modes>>4&3, in[pos:], d.of, &d.ofT, &ofDefault, maxOFLog, maxOFSym); err != nil {
		return 0, err
	}
	pos += n
	if d.ml, n, err = d.table(modes>>2&3, in[pos:], d.ml, &d.mlT, &mlDefault, maxMLLog, maxMLSym); err != nil {
		return 0, err
	}
	pos += n
	if pos > len(in) {
		return 0, errCorrupt("truncated sequence tables")
	}

	var br revBits
	if err := br.init(in[pos:]); err != nil {
		return 0, err
	}
	llT, mlT, ofT := d.ll.states, d.ml.states, d.of.states
	llS := br.read(uint(d.ll.accLog))
	ofS := br.read(uint(d.of.accLog))
	mlS := br.read(uint(d.ml.accLog))
	rep := d.rep
	for i := 0; i < nseq; i++ {
		le, me, oe := llT[llS], mlT[mlS], ofT[ofS]
		ofCode, mlb, llb := uint(oe.sym), uint(mlBits[me.sym]), uint(llBits[le.sym])
		if ofCode > maxWindowLog {
			// The offset would be at least 1<<28 - 3, beyond any window
			// accepted (and beyond int on 32-bit platforms).
			return 0, errCorrupt("match offset beyond the window")
		}
		br.refill()
		var ofExtra, mlExtra, llExtra uint64
		if total := ofCode + mlb + llb; br.n >= total {
			// The usual case, read without per-field checks (shifts by
			// 64 give zero in Go, as a field of width 0 needs).
			c := br.cont
			ofExtra = c >> (64 - ofCode)
			c <<= ofCode
			mlExtra = c >> (64 - mlb)
			c <<= mlb
			llExtra = c >> (64 - llb)
			br.cont = c << llb
			br.n -= total
		} else {
			ofExtra = br.read(ofCode)
			mlExtra = br.read(mlb)
			llExtra = br.read(llb)
		}
		ofVal := 1<<ofCode + int(ofExtra)
		ml := int(mlBase[me.sym]) + int(mlExtra)
		ll := int(llBase[le.sym]) + int(llExtra)
		var off int
		if ofVal > 3 {
			off = ofVal - 3
			rep[2], rep[1], rep[0] = rep[1], rep[0], off
		} else {
			idx := ofVal - 1
			if ll == 0 {
				idx++
			}
			switch idx {
			case 0:
				off = rep[0]
			case 1:
				off = rep[1]
				rep[1], rep[0] = rep[0], off
			case 2:
				off = rep[2]
				rep[2], rep[1], rep[0] = rep[1], rep[0], off
			default: // Repeated_Offset1 - 1
				off = rep[0] - 1
				if off == 0 {
					return 0, errCorrupt("zero offset")
				}
				rep[2], rep[1], rep[0] = rep[1], rep[0], off
			}
		}
		if i != nseq-1 {
			br.refill()
			lb, mb, ob := uint(le.nbBits), uint(me.nbBits), uint(oe.nbBits)
			if total := lb + mb + ob; br.n >= total {
				c := br.cont
				llS = uint64(le.base) + c>>(64-lb)
				c <<= lb
				mlS = uint64(me.base) + c>>(64-mb)
				c <<= mb
				ofS = uint64(oe.base) + c>>(64-ob)
				br.cont = c << ob
				br.n -= total
			} else {
				llS = uint64(le.base) + br.read(lb)
				mlS = uint64(me.base) + br.read(mb)
				ofS = uint64(oe.base) + br.read(ob)
			}
		}

		// Execute: ll literals, then ml bytes from off back.
		if ll > len(lits) {
			return 0, errCorrupt("literal length beyond the literals")
		}
		if ml > limit-op-ll {
			return 0, errCorrupt("block larger than the maximum")
		}
		op += copy(out[op:], lits[:ll])
		lits = lits[ll:]
		// Matches reach back into the frame's history, at most window
		// bytes; out holds at least that much of it (see Reader.room).
		if off > op || off > window {
			return 0, errCorrupt("match offset beyond the window")
		}
		src := op - off
		if off >= ml {
			op += copy(out[op:op+ml], out[src:src+ml])
		} else {
			for ml > 0 {
				c := copy(out[op:op+ml], out[src:op])
				op += c
				ml -= c
			}
		}
	}
	if br.remaining() != 0 {
		return 0, errSeqBits
	}
	d.rep = rep
	if len(lits) > limit-op {
		return 0, errCorrupt("block larger than the maximum")
	}
	op += copy(out[op:], lits)
	return op, nil
}
