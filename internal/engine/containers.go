package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
	"skiffd/internal/runtime/features"
	"skiffd/internal/runtime/shimclient"
	"skiffd/internal/volume"
)

// ctrState is what the engine keeps in memory about one container besides
// its record: the handle on its shim while it has one, the attaches that
// wait for it to start, and the restart policy's bookkeeping.
type ctrState struct {
	mu sync.Mutex
	// rc is the runtime container of the current run, nil when no shim
	// exists.
	rc *shimclient.Container
	// pending are attaches opened before the start they wait for.
	pending []*pendingAttach
	// stopping is set by stop, kill (with the stop signal or SIGKILL),
	// restart and rm: the next exit is not one the restart policy acts on.
	stopping bool
	// monitorDone is closed when the monitor of the current run has
	// recorded its exit (and removed the container, with AutoRemove).
	monitorDone chan struct{}
	// restartTimer is the pending policy restart, nil when none.
	restartTimer *time.Timer
	// restartCancel is closed to cancel the pending policy restart.
	restartCancel chan struct{}
	// backoff is the restart manager's current delay.
	backoff time.Duration
	// policyCount counts the policy restarts since the last manual start.
	policyCount int
	// unmountVolumes releases the volume mounts of the current run.
	unmountVolumes func()
	// saveRetrying is set while retrySave retries a failed save of the
	// record.
	saveRetrying bool
	// runtimeDeleted is set when the monitor deleted the last run's
	// runtime state (shim, directory, cgroups) and no run began since:
	// removal has nothing left to look for there.
	runtimeDeleted bool
	// runtimeDeleting, while not nil, is closed once the exit handler of an
	// AutoRemove container has deleted the last run's runtime state, which
	// it does in the background; a new run waits for it (startLocked).
	runtimeDeleting chan struct{}
	// afterSave runs once the retried save succeeds (or the container is
	// removed): work that must wait until the record is durable, such as
	// deleting the shim's state file that holds an exit the record lacks.
	afterSave []func()
}

// pendingAttach is an attach waiting for the container's shim.
type pendingAttach struct {
	opts shimclient.AttachOptions
	// ready delivers the stream, or the error that ended the wait.
	ready chan attachResult
}

type attachResult struct {
	st  *shimclient.Stream
	err error
}

// containerStore opens the container store and the runtime; New calls it.
func (e *Engine) openContainers() error {
	store, err := container.Open(filepath.Join(e.opts.DataRoot, "containers"))
	if err != nil {
		return err
	}
	for _, le := range store.LoadErrors() {
		if errors.Is(le.Err, fs.ErrNotExist) {
			// A create or remove cut short by a crash: no record, so no
			// container; its root file system may still be mounted.
			if err := unmountContainerFS(le.Dir); err == nil {
				if err := os.RemoveAll(le.Dir); err == nil {
					e.logger.Info("removed the directory of an unfinished container", "dir", le.Dir)
					continue
				}
			}
		}
		e.logger.Warn("skipping container directory", "dir", le.Dir, "error", le.Err)
	}
	// Refuse to run containers weaker than designed: a kernel without
	// openat2, pidfd setns, seccomp, overlay or cgroup BPF fails here with
	// the list of what is missing.
	e.features = features.Probe()
	if err := e.features.Check(); err != nil {
		return err
	}
	rt, err := shimclient.New(shimclient.Options{Root: e.runtimeRoot(), Trace: func(name string, d time.Duration) {
		e.logger.Debug("span", "name", name, "dur", d)
	}})
	if err != nil {
		return fmt.Errorf("start the container runtime: %w", err)
	}
	e.containers = store
	e.rt = rt
	e.ctrs = map[string]*ctrState{}
	e.monitorCtx, e.stopMonitor = context.WithCancel(context.Background())
	return nil
}

// runtimeRoot is the runtime's directory under the exec root.
func (e *Engine) runtimeRoot() string { return filepath.Join(e.opts.ExecRoot, "containers") }

