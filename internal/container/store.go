package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// The files of a container's directory that hold its record. ConfigFile
// holds the whole record (config, host config and state) since issue 9: one
// file replaced by one rename, so that no crash can pair a new host config
// with an old config. HostConfigFile is the host config of the older
// two-file layout; Open still reads it, once, and rewrites such records in
// the one-file form.
const (
	ConfigFile     = "config.v2.json"
	HostConfigFile = "hostconfig.json"
)

// LoadError is a container directory Open could not load. Err wraps
// fs.ErrNotExist when the directory has no record at all: the leftover of a
// create or remove that a crash interrupted, which the engine may clean up
// once it has made sure nothing is mounted there.
type LoadError struct {
	Dir string
	Err error
}

func (e LoadError) Error() string { return fmt.Sprintf("load container %s: %v", e.Dir, e.Err) }
func (e LoadError) Unwrap() error { return e.Err }

// Store holds every container, indexed by ID, name and ID prefix, and
// persists records under root/<id>/. It is safe for concurrent use.
type Store struct {
	root string

	mu    sync.RWMutex
	byID  map[string]*Container
	names map[string]string // "/name" -> ID
	ids   *reference.IDIndex
	// views are read-only copies of each container as of its last Save
	// (or Add), for listing without container locks.
	views map[string]*Container
	// sorted is views newest first, made by the first list after a
	// change (with mu read-locked, so that no change can slip between
	// reading views and storing it) and dropped by every change (with mu
	// locked); nil when dropped.
	sorted atomic.Pointer[[]*Container]
	// pending holds the records Open read whose views are not decoded
	// yet: decoding twice would double the daemon's cold start, and most
	// starts list containers much later, if at all.
	pending map[string]pendingView

	loadErrors []LoadError

	// writeFile replaces a record file atomically and durably
	// (atomicfile.WriteFile); tests replace it to inject a crash between
	// writes.
	writeFile func(path string, data []byte, perm os.FileMode) error
}

// pendingView is a record as read from disk, for a view built on demand.
type pendingView struct {
	rec  []byte
	name string
}

// Open loads every container record under root (created if missing). It
// removes temporary files that interrupted writes left behind, and skips,
// reporting them in LoadErrors, directories without a readable record and
// records whose name clashes with one already loaded. A half-written record
// is never seen: records are only ever replaced by rename.
func Open(root string) (*Store, error) {
	return open(root, atomicfile.WriteFile)
}

// open is Open with the function that writes record files.
func open(root string, writeFile func(path string, data []byte, perm os.FileMode) error) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open container store: %w", err)
	}
	if err := atomicfile.RemoveTemps(root); err != nil {
		return nil, fmt.Errorf("open container store: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("open container store: %w", err)
	}
	s := &Store{
		root:    root,
		byID:    map[string]*Container{},
		names:   map[string]string{},
		ids:     &reference.IDIndex{},
		views:   map[string]*Container{},
		pending: map[string]pendingView{},

		writeFile: writeFile,
	}

	// Reading and decoding are independent per container; do them in
	// parallel so that a daemon with hundreds of containers still answers
	// its first /_ping quickly. Registration is sequential and in ID order
	// so that name clashes resolve the same way on every start.
	type loaded struct {
		c   *Container
		err error
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && isID(e.Name()) {
			dirs = append(dirs, e.Name())
		}
	}
	results := make([]loaded, len(dirs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range dirs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := s.load(id)
			results[i] = loaded{c, err}
		}()
	}
	wg.Wait()

	for i, r := range results {
		dir := filepath.Join(root, dirs[i])
		if r.err != nil {
			s.loadErrors = append(s.loadErrors, LoadError{Dir: dir, Err: r.err})
			continue
		}
		c := r.c
		if c.Name != "" && c.Name[0] != '/' {
			c.Name = "/" + c.Name
		}
		if c.Name == "" {
			name, err := s.generateName(c.ID)
			if err != nil {
				s.loadErrors = append(s.loadErrors, LoadError{Dir: dir, Err: err})
				continue
			}
			c.Name = name
		}
		if owner, taken := s.names[c.Name]; taken {
			s.loadErrors = append(s.loadErrors, LoadError{Dir: dir, Err: nameConflict(c.Name, owner)})
			continue
		}
		s.register(c, nil)
		s.pending[c.ID] = pendingView{rec: c.saved, name: c.Name}
	}
	return s, nil
}

