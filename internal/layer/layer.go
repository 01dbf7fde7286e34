// Package layer is skiffd's content-addressed store of image layers and the
// overlay mounts that turn a chain of them into a container's root file
// system.
//
// A layer is registered from its tar stream (plain, gzip or bzip2), unpacked
// on top of its parent and named by its chain ID. On disk, under the store's
// root (<data-root>/layers):
//
//	<hex of chain ID>/diff/       the unpacked layer, whiteouts in overlayfs form;
//	                              an overlay lowerdir as it is, never modified again
//	<hex of chain ID>/layer.json  {chainID, diffID, parent, size, tarSize}
//	<hex of chain ID>/tar-split   the tar stream less the file contents, to give
//	                              back the original bytes (see WriteTar)
//
// A layer is unpacked in a ".tmp-" directory, flushed to disk, and renamed
// into place only when complete, so a crash leaves either the whole layer or
// a temporary directory that Open removes. Unpacking does not depend on the
// parent, so it can happen before the parent is known: Stage unpacks and
// hashes, and Staged.Commit later gives the layer its chain (Register is
// the two in one).
//
//	s, err := layer.Open(filepath.Join(dataRoot, "layers"))
//	...
//	base, err := s.Register(ctx, blob, "", wantDiffID)
//	...
//	rootfs, err := s.MountRootfs(top.ChainID, containerDir)
package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
)

// Layer describes one registered layer.
type Layer struct {
	ChainID string `json:"chainID"` // "sha256:<hex>"
	DiffID  string `json:"diffID"`  // "sha256:<hex>" of the uncompressed tar
	Parent  string `json:"parent"`  // parent ChainID, "" for a base layer
	Size    int64  `json:"size"`    // bytes of content unpacked
	TarSize int64  `json:"tarSize"` // length of the uncompressed tar, what WriteTar writes
}

// Names inside a layer's directory.
const (
	diffDirName   = "diff"
	metaFileName  = "layer.json"
	splitFileName = "tar-split"
)

// ChainID returns the OCI chain ID of a layer with diff ID diffID on top of
// the chain parent: diffID itself for a base layer, otherwise
// "sha256:" + hex(sha256(parent + " " + diffID)).
func ChainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	sum := sha256.Sum256([]byte(parent + " " + diffID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// validDigest reports whether d is "sha256:" and 64 lower-case hex digits,
// the only form of IDs the store uses as directory names.
func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Store is the layer store. It is safe for concurrent use.
type Store struct {
	root string

	mu     sync.RWMutex
	layers map[string]Layer // by chain ID

	locks chainLocks

	// noSync skips the flushes that make a registration survive a power
	// cut; fuzzing sets it, since syncfs is slow and has nothing to prove
	// there.
	noSync bool
}

// Open opens (creating if needed) the store at root, removes what
// interrupted registrations and removals left behind, and loads the
// registered layers. A layer directory whose layer.json is unreadable is
// left alone and not listed.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open layer store: %w", err)
	}
	if err := atomicfile.RemoveTemps(root); err != nil {
		return nil, fmt.Errorf("open layer store: %w", err)
	}
	s := &Store{root: root, layers: make(map[string]Layer)}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("open layer store: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		l, err := readMeta(filepath.Join(root, e.Name(), metaFileName))
		if err != nil || l.ChainID != "sha256:"+e.Name() {
			continue
		}
		s.layers[l.ChainID] = l
	}
	return s, nil
}

func readMeta(p string) (Layer, error) {
	var l Layer
	b, err := os.ReadFile(p)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("read %s: %w", p, err)
	}
	if !validDigest(l.ChainID) || !validDigest(l.DiffID) || (l.Parent != "" && !validDigest(l.Parent)) {
		return l, fmt.Errorf("read %s: invalid layer record", p)
	}
	return l, nil
}

