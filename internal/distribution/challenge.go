package distribution

import (
	"net/http"
	"strings"
)

// Challenge is one authentication challenge of a WWW-Authenticate header:
// a scheme ("bearer", "basic"; lower-cased) and its parameters (keys
// lower-cased), e.g. realm, service, scope, error.
type Challenge struct {
	Scheme string
	Params map[string]string
}

// ResponseChallenges returns the challenges of every WWW-Authenticate header
// of resp.
func ResponseChallenges(h http.Header) []Challenge {
	var out []Challenge
	for _, v := range h.Values("WWW-Authenticate") {
		out = append(out, ParseChallenges(v)...)
	}
	return out
}

// ParseChallenges parses one WWW-Authenticate header value (RFC 7235):
// challenges, each a scheme followed by comma-separated auth-params
// (token=token or token="quoted string"). It never fails: parsing stops at
// the first byte that fits no rule, so a hostile header yields fewer
// challenges, never a panic. A token68 (as in "Basic dXNlcg") is read as a
// parameter-less challenge; registries do not send them.
func ParseChallenges(v string) []Challenge {
	p := challengeParser{s: v}
	var out []Challenge
	for {
		p.skipSpaceAndCommas()
		tok := p.token()
		if tok == "" {
			return out
		}
		p.skipSpace()
		if len(out) > 0 && p.consume('=') {
			p.skipSpace()
			val, ok := p.value()
			if !ok {
				return out
			}
			out[len(out)-1].Params[strings.ToLower(tok)] = val
			continue
		}
		out = append(out, Challenge{Scheme: strings.ToLower(tok), Params: map[string]string{}})
	}
}

type challengeParser struct {
	s string
	i int
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/:", c) >= 0
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *challengeParser) skipSpaceAndCommas() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *challengeParser) consume(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// value reads a token or a quoted string (with backslash escapes).
func (p *challengeParser) value() (string, bool) {
	if !p.consume('"') {
		t := p.token()
		return t, t != ""
	}
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}