// load reads and decodes the record in root/<id>. A record of the older
// two-file layout (its config file holds no host config) is completed
// from HostConfigFile and rewritten in the one-file form, the new file
// first: a crash in between leaves a whole new record next to a stale
// host config file that the next load ignores. If the rewrite fails (a
// full disk), the container loads all the same and its next Save
// finishes the migration.
func (s *Store) load(id string) (*Container, error) {
	dir := s.Dir(id)
	if err := atomicfile.RemoveTemps(dir); err != nil {
		return nil, err
	}
	rec, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	c, err := decodeRecord(rec)
	if err != nil {
		return nil, err
	}
	if c.ID != id {
		return nil, fmt.Errorf("record holds ID %q", c.ID)
	}
	c.saved = rec
	if c.HostConfig != nil {
		// The one-file form: a host config file beside it is the
		// leftover of a migration cut short.
		if err := os.Remove(filepath.Join(dir, HostConfigFile)); err == nil {
			atomicfile.SyncDir(dir)
		}
		return c, nil
	}
	hc, err := os.ReadFile(filepath.Join(dir, HostConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if len(hc) > 0 {
		if err := json.Unmarshal(hc, &c.HostConfig); err != nil {
			return nil, fmt.Errorf("decode %s: %w", HostConfigFile, err)
		}
	}
	if c.saved, err = encodeRecord(c); err != nil {
		return nil, err
	}
	c.legacy = true
	s.migrate(c) // on failure, the next Save tries again
	return c, nil
}

// migrate replaces c's two-file record with the one-file form: the new
// record first, then the host config file goes. It clears c.legacy once
// done.
func (s *Store) migrate(c *Container) error {
	dir := s.Dir(c.ID)
	if err := s.writeFile(filepath.Join(dir, ConfigFile), c.saved, 0o600); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, HostConfigFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	c.legacy = false
	return nil
}

// decodeRecord builds a Container from its record.
func decodeRecord(rec []byte) (*Container, error) {
	c := &Container{}
	if err := json.Unmarshal(rec, c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ConfigFile, err)
	}
	if c.State == nil {
		c.State = &State{}
	}
	return c, nil
}

// encodeRecord returns the record of c.
func encodeRecord(c *Container) ([]byte, error) {
	rec, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode container %s: %w", c.ID, err)
	}
	return rec, nil
}

// snapshot returns a deep copy of c from its encoded record, with the
// in-memory-only state that listing needs.
func snapshot(c *Container, rec []byte) (*Container, error) {
	v, err := decodeRecord(rec)
	if err != nil {
		return nil, err
	}
	v.State.RemovalInProgress = c.State.RemovalInProgress
	v.State.removed = c.State.removed
	v.listing = &listing{}
	return v, nil
}

// LoadErrors returns the directories Open skipped and why.
func (s *Store) LoadErrors() []LoadError {
	return slices.Clone(s.loadErrors)
}

// Dir returns the directory of container id's record, where the engine may
// also keep the container's other files (logs, hostname, hosts).
func (s *Store) Dir(id string) string {
	return filepath.Join(s.root, id)
}

// register indexes c, with its view unless that is nil (pending); s.mu
// must be held (or s not yet shared).
func (s *Store) register(c *Container, view *Container) {
	s.byID[c.ID] = c
	s.names[c.Name] = c.ID
	s.ids.Add(c.ID) // cannot fail: callers checked isID
	if view != nil {
		s.views[c.ID] = view
		s.sorted.Store(nil)
	}
}

