package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"skiffd/internal/atomicfile"
	"skiffd/internal/distribution"
	"skiffd/internal/reference"
)

// blobSources remembers, per layer diff ID, the compressed blobs that hold
// it and the repositories they were pulled from or pushed to, as dockerd's
// v2 metadata service does. A push then skips compressing a layer the
// target repository already has, and mounts one from another repository of
// the same registry ("Mounted from team/base") instead of uploading it.
// It is a cache: losing it costs a recompression, never correctness.
type blobSources struct {
	path string

	mu   sync.Mutex
	byID map[string][]blobSource // diff ID -> sources
}

// blobSource is one compressed blob of a layer and where it lives.
type blobSource struct {
	Digest     reference.Digest `json:"digest"`
	Size       int64            `json:"size"`
	MediaType  string           `json:"mediaType"`
	Repository string           `json:"repository"` // "127.0.0.1:5000/team/app"
}

// maxSourcesPerLayer bounds what is kept per layer.
const maxSourcesPerLayer = 16

func openBlobSources(dataRoot string) *blobSources {
	b := &blobSources{path: filepath.Join(dataRoot, "image", "distribution-sources.json"), byID: make(map[string][]blobSource)}
	if raw, err := os.ReadFile(b.path); err == nil {
		json.Unmarshal(raw, &b.byID)
	}
	return b
}

// add records that repository holds d as the compressed form of diffID.
func (b *blobSources) add(diffID string, d distribution.Descriptor, repository string) {
	src := blobSource{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, Repository: repository}
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.byID[diffID]
	for _, s := range list {
		if s == src {
			return
		}
	}
	list = append([]blobSource{src}, list...)
	if len(list) > maxSourcesPerLayer {
		list = list[:maxSourcesPerLayer]
	}
	b.byID[diffID] = list
	raw, err := json.Marshal(b.byID)
	if err == nil {
		// Best effort: a cache.
		atomicfile.WriteFile(b.path, raw, 0o600)
	}
}

// sources returns the recorded blobs of diffID, most recent first.
func (b *blobSources) sources(diffID string) []blobSource {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]blobSource(nil), b.byID[diffID]...)
}
