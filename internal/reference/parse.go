package reference

import (
	"fmt"
	"strings"

	"skiffd/internal/errdefs"
)

// ParseNormalizedNamed parses a reference as a user types it and returns its
// normalised form: "busybox" is docker.io/library/busybox, "me/box" is
// docker.io/me/box, "index.docker.io/x" is docker.io/library/x, and names
// whose first component looks like a host ("localhost", contains "." or ":",
// or has upper-case letters) keep it as their domain. A tag and a digest are
// kept as given; no default tag is added (see TagNameOnly).
//
// Errors are errdefs.InvalidParameter and read exactly as dockerd's:
//
//	invalid reference format
//	invalid reference format: repository name (library/Busybox) must be lowercase
//	invalid repository name (<64 hex>), cannot specify 64-byte hexadecimal strings
//	repository name must not be more than 255 characters
//	invalid checksum digest length / invalid checksum digest format / unsupported digest algorithm
//
// A bare 64-hex string is refused because it would be ambiguous with an image
// ID; ParseImageRef is the entry point for input that may be an ID.
func ParseNormalizedNamed(s string) (Named, error) {
	if isFullHex(s) {
		return Named{}, errdefs.InvalidParameter(fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s))
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		// Only the text before the first ':' is checked here, as dockerd
		// does: for "x@sha256:..." that is "x@sha256". Case errors after it
		// are left to parse.
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return Named{}, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote))
	}
	return parse(domain + "/" + remainder)
}

// splitDockerDomain decides whether the first component of name is a
// registry, and returns the domain and the rest. It applies Docker Hub's
// rules: no domain means docker.io, and a single-component path on docker.io
// lives in "library/". It does not validate anything; parse does that.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, found := strings.Cut(name, "/")
	if !found {
		// A single component ("busybox", "busybox:1") is always a
		// repository on Docker Hub, never a host, even "localhost".
		return DefaultDomain, officialRepoPrefix + name
	}
	switch {
	case first == "localhost":
		domain, remainder = first, rest
	case first == legacyDefaultDomain:
		domain, remainder = DefaultDomain, rest
	case strings.ContainsAny(first, ".:"):
		domain, remainder = first, rest
	case strings.ToLower(first) != first:
		// Paths are lower case, so an upper-case first component can only
		// be meant as a host.
		domain, remainder = first, rest
	default:
		domain, remainder = DefaultDomain, name
	}
	if domain == DefaultDomain && !strings.Contains(remainder, "/") {
		remainder = officialRepoPrefix + remainder
	}
	return domain, remainder
}

// parse checks s against the full reference grammar, without any
// normalisation, and splits it. It reproduces distribution/reference's Parse,
// including the order of its checks and its error for names that would be
// valid in lower case.
func parse(s string) (Named, error) {
	if s == "" {
		return Named{}, ErrNameEmpty
	}
	n, ok := matchReference(s)
	if !ok {
		if lower := strings.ToLower(s); lower != s {
			if _, ok := matchReference(lower); ok {
				return Named{}, ErrNameContainsUppercase
			}
		}
		return Named{}, ErrReferenceInvalidFormat
	}
	if len(n.path) > RepositoryNameTotalLengthMax {
		return Named{}, ErrNameTooLong
	}
	if n.digest != "" {
		if _, err := ParseDigest(n.digest); err != nil {
			return Named{}, err
		}
	}
	return n, nil
}

