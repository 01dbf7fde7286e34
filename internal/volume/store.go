// Package volume is skiffd's local volume driver and the parser of mount
// specifications (-v, --mount, --tmpfs).
//
// A Store keeps volumes under <data-root>/volumes, one directory each:
//
//	volumes/<name>/volume.json   name, driver, labels, options, creation time
//	volumes/<name>/_data         the content containers see
//
// A volume is created in a temporary directory and renamed into place, so a
// crash leaves either no volume or a complete one. Volumes created with the
// driver options type/device/o (tmpfs, bind, a block device) are mounted on
// _data while at least one container uses them, as dockerd's local driver
// does:
//
//	s, err := volume.Open(filepath.Join(dataRoot, "volumes"), volume.Options{})
//	v, created, err := s.Create("data", "", nil, map[string]string{"app": "web"})
//	s.Acquire(v.Name, containerID)          // on container create
//	host, err := s.Mount(v.Name, containerID) // on container start
//	err = s.PopulateFrom(ctx, v.Name, rootfs, "/srv") // first use copies image content
//	s.Unmount(v.Name, containerID)          // on container stop
//	s.Release(v.Name, containerID)          // on container removal
//
// Who uses a volume has two sources. Options.InUse answers from the
// caller's durable records (skiffd's engine reads its containers'
// MountPoints, so a restart loses nothing); Acquire/Release hold a volume
// in memory for the moments before such a record exists, so that a prune
// cannot take a volume a container is being created with.
package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

const (
	dataDirName  = "_data"
	metaFileName = "volume.json"
)

// Volume is a volume's metadata.
type Volume struct {
	Name       string
	Driver     string
	Labels     map[string]string
	Options    map[string]string
	CreatedAt  time.Time
	Mountpoint string // <root>/<name>/_data
}

// Anonymous reports whether the volume was created without a name.
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// NeedsMount reports whether the volume's content comes from a mount
// (driver options type or device) rather than the plain _data directory.
func (v Volume) NeedsMount() bool {
	return v.Options["type"] != "" || v.Options["device"] != ""
}

// API returns the volume as the API shows it. CreatedAt is in the daemon's
// local time zone with second precision, as dockerd formats it.
func (v Volume) API() *types.Volume {
	return &types.Volume{
		CreatedAt:  v.CreatedAt.Local().Format(time.RFC3339),
		Driver:     v.Driver,
		Labels:     maps.Clone(v.Labels),
		Mountpoint: v.Mountpoint,
		Name:       v.Name,
		Options:    maps.Clone(v.Options),
		Scope:      LocalScope,
	}
}

// meta is the on-disk form of a Volume (volume.json).
type meta struct {
	Name      string            `json:"Name"`
	Driver    string            `json:"Driver"`
	Labels    map[string]string `json:"Labels,omitempty"`
	Options   map[string]string `json:"Options,omitempty"`
	CreatedAt time.Time         `json:"CreatedAt"`
}

// Options configures a Store.
type Options struct {
	// InUse, if set, names the containers using a volume in addition to
	// those recorded with Acquire.
	InUse func(name string) []string
	// Logger receives warnings about volumes that could not be loaded.
	Logger *slog.Logger
}

// Store is the local volume driver. It is safe for concurrent use.
type Store struct {
	root    string
	inUse   func(string) []string
	logger  *slog.Logger
	pruning atomic.Bool

	mu   sync.Mutex
	vols map[string]*entry
}

// entry is a volume and its run-time state.
type entry struct {
	Volume
	refs    map[string]struct{} // containers that use the volume
	mounts  int                 // Mount calls not yet matched by Unmount
	mounted bool                // the options-backed mount is in place
	// populate serialises PopulateFrom: two containers starting on the
	// same new volume must not both copy into it.
	populate sync.Mutex
}