// state returns the in-memory state of container id, creating it.
// run returns the runtime container of the current run, or nil.
func (cs *ctrState) run() *shimclient.Container {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.rc
}

func (e *Engine) state(id string) *ctrState {
	e.ctrMu.Lock()
	defer e.ctrMu.Unlock()
	cs := e.ctrs[id]
	if cs == nil {
		cs = &ctrState{}
		e.ctrs[id] = cs
	}
	return cs
}

func (e *Engine) forgetState(id string) {
	e.ctrMu.Lock()
	delete(e.ctrs, id)
	e.ctrMu.Unlock()
}

// waitRestored waits until the restore at start-up is done: until then a
// running container may not have its runtime handle yet.
func (e *Engine) waitRestored() {
	if e.restored != nil {
		<-e.restored
	}
}

// get finds a container by the reference a client gave.
func (e *Engine) get(name string) (*container.Container, error) {
	e.waitRestored()
	return e.containers.Get(name)
}

// logEvent publishes a container event with dockerd's attributes: the
// image as the client named it, the name without its slash, the labels,
// and extra.
func (e *Engine) logEvent(c *container.Container, action string, extra map[string]string) {
	attrs := map[string]string{}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
		attrs["image"] = c.Config.Image
	}
	attrs["name"] = strings.TrimPrefix(c.Name, "/")
	for k, v := range extra {
		attrs[k] = v
	}
	e.events.Log(action, types.ContainerEventType, types.EventActor{ID: c.ID, Attributes: attrs})
}

// imageUsers lists the containers using an image (by image ID): made
// from it or, unless ownOnly (docker system df's count, dockerd's), with
// an image mount of it.
func (e *Engine) imageUsers(id string, ownOnly bool) []ImageUser {
	e.waitRestored()
	var out []ImageUser
	for _, c := range e.containers.Snapshots() {
		if c.ImageID == id || !ownOnly && mountsImage(c, id) {
			out = append(out, ImageUser{ID: c.ID, Running: c.State.Running})
		}
	}
	return out
}

// containerCounts returns how many containers there are in each state, for
// /info.
func (e *Engine) containerCounts() (total, running, paused, stopped int) {
	e.waitRestored()
	for _, c := range e.containers.Snapshots() {
		total++
		switch {
		case c.State.Paused:
			paused++
		case c.State.Running:
			running++
		default:
			stopped++
		}
	}
	return
}

// containerDir is where a container's files live.
func (e *Engine) containerDir(id string) string { return e.containers.Dir(id) }

// ContainerInspect answers GET /containers/{id}/json.
func (e *Engine) ContainerInspect(ctx context.Context, name string, size bool) (*types.ContainerJSON, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	out := &types.ContainerJSON{
		ID:             c.ID,
		Created:        c.Created.UTC().Format(time.RFC3339Nano),
		Path:           c.Path,
		Args:           append([]string{}, c.Args...),
		State:          c.State.Inspect(),
		Image:          c.ImageID,
		ResolvConfPath: c.ResolvConfPath,
		HostnamePath:   c.HostnamePath,
		HostsPath:      c.HostsPath,
		LogPath:        c.LogPath,
		Name:           c.Name,
		RestartCount:   c.RestartCount,
		Driver:         c.Driver,
		Platform:       c.Platform,
		Mounts:         append([]types.MountPoint{}, c.MountPoints...),
		GraphDriver:    e.graphDriver(c),
	}
	if c.HostConfig != nil {
		hc := *c.HostConfig
		out.HostConfig = &hc
	}
	if c.Config != nil {
		cfg := *c.Config
		out.Config = &cfg
	}
	out.NetworkSettings = networkSettings(c)
	c.Unlock()
	out.ExecIDs = e.containerExecIDs(c.ID)
	if size {
		rw, rootfs := e.containerSizes(c)
		out.SizeRw, out.SizeRootFs = &rw, &rootfs
	}
	return out, nil
}

