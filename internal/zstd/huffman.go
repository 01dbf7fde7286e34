package zstd

import "math/bits"

const maxHufBits = 11 // Max_Number_of_Bits, RFC 8878 section 4.2.1

// hufEntry decodes one literal: a maxBits-wide peek indexes the table.
type hufEntry struct {
	sym    uint8
	nbBits uint8
}

// hufTable is the decoding table of a Huffman tree (RFC 8878 section 4.2).
type hufTable struct {
	maxBits int
	entries []hufEntry // 1<<maxBits entries; nil until a tree was read
}

// readHuffman decodes a Huffman_Tree_Description from the start of in into
// t, and returns the bytes consumed.
func (t *hufTable) read(in []byte, fseScratch *fseTable) (int, error) {
	if len(in) == 0 {
		return 0, errCorrupt("missing Huffman tree description")
	}
	var weights [256]uint8
	var n int // weights listed (all but the last symbol's)
	hb := int(in[0])
	used := 1
	if hb >= 128 {
		// Direct representation: 4 bits per weight.
		n = hb - 127
		nbytes := (n + 1) / 2
		if 1+nbytes > len(in) {
			return 0, errCorrupt("truncated Huffman weights")
		}
		for i := 0; i < n; i++ {
			b := in[1+i/2]
			if i%2 == 0 {
				weights[i] = b >> 4
			} else {
				weights[i] = b & 15
			}
		}
		used += nbytes
	} else {
		// FSE-compressed weights, hb bytes.
		if hb == 0 || 1+hb > len(in) {
			return 0, errCorrupt("truncated Huffman weights")
		}
		src := in[1 : 1+hb]
		var norm [16]int16
		accLog, nsym, dused, err := readFSEDist(src, maxHufLog, 15, norm[:])
		if err != nil {
			return 0, err
		}
		if err := fseScratch.build(norm[:nsym], accLog); err != nil {
			return 0, err
		}
		var br revBits
		if dused >= len(src) {
			return 0, errCorrupt("missing Huffman weights bitstream")
		}
		if err := br.init(src[dused:]); err != nil {
			return 0, err
		}
		// Two interleaved states; decoding stops when an update reads
		// past the start of the stream, after one last symbol of the
		// other state (RFC 8878 section 4.2.1.2).
		st := fseScratch.states
		s1 := br.read(uint(accLog))
		s2 := br.read(uint(accLog))
		for {
			if n >= 255 {
				return 0, errCorrupt("too many Huffman weights")
			}
			e := st[s1]
			weights[n] = e.sym
			n++
			s1 = uint64(e.base) + br.read(uint(e.nbBits))
			if br.remaining() < 0 {
				if n >= 255 {
					return 0, errCorrupt("too many Huffman weights")
				}
				weights[n] = st[s2].sym
				n++
				break
			}
			if n >= 255 {
				return 0, errCorrupt("too many Huffman weights")
			}
			e = st[s2]
			weights[n] = e.sym
			n++
			s2 = uint64(e.base) + br.read(uint(e.nbBits))
			if br.remaining() < 0 {
				if n >= 255 {
					return 0, errCorrupt("too many Huffman weights")
				}
				weights[n] = st[s1].sym
				n++
				break
			}
		}
		used += hb
	}
	return used, t.build(weights[:], n)
}

// build makes the decoding table from n listed weights; the last symbol's
// weight is implied by the others summing to a power of two.
func (t *hufTable) build(weights []uint8, n int) error {
	var sum uint32
	for i := 0; i < n; i++ {
		w := weights[i]
		if w > maxHufBits {
			return errCorrupt("Huffman weight too large")
		}
		if w > 0 {
			sum += 1 << (w - 1)
		}
	}
	if sum == 0 {
		return errCorrupt("Huffman weights all zero")
	}
	maxBits := bits.Len32(sum) // highest bit + 1
	if maxBits > maxHufBits {
		return errCorrupt("Huffman tree too deep")
	}
	rest := uint32(1)<<maxBits - sum
	if rest&(rest-1) != 0 {
		return errCorrupt("Huffman weights do not sum to a power of two")
	}
	weights[n] = uint8(bits.Len32(rest)) // log2(rest) + 1
	n++
	// Codes are assigned from the lowest weight (longest code) up, within a
	// weight in symbol order; a symbol of weight w covers 1<<(w-1) entries.
	var rank [maxHufBits + 2]uint32
	for i := 0; i < n; i++ {
		rank[weights[i]]++
	}
	var start [maxHufBits + 2]uint32
	pos := uint32(0)
	for w := 1; w <= maxHufBits; w++ {
		start[w] = pos
		pos += rank[w] << (w - 1)
	}
	size := 1 << maxBits
	if cap(t.entries) < size {
		t.entries = make([]hufEntry, size, 1<<maxHufBits)
	}
	t.entries = t.entries[:size]
	t.maxBits = maxBits
	for s := 0; s < n; s++ {
		w := weights[s]
		if w == 0 {
			continue
		}
		e := hufEntry{sym: uint8(s), nbBits: uint8(maxBits + 1 - int(w))}
		p := start[w]
		span := uint32(1) << (w - 1)
		for i := p; i < p+span; i++ {
			t.entries[i] = e
		}
		start[w] = p + span
	}
	return nil
}

// decode fills out from one Huffman-coded stream, which must be consumed
// exactly.
func (t *hufTable) decode(out, in []byte) error {
	var br revBits
	if err := br.init(in); err != nil {
		return err
	}
	mb := uint(t.maxBits)
	ent := t.entries
	i := 0
	// Four symbols per refill while at least 4*maxBits bits are buffered.
	for i+4 <= len(out) {
		br.refill()
		if br.n < 4*mb {
			break
		}
		cont, n := br.cont, br.n
		for k := 0; k < 4; k++ {
			e := ent[cont>>(64-mb)]
			cont <<= e.nbBits
			n -= uint(e.nbBits)
			out[i+k] = e.sym
		}
		br.cont, br.n = cont, n
		i += 4
	}
	for ; i < len(out); i++ {
		br.refill()
		e := ent[br.peek(mb)]
		br.skip(uint(e.nbBits))
		out[i] = e.sym
	}
	if br.remaining() != 0 {
		return errCorrupt("Huffman stream not consumed exactly")
	}
	return nil
}