// Open opens (creating it if needed) the volume store at root, usually
// <data-root>/volumes. Leftovers of interrupted creations are removed; a
// volume directory without readable metadata (one made by hand, or by an
// older layout) is kept and shown with its directory's times.
func Open(root string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// 0701 like dockerd: containers' users may traverse to _data, nobody
	// may list the volume names.
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("create volumes root: %w", err)
	}
	if err := atomicfile.RemoveTemps(root); err != nil {
		return nil, err
	}
	s := &Store{root: root, inUse: opts.InUse, logger: opts.Logger, vols: map[string]*entry{}}
	dirs, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read volumes root: %w", err)
	}
	mounted, err := mountPoints()
	if err != nil {
		s.logger.Warn("cannot read the mount table; option-backed volumes are treated as unmounted", "error", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || !validName(d.Name()) {
			continue
		}
		v, err := s.load(d.Name())
		if err != nil {
			s.logger.Warn("skipping unreadable volume", "volume", d.Name(), "error", err)
			continue
		}
		e := &entry{Volume: v, refs: map[string]struct{}{}}
		// A daemon that stopped with containers running leaves their
		// option-backed volumes mounted; remember that so the last
		// Unmount after a restart still unmounts.
		e.mounted = v.NeedsMount() && mounted[v.Mountpoint]
		s.vols[v.Name] = e
	}
	return s, nil
}

func (s *Store) load(name string) (Volume, error) {
	dir := filepath.Join(s.root, name)
	v := Volume{Name: name, Driver: DefaultDriver, Mountpoint: filepath.Join(dir, dataDirName)}
	b, err := os.ReadFile(filepath.Join(dir, metaFileName))
	if errors.Is(err, fs.ErrNotExist) {
		fi, err := os.Stat(dir)
		if err != nil {
			return Volume{}, err
		}
		v.CreatedAt = fi.ModTime()
		return v, nil
	}
	if err != nil {
		return Volume{}, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Volume{}, fmt.Errorf("decode %s: %w", metaFileName, err)
	}
	if m.Name != name {
		return Volume{}, fmt.Errorf("metadata names volume %q", m.Name)
	}
	v.Labels, v.Options, v.CreatedAt = m.Labels, m.Options, m.CreatedAt
	if m.Driver != "" {
		v.Driver = m.Driver
	}
	return v, nil
}

// Root returns the directory holding the volumes.
func (s *Store) Root() string { return s.root }

// opError words an error as dockerd's volume store does: "<op> <name>: <err>",
// keeping err's kind.
func opError(op, name string, err error) error {
	return fmt.Errorf("%s %s: %w", op, name, err)
}

func noSuchVolume(name string) error {
	return opError("get", name, errdefs.NotFound(errors.New("no such volume")))
}

// Create creates a volume, or returns the existing one of that name with
// created=false (its labels and options are not changed, as in dockerd). An
// empty name creates an anonymous volume: a random name and AnonymousLabel.
// driver may be "" or "local".
func (s *Store) Create(name, driver string, opts, labels map[string]string) (v Volume, created bool, err error) {
	if name == "" {
		name = NewAnonymousName()
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	if driver != "" && driver != DefaultDriver {
		return Volume{}, false, opError("create", name, errdefs.NotFound(fmt.Errorf("error looking up volume plugin %s: plugin %q not found", driver, driver)))
	}
	if err := ValidateName(name); err != nil {
		return Volume{}, false, opError("create", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		return e.Volume, false, nil
	}
	if err := validateOptions(opts); err != nil {
		return Volume{}, false, opError("create", name, err)
	}
	if len(labels) == 0 {
		labels = nil
	}
	if len(opts) == 0 {
		opts = nil
	}
	v = Volume{
		Name:       name,
		Driver:     DefaultDriver,
		Labels:     maps.Clone(labels),
		Options:    maps.Clone(opts),
		CreatedAt:  time.Now().UTC().Truncate(time.Second),
		Mountpoint: filepath.Join(s.root, name, dataDirName),
	}
	if err := s.write(v); err != nil {
		return Volume{}, false, opError("create", name, errdefs.System(err))
	}
	s.vols[name] = &entry{Volume: v, refs: map[string]struct{}{}}
	return v, true, nil
}

// write creates the volume's directory complete in a temporary place and
// renames it into the root.
func (s *Store) write(v Volume) error {
	tmp, err := os.MkdirTemp(s.root, atomicfile.TempPrefix+v.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o701); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, dataDirName), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(meta{Name: v.Name, Driver: v.Driver, Labels: v.Labels, Options: v.Options, CreatedAt: v.CreatedAt})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, metaFileName), b, 0o600); err != nil {
		return err
	}
	final := filepath.Join(s.root, v.Name)
	if err := os.Rename(tmp, final); err != nil {
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			return fmt.Errorf("volume already exists under %s", final)
		}
		return err
	}
	return atomicfile.SyncDir(s.root)
}

// Get returns the named volume, or NotFound "get <name>: no such volume".
func (s *Store) Get(name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return Volume{}, noSuchVolume(name)
	}
	return e.Volume, nil
}

