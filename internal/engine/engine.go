// Package engine is skiffd's backend: it owns the stores and mechanisms
// (images, containers, volumes, events, runtime) and orders what happens on
// each API operation. It never imports the API handler packages, only
// internal/api/types; package main checks that *Engine satisfies each
// module's Backend interface.
package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/container"
	"skiffd/internal/distribution"
	"skiffd/internal/events"
	"skiffd/internal/image"
	"skiffd/internal/layer"
	"skiffd/internal/logs"
	"skiffd/internal/runtime/features"
	"skiffd/internal/runtime/seccomp"
	"skiffd/internal/runtime/shimclient"
	"skiffd/internal/volume"
)

// Options configures an Engine.
type Options struct {
	DataRoot     string
	ExecRoot     string
	Debug        bool
	Experimental bool
	Logger       *slog.Logger
	Build        BuildInfo
	// LiveRestore keeps containers running when the daemon stops
	// (--live-restore). Without it, Shutdown stops them.
	LiveRestore bool
	// ShutdownTimeout is --shutdown-timeout in seconds, the least time
	// Shutdown waits for the containers it stops; negative waits as long
	// as they take.
	ShutdownTimeout int
	// Network configures bridge networking; the zero value turns it off.
	Network NetworkOptions

	// Registry configures the registry client (issue 11): mirrors,
	// insecure registries, certs.d. MaxConcurrentDownloads and
	// MaxConcurrentUploads bound the layers a pull or push moves at once
	// (0 means dockerd's defaults, 3 and 5).
	Registry               distribution.Config
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int

	// Container defaults (--log-driver, --log-opt, --default-shm-size):
	// the log driver of a container that names none, the options a
	// container using that driver gets for those it does not set, and
	// /dev/shm's size without --shm-size. Zero values are dockerd's
	// defaults (json-file, no options, 64 MiB).
	LogDriver      string
	LogOpts        map[string]string
	DefaultShmSize int64
	// JournalSocket is where the journald log driver sends; ""
	// is journald's own socket.
	JournalSocket string
	// More container defaults (dockerd's --dns, --dns-search, --dns-opt,
	// --no-new-privileges, --default-ulimit, --init, --default-ipc-mode,
	// --default-cgroupns-mode): each applies to a container that does
	// not set its own; empty values are dockerd's defaults.
	DNS                 []string
	DNSSearch           []string
	DNSOptions          []string
	NoNewPrivileges     bool
	DefaultUlimits      []types.Ulimit
	Init                bool
	DefaultIpcMode      string
	DefaultCgroupnsMode string
	// SeccompProfile is the daemon's --seccomp-profile: "" or "builtin"
	// (Docker's default profile), "unconfined", or the path of the JSON
	// profile SeccompProfileJSON holds, for containers that name none.
	SeccompProfile     string
	SeccompProfileJSON []byte
	// CgroupParent is the daemon's --cgroup-parent, the cgroup parent of
	// containers that name none.
	CgroupParent string
}

// BuildInfo identifies the running binary in /version and /info.
type BuildInfo struct {
	Version   string // engine version reported to clients
	GitCommit string
	BuildTime string // RFC 3339, empty when unknown
	GoVersion string
}

// Engine is the backend behind every API module. It owns every store as a
// field, opened once by New; the engine package keeps no state of its own
// outside an Engine.
//
// Lock order: a goroutine holding one of these locks takes only locks
// further down the list, never one above it.
//
//  1. A container's lock (container.Container.Lock), held across an
//     operation that reads or changes the container. One container's
//     lock at a time. (joinNamespace, reached from startLocked for a
//     container:<name> mode, reads the joined container from the store's
//     view instead of taking its lock.)
//  2. execs.mu, the exec store's: lookups and sweeps read exec records,
//     the container store, ctrs and a ctrState under it.
//  3. An execRecord's mu.
//  4. ctrMu, or a ctrState's mu: each guards its fields alone, and
//     neither is held while taking the other (state returns the ctrState
//     after releasing ctrMu).
//  5. The stores' own locks: volumes, then containers (the volume store
//     asks who uses a volume through Options.InUse, which reads the
//     container store's snapshots); images, layers and events. The stores
//     call back into the engine only through InUse, and never lock a
//     container (snapshots are not locked).
type Engine struct {
	opts Options
	// streams gives memory back after a burst of streams (streams.go).
	streams streamTracker
	// stats samples the containers that have stats streams (statscollector.go).
	stats statsCollector
	// logWatch is the inotify instance every logs follower shares.
	logWatch logs.Watchers
	logger   *slog.Logger
	id       string
	events   *events.Bus
	layers   *layer.Store
	images   *image.Store
	// reg is the registry client and the pull/push concurrency state.
	reg *registryState

	containers *container.Store
	// volumes is the local volume store under <data-root>/volumes.
	volumes *volume.Store
	// execs holds the exec instances of every container.
	execs *execStore
	rt    *shimclient.Runtime
	// seccompFilters caches compiled default seccomp filters by
	// capability set (string -> []syscall.SockFilter).
	seccompFilters sync.Map
	// features is what the kernel offers, probed at start-up.
	features features.Features
	// ctrMu guards ctrs, the in-memory state of each container.
	ctrMu sync.Mutex
	ctrs  map[string]*ctrState
	// monitorCtx ends at Close: monitors stop watching, and leave the
	// exits to the next daemon, which finds them in the shims' state.
	monitorCtx  context.Context
	stopMonitor context.CancelFunc
	// restored is closed once the containers of the previous daemon are
	// reconnected.
	restored chan struct{}
	// shuttingDown is set by Shutdown: exits are no longer restarted by
	// the restart policy (the next daemon applies it at its start).
	shuttingDown atomic.Bool
	// nets is the networking state, nil when bridge networking is off.
	nets *networking
	// bg counts what the removal of an AutoRemove container left to the
	// background (background): its last run's runtime state, deleted once
	// its shim is gone, and its directory (exit.go). Close waits for it;
	// bgClosed, set by Close under bgMu, makes later work run at once.
	bgMu     sync.Mutex
	bgClosed bool
	bg       sync.WaitGroup
}

