package reference

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"skiffd/internal/errdefs"
)

// Canonical is the only digest algorithm skiffd computes and accepts.
const Canonical = "sha256"

// idHexLength is the length of a sha256 digest in hex: the length of every
// image and container ID.
const idHexLength = 64

// ShortIDLength is how many hex digits the CLI shows of an ID.
const ShortIDLength = 12

// The errors of ParseDigest, with go-digest v1.0.0's wording (the version
// dockerd vendors). Each is already an errdefs.InvalidParameter.
var (
	ErrDigestInvalidFormat = errdefs.InvalidParameter(errors.New("invalid checksum digest format"))
	ErrDigestInvalidLength = errdefs.InvalidParameter(errors.New("invalid checksum digest length"))
	ErrDigestUnsupported   = errdefs.InvalidParameter(errors.New("unsupported digest algorithm"))
)

// Digest is a validated content digest, "sha256:<64 lower-case hex>".
// Values come from ParseDigest or DigestOf; converting an arbitrary string
// skips validation.
type Digest string

// ParseDigest validates s as a sha256 digest, checking in go-digest's order:
// the "alg:encoded" shape (ErrDigestInvalidFormat), the algorithm
// (ErrDigestUnsupported for well-formed digests of any other algorithm,
// including sha384 and sha512, which dockerd would accept but skiffd cannot
// verify), the length (ErrDigestInvalidLength) and lower-case hex
// (ErrDigestInvalidFormat).
func ParseDigest(s string) (Digest, error) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i+1 == len(s) {
		return "", ErrDigestInvalidFormat
	}
	alg, encoded := s[:i], s[i+1:]
	if alg != Canonical {
		if !isGoDigestShape(alg, encoded) {
			return "", ErrDigestInvalidFormat
		}
		return "", ErrDigestUnsupported
	}
	if len(encoded) != idHexLength {
		return "", ErrDigestInvalidLength
	}
	if !isLowerHex(encoded) {
		return "", ErrDigestInvalidFormat
	}
	return Digest(s), nil
}

// isGoDigestShape reports whether alg:encoded matches go-digest's loose
// digest pattern, [a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+, which decides
// between "invalid format" and "unsupported algorithm".
func isGoDigestShape(alg, encoded string) bool {
	if alg == "" || encoded == "" {
		return false
	}
	prevSep := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case isLowerAlnum(c):
			prevSep = false
		case c == '.' || c == '+' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	if prevSep {
		return false
	}
	for i := 0; i < len(encoded); i++ {
		if c := encoded[i]; !isAlnum(c) && c != '=' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// DigestOf returns the sha256 digest of p.
func DigestOf(p []byte) Digest {
	sum := sha256.Sum256(p)
	return Digest(Canonical + ":" + hex.EncodeToString(sum[:]))
}

// Algorithm returns the part before the ':', "sha256" for valid digests.
func (d Digest) Algorithm() string {
	alg, _, _ := strings.Cut(string(d), ":")
	return alg
}

// Encoded returns the hex part after the ':'.
func (d Digest) Encoded() string {
	_, encoded, _ := strings.Cut(string(d), ":")
	return encoded
}

// String returns d as a string.
func (d Digest) String() string { return string(d) }

// IsFullID reports whether s is a full ID in bare form: exactly 64 lower-case
// hex digits, as container IDs are and image IDs are after "sha256:".
func IsFullID(s string) bool { return isFullHex(s) }

// IsIDPrefix reports whether s could be a truncated ID: 1 to 64 lower-case hex
// digits, optionally after "sha256:". It says nothing about whether any ID
// has that prefix; IDIndex.Get answers that.
func IsIDPrefix(s string) bool {
	h := strings.TrimPrefix(s, Canonical+":")
	return h != "" && len(h) <= idHexLength && isLowerHex(h)
}

// IDHasPrefix reports whether the ID id (bare, or "sha256:"-prefixed) starts
// with prefix as given or, after its "sha256:", with the bare prefix. moby
// uses this test to tell "rmi <ID prefix>" from "rmi <name>" once the image is
// found.
func IDHasPrefix(id, prefix string) bool {
	if strings.HasPrefix(id, prefix) {
		return true
	}
	if _, encoded, ok := strings.Cut(id, ":"); ok {
		return strings.HasPrefix(encoded, prefix)
	}
	return false
}

// ShortID returns the first 12 hex digits of an ID (bare, or with its
// "sha256:" dropped), the form the CLI prints and dockerd uses in messages
// such as "container 94664ab2aba8 is using its referenced image 462dad7a438b".
// Shorter input is returned without its algorithm but otherwise unchanged.
func ShortID(id string) string {
	if _, encoded, ok := strings.Cut(id, ":"); ok {
		id = encoded
	}
	if len(id) > ShortIDLength {
		return id[:ShortIDLength]
	}
	return id
}

func isFullHex(s string) bool { return len(s) == idHexLength && isLowerHex(s) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