// Acquire records that container ref uses the volume, which protects it
// from Remove and Prune.
func (s *Store) Acquire(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return noSuchVolume(name)
	}
	e.refs[ref] = struct{}{}
	return nil
}

// Release forgets that ref uses the volume. Releasing an unknown volume or
// reference is not an error: removal paths release unconditionally.
func (s *Store) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		delete(e.refs, ref)
	}
}

// Users returns the sorted IDs of the containers using the volume.
func (s *Store) Users(name string) []string {
	s.mu.Lock()
	e, ok := s.vols[name]
	var refs []string
	if ok {
		refs = slices.Collect(maps.Keys(e.refs))
	}
	s.mu.Unlock()
	return s.withExternalUsers(name, refs)
}

func (s *Store) withExternalUsers(name string, refs []string) []string {
	if s.inUse != nil {
		refs = append(refs, s.inUse(name)...)
	}
	slices.Sort(refs)
	return slices.Compact(refs)
}

// Remove deletes a volume and its content. A volume that containers use is
// a Conflict "remove <name>: volume is in use - [<ids>]", whatever force
// says: force only makes a missing volume a success and drops the record
// even when its data could not be deleted, as dockerd's purge-on-error.
//
// The volume's directory is first renamed out of the way under the store's
// lock, then deleted without holding it: a large volume does not stall
// every other volume operation, and a crash half-way leaves a temporary
// directory that the next Open removes, never a half-deleted volume.
func (s *Store) Remove(name string, force bool) error {
	s.mu.Lock()
	e, ok := s.vols[name]
	if !ok {
		s.mu.Unlock()
		if force {
			return nil
		}
		return noSuchVolume(name)
	}
	if users := s.withExternalUsers(name, slices.Collect(maps.Keys(e.refs))); len(users) > 0 {
		s.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", ")))
	}
	trash, err := s.detachLocked(e)
	if err != nil && !force {
		s.mu.Unlock()
		return opError("remove", name, err)
	}
	delete(s.vols, name)
	s.mu.Unlock()
	if err := s.purge(trash); err != nil && !force {
		return opError("remove", name, err)
	}
	return nil
}

// detachLocked unmounts a volume and renames its directory to a temporary
// name, which it returns for purge. It refuses while anything is still
// mounted below the volume: deleting through a bind mount would delete the
// host's files. The caller holds s.mu.
func (s *Store) detachLocked(e *entry) (string, error) {
	if e.mounts > 0 {
		return "", errdefs.System(errors.New("volume has active mounts"))
	}
	if e.NeedsMount() {
		if err := unmount(e.Mountpoint); err != nil {
			return "", errdefs.System(err)
		}
		e.mounted = false
	}
	dir := filepath.Join(s.root, e.Name)
	if err := checkNoMounts(dir); err != nil {
		return "", err
	}
	trash := filepath.Join(s.root, atomicfile.TempPrefix+"rm-"+e.Name+"-"+NewAnonymousName()[:12])
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", errdefs.System(fmt.Errorf("error removing volume path '%s': %w", dir, err))
	}
	if err := atomicfile.SyncDir(s.root); err != nil {
		return "", errdefs.System(err)
	}
	return trash, nil
}

// purge deletes a detached volume directory ("" is nothing to do).
func (s *Store) purge(trash string) error {
	if trash == "" {
		return nil
	}
	if err := checkNoMounts(trash); err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return errdefs.System(fmt.Errorf("error removing volume path '%s': %w", trash, err))
	}
	return nil
}

func checkNoMounts(dir string) error {
	busy, err := hasMountsBelow(dir)
	if err == nil && busy {
		err = fmt.Errorf("%s still has mounts below it", dir)
	}
	if err != nil {
		return errdefs.System(fmt.Errorf("error removing volume path '%s': %w", dir, err))
	}
	return nil
}

var acceptedListFilters = map[string]bool{"dangling": true, "name": true, "driver": true, "label": true}

// List returns the volumes that match ef (dangling, name, driver, label),
// sorted by name.
func (s *Store) List(ef filters.Args) ([]Volume, error) {
	if err := ef.Validate(acceptedListFilters); err != nil {
		return nil, err
	}
	filterDangling := ef.Contains("dangling")
	dangling, err := ef.GetBoolOrDefault("dangling", false)
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, e := range s.snapshot() {
		if !ef.ExactMatch("driver", e.Driver) || !ef.Match("name", e.Name) || !ef.MatchKVList("label", e.Labels) {
			continue
		}
		if filterDangling && (len(e.users) == 0) != dangling {
			continue
		}
		out = append(out, e.Volume)
	}
	return out, nil
}