// background runs f in a goroutine that Close waits for, or at once if
// Close has begun.
func (e *Engine) background(f func()) {
	e.bgMu.Lock()
	if e.bgClosed {
		e.bgMu.Unlock()
		f()
		return
	}
	e.bg.Add(1)
	e.bgMu.Unlock()
	go func() {
		defer e.bg.Done()
		f()
	}()
}

// New opens (creating as needed) the data and exec roots and the stores in
// them.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LogDriver == "" {
		opts.LogDriver = "json-file"
	}
	// The default log config is every container's that sets none: one
	// that no container could have stops the daemon, as in dockerd.
	if _, err := logRotation(types.LogConfig{Type: opts.LogDriver, Config: opts.LogOpts}); err != nil {
		return nil, fmt.Errorf("default log config (--log-driver, --log-opt): %w", err)
	}
	if len(opts.SeccompProfileJSON) > 0 {
		if _, err := seccomp.ParseProfile(opts.SeccompProfileJSON); err != nil {
			return nil, fmt.Errorf("seccomp profile %s: %w", opts.SeccompProfile, err)
		}
	}
	for _, u := range opts.DefaultUlimits {
		if _, err := rlimitName(u.Name); err != nil {
			return nil, fmt.Errorf("default ulimits: %w", err)
		}
	}
	// 0711 like dockerd: other users may traverse to bind-mounted paths but
	// not list what is stored.
	if err := os.MkdirAll(opts.DataRoot, 0o711); err != nil {
		return nil, fmt.Errorf("create data root: %w", err)
	}
	if err := os.MkdirAll(opts.ExecRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create exec root: %w", err)
	}
	if err := atomicfile.RemoveTemps(opts.DataRoot); err != nil {
		return nil, err
	}
	id, err := loadOrCreateID(filepath.Join(opts.DataRoot, "engine-id"))
	if err != nil {
		return nil, err
	}
	layers, err := layer.Open(filepath.Join(opts.DataRoot, "layers"))
	if err != nil {
		return nil, fmt.Errorf("open layer store: %w", err)
	}
	images, err := image.Open(filepath.Join(opts.DataRoot, "image"), layers)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	e := &Engine{opts: opts, logger: opts.Logger, id: id, events: events.New(), layers: layers, images: images, execs: newExecStore()}
	e.reg = newRegistryState(opts)
	e.removeOrphanLayers()
	if err := e.openContainers(); err != nil {
		return nil, err
	}
	e.repairLinks()
	if err := e.openNetworking(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.openVolumes(); err != nil {
		e.Close()
		return nil, err
	}
	// Reconnecting to the shims of running containers takes a while with
	// many of them; the daemon answers meanwhile, and container requests
	// wait for the restore (waitRestored).
	e.restored = make(chan struct{})
	go func() {
		defer close(e.restored)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
		defer cancel()
		e.restoreContainers(rctx)
		e.reconcileNetworks()
	}()
	return e, nil
}

// Close releases what the engine holds. Containers still running keep
// running: their shims do not depend on the daemon. Shutdown, called
// before, stops them when live restore is off.
func (e *Engine) Close() error {
	e.events.Close()
	e.closeNetworking()
	e.stopMonitor()
	e.bgMu.Lock()
	e.bgClosed = true
	e.bgMu.Unlock()
	e.bg.Wait()
	e.logWatch.Close()
	return e.rt.Close()
}

// removeOrphanLayers deletes layers that no image holds: a load killed
// after registering some layers but before creating its image leaves them.
// Containers hold layers only through their image, so at start-up, before
// any request, an unheld layer is garbage.
func (e *Engine) removeOrphanLayers() {
	held := map[string]bool{}
	for _, img := range e.images.List() {
		for _, c := range img.ChainIDs {
			held[c] = true
		}
	}
	for _, l := range e.layers.List() {
		if held[l.ChainID] {
			continue
		}
		if err := e.layers.Remove(l.ChainID); err != nil {
			e.logger.Warn("removing unused layer", "layer", l.ChainID, "error", err)
			continue
		}
		e.logger.Info("removed layer left by an interrupted load", "layer", l.ChainID)
	}
}

// loadOrCreateID returns the engine's persistent ID (a random UUID, as
// dockerd's engine-id file holds), creating it on first start.
func loadOrCreateID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read engine ID: %w", err)
	}
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	if err := atomicfile.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save engine ID: %w", err)
	}
	return id, nil
}
