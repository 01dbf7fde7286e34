package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strings"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// Manifest media types.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"

	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeOCIConfig    = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCILayer     = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// acceptedManifestTypes is the Accept list of a manifest GET: the types
// dockerd pulls, then the schema 1 types, which dockerd still accepts so
// that it can refuse them with its deprecation message instead of a
// registry's "manifest unknown".
var acceptedManifestTypes = []string{MediaTypeDockerManifest, MediaTypeDockerManifestList, MediaTypeOCIManifest, MediaTypeOCIIndex,
	MediaTypeDockerSchema1Signed, MediaTypeDockerSchema1}

// MaxManifestSize bounds a manifest body; larger ones are refused before
// being read whole (4 MiB, the limit registries are expected to accept).
const MaxManifestSize = 4 << 20

// Descriptor points at a blob or manifest.
type Descriptor struct {
	MediaType   string            `json:"mediaType,omitempty"`
	Digest      reference.Digest  `json:"digest"`
	Size        int64             `json:"size"`
	URLs        []string          `json:"urls,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// ImageManifest is a Docker v2 schema 2 or OCI image manifest.
type ImageManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Index is a Docker manifest list or OCI image index.
type Index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Manifest is a fetched manifest: its exact bytes (what the digest covers),
// media type, digest, and the parsed form (one of Image or Index is set).
type Manifest struct {
	MediaType string
	Digest    reference.Digest
	Raw       []byte
	Image     *ImageManifest
	Index     *Index
}

// IsIndex reports whether m is a manifest list or OCI index.
func (m *Manifest) IsIndex() bool { return m.Index != nil }

// GetManifest fetches the manifest ref names: by its digest when it has
// one, else by its tag ("latest" when it has neither). Errors are worded as
// dockerd words pull errors ("manifest for app:1.0 not found: manifest
// unknown: manifest unknown", "pull access denied for ...").
//
// When the repository is on a registry mirror and the mirror fails in any
// way, GetManifest moves the repository to the next endpoint (the next
// mirror, then Docker Hub) and asks there, as dockerd does; later calls
// use that endpoint. Call it before the blob calls of a pull.
func (r *Repository) GetManifest(ctx context.Context, ref reference.Named) (*Manifest, error) {
	ref = reference.TagNameOnly(ref)
	tagOrDigest, want := ref.Tag(), reference.Digest(ref.Digest())
	if want != "" {
		tagOrDigest = string(want)
	}
	m, err := r.getManifest(ctx, tagOrDigest, want, ref)
	for err != nil && r.fallBack(ctx) {
		m, err = r.getManifest(ctx, tagOrDigest, want, ref)
	}
	if err != nil {
		return nil, pullError(err, ref)
	}
	return m, nil
}

// GetManifestDigest fetches a manifest by digest, e.g. the one
// SelectPlatform chose from an index.
func (r *Repository) GetManifestDigest(ctx context.Context, d reference.Digest) (*Manifest, error) {
	ref, _ := reference.WithDigest(r.ref, d)
	m, err := r.getManifest(ctx, string(d), d, ref)
	if err != nil {
		return nil, pullError(err, ref)
	}
	return m, nil
}

func (r *Repository) getManifest(ctx context.Context, tagOrDigest string, want reference.Digest, ref reference.Named) (*Manifest, error) {
	h := http.Header{}
	for _, t := range acceptedManifestTypes {
		h.Add("Accept", t)
	}
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.url("manifests", tagOrDigest), header: h, length: -1})
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	if resp.ContentLength > MaxManifestSize {
		return nil, errdefs.InvalidParameter(fmt.Errorf("manifest of %s is %d bytes, more than the %d byte limit", ref.FamiliarString(), resp.ContentLength, MaxManifestSize))
	}
	raw, err := readAllLimited(resp.Body, MaxManifestSize, "manifest")
	if err != nil {
		return nil, err
	}
	got := reference.DigestOf(raw)
	if want != "" && got != want {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image verification failed for digest %s", want))
	}
	if hd := resp.Header.Get("Docker-Content-Digest"); hd != "" && want == "" {
		// Only a sha256 header can be checked; skiffd computes nothing
		// else (reference.ParseDigest refuses other algorithms).
		if d, err := reference.ParseDigest(hd); err == nil && d != got {
			return nil, errdefs.InvalidParameter(fmt.Errorf("image verification failed for digest %s", d))
		}
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return parseManifest(raw, ct, got, ref)
}

// ParseManifest parses manifest bytes of the given media type (the
// Content-Type it came with; the body's mediaType field is used when that is
// empty or generic). Schema 1 manifests are refused with dockerd's message.
func ParseManifest(raw []byte, mediaType string, ref reference.Named) (*Manifest, error) {
	return parseManifest(raw, mediaType, reference.DigestOf(raw), ref)
}

func parseManifest(raw []byte, ct string, d reference.Digest, ref reference.Named) (*Manifest, error) {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		Signatures    []json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid manifest of %s: %w", ref.FamiliarString(), err))
	}
	mt := ct
	switch mt {
	case "", "application/json", "text/plain", "application/octet-stream":
		mt = probe.MediaType
	}
	if mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed || probe.SchemaVersion == 1 {
		return nil, deprecatedSchema1(ref)
	}
	if mt == "" {
		// An OCI manifest may leave out mediaType; its shape tells.
		if probe.Manifests != nil {
			mt = MediaTypeOCIIndex
		} else if probe.Config != nil {
			mt = MediaTypeOCIManifest
		}
	}
	m := &Manifest{MediaType: mt, Digest: d, Raw: raw}
	switch mt {
	case MediaTypeDockerManifest, MediaTypeOCIManifest:
		m.Image = new(ImageManifest)
		if err := json.Unmarshal(raw, m.Image); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid manifest of %s: %w", ref.FamiliarString(), err))
		}
	case MediaTypeDockerManifestList, MediaTypeOCIIndex:
		m.Index = new(Index)
		if err := json.Unmarshal(raw, m.Index); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid manifest of %s: %w", ref.FamiliarString(), err))
		}
	default:
		return nil, errdefs.InvalidParameter(fmt.Errorf("unsupported manifest media type and no default available: %s", mt))
	}
	if probe.SchemaVersion != 2 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("unsupported manifest schema version %d", probe.SchemaVersion))
	}
	return m, nil
}

// deprecatedSchema1 is dockerd's refusal of schema 1 images (removed in
// Docker 28.2), naming the full reference.
func deprecatedSchema1(ref reference.Named) error {
	msg := "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed."
	if !ref.IsZero() {
		msg += " Suggest the author of " + ref.String() + " to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2."
	}
	msg += " More information at https://docs.docker.com/go/deprecated-image-specs/"
	return errdefs.InvalidParameter(errors.New(msg))
}

// DefaultPlatform is the platform of this daemon's build: linux and
// GOARCH, with dockerd's default variant.
func DefaultPlatform() Platform {
	return NormalizePlatform(Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// NormalizePlatform spells p as containerd's platforms package does for
// matching: architecture aliases folded (x86_64 is amd64, aarch64 is arm64),
// and the default variants filled in (arm64 is v8, arm is v7; amd64 has
// none). An empty OS is linux.
func NormalizePlatform(p Platform) Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	switch arch {
	case "i386":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		switch variant {
		case "", "8", "v8", "v8.0":
			variant = "v8"
		case "9", "9.0", "v9.0":
			variant = "v9"
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// FormatPlatform writes p as dockerd's messages do: os/arch[/variant].
func FormatPlatform(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformCandidates lists, best first, the platforms that can run on want,
// as containerd's platforms.Only: arm64/v8 also runs arm v8..v5, arm/vN
// runs lower arm variants, amd64 runs 386.
func platformCandidates(want Platform) []Platform {
	want = NormalizePlatform(want)
	out := []Platform{want}
	add := func(arch string, variants ...string) {
		for _, v := range variants {
			out = append(out, Platform{OS: want.OS, Architecture: arch, Variant: v})
		}
	}
	switch want.Architecture {
	case "arm64":
		if want.Variant == "v8" {
			add("arm", "v8", "v7", "v6", "v5")
		}
	case "arm":
		switch want.Variant {
		case "v8":
			add("arm", "v7", "v6", "v5")
		case "v7":
			add("arm", "v6", "v5")
		case "v6":
			add("arm", "v5")
		}
	case "amd64":
		add("386", "")
	}
	return out
}

// PlatformMatches reports whether an image of platform have can run where
// want is asked for, as containerd's platforms.Only matches (arm64 also
// takes arm v8..v5, amd64 takes 386; variants normalised, so an arm64
// image without a variant is arm64/v8).
func PlatformMatches(want, have Platform) bool {
	have = NormalizePlatform(have)
	for _, c := range platformCandidates(want) {
		if have.OS == c.OS && have.Architecture == c.Architecture && have.Variant == c.Variant {
			return true
		}
	}
	return false
}

// SelectPlatform picks the entry of an index or manifest list for want, as
// dockerd does: entries whose OS, architecture and variant (normalised, so
// "linux/arm64" matches arm64 with or without "v8") match, preferring an
// exact match over the compatible fallbacks (arm64 → arm/v8...v5, amd64 →
// 386); entries without a platform come last. os.version is ignored for
// linux. The error is dockerd's "no matching manifest for linux/arm64/v8
// in the manifest list entries" (errdefs.NotFound).
func SelectPlatform(entries []Descriptor, want Platform) (Descriptor, error) {
	want = NormalizePlatform(want)
	cands := platformCandidates(want)
	best, bestRank := -1, len(cands)+1
	for i, e := range entries {
		rank := len(cands) // a platform-less entry
		if e.Platform != nil {
			p := NormalizePlatform(*e.Platform)
			rank = -1
			for j, c := range cands {
				if p.OS == c.OS && p.Architecture == c.Architecture && p.Variant == c.Variant {
					rank = j
					break
				}
			}
			if rank < 0 {
				continue
			}
		}
		if rank < bestRank {
			best, bestRank = i, rank
		}
	}
	if best < 0 {
		return Descriptor{}, errdefs.NotFound(fmt.Errorf("no matching manifest for %s in the manifest list entries", FormatPlatform(want)))
	}
	return entries[best], nil
}

// PutManifest uploads raw as the manifest of tagOrDigest ("1.0" or
// "sha256:...") with Content-Type mediaType and returns its digest (the
// registry's Docker-Content-Digest, which must equal the digest of raw).
func (r *Repository) PutManifest(ctx context.Context, tagOrDigest, mediaType string, raw []byte) (reference.Digest, error) {
	d := reference.DigestOf(raw)
	if strings.HasPrefix(tagOrDigest, reference.Canonical+":") && reference.Digest(tagOrDigest) != d {
		return "", errdefs.InvalidParameter(fmt.Errorf("manifest digest %s does not match %s", d, tagOrDigest))
	}
	h := http.Header{"Content-Type": {mediaType}}
	resp, err := r.do(ctx, request{method: http.MethodPut, url: r.url("manifests", tagOrDigest), header: h,
		body: func() io.Reader { return bytes.NewReader(raw) }, length: int64(len(raw))})
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", responseError(resp)
	}
	if hd := resp.Header.Get("Docker-Content-Digest"); hd != "" {
		if pd, err := reference.ParseDigest(hd); err == nil && pd != d {
			return "", errdefs.System(fmt.Errorf("registry stored manifest %s as %s", d, pd))
		}
	}
	return d, nil
}
