// Package image is skiffd's durable image store: image configs addressed by
// the sha256 of their bytes, per-image metadata, the tags and digests that
// name images, and the archive formats that move images in and out of the
// engine ("docker load", "docker save", "docker import").
//
// Layers themselves live in a LayerStore (internal/layer); an image is its
// config plus the chain of layers its rootfs lists. The store keeps dockerd's
// on-disk shape under its root:
//
//	imagedb/content/sha256/<hex>              raw config, named by its digest (the image ID)
//	imagedb/metadata/sha256/<hex>/parent       parent image ID, for built and committed images
//	imagedb/metadata/sha256/<hex>/lastUpdated  last time the image was tagged
//	repositories.json                         {"Repositories": {repo: {ref: image ID}}}
//	tmp/                                      scratch space of loads and saves, emptied by Open
//
// Typical use:
//
//	st, err := image.Open(filepath.Join(dataRoot, "image"), layers)
//	img, err := st.Get("busybox")   // name, name@digest, full ID or ID prefix
//	err = st.Load(ctx, body, func(line string) { progress.Stream(line) })
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// Image is one stored image. Values returned by the Store are copies of its
// record, but RawConfig and the slices and maps inside Config are shared and
// must not be modified.
type Image struct {
	// ID is "sha256:" and the hex sha256 of RawConfig.
	ID string
	// RawConfig is the config exactly as received or created.
	RawConfig []byte
	// Config is RawConfig decoded.
	Config Config
	// Parent is the image this one was built or committed from, or "".
	Parent string
	// Size is the sum of the content sizes of the image's layers.
	Size int64
	// ChainIDs are the chain IDs of the image's layers, base first.
	ChainIDs []string
	// LastTagTime is when the image was last tagged (zero if never).
	LastTagTime time.Time
}

// Store is the image store. It is safe for concurrent use.
type Store struct {
	root   string
	layers LayerStore
	// stager is the staging side of layers, nil if it has none.
	stager layerStager

	mu     sync.RWMutex
	images map[string]*Image // by ID
	ids    *reference.IDIndex
	// repos is the references file: familiar repository name -> familiar
	// reference string -> image ID, as dockerd's reference store keeps it.
	repos map[string]map[string]string
	// byID caches repos the other way round.
	byID map[string]map[string]reference.Named
	// layerSize holds the content size of every chain an image uses.
	layerSize map[string]int64
	// pending counts the chains that a load is registering for an image it
	// has not created yet, so that a concurrent Delete leaves them alone.
	pending map[string]int
}

const (
	digestDirName = "sha256"
	reposFileName = "repositories.json"
	parentFile    = "parent"
	lastTagFile   = "lastUpdated"
)

func (s *Store) contentDir() string {
	return filepath.Join(s.root, "imagedb", "content", digestDirName)
}
func (s *Store) metaRoot() string { return filepath.Join(s.root, "imagedb", "metadata", digestDirName) }
func (s *Store) metaDir(id string) string {
	return filepath.Join(s.metaRoot(), strings.TrimPrefix(id, "sha256:"))
}
func (s *Store) tmpDir() string { return filepath.Join(s.root, "tmp") }

// Open opens (creating if needed) the image store under root, on top of the
// layer store layers. It removes what interrupted writes, loads and saves
// left behind. An image whose config does not match its name, does not
// parse, or whose layers are missing from the layer store is left on disk
// but not served, as dockerd skips images it cannot restore.
func Open(root string, layers LayerStore) (*Store, error) {
	s := &Store{
		root:      root,
		layers:    layers,
		stager:    stagerOf(layers),
		images:    make(map[string]*Image),
		ids:       &reference.IDIndex{},
		repos:     make(map[string]map[string]string),
		byID:      make(map[string]map[string]reference.Named),
		layerSize: make(map[string]int64),
		pending:   make(map[string]int),
	}
	for _, d := range []string{s.contentDir(), s.metaRoot()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	for _, d := range []string{s.root, s.contentDir(), s.metaRoot()} {
		if err := atomicfile.RemoveTemps(d); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := s.loadImages(); err != nil {
		return nil, err
	}
	if err := s.loadRepos(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) loadImages() error {
	entries, err := os.ReadDir(s.contentDir())
	if err != nil {
		return fmt.Errorf("open image store: %w", err)
	}
	for _, e := range entries {
		hexID := e.Name()
		if !reference.IsFullID(hexID) || !e.Type().IsRegular() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(s.contentDir(), hexID))
		if err != nil {
			return fmt.Errorf("open image store: %w", err)
		}
		id := "sha256:" + hexID
		if digestOf(raw) != id {
			continue
		}
		img, err := s.newImage(id, raw)
		if err != nil {
			continue
		}
		s.readMetadata(img)
		s.images[id] = img
		if err := s.ids.Add(id); err != nil {
			return fmt.Errorf("open image store: %w", err)
		}
	}
	// Metadata of images whose content is gone (an interrupted Delete, or a
	// Create that crashed before its commit point) is garbage.
	metas, err := os.ReadDir(s.metaRoot())
	if err != nil {
		return fmt.Errorf("open image store: %w", err)
	}
	for _, m := range metas {
		if _, err := os.Stat(filepath.Join(s.contentDir(), m.Name())); errors.Is(err, os.ErrNotExist) {
			if err := os.RemoveAll(filepath.Join(s.metaRoot(), m.Name())); err != nil {
				return fmt.Errorf("open image store: %w", err)
			}
			continue
		}
		if err := atomicfile.RemoveTemps(filepath.Join(s.metaRoot(), m.Name())); err != nil {
			return fmt.Errorf("open image store: %w", err)
		}
	}
	return nil
}

// newImage builds the record of a config whose layers are all registered,
// noting their sizes.
func (s *Store) newImage(id string, raw []byte) (*Image, error) {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	img := &Image{ID: id, RawConfig: raw, Config: *cfg, ChainIDs: chainIDs(cfg.RootFS.DiffIDs)}
	sizes := make([]int64, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		l, err := s.layers.Get(c)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("failed to get layer %s: %w", c, err))
		}
		sizes[i] = l.Size
		img.Size += l.Size
	}
	for i, c := range img.ChainIDs {
		s.layerSize[c] = sizes[i]
	}
	return img, nil
}

