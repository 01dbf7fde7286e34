// Package reference parses and prints image references the way dockerd and
// the docker CLI do: the grammar of github.com/distribution/reference, Docker
// Hub normalisation ("busybox" is "docker.io/library/busybox"), the familiar
// forms the CLI prints, sha256 digests, and lookup of truncated IDs.
//
// The grammar, as accepted by ParseNormalizedNamed after normalisation:
//
//	reference      := name [ ":" tag ] [ "@" digest ]
//	name           := [ domain "/" ] path
//	domain         := host [ ":" port ]                  ; port is [0-9]+
//	host           := domain-name | "[" ipv6 "]"         ; ipv6 is [a-fA-F0-9:]+
//	domain-name    := component ( "." component )*       ; [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//	path           := path-component ( "/" path-component )*
//	path-component := alnum ( separator alnum )*         ; alnum is [a-z0-9]+
//	separator      := "." | "_" | "__" | "-"+
//	tag            := [\w][\w.-]{0,127}
//	digest         := algorithm ":" hex                  ; only sha256 with 64 lower-case hex is accepted
//
// Typical use in a handler that receives a name from a client:
//
//	n, err := reference.ParseNormalizedNamed(repo) // "busybox" -> docker.io/library/busybox
//	if err != nil {
//		return err // already errdefs.InvalidParameter, with dockerd's wording
//	}
//	n = reference.TagNameOnly(n)       // docker.io/library/busybox:latest
//	fmt.Println(n.FamiliarString())    // busybox:latest
//
// Image lookups by "name, full ID or ID prefix" go through ParseImageRef, and
// truncated container or image IDs through IDIndex.
//
// The package parses by hand instead of with regular expressions because it
// sits on the path of nearly every image and container request; the tests pin
// its behaviour to the distribution/reference grammar.
package reference

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"skiffd/internal/errdefs"
)

const (
	// DefaultDomain is the registry that names without a domain belong to.
	DefaultDomain = "docker.io"

	// legacyDefaultDomain is Docker Hub's old name; it normalises to
	// DefaultDomain.
	legacyDefaultDomain = "index.docker.io"

	// officialRepoPrefix is the Docker Hub namespace of single-component
	// names: "busybox" is "library/busybox".
	officialRepoPrefix = "library/"

	// DefaultTag is the tag TagNameOnly adds.
	DefaultTag = "latest"

	// RepositoryNameTotalLengthMax is the longest path (the name without its
	// domain) a reference may have.
	RepositoryNameTotalLengthMax = 255

	// maxTagLength is the longest tag the grammar allows.
	maxTagLength = 128
)

// The fixed-text errors a parse can return. Each is already an
// errdefs.InvalidParameter, so a handler can return it unchanged; compare with
// errors.Is. Messages are those of distribution/reference and go-digest v1.0.0,
// which is what dockerd sends to clients.
var (
	ErrReferenceInvalidFormat = errdefs.InvalidParameter(errors.New("invalid reference format"))
	ErrTagInvalidFormat       = errdefs.InvalidParameter(errors.New("invalid tag format"))
	ErrNameContainsUppercase  = errdefs.InvalidParameter(errors.New("repository name must be lowercase"))
	ErrNameEmpty              = errdefs.InvalidParameter(errors.New("repository name must have at least one component"))
	ErrNameTooLong            = errdefs.InvalidParameter(fmt.Errorf("repository name must not be more than %d characters", RepositoryNameTotalLengthMax))
	ErrNameNotCanonical       = errdefs.InvalidParameter(errors.New("repository name must be canonical"))
)

// Named is a parsed, normalised image reference: a repository name with an
// optional tag and an optional digest. The zero Named is "no reference";
// every Named returned without error by this package has a non-empty path.
//
// Named is a small comparable value: two references are the same exactly when
// they compare equal with ==.
type Named struct {
	domain string // "docker.io", "localhost:5000"; empty only for odd names, see splitName
	path   string // "library/busybox"
	tag    string // "" when untagged
	digest string // "sha256:<64 hex>" or ""
}

// Domain returns the registry part, e.g. "docker.io" or "localhost:5000".
func (n Named) Domain() string { return n.domain }

// Path returns the repository path without the domain, e.g. "library/busybox".
func (n Named) Path() string { return n.path }

// Name returns the full repository name without tag or digest, e.g.
// "docker.io/library/busybox".
func (n Named) Name() string {
	if n.domain == "" {
		return n.path
	}
	return n.domain + "/" + n.path
}

// Tag returns the tag, or "" when the reference has none.
func (n Named) Tag() string { return n.tag }

// Digest returns the digest ("sha256:<64 hex>"), or "" when the reference has
// none. A non-empty value is always a valid Digest.
func (n Named) Digest() string { return n.digest }

// IsZero reports whether n is the zero Named (no reference at all).
func (n Named) IsZero() bool { return n == Named{} }

// String returns the full normalised form, e.g.
// "docker.io/library/busybox:latest@sha256:...". ParseNormalizedNamed of the
// result gives back n.
func (n Named) String() string {
	return withSuffixes(n.Name(), n.tag, n.digest)
}

