package logs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// recordTrim is what dockerd trims from both ends of a record before
// decoding it: NUL bytes (left by a crash on some filesystems), stray line
// ends and blanks.
const recordTrim = "\x00\r\n \t"

// errEmptyRecord marks a record that is blank after trimming; readers skip
// it without counting it as corrupt.
var errEmptyRecord = errors.New("empty log record")

// parseRecord decodes one json-file record (one line of the file, without
// its newline) the way dockerd does with encoding/json: the "log", "stream"
// and "time" fields, unknown fields such as "attrs" ignored.
//
// The writer's own output is handled by a hand-written fast path, which is
// several times quicker than encoding/json (BenchmarkParseRecord); anything
// it does not recognise exactly goes to encoding/json, so the result is
// always the one encoding/json gives (FuzzParseRecord checks that).
func parseRecord(b []byte) (Message, error) {
	return parseRecordSlab(b, nil)
}

// decoder is what a reader keeps from one record to the next to decode
// the writer's records cheaply.
type decoder struct {
	// slab is where decoded lines are carved from (see carve).
	slab []byte
	// borrow lets a line without escapes point into the record itself
	// rather than be copied: the caller uses it before the next record
	// and keeps nothing (ReadOptions.Borrow).
	borrow bool
	// tkey is the date and second ("2006-01-02T15:04:05") of the last
	// time fully parsed in the writer's form (UTC, '.', 1 to 9 digits),
	// and tbase that time at the whole second: the next records of the
	// same second only add their fraction (issue 13: parsing every
	// record's time was a sixth of the reader's cost).
	tkey  [19]byte
	tbase time.Time
	tok   bool
	// last is the quoted time of the last record parsed, lastLen its
	// length (0: none), and lastT its value: the shim stamps all the
	// lines of one read from a container's pipe with one time, so most
	// records repeat the time before them.
	last    [40]byte
	lastLen int
	lastT   time.Time
	// inPlace lets parseWriter decode a record in the bytes it is given,
	// changing them: the caller owns them and reads each record once.
	inPlace bool
	// tail is the end of the last record parseWriter decoded, from the
	// comma before "stream" to the closing brace, tailLen its length
	// (0: none), and tailStream and tailT its stream and time (see
	// plainLine).
	tail       [64]byte
	tailLen    int
	tailStream string
	tailT      time.Time
}

// decode decodes rec as parseRecord does, with d's state: the writer's
// own records first, without the general parser's layers (issue 13), and
// of those first a plain line that ends as the record before did.
func (d *decoder) decode(rec []byte) (Message, error) {
	var m Message
	if d.plainLine(rec, &m) {
		return m, nil
	}
	if d.borrow {
		d.slab = d.slab[:0]
	}
	if m, ok := parseWriter(rec, d); ok {
		return m, nil
	}
	return parseRecordSlab(rec, d)
}

// plainLine decodes rec into m, in place, if it is a record in the
// writer's layout of a plain line and its newline that ends exactly as the
// last record parseWriter decoded: the same stream and time, as the
// writer's records of one read from the container's pipe all are. It is
// parseWriter's in-place case without its checks of the stream and time,
// made once for the record that set the tail (issue 13: parseWriter's
// checks and its result's copies were half of the reader's cost).
func (d *decoder) plainLine(rec []byte, m *Message) bool {
	if !d.inPlace || d.tailLen == 0 || len(rec) < len(writerLog)+1 || string(rec[:len(writerLog)+1]) != writerLog+`"` {
		return false
	}
	p := rec[len(writerLog)+1:]
	i := plainPrefix(p)
	if i+2 >= len(p) || p[i] != '\\' || p[i+1] != 'n' || p[i+2] != '"' || string(p[i+3:]) != string(d.tail[:d.tailLen]) {
		return false
	}
	p[i] = '\n'
	m.Stream, m.Time, m.Line = d.tailStream, d.tailT, p[:i+1:i+1]
	if !d.borrow {
		m.Line = carve(&d.slab, m.Line)
	}
	return true
}

// parseRecordSlab is parseRecord with a decoder's state (d may be nil).
func parseRecordSlab(b []byte, d *decoder) (Message, error) {
	if len(b) == 0 || b[0] != '{' || b[len(b)-1] != '}' {
		b = bytes.Trim(b, recordTrim)
	}
	if len(b) == 0 {
		return Message{}, errEmptyRecord
	}
	if d != nil && d.borrow {
		d.slab = d.slab[:0]
	}
	if m, ok := parseFast(b, d); ok {
		return m, nil
	}
	return parseSlow(b)
}

