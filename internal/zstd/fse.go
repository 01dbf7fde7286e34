package zstd

import "math/bits"

// fseEntry is one state of an FSE decoding table (RFC 8878 section 4.1.1):
// the symbol it decodes to, and how the next state is formed from it.
type fseEntry struct {
	base   uint16 // Baseline
	sym    uint8
	nbBits uint8
}

// fseTable is a decoding table of 1<<accLog states.
type fseTable struct {
	accLog int
	states []fseEntry
}

// Maximum accuracy logs, RFC 8878 sections 3.1.1.3.2.2 and 4.2.1.2.
const (
	maxLLLog  = 9
	maxMLLog  = 9
	maxOFLog  = 8
	maxHufLog = 6
)

// readFSEDist decodes an FSE table description from the start of in into
// norm (one probability per symbol, -1 meaning "less than 1"), and returns
// the accuracy log, the number of symbols and the bytes consumed. maxSym is
// the largest symbol value the caller allows.
func readFSEDist(in []byte, maxLog, maxSym int, norm []int16) (accLog, nsym, used int, err error) {
	if len(in) == 0 {
		return 0, 0, 0, errCorrupt("missing FSE table description")
	}
	br := fwdBits{in: in}
	accLog = int(br.read(4)) + 5
	if accLog > maxLog {
		return 0, 0, 0, errCorrupt("FSE accuracy log too large")
	}
	remaining := 1<<accLog + 1
	threshold := 1 << accLog
	nb := accLog + 1
	sym := 0
	for remaining > 1 {
		if sym > maxSym {
			return 0, 0, 0, errCorrupt("FSE table description has too many symbols")
		}
		// A value below lowMax fits in nb-1 bits; larger ones take nb bits.
		lowMax := uint32(2*threshold - 1 - remaining)
		v := br.peek(nb)
		var val uint32
		if low := v & uint32(threshold-1); low < lowMax {
			val = low
			br.pos += nb - 1
		} else {
			val = v & uint32(2*threshold-1)
			if val >= uint32(threshold) {
				val -= lowMax
			}
			br.pos += nb
		}
		prob := int(val) - 1
		norm[sym] = int16(prob)
		sym++
		if prob < 0 {
			remaining--
		} else {
			remaining -= prob
		}
		if prob == 0 {
			// Zero probabilities are followed by 2-bit repeat counts of
			// further zeros; 3 means another count follows.
			for {
				rep := int(br.read(2))
				if sym+rep > maxSym+1 {
					return 0, 0, 0, errCorrupt("FSE table description has too many symbols")
				}
				for i := 0; i < rep; i++ {
					norm[sym] = 0
					sym++
				}
				if rep != 3 {
					break
				}
				if br.overrun() {
					return 0, 0, 0, errCorrupt("truncated FSE table description")
				}
			}
		}
		if br.overrun() {
			return 0, 0, 0, errCorrupt("truncated FSE table description")
		}
		for remaining < threshold && threshold > 1 {
			nb--
			threshold >>= 1
		}
	}
	if remaining != 1 {
		return 0, 0, 0, errCorrupt("FSE probabilities do not sum to the table size")
	}
	return accLog, sym, (br.pos + 7) >> 3, nil
}

// build fills t from a normalized distribution (RFC 8878 section 4.1.1,
// "FSE Table Description" to "Decoding table").
func (t *fseTable) build(norm []int16, accLog int) error {
	size := 1 << accLog
	if cap(t.states) < size {
		t.states = make([]fseEntry, size, 1<<maxLLLog)
	}
	t.states = t.states[:size]
	t.accLog = accLog
	var next [256]uint16
	high := size - 1
	for s, p := range norm {
		if p == -1 {
			if high < 0 {
				return errCorrupt("FSE distribution overflows the table")
			}
			t.states[high].sym = uint8(s)
			high--
			next[s] = 1
		} else {
			next[s] = uint16(p)
		}
	}
	step := size>>1 + size>>3 + 3
	mask := size - 1
	pos := 0
	for s, p := range norm {
		for i := 0; i < int(p); i++ {
			t.states[pos].sym = uint8(s)
			pos = (pos + step) & mask
			for pos > high {
				pos = (pos + step) & mask
			}
		}
	}
	if pos != 0 {
		return errCorrupt("FSE distribution does not fill the table")
	}
	for i := range t.states {
		e := &t.states[i]
		n := next[e.sym]
		next[e.sym]++
		if n == 0 {
			return errCorrupt("FSE distribution inconsistent")
		}
		nb := accLog - (bits.Len16(n) - 1)
		e.nbBits = uint8(nb)
		e.base = uint16(int(n)<<nb - size)
	}
	return nil
}

// rle makes t a one-state table always decoding sym (RLE_Mode).
func (t *fseTable) rle(sym uint8) {
	if cap(t.states) < 1 {
		t.states = make([]fseEntry, 1, 1<<maxLLLog)
	}
	t.states = t.states[:1]
	t.states[0] = fseEntry{sym: sym}
	t.accLog = 0
}