// matchReference splits s into name, tag and digest when s matches the
// reference grammar. The digest is only checked for shape here (algorithm,
// ":", at least 32 hex digits of either case); ParseDigest decides later
// whether skiffd supports it.
//
// The split is unambiguous: a name never contains "@", and a ':' in a name
// (a port, or inside an IPv6 address) is always followed by a '/' somewhere
// after it, so a ':' with no '/' after it can only start the tag.
func matchReference(s string) (Named, bool) {
	var n Named
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		n.digest = rest[i+1:]
		rest = rest[:i]
		if !isDigestShape(n.digest) {
			return Named{}, false
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && strings.IndexByte(rest[i+1:], '/') < 0 {
		n.tag = rest[i+1:]
		rest = rest[:i]
		if !isTag(n.tag) {
			return Named{}, false
		}
	}
	var ok bool
	n.domain, n.path, ok = splitName(rest)
	if !ok {
		return Named{}, false
	}
	return n, true
}

// splitName splits a repository name into domain and path. The first
// component is the domain when it is a valid host and the rest is a valid
// path; otherwise the whole name must be a path and the domain is empty. That
// second case is reachable from ParseNormalizedNamed for names such as
// "a__b.com/x", whose first component has a '.' but is not a valid host: the
// reference is then domain-less, exactly as with distribution/reference.
func splitName(name string) (domain, path string, ok bool) {
	if i := strings.IndexByte(name, '/'); i >= 0 && isDomain(name[:i]) && isPath(name[i+1:]) {
		return name[:i], name[i+1:], true
	}
	if isPath(name) {
		return "", name, true
	}
	return "", "", false
}

// isDomain reports whether d is host[:port], host being a domain name or an
// IPv6 address in brackets (no zone, no embedded IPv4).
func isDomain(d string) bool {
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return false
		}
		addr := d[1:end]
		if addr == "" || strings.Trim(addr, "0123456789abcdefABCDEF:") != "" {
			return false
		}
		return isOptionalPort(d[end+1:])
	}
	host := d
	if i := strings.IndexByte(d, ':'); i >= 0 {
		if !isOptionalPort(d[i:]) {
			return false
		}
		host = d[:i]
	}
	return isDomainName(host)
}

// isOptionalPort reports whether p is empty or ":" followed by digits.
func isOptionalPort(p string) bool {
	if p == "" {
		return true
	}
	return p[0] == ':' && len(p) > 1 && strings.Trim(p[1:], "0123456789") == ""
}

// isDomainName reports whether h is dot-separated components of letters,
// digits and inner hyphens. Upper case is allowed in hosts.
func isDomainName(h string) bool {
	for comp := range strings.SplitSeq(h, ".") {
		if comp == "" || !isAlnum(comp[0]) || !isAlnum(comp[len(comp)-1]) {
			return false
		}
		for i := 1; i < len(comp)-1; i++ {
			if c := comp[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// isPath reports whether p is one or more '/'-separated path components.
func isPath(p string) bool {
	for comp := range strings.SplitSeq(p, "/") {
		if !isPathComponent(comp) {
			return false
		}
	}
	return true
}

// isPathComponent reports whether c is runs of [a-z0-9] joined by single
// separators: ".", "_", "__" or any number of "-".
func isPathComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && isLowerAlnum(c[i]) {
			i++
		}
		if i == start {
			return false // empty component, or a separator at the start or twice over
		}
		if i == len(c) {
			return true
		}
		start = i
		for i < len(c) && !isLowerAlnum(c[i]) {
			i++
		}
		if i == len(c) || !isSeparator(c[start:i]) {
			return false // trailing separator, or not one of the allowed ones
		}
	}
}

func isSeparator(sep string) bool {
	switch sep {
	case ".", "_", "__":
		return true
	}
	return strings.Trim(sep, "-") == ""
}

// isTag reports whether t matches [\w][\w.-]{0,127}.
func isTag(t string) bool {
	if t == "" || len(t) > maxTagLength || !isWord(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		if c := t[i]; !isWord(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isDigestShape reports whether d looks like a digest to the reference
// grammar: an algorithm of letter-led alphanumeric components joined by
// single [-_+.], a ':', and at least 32 hex digits of either case.
func isDigestShape(d string) bool {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 32 || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
		return false
	}
	expectLetter := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case expectLetter:
			if !isLetter(c) {
				return false
			}
			expectLetter = false
		case isAlnum(c):
		case c == '-' || c == '_' || c == '+' || c == '.':
			expectLetter = true
		default:
			return false
		}
	}
	return !expectLetter // also refuses an empty algorithm
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
func isLetter(c byte) bool     { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool      { return isLetter(c) || '0' <= c && c <= '9' }
func isWord(c byte) bool       { return isAlnum(c) || c == '_' }