// networkSettings is inspect's NetworkSettings, a copy of the record's.
func networkSettings(c *container.Container) *types.NetworkSettings {
	if c.NetworkSettings != nil {
		ns := *c.NetworkSettings
		return &ns
	}
	return newNetworkSettings(c.HostConfig.NetworkMode)
}

// newNetworkSettings is what a container of network mode gets without
// bridge networking: its network's entry, with no addresses; a container
// sharing another's network has none.
func newNetworkSettings(mode string) *types.NetworkSettings {
	ns := &types.NetworkSettings{Ports: types.PortMap{}, Networks: map[string]*types.EndpointSettings{}}
	if !strings.HasPrefix(mode, "container:") {
		ns.Networks[networkName(mode)] = &types.EndpointSettings{}
	}
	return ns
}

// networkName maps a NetworkMode to the network it names.
func networkName(mode string) string {
	switch mode {
	case "", "default":
		return "bridge"
	}
	return mode
}

// graphDriver reports the overlay directories of the container.
func (e *Engine) graphDriver(c *container.Container) types.GraphDriverData {
	dir := e.containerDir(c.ID)
	g := types.GraphDriverData{Name: "overlay2", Data: map[string]string{
		"MergedDir": filepath.Join(dir, "rootfs"),
		"UpperDir":  filepath.Join(dir, "upper"),
		"WorkDir":   filepath.Join(dir, "work"),
	}}
	if img, err := e.images.Get(c.ImageID); err == nil && len(img.ChainIDs) > 0 {
		if dirs, err := e.layers.DiffDirs(img.ChainIDs[len(img.ChainIDs)-1]); err == nil {
			g.Data["LowerDir"] = strings.Join(dirs, ":")
		}
	}
	return g
}

// containerSizes returns the size of the container's writable layer and of
// its whole root file system.
func (e *Engine) containerSizes(c *container.Container) (rw, rootfs int64) {
	rw = dirSize(filepath.Join(e.containerDir(c.ID), "upper"))
	rootfs = rw
	if img, err := e.images.Get(c.ImageID); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}

// Containers answers GET /containers/json from the store's snapshots, as
// whole summaries (see ContainerList).
func (e *Engine) Containers(ctx context.Context, opts types.ContainerListOptions) ([]*types.ContainerSummary, error) {
	entries, err := e.ContainerList(ctx, opts, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*types.ContainerSummary, 0, len(entries))
	for _, en := range entries {
		s := *en.Summary
		s.Status, s.SizeRw, s.SizeRootFs = en.Status, en.SizeRw, en.SizeRootFs
		if en.ImageIsID {
			s.Image = s.ImageID
		}
		out = append(out, &s)
	}
	return out, nil
}

// ContainerList answers GET /containers/json from the store's snapshots,
// appending to dst: listing takes no container lock, reads nothing from
// disk (unless sizes are asked for) and, but for the status text, shares
// what it lists with every list of the same snapshots.
func (e *Engine) ContainerList(ctx context.Context, opts types.ContainerListOptions, dst []types.ContainerListEntry) ([]types.ContainerListEntry, error) {
	e.waitRestored()
	now := time.Now()
	// Containers mostly share a few images: resolve each reference once
	// (to "" when it names no image).
	var resolved imageRefs
	err := container.Walk(e.containers.SortedSnapshots(), opts.Filters, container.FilterOptions{
		All:      opts.All,
		Limit:    opts.Limit,
		Ancestor: e.ancestors,
		Sorted:   true,
	}, func(c *container.Container) {
		s, status, cache := c.ListEntry(now)
		en := types.ContainerListEntry{Summary: s, Status: status, Cache: cache}
		if s.Image != "" && !strings.HasPrefix(s.Image, "sha256:") {
			en.ImageIsID = resolved.resolve(e, s.Image) != s.ImageID
		}
		if opts.Size {
			en.SizeRw, en.SizeRootFs = e.containerSizes(c)
		}
		dst = append(dst, en)
	})
	if err != nil {
		return dst, err
	}
	return dst, nil
}