// decodePending builds the views Open left pending.
func (s *Store) decodePending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.pending {
		v, err := decodeRecord(p.rec)
		if err != nil {
			continue // cannot happen: the same bytes decoded at Open
		}
		v.Name = p.name
		v.listing = &listing{}
		s.views[id] = v
		s.sorted.Store(nil)
		delete(s.pending, id)
	}
}

func nameConflict(name, id string) error {
	return errdefs.Conflict(fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, id))
}

// Add registers a new container in memory (Save persists it). An empty Name
// gets a generated one; otherwise the name must be valid (400) and free
// (409, dockerd's "Conflict. The container name ..." text). c.Name is set
// to the canonical "/name". c must not be shared yet.
func (s *Store) Add(c *Container) error {
	if !isID(c.ID) {
		return errdefs.InvalidParameter(fmt.Errorf("invalid container ID %q", c.ID))
	}
	if c.State == nil {
		c.State = &State{}
	}
	name := c.Name
	if name != "" {
		if err := ValidateName(name); err != nil {
			return err
		}
		if name[0] != '/' {
			name = "/" + name
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byID[c.ID]; dup {
		return errdefs.Conflict(fmt.Errorf("container ID %s is already in use", c.ID))
	}
	if name == "" {
		var err error
		if name, err = s.generateName(c.ID); err != nil {
			return err
		}
	} else if owner, taken := s.names[name]; taken {
		return nameConflict(name, owner)
	}
	c.Name = name
	rec, err := encodeRecord(c)
	if err != nil {
		return err
	}
	view, err := snapshot(c, rec)
	if err != nil {
		return err
	}
	s.register(c, view)
	return nil
}

// Get finds a container by full ID, by name (with or without the leading
// slash), or by an ID prefix that names exactly one container, in that
// order, as dockerd does. Errors: an empty reference is 400 `invalid name
// or ID supplied: ""`; an ambiguous prefix is 400 "multiple IDs found with
// provided prefix: x"; anything else is 404 "No such container: x".
func (s *Store) Get(ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid name or ID supplied: %q", ref))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if name[0] != '/' {
		name = "/" + name
	}
	if id, ok := s.names[name]; ok {
		return s.byID[id], nil
	}
	if !strings.Contains(ref, ":") {
		id, err := s.ids.Get(ref)
		if err == nil {
			return s.byID[id], nil
		}
		if errors.Is(err, reference.ErrAmbiguousID) {
			return nil, err
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
}

// rlockDecoded read-locks the store once the records loaded at start that
// are still undecoded (pending) have been decoded.
func (s *Store) rlockDecoded() {
	s.mu.RLock()
	if len(s.pending) > 0 {
		s.mu.RUnlock()
		s.decodePending()
		s.mu.RLock()
	}
}

// View returns the read-only copy of container id as of its last Save (or
// Add), or nil when there is none. Like Snapshots' copies it is shared:
// callers must not modify or lock it. It lets a goroutine holding one
// container's lock read another container (or the same one) without
// taking that container's lock.
func (s *Store) View(id string) *Container {
	s.rlockDecoded()
	defer s.mu.RUnlock()
	return s.views[id]
}

// List returns the live containers, newest first.
func (s *Store) List() []*Container {
	s.mu.RLock()
	list := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		list = append(list, c)
	}
	s.mu.RUnlock()
	sortNewestFirst(list)
	return list
}

// Snapshots returns read-only copies of every container as of its last Save
// (or Add), newest first. They are shared: callers must not modify them,
// and must not lock them (their locks guard nothing).
func (s *Store) Snapshots() []*Container {
	s.rlockDecoded()
	list := make([]*Container, 0, len(s.views))
	for _, v := range s.views {
		list = append(list, v)
	}
	s.mu.RUnlock()
	sortNewestFirst(list)
	return list
}

// SortedSnapshots is Snapshots without a copy: the slice is shared with
// every caller until the next change, which makes a new one; callers must
// modify neither it nor its containers. Listing, the request clients poll
// most, sorts the containers once per change instead of once per request
// (issue 13, list rate).
func (s *Store) SortedSnapshots() []*Container {
	if p := s.sorted.Load(); p != nil {
		return *p
	}
	s.rlockDecoded()
	defer s.mu.RUnlock()
	if p := s.sorted.Load(); p != nil {
		return *p
	}
	list := make([]*Container, 0, len(s.views))
	for _, v := range s.views {
		list = append(list, v)
	}
	sortNewestFirst(list)
	s.sorted.Store(&list)
	return list
}

// Len returns the number of containers.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

func sortNewestFirst(list []*Container) { slices.SortFunc(list, newestFirst) }

// newestFirst orders containers newest first, then by ID.
func newestFirst(a, b *Container) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func (s *Store) live(c *Container) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[c.ID] == c
}

// Save writes c's record atomically and durably, as one file (write temp,
// fsync, rename, fsync dir), and refreshes the copy that listing sees. The
// first save of a container also fsyncs the store's directory, so that the
// new container's directory survives a crash along with its record. A
// record whose content did not change is not rewritten. The caller must
// hold c's lock. Saving a container that is not in the store (deleted
// meanwhile) is an error and writes nothing, so that a late save cannot
// resurrect a removed container on the next start. A write that fails (a
// full disk, a read-only file system) is a system error (500) naming the
// container and the cause; the record on disk is then the previous one,
// whole, and c is left as the caller set it.
func (s *Store) Save(c *Container) error {
	if !s.live(c) {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID))
	}
	rec, err := encodeRecord(c)
	if err != nil {
		return err
	}
	dir := s.Dir(c.ID)
	if c.saved == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return errdefs.System(fmt.Errorf("save container %s: %w", c.ID, err))
		}
		if err := atomicfile.SyncDir(s.root); err != nil {
			return errdefs.System(fmt.Errorf("save container %s: %w", c.ID, err))
		}
	}
	if c.legacy || !bytes.Equal(rec, c.saved) {
		old := c.saved
		c.saved = rec
		if c.legacy {
			err = s.migrate(c)
		} else {
			err = s.writeFile(filepath.Join(dir, ConfigFile), rec, 0o600)
		}
		if err != nil {
			c.saved = old
			return errdefs.System(fmt.Errorf("save container %s: %w", c.ID, err))
		}
		c.recordRemoved = false
	}
	view, err := snapshot(c, rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.byID[c.ID] == c {
		s.views[c.ID] = view
		s.sorted.Store(nil)
		delete(s.pending, c.ID)
	}
	s.mu.Unlock()
	return nil
}

