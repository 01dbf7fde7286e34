package dns

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// DNS constants used by the embedded server (RFC 1035, RFC 3596, RFC 6891).
const (
	TypeA    uint16 = 1
	TypePTR  uint16 = 12
	TypeMX   uint16 = 15
	TypeAAAA uint16 = 28
	TypeOPT  uint16 = 41

	ClassINET uint16 = 1

	RcodeSuccess  = 0
	RcodeFormErr  = 1
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeRefused  = 5

	headerLen = 12
	// minUDPSize is the largest UDP answer a client that did not announce
	// EDNS accepts (RFC 1035 4.2.1).
	minUDPSize = 512
	// maxMsgSize is the largest message TCP can carry (2-byte length).
	maxMsgSize = 65535
	maxNameLen = 255
	// TTL is the time to live of every local answer, dockerd's respTTL.
	TTL = 600
)

// Header flag bits (RFC 1035 4.1.1).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagCD = 1 << 4
)

// Errors of Parse. They never carry the offending bytes.
var (
	ErrShort       = errors.New("dns: message truncated")
	ErrNotQuery    = errors.New("dns: not a standard query")
	ErrNoQuestion  = errors.New("dns: no question")
	ErrBadName     = errors.New("dns: malformed name")
	ErrPointerLoop = errors.New("dns: compression pointer loop")
)

// Query is the part of a DNS request the server needs.
type Query struct {
	ID    uint16
	Flags uint16 // as received
	// Name is the question name in lower case, dotted, without the final
	// dot ("web", "db.app", "" for the root).
	Name  string
	Type  uint16
	Class uint16
	// Question is the question section exactly as received (name
	// uncompressed, type, class), echoed back in answers so that a
	// client's 0x20 case randomisation survives.
	Question []byte
	// UDPSize is the largest UDP answer the client accepts: 512, or the
	// size announced in an EDNS OPT record if larger.
	UDPSize int
}

// Parse reads a query: the header, exactly one question, and the OPT
// record of the additional section if there is one. It accepts only
// standard queries (QR=0, opcode 0) and never panics, whatever the bytes;
// compression pointers must point strictly backwards, which rules out
// loops.
func Parse(msg []byte) (Query, error) {
	var q Query
	if len(msg) < headerLen {
		return q, ErrShort
	}
	q.ID = binary.BigEndian.Uint16(msg[0:])
	q.Flags = binary.BigEndian.Uint16(msg[2:])
	if q.Flags&flagQR != 0 || (q.Flags>>11)&0xf != 0 {
		return q, ErrNotQuery
	}
	qd := binary.BigEndian.Uint16(msg[4:])
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	if qd != 1 {
		return q, ErrNoQuestion
	}
	name, off, err := readName(msg, headerLen)
	if err != nil {
		return q, err
	}
	if off+4 > len(msg) {
		return q, ErrShort
	}
	q.Name = name
	q.Type = binary.BigEndian.Uint16(msg[off:])
	q.Class = binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	q.Question = msg[headerLen:off]
	q.UDPSize = minUDPSize
	// A query's question never uses compression (nothing precedes it), but
	// a client may still send one; echo an uncompressed copy then.
	if len(q.Question) != len(encodeNameLen(name))+4 {
		q.Question = append(appendName(nil, name), msg[off-4:off]...)
	}
	for i := 0; i < an+ns+ar; i++ {
		_, next, err := readName(msg, off)
		if err != nil {
			return q, err
		}
		if next+10 > len(msg) {
			return q, ErrShort
		}
		typ := binary.BigEndian.Uint16(msg[next:])
		class := binary.BigEndian.Uint16(msg[next+2:])
		rdlen := int(binary.BigEndian.Uint16(msg[next+8:]))
		if next+10+rdlen > len(msg) {
			return q, ErrShort
		}
		if i >= an+ns && typ == TypeOPT && int(class) > q.UDPSize {
			q.UDPSize = int(class)
		}
		off = next + 10 + rdlen
	}
	return q, nil
}

// encodeNameLen returns a slice whose length is the uncompressed wire
// length of name.
func encodeNameLen(name string) []byte { return appendName(nil, name) }