// imageRefs is the image IDs a list resolved references to, "" for a
// reference that names no image. A list names few distinct references: a
// short slice, searched in order, costs less than a map, which takes over
// past a few.
type imageRefs struct {
	refs []struct{ ref, id string }
	m    map[string]string
}

func (r *imageRefs) resolve(e *Engine, ref string) string {
	if r.m != nil {
		if id, ok := r.m[ref]; ok {
			return id
		}
	} else {
		for _, p := range r.refs {
			if p.ref == ref {
				return p.id
			}
		}
	}
	var id string
	if img, err := e.images.Get(ref); err == nil {
		id = img.ID
	}
	switch {
	case r.m != nil:
		r.m[ref] = id
	case len(r.refs) < 8:
		r.refs = append(r.refs, struct{ ref, id string }{ref, id})
	default:
		r.m = map[string]string{ref: id}
		for _, p := range r.refs {
			r.m[p.ref] = p.id
		}
	}
	return id
}

// ancestors resolves an ancestor filter value to the image and the images
// built on it.
func (e *Engine) ancestors(ref string) []string {
	img, err := e.images.Get(ref)
	if err != nil {
		return nil
	}
	out := []string{img.ID}
	parents := map[string]string{}
	for _, i := range e.images.List() {
		parents[i.ID] = i.Parent
	}
	for id := range parents {
		for p := parents[id]; p != ""; p = parents[p] {
			if p == img.ID {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// ContainerRename answers POST /containers/{id}/rename.
func (e *Engine) ContainerRename(ctx context.Context, name, newName string) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	// The container's own links are named after it ("/db:/web/alias"):
	// they change with the record that renames it; then its parents'
	// links name it anew (links.go).
	c.Lock()
	old := c.Name
	links := slices.Clone(c.HostConfig.Links)
	relink(c, "/"+strings.TrimPrefix(newName, "/"), c.ID, old, "/"+strings.TrimPrefix(newName, "/"))
	// The embedded DNS answers to the new name from now on, as dockerd's
	// sandbox rename makes it; the old name stops resolving.
	undoDNS := renameDNSNames(c, strings.TrimPrefix(old, "/"), strings.TrimPrefix(newName, "/"))
	err = e.containers.Rename(c, newName)
	if err != nil {
		c.HostConfig.Links = links
		undoDNS()
	}
	renamed := c.Name
	c.Unlock()
	if err != nil {
		return err
	}
	e.renameLinks(c, old, renamed)
	e.logEvent(c, "rename", map[string]string{"oldName": old})
	return nil
}

// renameDNSNames replaces the name from among the DNS names of each of c's
// endpoints (c locked) and returns what undoes it.
func renameDNSNames(c *container.Container, from, to string) (undo func()) {
	was := map[*types.EndpointSettings][]string{}
	for _, ep := range c.NetworkSettings.Networks {
		if ep == nil {
			continue
		}
		if i := slices.Index(ep.DNSNames, from); i >= 0 {
			was[ep] = ep.DNSNames
			names := slices.Clone(ep.DNSNames)
			names[i] = to
			ep.DNSNames = names
		}
	}
	return func() {
		for ep, names := range was {
			ep.DNSNames = names
		}
	}
}

// notRunning is dockerd's 409 for an operation that needs a running
// container.
func notRunning(c *container.Container) error {
	return errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
}

// isNotExist reports a missing file.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// shortID is the 12-digit form of an ID.
func shortID(id string) string { return reference.ShortID(id) }

// conflictf is a 409 with a formatted message.
func conflictf(format string, args ...any) error {
	return errdefs.Conflict(fmt.Errorf(format, args...))
}

// dirSize is the size of dir as dockerd measures a container's writable
// layer and a volume (volume.DirSize); a directory it cannot read counts
// for what was added up before it.
func dirSize(dir string) int64 {
	n, _ := volume.DirSize(context.Background(), dir)
	return n
}