// jsonRecord is a json-file record as encoding/json sees it.
type jsonRecord struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// parseSlow decodes b with encoding/json.
func parseSlow(b []byte) (Message, error) {
	var r jsonRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Message{}, fmt.Errorf("decode log record: %w", err)
	}
	m := Message{Stream: r.Stream, Time: r.Time}
	if r.Log != "" {
		m.Line = []byte(r.Log)
	}
	m.Partial = isPartial(m.Line)
	return m, nil
}

// isPartial reports whether line is a piece of a longer line: the writer
// ends every complete line with its newline.
func isPartial(line []byte) bool {
	return len(line) == 0 || line[len(line)-1] != '\n'
}

// parseFast decodes a compact object whose members are all strings under the
// keys "log", "stream" and "time", each at most once, in any order. It
// reports false for anything else (white space, other keys, null, escapes in
// the time, invalid JSON), leaving the decision to encoding/json.
func parseFast(b []byte, d *decoder) (Message, bool) {
	var m Message
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return m, false
	}
	if m, ok := parseWriter(b, d); ok {
		return m, true
	}
	p := b[1:]
	var seenLog, seenStream, seenTime bool
	for {
		if len(p) == 0 || p[0] != '"' {
			return m, false
		}
		end := bytes.IndexByte(p[1:], '"')
		if end < 0 {
			return m, false
		}
		key := p[1 : 1+end]
		p = p[2+end:]
		if len(p) < 2 || p[0] != ':' || p[1] != '"' {
			return m, false
		}
		p = p[1:]
		switch string(key) {
		case "log":
			if seenLog {
				return m, false
			}
			seenLog = true
			line, rest, ok := unquote(p, d)
			if !ok {
				return m, false
			}
			if len(line) > 0 {
				m.Line = line
			}
			p = rest
		case "stream":
			if seenStream {
				return m, false
			}
			seenStream = true
			// "stdout" and "stderr" need no copy: streamName maps
			// them to constants.
			var s, rest []byte
			ok := false
			if end := bytes.IndexByte(p[1:], '"'); end >= 0 && plain(p[1:1+end]) {
				s, rest, ok = p[1:1+end], p[2+end:], true
			} else {
				s, rest, ok = unquote(p, nil)
			}
			if !ok {
				return m, false
			}
			m.Stream = streamName(s)
			p = rest
		case "time":
			if seenTime {
				return m, false
			}
			seenTime = true
			// time.Time.UnmarshalJSON sees the raw quoted bytes, escapes
			// and all; any escape makes it fail, so let encoding/json
			// report that.
			end := bytes.IndexByte(p[1:], '"')
			if end < 0 || bytes.IndexByte(p[1:1+end], '\\') >= 0 {
				return m, false
			}
			if !d.parseTime(&m.Time, p[:end+2]) {
				return m, false
			}
			p = p[end+2:]
		default:
			return m, false
		}
		if len(p) == 0 {
			return m, false
		}
		switch p[0] {
		case ',':
			p = p[1:]
			continue
		case '}':
			if len(p) != 1 {
				return m, false
			}
			m.Partial = isPartial(m.Line)
			return m, true
		default:
			return m, false
		}
	}
}

// streamName returns the stream name, without allocating for the two names
// the writer uses.
func streamName(s []byte) string {
	switch string(s) {
	case "stdout":
		return "stdout"
	case "stderr":
		return "stderr"
	}
	return string(s)
}

