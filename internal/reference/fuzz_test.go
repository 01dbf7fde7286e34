package reference

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The oracle: the reference grammar of the package comment, written as
// regular expressions. The hand-written parser must agree with it on every
// input, including which component becomes the domain (Go's regexp picks the
// submatch a backtracking matcher would, so the optional domain is taken
// whenever it can be).
var (
	oracleDomain = `(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`
	oracleComp   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	oraclePath   = oracleComp + `(?:/` + oracleComp + `)*`
	oracleTag    = `[\w][\w.-]{0,127}`
	oracleDigest = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`

	oracleReference = regexp.MustCompile(`^((?:` + oracleDomain + `/)?` + oraclePath + `)(?::(` + oracleTag + `))?(?:@(` + oracleDigest + `))?$`)
	oracleName      = regexp.MustCompile(`^(?:(` + oracleDomain + `)/)?(` + oraclePath + `)$`)
)

// oracleMatch is matchReference by regular expression.
func oracleMatch(s string) (Named, bool) {
	m := oracleReference.FindStringSubmatch(s)
	if m == nil {
		return Named{}, false
	}
	nm := oracleName.FindStringSubmatch(m[1])
	return Named{domain: nm[1], path: nm[2], tag: m[2], digest: m[3]}, true
}

var fuzzSeeds = []string{
	"", "busybox", "busybox:latest", "me/box:1", "localhost:5000/x", "localhost", "localhost:5000",
	"example.com/a/b:tag", "busybox@" + digestA, "busybox:1@" + digestA, "docker.io/busybox",
	"index.docker.io/library/debian", "library/foo/bar", "Foo/bar", "Busybox", "a__b.com/x",
	"busybox:1/2", "[2001:db8::1]:5000/repo:tag@" + digestA, "[fe80::1%eth0]:5000/x", hexA,
	"docker.io/" + hexA, "sha256:462dad", "462dad", "busybox@sha256:" + strings.ToUpper(hexA),
	"validname@invaliddigest:" + hexA, "Foo_Bar/x", "docker///docker", "a:b:c", ":justtag",
	strings.Repeat("a/", 128) + "a:tag", "busybox:" + strings.Repeat("t", 129), "\u212aube",
	"dock-.er/x", "x@SHA256:" + hexA, "127.0.0.1:5000/a-b_c__d.e---f",
}

// FuzzParseNormalizedNamed checks, for any input, that the parser never
// panics, agrees with the regular-expression oracle, and that a successful
// parse survives a round trip through String and through FamiliarString.
func FuzzParseNormalizedNamed(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotOK := matchReference(s)
		want, wantOK := oracleMatch(s)
		if gotOK != wantOK || got != want {
			t.Fatalf("matchReference(%q) = %#v, %v; oracle says %#v, %v", s, got, gotOK, want, wantOK)
		}

		n, err := ParseNormalizedNamed(s)
		if err != nil {
			if !n.IsZero() {
				t.Fatalf("ParseNormalizedNamed(%q) = %#v with error %v, want the zero Named", s, n, err)
			}
			return
		}
		if n.path == "" || len(n.path) > RepositoryNameTotalLengthMax {
			t.Fatalf("ParseNormalizedNamed(%q) path = %q, want 1..255 bytes", s, n.path)
		}
		again, err := ParseNormalizedNamed(n.String())
		if err != nil || again != n {
			t.Fatalf("ParseNormalizedNamed(%q) = %#v, %v; want %#v (from %q)", n.String(), again, err, n, s)
		}
		fam := n.FamiliarString()
		if familiarIsAmbiguous(n) {
			return
		}
		again, err = ParseNormalizedNamed(fam)
		if err != nil || again != n {
			t.Fatalf("ParseNormalizedNamed(%q) = %#v, %v; want %#v (familiar form of %q)", fam, again, err, n, s)
		}
	})
}

// TestMatchesOracle compares the parser with the oracle on strings built from
// the pieces the grammar cares about, which random bytes rarely combine into
// near-valid references. The seed is fixed, so a failure reproduces.
func TestMatchesOracle(t *testing.T) {
	pieces := []string{
		"a", "b", "z", "0", "9", "f", "A", "F", "Z", "_", "__", ".", "-", "--", "/", ":", "@", "[", "]",
		"::1", "5000", "localhost", "docker.io", "index.docker.io", "library", "sha256", "sha512",
		"sha256:", hexA[:32], hexA, strings.ToUpper(hexA[:40]), "+", "%", " ", "\u212a", "é",
	}
	samples := 100000
	if testing.Short() {
		samples = 10000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for range samples {
		b.Reset()
		for range 1 + rng.IntN(9) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		got, gotOK := matchReference(s)
		want, wantOK := oracleMatch(s)
		if gotOK != wantOK || got != want {
			t.Fatalf("matchReference(%q) = %#v, %v; oracle says %#v, %v", s, got, gotOK, want, wantOK)
		}
		if n, err := ParseNormalizedNamed(s); err == nil {
			if again, err := ParseNormalizedNamed(n.String()); err != nil || again != n {
				t.Fatalf("ParseNormalizedNamed(%q) = %#v, %v; want %#v (from %q)", n.String(), again, err, n, s)
			}
			if again, err := ParseNormalizedNamed(n.FamiliarString()); !familiarIsAmbiguous(n) && (err != nil || again != n) {
				t.Fatalf("ParseNormalizedNamed(%q) = %#v, %v; want %#v (from %q)", n.FamiliarString(), again, err, n, s)
			}
		}
	}
}

// familiarIsAmbiguous reports whether n is one of the Docker Hub names whose
// familiar form means something else when parsed again. dockerd prints them
// the same way, so this is a property of the format, not a bug to fix here:
//
//   - docker.io/library/<64 hex> prints as the bare hex, which is refused as
//     ambiguous with an image ID;
//   - docker.io/0.0/x or docker.io/localhost/x print as "0.0/x" and
//     "localhost/x", whose first component is then taken as a registry.
func familiarIsAmbiguous(n Named) bool {
	if n.domain != DefaultDomain {
		return false
	}
	name := n.FamiliarName()
	if isFullHex(name) && n.tag == "" && n.digest == "" {
		return true
	}
	first, _, found := strings.Cut(name, "/")
	return found && (first == "localhost" || strings.ContainsAny(first, ".:"))
}

func TestFamiliarIsAmbiguous(t *testing.T) {
	for _, s := range []string{"docker.io/" + hexA, "docker.io/0.0/0", "docker.io/localhost/x", "docker.io/a.b/c:1"} {
		n := mustParse(t, s)
		if !familiarIsAmbiguous(n) {
			t.Errorf("familiarIsAmbiguous(%v) = false, want true", n)
		}
		if again, err := ParseNormalizedNamed(n.FamiliarString()); err == nil && again == n {
			t.Errorf("ParseNormalizedNamed(%q) = %v, want something other than %v", n.FamiliarString(), again, n)
		}
	}
	for _, s := range []string{"busybox", "docker.io/" + hexA + ":1", "me/box", "localhost/x", "a.b/c", "docker.io/a_b/c"} {
		if n := mustParse(t, s); familiarIsAmbiguous(n) {
			t.Errorf("familiarIsAmbiguous(%v) = true, want false", n)
		}
	}
}

// FuzzParseImageRef checks that ParseImageRef never panics and that what it
// returns is consistent with its documentation.
func FuzzParseImageRef(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Add(digestB)
	f.Add(hexB[:12])
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseImageRef(s)
		if err != nil {
			return
		}
		switch {
		case r.ID != "":
			if _, err := ParseDigest(string(r.ID)); err != nil || !r.Named.IsZero() || r.Prefix != "" {
				t.Fatalf("ParseImageRef(%q) = %+v, want a valid ID alone", s, r)
			}
		case r.Named.IsZero():
			t.Fatalf("ParseImageRef(%q) = %+v, want an ID or a name", s, r)
		case IsNameOnly(r.Named):
			t.Fatalf("ParseImageRef(%q).Named = %v, want a tag or digest", s, r.Named)
		case r.Prefix != "" && (!IsIDPrefix(r.Prefix) || !strings.HasSuffix(s, r.Prefix)):
			t.Fatalf("ParseImageRef(%q).Prefix = %q, want a hex suffix of the input", s, r.Prefix)
		}
	})
}

// FuzzParseDigest checks ParseDigest never panics and accepts exactly
// "sha256:" followed by 64 lower-case hex digits.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{digestA, digestB, "", "sha256:", "sha512:" + hexA + hexA, "a:b", "SHA256:" + hexA} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		want := strings.HasPrefix(s, "sha256:") && isFullHex(s[len("sha256:"):])
		if (err == nil) != want || (err == nil && string(d) != s) {
			t.Fatalf("ParseDigest(%q) = %q, %v; want success %v", s, d, err, want)
		}
	})
}
