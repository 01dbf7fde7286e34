package container

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strings"

	"skiffd/internal/errdefs"
)

// validNameChars is the character rule dockerd quotes in its error.
const validNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`

// validName reports whether name matches dockerd's container name
// pattern, ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$: at least two characters, the
// first alphanumeric; an optional leading slash. Written out rather than
// a regexp: compiling one at package initialisation cost every process
// of the binary (init on every container start) some 30 µs, and it was
// the last regexp in the binary.
func validName(name string) bool {
	name = strings.TrimPrefix(name, "/")
	if len(name) < 2 || !isAlnum(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// ValidateName checks a client-chosen name (with or without its leading
// slash) against dockerd's pattern, returning dockerd's 400 otherwise:
// "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".
func ValidateName(name string) error {
	if !validName(strings.TrimPrefix(name, "/")) {
		return errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only %s are allowed", name, validNameChars))
	}
	return nil
}

// GenerateID returns a new random container ID: 64 hex digits from
// crypto/rand. Like dockerd it never returns an ID whose 12-digit short
// form is all decimal digits, because the short form becomes the default
// hostname and a numeric hostname confuses resolvers and tools
// (moby/moby#3869).
func GenerateID() string {
	b := make([]byte, 32)
	for {
		rand.Read(b) // never fails (crypto/rand panics on a broken source)
		id := hex.EncodeToString(b)
		if !allDigits(id[:12]) {
			return id
		}
	}
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// isID reports whether s is a full container ID: 64 lower-case hex digits.
func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// adjectives and surnames make the generated names: "<adjective>_<surname>".
// The surnames are of scientists and engineers.
var adjectives = [...]string{
	"agile", "ambitious", "ardent", "astute", "balanced", "bright", "brisk",
	"calm", "candid", "careful", "cheerful", "civil", "crisp", "curious",
	"daring", "deft", "diligent", "earnest", "fearless", "fluent", "frank",
	"gentle", "genial", "glad", "hardy", "humble", "inventive", "lively",
	"loyal", "mellow", "merry", "mindful", "nimble", "noble", "patient",
	"placid", "plucky", "polite", "precise", "proud", "quick", "quiet",
	"radiant", "rapid", "robust", "serious", "sincere", "spirited", "steady",
	"sunny", "swift", "tidy", "valiant", "vivid", "witty",
}

var surnames = [...]string{
	"alhazen", "ampere", "archimedes", "avogadro", "babbage", "bardeen",
	"bernoulli", "bohr", "boole", "bose", "boyle", "brahe", "brattain",
	"brunel", "cantor", "carnot", "cauchy", "cavendish", "cerf",
	"chandrasekhar", "copernicus", "coulomb", "crick", "curie", "dalton",
	"darwin", "dedekind", "diesel", "diffie", "dijkstra", "dirac", "doppler",
	"edison", "eiffel", "einstein", "engelbart", "euclid", "euler",
	"faraday", "fermi", "feynman", "fibonacci", "fleming", "fourier",
	"galileo", "galois", "gauss", "godel", "goodall", "hamming", "hawking",
	"heisenberg", "hertz", "hilbert", "hodgkin", "hooke", "hopper",
	"hubble", "huygens", "hypatia", "jenner", "joule", "kelvin", "kepler",
	"kilby", "knuth", "lagrange", "lamarr", "lamport", "laplace",
	"lavoisier", "leibniz", "liskov", "lister", "lovelace", "marconi",
	"maxwell", "meitner", "mendel", "minsky", "morse", "newton", "noether",
	"noyce", "ohm", "pascal", "pasteur", "pauli", "planck", "poincare",
	"raman", "ramanujan", "riemann", "ritchie", "rutherford", "salk",
	"shannon", "tesla", "turing", "volta", "watt", "yukawa", "zuse",
}

// randomName returns an adjective_surname name, with a random digit appended
// when withDigit is set (the later attempts after a clash, as dockerd does).
func randomName(withDigit bool) string {
	name := adjectives[mrand.IntN(len(adjectives))] + "_" + surnames[mrand.IntN(len(surnames))]
	if withDigit {
		name += string(rune('0' + mrand.IntN(10)))
	}
	return name
}