// readName decodes the (possibly compressed) name at off in msg and returns
// it lower-cased and dotted, with the offset just past its in-place part.
func readName(msg []byte, off int) (string, int, error) {
	var b strings.Builder
	end := -1    // offset after the name where it started, once a pointer is followed
	limit := off // a pointer must point below this, so each hop goes strictly backwards
	wireLen := 0
	for {
		if off >= len(msg) {
			return "", 0, ErrShort
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return b.String(), end, nil
			}
			if off+1+c > len(msg) {
				return "", 0, ErrShort
			}
			wireLen += c + 1
			if wireLen+1 > maxNameLen {
				return "", 0, ErrBadName
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			for _, ch := range msg[off+1 : off+1+c] {
				writeLabelByte(&b, ch)
			}
			off += 1 + c
		case 0xc0:
			if off+2 > len(msg) {
				return "", 0, ErrShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if end < 0 {
				end = off + 2
			}
			if ptr >= limit {
				return "", 0, ErrPointerLoop
			}
			limit = ptr
			off = ptr
		default:
			return "", 0, ErrBadName // 0x40 and 0x80 label types are obsolete
		}
	}
}

// writeLabelByte lower-cases ASCII and escapes the bytes that would make the
// dotted form ambiguous, as the presentation format does (RFC 4343).
func writeLabelByte(b *strings.Builder, ch byte) {
	switch {
	case ch >= 'A' && ch <= 'Z':
		b.WriteByte(ch + 'a' - 'A')
	case ch == '.' || ch == '\\':
		b.WriteByte('\\')
		b.WriteByte(ch)
	case ch < '!' || ch > '~':
		b.WriteByte('\\')
		s := strconv.Itoa(int(ch))
		for len(s) < 3 {
			s = "0" + s
		}
		b.WriteString(s)
	default:
		b.WriteByte(ch)
	}
}

// appendName appends name (dotted, no escapes beyond those readName makes)
// in uncompressed wire form.
func appendName(buf []byte, name string) []byte {
	for name != "" {
		label, rest := splitLabel(name)
		if len(label) > 63 {
			label = label[:63]
		}
		buf = append(buf, byte(len(label)))
		buf = append(buf, label...)
		name = rest
	}
	return append(buf, 0)
}

// splitLabel returns the first label of a dotted name, unescaped, and the
// rest after its dot.
func splitLabel(name string) (label []byte, rest string) {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '.':
			return label, name[i+1:]
		case '\\':
			if i+3 < len(name) && isDigit(name[i+1]) && isDigit(name[i+2]) && isDigit(name[i+3]) {
				n, _ := strconv.Atoi(name[i+1 : i+4])
				label = append(label, byte(n))
				i += 3
				continue
			}
			if i+1 < len(name) {
				i++
			}
		}
		label = append(label, name[i])
	}
	return label, ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// reply builds the answer header and question of a response to q with
// rcode, and appends the records of answers, stopping (and setting TC) at
// the first that would make the message exceed max bytes. Like dockerd's
// createRespMsg, the reply copies ID, opcode, RD and CD and sets RA.
func reply(q Query, rcode int, answers []record, max int) []byte {
	buf := make([]byte, headerLen, headerLen+len(q.Question)+16*len(answers))
	binary.BigEndian.PutUint16(buf[0:], q.ID)
	flags := uint16(flagQR|flagRA) | q.Flags&(flagRD|flagCD) | uint16(rcode&0xf)
	binary.BigEndian.PutUint16(buf[4:], 1)
	buf = append(buf, q.Question...)
	n := 0
	for _, rr := range answers {
		next := rr.append(buf)
		if len(next) > max {
			flags |= flagTC
			break
		}
		buf = next
		n++
	}
	binary.BigEndian.PutUint16(buf[2:], flags)
	binary.BigEndian.PutUint16(buf[6:], uint16(n))
	return buf
}

// record is one answer record; its owner is always the question name
// (a pointer to offset 12).
type record struct {
	typ   uint16
	addr  netip.Addr // A, AAAA
	names string     // PTR target, dotted
}

func (r record) append(buf []byte) []byte {
	buf = append(buf, 0xc0, headerLen)
	buf = binary.BigEndian.AppendUint16(buf, r.typ)
	buf = binary.BigEndian.AppendUint16(buf, ClassINET)
	buf = binary.BigEndian.AppendUint32(buf, TTL)
	var rdata []byte
	switch r.typ {
	case TypeA:
		a := r.addr.As4()
		rdata = a[:]
	case TypeAAAA:
		a := r.addr.As16()
		rdata = a[:]
	case TypePTR:
		rdata = appendName(nil, r.names)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(rdata)))
	return append(buf, rdata...)
}

// errorReply answers q with rcode and no records; for a message that did
// not parse far enough to have a question it echoes only the ID.
func errorReply(msg []byte, rcode int) []byte {
	if len(msg) < 2 {
		return nil
	}
	buf := make([]byte, headerLen)
	copy(buf, msg[:2])
	flags := uint16(flagQR|flagRA) | uint16(rcode&0xf)
	if len(msg) >= 4 {
		flags |= binary.BigEndian.Uint16(msg[2:]) & (flagRD | 0x7800)
	}
	binary.BigEndian.PutUint16(buf[2:], flags)
	return buf
}

// truncated reports whether a DNS message has the TC bit.
func truncated(msg []byte) bool {
	return len(msg) >= 4 && binary.BigEndian.Uint16(msg[2:])&flagTC != 0
}

// rcodeOf returns a message's response code.
func rcodeOf(msg []byte) int {
	if len(msg) < 4 {
		return -1
	}
	return int(binary.BigEndian.Uint16(msg[2:]) & 0xf)
}