// listed is a volume and its users at the time of a snapshot.
type listed struct {
	Volume
	users []string
}

func (s *Store) snapshot() []listed {
	s.mu.Lock()
	list := make([]listed, 0, len(s.vols))
	for _, e := range s.vols {
		list = append(list, listed{Volume: e.Volume, users: slices.Collect(maps.Keys(e.refs))})
	}
	s.mu.Unlock()
	for i := range list {
		list[i].users = s.withExternalUsers(list[i].Name, list[i].users)
	}
	slices.SortFunc(list, func(a, b listed) int { return strings.Compare(a.Name, b.Name) })
	return list
}

// PruneReport is what Prune removed.
type PruneReport struct {
	Deleted   []string
	Reclaimed uint64
}

var acceptedPruneFilters = map[string]bool{"label": true, "label!": true, "all": true}

// Prune removes unused local volumes without driver options that match ef.
// Without the filter all=true only anonymous volumes are candidates (API
// 1.42 behaviour; the handler adds all=true for older clients). One prune
// runs at a time; a second is a Conflict, as in dockerd.
func (s *Store) Prune(ctx context.Context, ef filters.Args) (PruneReport, error) {
	if !s.pruning.CompareAndSwap(false, true) {
		return PruneReport{}, errdefs.Conflict(errors.New("a prune operation is already running"))
	}
	defer s.pruning.Store(false)
	if err := ef.Validate(acceptedPruneFilters); err != nil {
		return PruneReport{}, err
	}
	ef = ef.Clone()
	all := ef.Get("all")
	switch {
	case len(all) > 1:
		return PruneReport{}, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'all=%s': only one value is expected", all))
	case len(all) == 1:
		ok, err := strconv.ParseBool(all[0])
		if err != nil {
			return PruneReport{}, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'all': %w", err))
		}
		if !ok {
			ef.Add("label", AnonymousLabel)
		}
	default:
		ef.Add("label", AnonymousLabel)
	}
	rep := PruneReport{Deleted: []string{}}
	for _, v := range s.snapshot() {
		if ctx.Err() != nil {
			break
		}
		if v.Driver != DefaultDriver || len(v.users) > 0 || len(v.Options) > 0 {
			continue
		}
		if !ef.MatchKVList("label", v.Labels) || (ef.Contains("label!") && ef.MatchKVList("label!", v.Labels)) {
			continue
		}
		size, err := DirSize(ctx, v.Mountpoint)
		if err != nil {
			s.logger.Warn("could not determine size of volume", "volume", v.Name, "error", err)
		}
		if err := s.removeIfUnused(v.Name); err != nil {
			s.logger.Warn("could not remove volume", "volume", v.Name, "error", err)
			continue
		}
		rep.Deleted = append(rep.Deleted, v.Name)
		rep.Reclaimed += uint64(max(size, 0))
	}
	return rep, nil
}

// removeIfUnused removes a prune candidate unless a container started using
// it since the snapshot.
func (s *Store) removeIfUnused(name string) error {
	s.mu.Lock()
	e, ok := s.vols[name]
	if !ok {
		s.mu.Unlock()
		return noSuchVolume(name)
	}
	if users := s.withExternalUsers(name, slices.Collect(maps.Keys(e.refs))); len(users) > 0 {
		s.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", ")))
	}
	trash, err := s.detachLocked(e)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	delete(s.vols, name)
	s.mu.Unlock()
	return s.purge(trash)
}

// Usage returns the bytes a volume's content occupies (files counted once
// per inode, directories not counted), the Size of system df -v.
func (s *Store) Usage(ctx context.Context, name string) (int64, error) {
	v, err := s.Get(name)
	if err != nil {
		return 0, err
	}
	return DirSize(ctx, v.Mountpoint)
}

// DirSize sums the sizes of the non-directory entries below dir, each inode
// once, without following symbolic links: dockerd's measure of a volume and
// of a container's writable layer.
func DirSize(ctx context.Context, dir string) (int64, error) {
	seen := map[uint64]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if fi.Size() == 0 {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		size += fi.Size()
		return nil
	})
	return size, err
}