func (s *Store) readMetadata(img *Image) {
	dir := s.metaDir(img.ID)
	if b, err := os.ReadFile(filepath.Join(dir, parentFile)); err == nil {
		if p := strings.TrimSpace(string(b)); p != "" {
			img.Parent = p
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, lastTagFile)); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
			img.LastTagTime = t
		}
	}
}

// digestOf returns "sha256:<hex>" of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// normalizeID turns a bare 64-hex ID into its "sha256:" form.
func normalizeID(id string) string {
	if reference.IsFullID(id) {
		return "sha256:" + id
	}
	return id
}

func (img *Image) clone() *Image {
	c := *img
	return &c
}

// ambiguousError carries dockerd's "No such image" message for an ID prefix
// that matches several images while still matching
// reference.ErrAmbiguousID for callers that want to tell the cases apart.
type ambiguousError struct {
	msg string
	err error
}

func (e *ambiguousError) Error() string { return e.msg }
func (e *ambiguousError) Unwrap() error { return e.err }

// Get finds an image by reference, in dockerd's order (see
// reference.ImageRef): a full ID, with or without "sha256:", is only ever
// that ID; otherwise the name (":latest" when untagged, or name@digest) is
// looked up among the references, then, if the input is hex, as an ID prefix.
// Not found, and an ambiguous prefix, are errdefs.NotFound
// "No such image: <ref>" as dockerd prints them ("busybox:latest"); the
// ambiguous case also matches reference.ErrAmbiguousID. A malformed
// reference is errdefs.InvalidParameter.
func (s *Store) Get(ref string) (*Image, error) {
	r, err := reference.ParseImageRef(ref)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r.IsID() {
		if img := s.images[string(r.ID)]; img != nil {
			return img.clone(), nil
		}
		return nil, r.NotFound()
	}
	if id, ok := s.lookupRef(reference.DockerRef(r.Named)); ok {
		if img := s.images[id]; img != nil {
			return img.clone(), nil
		}
	}
	if r.Prefix != "" {
		full, err := s.ids.Get(r.Prefix)
		if err == nil {
			if img := s.images["sha256:"+full]; img != nil {
				return img.clone(), nil
			}
		} else if errors.Is(err, reference.ErrAmbiguousID) {
			return nil, errdefs.NotFound(&ambiguousError{msg: r.NotFound().Error(), err: err})
		}
	}
	return nil, r.NotFound()
}

// List returns every image, ordered by ID.
func (s *Store) List() []*Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Children returns the IDs of the images whose parent is id, sorted.
func (s *Store) Children(id string) []string {
	id = normalizeID(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, img := range s.images {
		if img.Parent == id {
			out = append(out, img.ID)
		}
	}
	slices.Sort(out)
	return out
}

// LayersSize returns the content size of all layers that images use, each
// layer counted once however many images share it (GET /system/df).
func (s *Store) LayersSize() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := make(map[string]bool)
	var total int64
	for _, img := range s.images {
		for _, c := range img.ChainIDs {
			if !seen[c] {
				seen[c] = true
				total += s.layerSize[c]
			}
		}
	}
	return total
}