// FamiliarName returns the name as the docker CLI shows it: Docker Hub's
// domain dropped, and its "library/" namespace dropped for single-component
// paths. "docker.io/library/busybox" is "busybox", "docker.io/me/box" is
// "me/box", "localhost:5000/x" stays as it is.
func (n Named) FamiliarName() string {
	if n.domain != DefaultDomain {
		return n.Name()
	}
	if rest, ok := strings.CutPrefix(n.path, officialRepoPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return n.path
}

// FamiliarString returns the familiar name with tag and digest, e.g.
// "busybox:latest", "me/box:1" or "busybox@sha256:...", as the CLI prints
// references (RepoTags, "Untagged: ..." lines, "No such image: ...").
func (n Named) FamiliarString() string {
	return withSuffixes(n.FamiliarName(), n.tag, n.digest)
}

func withSuffixes(name, tag, digest string) string {
	if tag == "" && digest == "" {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 1 + len(tag) + 1 + len(digest))
	b.WriteString(name)
	if tag != "" {
		b.WriteByte(':')
		b.WriteString(tag)
	}
	if digest != "" {
		b.WriteByte('@')
		b.WriteString(digest)
	}
	return b.String()
}

// MarshalText encodes n as its String form, so a Named can be a JSON map key
// or field in stored records.
func (n Named) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText parses text with ParseNormalizedNamed. Empty text gives the
// zero Named, mirroring MarshalText of the zero Named.
func (n *Named) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*n = Named{}
		return nil
	}
	parsed, err := ParseNormalizedNamed(string(text))
	if err != nil {
		return err
	}
	*n = parsed
	return nil
}

// IsNameOnly reports whether n has neither a tag nor a digest.
func IsNameOnly(n Named) bool { return n.tag == "" && n.digest == "" }

// TagNameOnly returns n with the tag "latest" when n has neither a tag nor a
// digest, and n unchanged otherwise: "busybox" means "busybox:latest", but
// "busybox@sha256:..." stays untagged.
func TagNameOnly(n Named) Named {
	if IsNameOnly(n) {
		n.tag = DefaultTag
	}
	return n
}

// TrimNamed returns n without its tag and digest.
func TrimNamed(n Named) Named {
	return Named{domain: n.domain, path: n.path}
}

// WithTag returns n with its tag replaced by tag, keeping any digest. It fails
// with ErrTagInvalidFormat when tag does not match the tag grammar.
func WithTag(n Named, tag string) (Named, error) {
	if !isTag(tag) {
		return Named{}, ErrTagInvalidFormat
	}
	n.tag = tag
	return n, nil
}

// WithDigest returns n with its digest replaced by dgst, keeping any tag.
// Unlike distribution/reference, which only checks the digest's shape, the
// digest must be one ParseDigest accepts: skiffd only stores sha256 content.
func WithDigest(n Named, dgst Digest) (Named, error) {
	d, err := ParseDigest(string(dgst))
	if err != nil {
		return Named{}, err
	}
	n.digest = string(d)
	return n, nil
}

// DockerRef returns the form of n under which dockerd stores and looks up a
// reference: a reference with both a tag and a digest is known by its digest
// alone (the tag is dropped), and a bare name gets the "latest" tag. This is
// distribution/reference's ParseDockerRef and moby's reference-store rule.
func DockerRef(n Named) Named {
	if n.tag != "" && n.digest != "" {
		n.tag = ""
		return n
	}
	return TagNameOnly(n)
}

// ParseDockerRef is ParseNormalizedNamed followed by DockerRef.
func ParseDockerRef(s string) (Named, error) {
	n, err := ParseNormalizedNamed(s)
	if err != nil {
		return Named{}, err
	}
	return DockerRef(n), nil
}

// ParseNamed parses s like ParseNormalizedNamed but only accepts it when it is
// already in canonical form ("docker.io/library/busybox", not "busybox"); it
// fails with ErrNameNotCanonical otherwise.
func ParseNamed(s string) (Named, error) {
	n, err := ParseNormalizedNamed(s)
	if err != nil {
		return Named{}, err
	}
	if n.String() != s {
		return Named{}, ErrNameNotCanonical
	}
	return n, nil
}

// ParseRepoTag builds the reference that the tag, commit and import endpoints
// create from their "repo" and "tag" query parameters, as moby's
// RepoTagReference does: repo is normalised, must not carry a digest, and tag
// (when not empty) replaces any tag in repo; with no tag at all the result is
// tagged "latest". An empty repo gives the zero Named and no error: the
// endpoint then creates an untagged image.
func ParseRepoTag(repo, tag string) (Named, error) {
	if repo == "" {
		return Named{}, nil
	}
	n, err := ParseNormalizedNamed(repo)
	if err != nil {
		return Named{}, err
	}
	if n.digest != "" {
		return Named{}, errdefs.InvalidParameter(errors.New("cannot import digest reference"))
	}
	if tag != "" {
		return WithTag(n, tag)
	}
	return TagNameOnly(n), nil
}

// FamiliarMatch reports whether pattern (path.Match syntax) matches the
// familiar string of n or, failing that, its familiar name. This is the
// "reference" filter of GET /images/json: "busybox" matches
// "busybox:latest", and "busy*" matches it too. The error is
// path.ErrBadPattern for a malformed pattern.
func FamiliarMatch(pattern string, n Named) (bool, error) {
	matched, err := path.Match(pattern, n.FamiliarString())
	if !matched && err == nil {
		matched, _ = path.Match(pattern, n.FamiliarName())
	}
	return matched, err
}