// RemoveRecord is Delete's durable step alone: c's record file is removed
// and its removal fsynced, so the container does not come back after a
// crash; c stays in the store, its directory on disk, until Delete. Save
// writes the record again until then. The caller must hold c's lock, and
// may do what Delete needs done first (unmounting under Dir(c.ID)) while
// the fsync runs, as long as it does not touch c.
func (s *Store) RemoveRecord(c *Container) error {
	if !s.live(c) {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID))
	}
	dir := s.Dir(c.ID)
	if err := os.Remove(filepath.Join(dir, ConfigFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	c.saved = nil
	if _, err := os.Stat(dir); err == nil {
		if err := atomicfile.SyncDir(dir); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID, err)
		}
	}
	c.recordRemoved = true
	return nil
}

// Delete removes c's record and directory from disk, then from the store,
// and wakes its waiters (State.SetRemoved). The record file goes first, so
// a crash half way leaves a directory Open reports instead of a container
// that comes back. On error the container stays registered. The caller
// must hold c's lock and must have unmounted everything under Dir(c.ID):
// the directory is removed recursively.
//
// The removal is durable once the record's unlink is (the fsync of the
// container's directory): the rest of the directory is removed but its
// removal not fsync'ed, since a directory a power loss brings back has no
// record, and the next daemon removes such directories at start.
func (s *Store) Delete(c *Container) error {
	if !c.recordRemoved {
		if err := s.RemoveRecord(c); err != nil {
			return err
		}
	}
	if !s.live(c) {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID))
	}
	if err := s.removeDir(c.ID); err != nil {
		return err
	}
	s.forget(c)
	return nil
}