// Create stores the image whose config is rawConfig, exactly those bytes,
// and returns it. Every layer its rootfs lists must already be registered
// in the layer store (errdefs.InvalidParameter otherwise). parent, when not
// empty, is the ID of an existing image it was built from. Creating an image
// that exists returns it unchanged. The config is durable before Create
// returns.
func (s *Store) Create(ctx context.Context, rawConfig []byte, parent string) (*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := digestOf(rawConfig)
	parent = normalizeID(parent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if img := s.images[id]; img != nil {
		return img.clone(), nil
	}
	if parent != "" && s.images[parent] == nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("unknown parent image ID %s", parent))
	}
	img, err := s.newImage(id, rawConfig)
	if err != nil {
		return nil, err
	}
	img.Parent = parent
	// Metadata first, content last: the content file is the commit point,
	// and Open discards metadata that has no content.
	if parent != "" {
		if err := os.MkdirAll(s.metaDir(id), 0o700); err != nil {
			return nil, fmt.Errorf("create image %s: %w", id, err)
		}
		if err := atomicfile.WriteFile(filepath.Join(s.metaDir(id), parentFile), []byte(parent), 0o600); err != nil {
			return nil, fmt.Errorf("create image %s: %w", id, err)
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(s.contentDir(), strings.TrimPrefix(id, "sha256:")), rawConfig, 0o600); err != nil {
		return nil, fmt.Errorf("create image %s: %w", id, err)
	}
	if err := s.ids.Add(id); err != nil {
		return nil, err
	}
	s.images[id] = img
	return img.clone(), nil
}

// setParent records parent as the parent of the existing image id.
func (s *Store) setParent(id, parent string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.images[id]
	if img == nil || s.images[parent] == nil {
		return errdefs.NotFound(fmt.Errorf("No such image: %s", id))
	}
	if err := os.MkdirAll(s.metaDir(id), 0o700); err != nil {
		return fmt.Errorf("set parent of %s: %w", id, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.metaDir(id), parentFile), []byte(parent), 0o600); err != nil {
		return fmt.Errorf("set parent of %s: %w", id, err)
	}
	img.Parent = parent
	return nil
}

// Delete removes the image id (full ID, with or without "sha256:"): every
// reference to it, its config and metadata, its children's link to it, and
// then each of its layers that no other image uses, top first. It returns
// the chain IDs of the layers it removed. Checking that no container uses
// the image, and dockerd's rmi rules about tags and children, are the
// caller's job.
func (s *Store) Delete(id string) (deletedLayers []string, err error) {
	id = normalizeID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.images[id]
	if img == nil {
		return nil, errdefs.NotFound(fmt.Errorf("No such image: %s", id))
	}
	if refs := s.byID[id]; len(refs) > 0 {
		removed := make(map[string]reference.Named, len(refs))
		for str, n := range refs {
			removed[str] = n
			s.dropRef(n)
		}
		if err := s.saveRepos(); err != nil {
			for _, n := range removed {
				s.putRef(n, id)
			}
			return nil, err
		}
	}
	for _, child := range s.images {
		if child.Parent == id {
			if err := os.Remove(filepath.Join(s.metaDir(child.ID), parentFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("delete image %s: %w", id, err)
			}
			child.Parent = ""
		}
	}
	if err := os.Remove(filepath.Join(s.contentDir(), strings.TrimPrefix(id, "sha256:"))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("delete image %s: %w", id, err)
	}
	if err := atomicfile.SyncDir(s.contentDir()); err != nil {
		return nil, fmt.Errorf("delete image %s: %w", id, err)
	}
	delete(s.images, id)
	s.ids.Delete(id)
	if err := os.RemoveAll(s.metaDir(id)); err != nil {
		return nil, fmt.Errorf("delete image %s: %w", id, err)
	}

	// Layers are removed while the lock is held so that no Create can
	// start using one in between; a chain is in use when any image or any
	// load in progress has it.
	used := make(map[string]bool)
	for _, other := range s.images {
		for _, c := range other.ChainIDs {
			used[c] = true
		}
	}
	for c := range s.pending {
		used[c] = true
	}
	for i := len(img.ChainIDs) - 1; i >= 0; i-- {
		c := img.ChainIDs[i]
		if used[c] {
			continue
		}
		if err := s.layers.Remove(c); err != nil {
			return deletedLayers, fmt.Errorf("delete image %s: remove layer %s: %w", id, c, err)
		}
		delete(s.layerSize, c)
		deletedLayers = append(deletedLayers, c)
	}
	return deletedLayers, nil
}

// holdChains marks chains as in use by a load that has not created its
// image yet; release undoes it.
func (s *Store) holdChains(chains []string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chains {
		s.pending[c]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range chains {
			if s.pending[c]--; s.pending[c] <= 0 {
				delete(s.pending, c)
			}
		}
	}
}