// unquote decodes the JSON string at the start of p (which begins with the
// opening quote) and returns its value and what follows the closing quote.
// It reports false for anything encoding/json would reject. Like
// encoding/json it turns invalid UTF-8 and unpaired surrogates into U+FFFD.
func unquote(p []byte, d *decoder) (val, rest []byte, ok bool) {
	var slab *[]byte
	if d != nil {
		slab = &d.slab
	}
	// The common case: no escapes, no control bytes, no non-ASCII bytes.
	i := 1 + plainPrefix(p[1:])
	if i < len(p) && p[i] == '"' {
		if d != nil && d.borrow {
			return p[1:i:i], p[i+1:], true
		}
		return carve(slab, p[1:i]), p[i+1:], true
	}
	if i >= len(p) {
		return nil, nil, false
	}
	out, fromSlab := scratch(slab, len(p))
	out = append(out, p[1:i]...)
	for i < len(p) {
		c := p[i]
		switch {
		case c == '"':
			if fromSlab {
				out = keep(slab, out)
			}
			return out, p[i+1:], true
		case c < 0x20:
			return nil, nil, false
		case c == '\\':
			if i+1 >= len(p) {
				return nil, nil, false
			}
			switch e := p[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
				i += 2
			case 'b':
				out = append(out, '\b')
				i += 2
			case 'f':
				out = append(out, '\f')
				i += 2
			case 'n':
				out = append(out, '\n')
				i += 2
			case 'r':
				out = append(out, '\r')
				i += 2
			case 't':
				out = append(out, '\t')
				i += 2
			case 'u':
				r := hex4(p[i+2:])
				if r < 0 {
					return nil, nil, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if len(p) >= i+2 && p[i] == '\\' && p[i+1] == 'u' {
						if r2 := hex4(p[i+2:]); r2 >= 0 {
							if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
								out = utf8.AppendRune(out, d)
								i += 6
								break
							}
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, nil, false
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p[i:i+size]...)
			}
			i += size
		}
	}
	return nil, nil, false
}

// plain reports whether b needs no unescaping: no backslash, control or
// non-ASCII byte.
func plain(b []byte) bool {
	return plainPrefix(b) == len(b)
}

// plainPrefix returns how many bytes at the start of b are plain: not a
// quote, a backslash, a control byte or non-ASCII. It looks at eight bytes
// at a time (issue 13: the byte loop was a fifth of the reader's cost).
func plainPrefix(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// Any byte >= 0x80, < 0x20, == '"' or == '\\' sets a high bit of
		// t (and may set others after it; the byte loop below decides).
		t := x & hi
		t |= (x - lo*0x20) &^ x & hi
		q := x ^ (lo * '"')
		t |= (q - lo) &^ q & hi
		q = x ^ (lo * '\\')
		t |= (q - lo) &^ q & hi
		if t != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	return i
}

// slabSize is the size of the blocks that decoded lines are carved from.
const slabSize = 16 << 10

// carve returns a copy of src. With a slab it is carved from *slab (a new
// block, up to slabSize, when the slab is full), so a read of millions of short
// lines makes one allocation per slab rather than one per line (issue 13).
// Each copy is capped at its own length, so appending to one never writes
// over the next; a kept copy keeps its whole slab alive.
func carve(slab *[]byte, src []byte) []byte {
	if slab == nil || len(src) > slabSize/4 {
		return append([]byte(nil), src...)
	}
	s := *slab
	if cap(s)-len(s) < len(src) {
		s = newSlab(cap(s), len(src))
	}
	n := len(s)
	s = append(s, src...)
	*slab = s
	return s[n:len(s):len(s)]
}

// scratch returns an empty slice to decode up to about n bytes into: the
// free end of *slab when there is one and n fits in it (a new slab block if
// need be), otherwise a new slice. fromSlab says which.
func scratch(slab *[]byte, n int) (out []byte, fromSlab bool) {
	if slab == nil || n > slabSize/4 {
		return make([]byte, 0, n), false
	}
	if cap(*slab)-len(*slab) < n {
		*slab = newSlab(cap(*slab), n)
	}
	s := *slab
	return s[len(s):len(s)], true
}

// newSlab makes the slab block that follows one of capacity prev (0: the
// first) for a line of n bytes (n <= slabSize/4): blocks grow from the
// size of the first lines to slabSize, so a follower woken up by a line
// or two, which starts from no slab each time, does not allocate 16 KiB
// for them (issue 13: a ticking container's hundred followers made 1.6 MB
// of garbage a second so).
func newSlab(prev, n int) []byte {
	return make([]byte, 0, min(slabSize, max(2*prev, 4*n, 256)))
}

// keep claims out, decoded into the free end of *slab by scratch, and
// returns it capped at its length. If decoding outgrew the slab's free
// space (invalid UTF-8 triples in size), append moved out elsewhere and the
// slab is left alone.
func keep(slab *[]byte, out []byte) []byte {
	s := *slab
	if cap(out) != cap(s)-len(s) {
		return out
	}
	*slab = s[:len(s)+len(out)]
	return out[:len(out):len(out)]
}

// hex4 decodes the four hex digits at the start of p, or returns -1.
func hex4(p []byte) rune {
	if len(p) < 4 {
		return -1
	}
	var r rune
	for _, c := range p[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// parseTime sets *t from raw, the quoted time of a record without escapes,
// as time.Time.UnmarshalJSON does; false if that fails. With a decoder, a
// time in the writer's form within the second of the last one parsed is
// the second plus its fraction, without parsing the date again.
func (d *decoder) parseTime(t *time.Time, raw []byte) bool {
	if d != nil && d.lastLen == len(raw) && string(raw) == string(d.last[:d.lastLen]) {
		*t = d.lastT
		return true
	}
	if !d.parseTimeOnce(t, raw) {
		return false
	}
	if d != nil && len(raw) <= len(d.last) {
		d.lastLen = copy(d.last[:], raw)
		d.lastT = *t
	}
	return true
}

// parseTimeOnce is parseTime for a time other than the last one.
func (d *decoder) parseTimeOnce(t *time.Time, raw []byte) bool {
	s := raw[1 : len(raw)-1]
	writerForm := len(s) >= 22 && len(s) <= 30 && s[19] == '.' && s[len(s)-1] == 'Z'
	var ns int64
	if writerForm {
		scale := int64(1e9)
		for _, c := range s[20 : len(s)-1] {
			if c < '0' || c > '9' {
				writerForm = false
				break
			}
			ns = ns*10 + int64(c-'0')
			scale /= 10
		}
		ns *= scale
	}
	if d != nil && writerForm && d.tok && string(s[:19]) == string(d.tkey[:]) {
		*t = d.tbase.Add(time.Duration(ns))
		return true
	}
	if err := t.UnmarshalJSON(raw); err != nil {
		return false
	}
	if d != nil && writerForm {
		copy(d.tkey[:], s[:19])
		d.tbase, d.tok = t.Add(-time.Duration(ns)), true
	}
	return true
}

// Members of a record exactly as the writer (internal/runtime/jsonlog) lays
// them out.
const (
	writerLog    = `{"log":`
	writerStdout = `,"stream":"stdout","time":`
	writerStderr = `,"stream":"stderr","time":`
)

// parseWriter decodes a record in the writer's own layout, with its keys in
// its order, without looking the keys up; false for anything else, which
// parseFast's general loop then decodes (with the same result for what
// parseWriter accepts).
//
// With an in-place decoder, a line of plain text and its newline (almost
// every line a program writes) is decoded where it is: the escaped newline
// becomes a newline, and the line is not copied when the decoder borrows
// (issue 13: unquoting it byte by byte into a copy was a third of the
// reader's cost).
func parseWriter(b []byte, d *decoder) (Message, bool) {
	var m Message
	if !bytes.HasPrefix(b, []byte(writerLog)) || b[len(b)-1] != '}' {
		return m, false
	}
	p := b[len(writerLog):]
	if p[0] != '"' {
		return m, false
	}
	var line, rest []byte
	nl := -1 // where the escaped newline of a plain line is in p
	if d != nil && d.inPlace {
		i := 1 + plainPrefix(p[1:])
		if i+2 < len(p) && p[i] == '\\' && p[i+1] == 'n' && p[i+2] == '"' {
			nl, rest = i, p[i+3:]
		}
	}
	if nl < 0 {
		var ok bool
		if line, rest, ok = unquote(p, d); !ok {
			return m, false
		}
	}
	if len(rest) <= len(writerStdout) {
		return m, false
	}
	switch {
	case bytes.HasPrefix(rest, []byte(writerStdout)):
		m.Stream = "stdout"
	case bytes.HasPrefix(rest, []byte(writerStderr)):
		m.Stream = "stderr"
	default:
		return m, false
	}
	raw := rest[len(writerStdout) : len(rest)-1] // the quoted time, before '}'
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return m, false
	}
	if d != nil && d.lastLen == len(raw) && string(raw) == string(d.last[:d.lastLen]) {
		// The time of the record before, checked then.
		m.Time = d.lastT
	} else if plainPrefix(raw[1:]) != len(raw)-2 || !d.parseTime(&m.Time, raw) {
		return m, false
	}
	if nl >= 0 {
		// The record is valid: only now is it changed.
		p[nl] = '\n'
		if line = p[1 : nl+1 : nl+1]; !d.borrow {
			line = carve(&d.slab, line)
		}
	}
	if len(line) > 0 {
		m.Line = line
	}
	m.Partial = isPartial(m.Line)
	if d != nil {
		if len(rest) <= len(d.tail) {
			d.tailLen = copy(d.tail[:], rest)
			d.tailStream, d.tailT = m.Stream, m.Time
		} else {
			d.tailLen = 0
		}
	}
	return m, true
}