// DeleteKeepingDir is Delete but for the removal of c's directory, which
// it returns for the caller to run later (once a client has its answer):
// c is gone from the store and its waiters are woken as soon as its
// record's removal is durable. A directory without a record that a crash
// leaves is removed by the next daemon.
func (s *Store) DeleteKeepingDir(c *Container) (removeDir func() error, err error) {
	if !c.recordRemoved {
		if err := s.RemoveRecord(c); err != nil {
			return nil, err
		}
	}
	if !s.live(c) {
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID))
	}
	s.forget(c)
	id := c.ID
	return func() error { return s.removeDir(id) }, nil
}

func (s *Store) removeDir(id string) error {
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("unable to remove filesystem for %s: %w", id, err)
	}
	return nil
}

// forget drops c from the store and wakes its waiters.
func (s *Store) forget(c *Container) {
	s.mu.Lock()
	delete(s.byID, c.ID)
	delete(s.views, c.ID)
	s.sorted.Store(nil)
	delete(s.pending, c.ID)
	if s.names[c.Name] == c.ID {
		delete(s.names, c.Name)
	}
	s.ids.Delete(c.ID)
	s.mu.Unlock()
	c.State.SetRemoved()
}

// Rename gives c a new name, with dockerd's checks and wording: an empty
// name or c's current name is 400, an invalid or taken name is 400 or 409
// prefixed "Error when allocating new name: ". The new name is saved
// before the old one is released, so a failed save changes nothing. The
// caller must hold c's lock.
func (s *Store) Rename(c *Container, newName string) error {
	if newName == "" {
		return errdefs.InvalidParameter(errors.New("Neither old nor new names may be empty"))
	}
	if newName[0] != '/' {
		newName = "/" + newName
	}
	if newName == c.Name {
		return errdefs.InvalidParameter(errors.New("Renaming a container with the same name as its current name"))
	}
	if err := ValidateName(newName); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("Error when allocating new name: %w", err))
	}

	s.mu.Lock()
	if s.byID[c.ID] != c {
		s.mu.Unlock()
		return errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID))
	}
	if owner, taken := s.names[newName]; taken {
		s.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("Error when allocating new name: %w", nameConflict(newName, owner)))
	}
	s.names[newName] = c.ID
	s.mu.Unlock()

	oldName := c.Name
	c.Name = newName
	if err := s.Save(c); err != nil {
		c.Name = oldName
		s.mu.Lock()
		delete(s.names, newName)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	if s.names[oldName] == c.ID {
		delete(s.names, oldName)
	}
	s.mu.Unlock()
	return nil
}

// GenerateName returns a free adjective_surname name ("/brisk_noether") for
// container id, without reserving it; Add with an empty Name generates and
// reserves in one step, which concurrent creates need.
func (s *Store) GenerateName(id string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.generateName(id)
}

// generateName follows dockerd: a plain name first, then up to five more
// tries with a digit appended, then the short ID. s.mu must be held.
func (s *Store) generateName(id string) (string, error) {
	for i := range 6 {
		name := "/" + randomName(i > 0)
		if _, taken := s.names[name]; !taken {
			return name, nil
		}
	}
	for _, name := range []string{"/" + id[:min(12, len(id))], "/" + id} {
		if _, taken := s.names[name]; !taken {
			return name, nil
		}
	}
	return "", errdefs.Conflict(fmt.Errorf("no free name for container %s", id))
}
