package reference

import (
	"fmt"
	"strings"

	"skiffd/internal/errdefs"
)

// ImageRef is what a client's "image" argument (inspect, rmi, history, tag
// source, create, save...) can mean. Exactly one of ID and Named is set.
//
// dockerd (daemon/images GetImage) resolves such an argument in this order,
// and an image store should do the same:
//
//  1. A full ID ("sha256:<64 hex>" or bare 64 hex): the image with that ID,
//     and nothing else. ID is set.
//  2. Otherwise a name, normalised; a bare name means ":latest". Named is set.
//     Look it up in the tag store, by DockerRef(Named) (a name with both a
//     tag and a digest is found by its digest).
//  3. If the name is not tagged anywhere and Prefix is not empty, the image
//     whose ID starts with Prefix. dockerd treats an ambiguous prefix like a
//     missing one here: the client sees NotFound's message either way.
//  4. Otherwise NotFound().
//
// So "462dad" is tried as the name docker.io/library/462dad:latest before
// being tried as an ID prefix, and when neither exists the error reads
// "No such image: 462dad:latest".
type ImageRef struct {
	// ID is the full image ID, "sha256:<64 hex>", when the input was one.
	ID Digest
	// Named is the normalised name with TagNameOnly applied, when the input
	// was not a full ID.
	Named Named
	// Prefix is the bare hex ID prefix to try after Named fails, when the
	// input was lower-case hex ("462dad") or "sha256:" and lower-case hex
	// ("sha256:462dad"); empty otherwise.
	Prefix string
}

// ParseImageRef classifies s as described on ImageRef. Its only error is a
// malformed name (errdefs.InvalidParameter, from ParseNormalizedNamed).
func ParseImageRef(s string) (ImageRef, error) {
	if isFullHex(s) {
		return ImageRef{ID: Digest(Canonical + ":" + s)}, nil
	}
	if d, err := ParseDigest(s); err == nil {
		return ImageRef{ID: d}, nil
	}
	n, err := ParseNormalizedNamed(s)
	if err != nil {
		return ImageRef{}, err
	}
	r := ImageRef{Named: TagNameOnly(n)}
	// moby's ID search (a go-digest digest set) only ever matches input
	// that is lower-case hex, bare or after "sha256:"; a full-length one was
	// handled above.
	if IsIDPrefix(s) {
		r.Prefix = strings.TrimPrefix(s, Canonical+":")
	}
	return r, nil
}

// IsID reports whether r names an image by its full ID.
func (r ImageRef) IsID() bool { return r.ID != "" }

// String returns the reference as dockerd prints it in messages: the full ID,
// or the familiar name with its tag ("busybox:latest", "462dad:latest").
func (r ImageRef) String() string {
	if r.ID != "" {
		return string(r.ID)
	}
	return r.Named.FamiliarString()
}

// NotFound returns dockerd's error for an image reference that resolves to
// nothing, "No such image: busybox:latest", as errdefs.NotFound.
func (r ImageRef) NotFound() error {
	return errdefs.NotFound(fmt.Errorf("No such image: %s", r))
}
