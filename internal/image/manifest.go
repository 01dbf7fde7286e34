package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// maxIndexDepth bounds the nesting of OCI indexes.
const maxIndexDepth = 8

// Media types and annotations of OCI image layouts (and Docker's
// equivalents) that Load and Save use.
const (
	mediaTypeOCIIndex        = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIConfig       = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer        = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
	annotationDockerRefType  = "vnd.docker.reference.type"
	manifestFileName         = "manifest.json"
	indexFileName            = "index.json"
	ociLayoutFileName        = "oci-layout"
	legacyReposFileName      = "repositories"
)

// manifestItem is one entry of a docker-archive's manifest.json.
type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
	Parent   string `json:",omitempty"`
}

// dockerItems reads a docker-archive: manifest.json and what it names.
func (a *archiveFiles) dockerItems() ([]loadItem, error) {
	raw, err := a.readJSON(manifestFileName)
	if err != nil {
		return nil, err
	}
	var manifest []manifestItem
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s: %w", manifestFileName, err))
	}
	if manifest == nil {
		return nil, errdefs.InvalidParameter(errors.New("invalid manifest, manifest cannot be null (but can be [])"))
	}
	items := make([]loadItem, 0, len(manifest))
	for _, m := range manifest {
		cfg, err := a.readJSON(m.Config)
		if err != nil {
			return nil, err
		}
		it := loadItem{config: cfg, parent: m.Parent}
		for _, l := range m.Layers {
			lm, err := a.get(l)
			if err != nil {
				return nil, err
			}
			it.layers = append(it.layers, lm)
		}
		for _, t := range m.RepoTags {
			n, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				return nil, err
			}
			if n.Tag() == "" || n.Digest() != "" {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid tag %q", t))
			}
			it.tags = append(it.tags, n)
		}
		items = append(items, it)
	}
	return items, nil
}

// ociDescriptor, ociPlatform, ociIndex and ociManifest are the parts of the
// OCI image-spec documents that Load reads and Save writes, in the spec's
// field order.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *ociPlatform      `json:"platform,omitempty"`
}

type ociPlatform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

type ociIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType,omitempty"`
	Manifests     []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType,omitempty"`
	Config        ociDescriptor   `json:"config"`
	Layers        []ociDescriptor `json:"layers"`
}

// blobName returns the layout path of a digest, refusing anything but a
// valid sha256 digest (so a descriptor cannot name an arbitrary member).
func blobName(digest string) (string, error) {
	d, err := reference.ParseDigest(digest)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("failed to load image: invalid digest %q: %w", digest, err))
	}
	return path.Join("blobs", d.Algorithm(), d.Encoded()), nil
}

// readBlob returns a small blob after checking its content has its digest.
func (a *archiveFiles) readBlob(digest string) ([]byte, error) {
	name, err := blobName(digest)
	if err != nil {
		return nil, err
	}
	b, err := a.readJSON(name)
	if err != nil {
		return nil, err
	}
	if got := digestOf(b); got != digest {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: blob %s has digest %s", digest, got))
	}
	return b, nil
}

// ociItems reads an OCI image layout: index.json, the manifests it leads
// to (through nested indexes, choosing the host's platform) and their
// configs and layers. Entries naming the same manifest become one image
// with all their names.
func (a *archiveFiles) ociItems() ([]loadItem, error) {
	raw, err := a.readJSON(indexFileName)
	if err != nil {
		return nil, err
	}
	var idx ociIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s: %w", indexFileName, err))
	}
	var items []loadItem
	byManifest := make(map[string]int)
	for _, d := range idx.Manifests {
		if d.Annotations[annotationDockerRefType] != "" {
			continue // attestations and other non-image manifests
		}
		mdesc, m, err := a.resolveManifest(d, 0)
		if err != nil {
			return nil, err
		}
		i, seen := byManifest[mdesc.Digest]
		if !seen {
			cfg, err := a.readBlob(m.Config.Digest)
			if err != nil {
				return nil, err
			}
			it := loadItem{config: cfg}
			for _, l := range m.Layers {
				name, err := blobName(l.Digest)
				if err != nil {
					return nil, err
				}
				lm, err := a.get(name)
				if err != nil {
					return nil, err
				}
				it.layers = append(it.layers, lm)
			}
			i = len(items)
			byManifest[mdesc.Digest] = i
			items = append(items, it)
		}
		if n, ok := nameFromAnnotations(d.Annotations); ok && !containsRef(items[i].tags, n) {
			items[i].tags = append(items[i].tags, n)
		}
	}
	return items, nil
}

func containsRef(refs []reference.Named, n reference.Named) bool {
	for _, r := range refs {
		if reference.DockerRef(r) == reference.DockerRef(n) {
			return true
		}
	}
	return false
}

// nameFromAnnotations returns the reference an index entry gives its image,
// as dockerd reads OCI archives: the full name containerd records, else the
// OCI ref name when it is a whole reference ("busybox:1", not just "1",
// which names no repository).
func nameFromAnnotations(ann map[string]string) (reference.Named, bool) {
	if v := ann[annotationContainerdName]; v != "" {
		if n, err := reference.ParseNormalizedNamed(v); err == nil {
			return reference.DockerRef(n), true
		}
	}
	if v := ann[annotationRefName]; v != "" && strings.ContainsAny(v, ":/@") {
		if n, err := reference.ParseNormalizedNamed(v); err == nil {
			return reference.DockerRef(n), true
		}
	}
	return reference.Named{}, false
}

// resolveManifest follows d to an image manifest, descending through
// indexes to the entry for the host platform.
func (a *archiveFiles) resolveManifest(d ociDescriptor, depth int) (ociDescriptor, *ociManifest, error) {
	if depth > maxIndexDepth {
		return d, nil, errdefs.InvalidParameter(errors.New("failed to load image: image indexes nested too deeply"))
	}
	b, err := a.readBlob(d.Digest)
	if err != nil {
		return d, nil, err
	}
	mt := d.MediaType
	if mt == "" {
		var probe struct {
			MediaType string          `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: manifest %s: %w", d.Digest, err))
		}
		mt = probe.MediaType
		if mt == "" && probe.Manifests != nil {
			mt = mediaTypeOCIIndex
		} else if mt == "" {
			mt = mediaTypeOCIManifest
		}
	}
	switch mt {
	case mediaTypeOCIIndex, mediaTypeDockerList:
		var idx ociIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: index %s: %w", d.Digest, err))
		}
		child, ok := pickPlatform(idx.Manifests)
		if !ok {
			return d, nil, errdefs.NotFound(fmt.Errorf("failed to load image: no manifest for linux/%s in index %s", runtime.GOARCH, d.Digest))
		}
		return a.resolveManifest(child, depth+1)
	case mediaTypeOCIManifest, mediaTypeDockerManifest:
		var m ociManifest
		if err := json.Unmarshal(b, &m); err != nil {
			return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: manifest %s: %w", d.Digest, err))
		}
		return d, &m, nil
	default:
		return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: unsupported media type %q", mt))
	}
}

// pickPlatform chooses the index entry for the host: linux on this
// architecture, else the only entry when there is a single candidate that
// says nothing about its platform.
func pickPlatform(ds []ociDescriptor) (ociDescriptor, bool) {
	var unspecified []ociDescriptor
	for _, d := range ds {
		if d.Annotations[annotationDockerRefType] != "" {
			continue
		}
		if d.Platform == nil {
			unspecified = append(unspecified, d)
			continue
		}
		if d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			return d, true
		}
	}
	if len(unspecified) == 1 {
		return unspecified[0], true
	}
	return ociDescriptor{}, false
}
