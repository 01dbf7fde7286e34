package audit

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends e as one JSON object, the same document json.Marshal
// gives (TestEncodeMatchesMarshal), without reflection: the writer encodes
// every record, and with --audit-log-reads that is every request.
func appendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","listener":`...)
	b = appendString(b, e.Listener)
	b = append(b, `,"peer":{`...)
	n := len(b)
	p := &e.Peer
	if p.UID != nil {
		b = strconv.AppendUint(append(b, `"uid":`...), uint64(*p.UID), 10)
	}
	if p.GID != nil {
		b = strconv.AppendUint(append(comma(b, n), `"gid":`...), uint64(*p.GID), 10)
	}
	if p.PID != nil {
		b = strconv.AppendInt(append(comma(b, n), `"pid":`...), int64(*p.PID), 10)
	}
	for _, f := range [...]struct{ k, v string }{{"comm", p.Comm}, {"addr", p.Addr}, {"cert_subject", p.CertSubject}, {"cert_issuer", p.CertIssuer}, {"cert_serial", p.CertSerial}} {
		if f.v != "" {
			b = appendString(append(append(append(comma(b, n), '"'), f.k...), `":`...), f.v)
		}
	}
	b = append(b, `},"method":`...)
	b = appendString(b, e.Method)
	b = appendString(append(b, `,"path":`...), e.Path)
	if e.Query != "" {
		b = appendString(append(b, `,"query":`...), e.Query)
	}
	b = appendString(append(b, `,"api_version":`...), e.APIVersion)
	if o := e.Object; o != nil {
		b = appendString(append(b, `,"object":{"kind":`...), o.Kind)
		if o.ID != "" {
			b = appendString(append(b, `,"id":`...), o.ID)
		}
		if o.Name != "" {
			b = appendString(append(b, `,"name":`...), o.Name)
		}
		b = append(b, '}')
	}
	if len(e.Cmd) > 0 {
		b = append(b, `,"cmd":[`...)
		for i, a := range e.Cmd {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	b = strconv.AppendInt(append(b, `,"status":`...), int64(e.Status), 10)
	b = strconv.AppendInt(append(b, `,"bytes":`...), e.Bytes, 10)
	b = appendFloat(append(b, `,"duration_ms":`...), e.DurationMS)
	return append(b, '}')
}

// appendFloat formats like encoding/json: plain decimals, exponent form
// only for very small or very large magnitudes, with a short exponent.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	// e-09 becomes e-9, as encoding/json writes it.
	if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b
}

// comma adds a separator unless b is still at the object's start n.
func comma(b []byte, n int) []byte {
	if len(b) > n {
		return append(b, ',')
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: control characters as \u00XX,
// invalid UTF-8 as U+FFFD, and <, >, & escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
