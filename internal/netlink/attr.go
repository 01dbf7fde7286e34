package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Attribute type flags carried in the top bits of nla_type.
const (
	nlaFNested       = 0x8000
	nlaFNetByteorder = 0x4000
	nlaTypeMask      = ^uint16(nlaFNested | nlaFNetByteorder)
)

// errShort reports a message or attribute that claims more bytes than it has.
var errShort = errors.New("netlink: truncated message")

// attr is one decoded netlink attribute: its type (flags stripped) and
// payload, which aliases the buffer it was parsed from.
type attr struct {
	Type uint16
	Data []byte
}

// parseAttrs splits b into attributes. It never panics on hostile input:
// a length field shorter than the header or longer than what remains is an
// error, and trailing bytes shorter than a header are ignored (padding).
func parseAttrs(b []byte) ([]attr, error) {
	var out []attr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		t := binary.NativeEndian.Uint16(b[2:4])
		if l < 4 || l > len(b) {
			return out, fmt.Errorf("netlink: attribute type %d length %d with %d bytes left: %w", t&nlaTypeMask, l, len(b), errShort)
		}
		out = append(out, attr{Type: t & nlaTypeMask, Data: b[4:l]})
		al := align4(l)
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return out, nil
}

// attrMap indexes attributes by type; a later duplicate wins, as in the
// kernel's nla_parse.
func attrMap(b []byte) (map[uint16][]byte, error) {
	as, err := parseAttrs(b)
	m := make(map[uint16][]byte, len(as))
	for _, a := range as {
		m[a.Type] = a.Data
	}
	return m, err
}

func align4(n int) int { return (n + 3) &^ 3 }

func u32(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(b), true
}

func be32(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

func be64(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// cstr returns b up to its first NUL.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// encoder builds a netlink message body with attributes, nesting included.
type encoder struct {
	b     []byte
	nests []int
}

func (e *encoder) raw(p []byte) { e.b = append(e.b, p...) }

func (e *encoder) attr(t uint16, p []byte) {
	l := 4 + len(p)
	e.b = binary.NativeEndian.AppendUint16(e.b, uint16(l))
	e.b = binary.NativeEndian.AppendUint16(e.b, t)
	e.b = append(e.b, p...)
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) str(t uint16, s string) { e.attr(t, append([]byte(s), 0)) }

func (e *encoder) u8(t uint16, v uint8) { e.attr(t, []byte{v}) }

func (e *encoder) u32(t uint16, v uint32) {
	e.attr(t, binary.NativeEndian.AppendUint32(nil, v))
}

func (e *encoder) be32(t uint16, v uint32) {
	e.attr(t, binary.BigEndian.AppendUint32(nil, v))
}

func (e *encoder) be64(t uint16, v uint64) {
	e.attr(t, binary.BigEndian.AppendUint64(nil, v))
}

// begin opens a nested attribute; end closes the innermost one.
func (e *encoder) begin(t uint16) {
	e.nests = append(e.nests, len(e.b))
	e.b = binary.NativeEndian.AppendUint16(e.b, 0)
	e.b = binary.NativeEndian.AppendUint16(e.b, t)
}

func (e *encoder) end() {
	i := e.nests[len(e.nests)-1]
	e.nests = e.nests[:len(e.nests)-1]
	binary.NativeEndian.PutUint16(e.b[i:], uint16(len(e.b)-i))
}