// dir is the directory of the layer chainID (a valid digest).
func (s *Store) dir(chainID string) string {
	return filepath.Join(s.root, strings.TrimPrefix(chainID, "sha256:"))
}

func notFound(chainID string) error {
	return errdefs.NotFound(fmt.Errorf("layer does not exist: %s", chainID))
}

// Get returns the layer chainID, or an errdefs.NotFound error.
func (s *Store) Get(chainID string) (Layer, error) {
	s.mu.RLock()
	l, ok := s.layers[chainID]
	s.mu.RUnlock()
	if !ok {
		return Layer{}, notFound(chainID)
	}
	return l, nil
}

// List returns every registered layer, ordered by chain ID.
func (s *Store) List() []Layer {
	s.mu.RLock()
	out := make([]Layer, 0, len(s.layers))
	for _, l := range s.layers {
		out = append(out, l)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Layer) int { return strings.Compare(a.ChainID, b.ChainID) })
	return out
}

// Remove deletes the layer chainID. The caller guarantees that no image or
// container uses it; a layer that is the parent of another registered
// layer is refused with an errdefs.Conflict error, since removing it would
// break every mount of the child. The directory is first renamed to a
// temporary name, so a crash midway leaves nothing that Open keeps.
func (s *Store) Remove(chainID string) error {
	if !validDigest(chainID) {
		return notFound(chainID)
	}
	defer s.locks.lock(chainID)()
	s.mu.Lock()
	removed, ok := s.layers[chainID]
	if !ok {
		s.mu.Unlock()
		return notFound(chainID)
	}
	for _, l := range s.layers {
		if l.Parent == chainID {
			s.mu.Unlock()
			return errdefs.Conflict(fmt.Errorf("layer %s is the parent of layer %s", chainID, l.ChainID))
		}
	}
	delete(s.layers, chainID)
	s.mu.Unlock()

	doomed, err := os.MkdirTemp(s.root, atomicfile.TempPrefix+"remove-")
	if err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	// Renaming onto the fresh empty directory replaces it atomically
	// (os.Rename refuses an existing directory as the target).
	if err := syscall.Rename(s.dir(chainID), doomed); err != nil {
		os.Remove(doomed)
		s.mu.Lock()
		s.layers[chainID] = removed
		s.mu.Unlock()
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	if !s.noSync {
		if err := atomicfile.SyncDir(s.root); err != nil {
			return fmt.Errorf("remove layer %s: %w", chainID, err)
		}
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	return nil
}

// DiffDirs returns the diff directories of the chain chainID, top layer
// first: the lowerdirs of an overlay mount of it, and what commit and
// GraphDriver data need.
func (s *Store) DiffDirs(chainID string) ([]string, error) {
	if !validDigest(chainID) {
		return nil, notFound(chainID)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var dirs []string
	for id := chainID; id != ""; {
		l, ok := s.layers[id]
		if !ok {
			if id == chainID {
				return nil, notFound(chainID)
			}
			return nil, fmt.Errorf("layer %s: parent %s is missing", chainID, id)
		}
		dirs = append(dirs, filepath.Join(s.dir(id), diffDirName))
		id = l.Parent
		if len(dirs) > len(s.layers) {
			return nil, fmt.Errorf("layer %s: parent chain loops", chainID)
		}
	}
	return dirs, nil
}

// chainLocks serialises registrations and removals of one chain ID, so
// that two loads of the same layer produce it once.
type chainLocks struct {
	mu sync.Mutex
	m  map[string]*chainLock
}

type chainLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks id and returns the function that unlocks it.
func (c *chainLocks) lock(id string) (unlock func()) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]*chainLock)
	}
	l := c.m[id]
	if l == nil {
		l = &chainLock{}
		c.m[id] = l
	}
	l.refs++
	c.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		c.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(c.m, id)
		}
		c.mu.Unlock()
	}
}

// errCorruptSplit reports tar-split data that cannot be replayed.
var errCorruptSplit = errors.New("corrupt tar-split data")
