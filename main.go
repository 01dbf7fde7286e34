// Command skiffd is a container engine that serves the Docker Engine API
// from one static, standard-library-only binary.
//
//	skiffd                                   # unix:///var/run/skiffd.sock
//	skiffd -H unix:///tmp/s.sock -H tcp://127.0.0.1:2375 --data-root /srv/skiffd
//
// The same binary has hidden roles (the containers' shim, the container
// init, the exec helper); main dispatches those before any daemon set-up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"skiffd/internal/api/container"
	"skiffd/internal/api/exec"
	"skiffd/internal/api/image"
	"skiffd/internal/api/system"
	"skiffd/internal/api/types"
	"skiffd/internal/api/volume"
	"skiffd/internal/audit"
	"skiffd/internal/config"
	"skiffd/internal/distribution"
	"skiffd/internal/engine"
	"skiffd/internal/memtrim"
	"skiffd/internal/metrics"
	"skiffd/internal/pidfile"
	"skiffd/internal/runtime/roles"
	"skiffd/internal/sdnotify"
)

// skiffdVersion is this release. Clients see it as build metadata on the
// dockerd version whose API skiffd speaks (28.3 serves API 1.50), so tools
// that compare engine versions treat skiffd as that dockerd.
const (
	skiffdVersion = "0.1.0"
	engineVersion = "28.3.0+skiffd." + skiffdVersion
)

// The engine must satisfy every module's backend; checked at compile time.
var (
	_ system.Backend           = (*engine.Engine)(nil)
	_ system.EventsBackend     = (*engine.Engine)(nil)
	_ image.Backend            = (*engine.Engine)(nil)
	_ volume.Backend           = (*engine.Engine)(nil)
	_ image.CommitBackend      = (*engine.Engine)(nil)
	_ container.Backend        = (*engine.Engine)(nil)
	_ container.ArchiveBackend = (*engine.Engine)(nil)
	_ exec.Backend             = (*engine.Engine)(nil)
)

func main() {
	// The hidden roles run before any daemon set-up.
	roles.Dispatch()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "skiffd: %v\n", err)
		os.Exit(1)
	}
}

// run is the daemon: parse configuration, take the locks, open the engine
// and the listeners, serve until ctx is cancelled, then shut down. It
// returns nil after --help, --version and a clean shutdown.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := config.Parse(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	build := readBuildInfo()
	if cfg.ShowVersion {
		fmt.Fprintf(stdout, "skiffd version %s (Docker Engine API %s), build %s\n", skiffdVersion, apiVersion, build.GitCommit)
		return nil
	}
	level := new(slog.LevelVar) // SIGHUP may change it
	level.Set(cfg.SlogLevel())
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	logger := slog.New(handler)
	notify := sdnotify.New(getenv)

	if err := os.MkdirAll(cfg.DataRoot, 0o711); err != nil {
		return fmt.Errorf("create data root: %w", err)
	}
	dataLock, err := pidfile.LockDir(cfg.DataRoot)
	if err != nil {
		return err
	}
	defer dataLock.Release()
	pid, err := pidfile.Acquire(cfg.Pidfile)
	if err != nil {
		return err
	}
	defer pid.Release()

	tlsConfig, err := serverTLSConfig(cfg)
	if err != nil {
		return err
	}
	tlsReload, tlsConfig := newTLSReloader(tlsConfig)
	// dockerd's feature switches (buildkit, containerd-snapshotter...)
	// are accepted from its daemon.json; none changes what skiffd does.
	for _, name := range slices.Sorted(maps.Keys(cfg.Features)) {
		logger.Warn("daemon feature has no effect in skiffd", "feature", name, "enabled", cfg.Features[name])
	}
	eng, err := engine.New(ctx, engine.Options{
		DataRoot:        cfg.DataRoot,
		ExecRoot:        cfg.ExecRoot,
		Debug:           cfg.Debug,
		Experimental:    cfg.Experimental,
		Logger:          logger,
		Build:           build,
		LiveRestore:     cfg.LiveRestore,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Network: engine.NetworkOptions{
			Bridge: cfg.Bridge, BIP: cfg.BIP, FixedCIDR: cfg.FixedCIDR, MTU: cfg.MTU,
			IPv6: cfg.IPv6, FixedCIDRv6: cfg.FixedCIDRv6,
			IPTables: cfg.IPTables, NFTable: cfg.NFTable, IPForward: cfg.IPForward,
			NoICC: !cfg.ICC, NoIPMasq: !cfg.IPMasq, DefaultBindingIP: cfg.DefaultBindingIP,
			ReservedTCP:         daemonTCPPorts(cfg.Hosts),
			DefaultAddressPools: cfg.DefaultAddressPools,
			HostGatewayIPs:      cfg.HostGatewayIPs,
		},
		Registry: distribution.Config{
			Mirrors:            cfg.RegistryMirrors,
			InsecureRegistries: cfg.InsecureRegistries,
		},
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads,
		MaxConcurrentUploads:   cfg.MaxConcurrentUploads,
		LogDriver:              cfg.LogDriver,
		LogOpts:                cfg.LogOpts,
		// Another journal's socket: for tests, or a journald that
		// listens elsewhere (dockerd has no such setting).
		JournalSocket:       getenv("SKIFFD_JOURNAL_SOCKET"),
		DefaultShmSize:      cfg.DefaultShmSize,
		DNS:                 cfg.DNS,
		DNSSearch:           cfg.DNSSearch,
		DNSOptions:          cfg.DNSOptions,
		NoNewPrivileges:     cfg.NoNewPrivileges,
		DefaultUlimits:      defaultUlimits(cfg.DefaultUlimits),
		Init:                cfg.Init,
		DefaultIpcMode:      cfg.DefaultIpcMode,
		DefaultCgroupnsMode: cfg.DefaultCgroupnsMode,
		SeccompProfile:      cfg.SeccompProfile,
		SeccompProfileJSON:  cfg.SeccompProfileJSON,
		CgroupParent:        cfg.CgroupParent,
	})
	if err != nil {
		return err
	}
	defer eng.Close()

	obs := &observer{}
	obs.labels.Store(&cfg.Labels)
	auditLog, err := openAudit(cfg, eng, logger)
	if err != nil {
		return err
	}
	if auditLog != nil {
		obs.audit.Store(auditLog)
		defer auditLog.Close()
	}
	if cfg.MetricsAddr != "" {
		obs.metrics = metrics.New()
		obs.registerCollectors(eng)
		if _, err := serveMetrics(ctx, cfg.MetricsAddr, obs.metrics, logger); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	cors := new(atomic.Pointer[string])
	cors.Store(&cfg.CORSHeaders)

	chain, err := authzChain(cfg, logger)
	if err != nil {
		return err
	}
	defer func() { chain.Close() }()
	listeners, err := openListeners(cfg, tlsConfig, getenv, logger)
	if err != nil {
		return err
	}
	var addrs []listenAddr
	for _, l := range listeners {
		addrs = append(addrs, l.Addr)
	}
	mux := newRouter(backends{
		System: infoBackend{Backend: eng, o: obs}, Events: eng, Image: eng, Commit: eng, Volume: eng, Registry: eng, Network: eng,
		Container: eng, Archive: eng, Exec: eng,
	}, logger)
	// Memory goes back to the system once a burst of requests is over
	// (issue 13: the idle figure is what a long-running host sees).
	trim := &memtrim.Trimmer{Trimmed: func(n uint64) {
		logger.Debug("memory given back after a burst of requests", "bytes", n)
	}}
	defer trim.Stop()
	srv := &apiServer{
		handler: newHandler(mux, handlerOptions{
			Logger:       logger,
			ServerHeader: "Docker/" + engineVersion + " (" + runtime.GOOS + ")",
			Experimental: cfg.Experimental,
			CORS:         cors,
			Observe:      obs.middlewareIfUsed(),
			Trim:         trim,
		}),
		logger:      logger,
		grace:       shutdownGrace,
		connContext: obs.connContext,
		// The first quiet period after start-up gives back what it
		// touched only once (package initialisation, the restore).
		onReady: func() { notify.Send(sdnotify.Ready); trim.Touch() },
		onStop:  func() { notify.Send(sdnotify.Stopping) },
		guards:  newGuards(logger, chain, cfg.MaxStreams, addrs),
	}
	rl := &reloader{args: args, getenv: getenv, logger: logger, level: level, tls: tlsReload,
		cors: cors, obs: obs, eng: eng, notify: notify}
	// Parts that own reloadable settings register here before watch.
	rl.addHook(reloadHook{Name: "authorization and listener policies", Prepare: func(c *config.Config) (func(), error) {
		policies, err := listenerPolicies(c)
		if err != nil {
			return nil, err
		}
		// A reload changes the policies of listening addresses only, as
		// dockerd reloads no hosts; an address that is not listening (a
		// new one, or port 0 bound to another) keeps what it started with.
		for k := range policies {
			if !srv.guards.listening(k) {
				logger.Warn("reload: listener policy not applied: the address is not listening; a restart opens it", "addr", k)
				delete(policies, k)
			}
		}
		chain, err := authzChain(c, logger)
		if err != nil {
			return nil, err
		}
		return func() {
			if err := srv.guards.Reload(chain, c.MaxStreams, policies); err != nil {
				logger.Error("reload of listener policies failed", "error", err)
			}
		}, nil
	}})
	rl.addHook(reloadHook{Name: "registry mirrors and insecure registries", Prepare: func(c *config.Config) (func(), error) {
		return eng.PrepareRegistryReload(c.RegistryMirrors, c.InsecureRegistries)
	}})
	rl.watch(ctx)
	logger.Info("skiffd started", "version", skiffdVersion, "api", apiVersion, "data-root", cfg.DataRoot, "exec-root", cfg.ExecRoot)
	err = srv.serve(ctx, listeners)
	// The API is closed: stop the containers unless live restore keeps
	// them running (a failed listener ends the daemon the same way).
	eng.Shutdown(context.WithoutCancel(ctx))
	logger.Info("skiffd stopped")
	return err
}

// readBuildInfo takes the commit and build time from the VCS stamp the Go
// toolchain embeds in the binary.
func readBuildInfo() engine.BuildInfo {
	b := engine.BuildInfo{Version: engineVersion, GoVersion: runtime.Version(), GitCommit: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.GitCommit = s.Value
			if len(b.GitCommit) > 7 {
				b.GitCommit = b.GitCommit[:7]
			}
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				b.BuildTime = t.UTC().Format(time.RFC3339Nano)
			}
		case "vcs.modified":
			if s.Value == "true" {
				b.GitCommit += "-dirty"
			}
		}
	}
	return b
}

// reloadHook reloads one part of the daemon on SIGHUP. Prepare validates
// the new configuration and returns a commit that applies it; it must not
// change anything itself, so that one invalid part keeps every part as it
// was. Issue 12 item 6.
type reloadHook struct {
	Name    string
	Prepare func(cfg *config.Config) (commit func(), err error)
}

// reloader re-reads daemon.json on SIGHUP, as dockerd does: the command
// line stays what it was, the file is read again, and what can change
// without a restart changes: log level, TLS certificates (new connections
// get the new ones; established connections keep theirs), the CORS origin,
// labels, plus whatever the hooks own.
//
// Hooks (see addHook) reload the rest: authorization plugins and listener
// policies, registry mirrors and insecure registries, each with a Prepare
// that validates and a commit that swaps.
type reloader struct {
	args   []string
	getenv func(string) string
	logger *slog.Logger
	level  *slog.LevelVar
	tls    *tlsReloader // nil without TLS
	cors   *atomic.Pointer[string]
	obs    *observer
	eng    interface {
		LogDaemonEvent(action string, attrs map[string]string)
	}
	notify *sdnotify.Notifier
	hooks  []reloadHook
}

// addHook registers h; call before watch.
func (rl *reloader) addHook(h reloadHook) { rl.hooks = append(rl.hooks, h) }

// watch reloads on every SIGHUP until ctx ends.
func (rl *reloader) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				rl.reload()
			}
		}
	}()
}

// reload applies the configuration now on disk, or nothing: an invalid
// file, certificate or hook refusal is logged and the old configuration
// stays whole.
func (rl *reloader) reload() {
	rl.notify.Send(sdnotify.Reloading())
	defer rl.notify.Send(sdnotify.Ready)
	if err := rl.apply(); err != nil {
		rl.logger.Error("reload failed, keeping the old configuration", "error", err)
		return
	}
}

func (rl *reloader) apply() error {
	cfg, err := config.Parse(rl.args, rl.getenv, io.Discard)
	if err != nil {
		return err
	}
	var commits []func()
	if rl.tls != nil {
		if !cfg.TLS && !cfg.TLSVerify {
			return fmt.Errorf("TLS cannot be turned off by a reload")
		}
		tc, err := serverTLSConfig(cfg)
		if err != nil {
			return err
		}
		commits = append(commits, func() { rl.tls.cur.Store(tc) })
	}
	for _, h := range rl.hooks {
		commit, err := h.Prepare(cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if commit != nil {
			commits = append(commits, commit)
		}
	}
	for _, c := range commits {
		c()
	}
	rl.level.Set(cfg.SlogLevel())
	cors := cfg.CORSHeaders
	rl.cors.Store(&cors)
	labels := cfg.Labels
	rl.obs.labels.Store(&labels)
	rl.logger.Info("reloaded configuration", "log-level", cfg.LogLevel, "debug", cfg.Debug, "labels", labels, "api-cors-header", cors)
	rl.eng.LogDaemonEvent("reload", map[string]string{
		"debug":           strconv.FormatBool(cfg.Debug),
		"labels":          "[" + strings.Join(labels, ",") + "]",
		"log-level":       cfg.LogLevel,
		"api-cors-header": cors,
	})
	return nil
}

// openAudit opens the audit log cfg asks for, nil when none. Object
// references are resolved through the engine.
func openAudit(cfg *config.Config, eng *engine.Engine, logger *slog.Logger) (*audit.Logger, error) {
	if cfg.AuditLog == "" {
		return nil, nil
	}
	return audit.Open(audit.Options{
		Path:     cfg.AuditLog,
		Reads:    cfg.AuditLogReads,
		MaxSize:  cfg.AuditLogMaxSize,
		MaxFiles: cfg.AuditLogMaxFiles,
		Logger:   logger,
		Resolve:  engineResolver(eng),
	})
}

// engineResolver resolves what handlers annotate: container and image
// references to full ID and name, an exec ID to its container and command
// line. Volume names are their IDs.
func engineResolver(eng *engine.Engine) audit.Resolver {
	return func(ctx context.Context, kind, ref string) (string, string, []string, bool) {
		switch kind {
		case "container":
			c, err := eng.ContainerInspect(ctx, ref, false)
			if err != nil {
				return "", "", nil, false
			}
			return c.ID, c.Name, nil, true
		case "image":
			img, err := eng.ImageInspect(ctx, ref)
			if err != nil {
				return "", "", nil, false
			}
			name := ref
			if strings.HasPrefix(img.ID, ref) || strings.HasPrefix(img.ID, "sha256:"+ref) {
				// An ID names nothing; its first tag is the name.
				name = ""
				if len(img.RepoTags) > 0 {
					name = img.RepoTags[0]
				}
			}
			return img.ID, name, nil, true
		case "exec":
			ex, err := eng.ContainerExecInspect(ctx, ref)
			if err != nil {
				return "", "", nil, false
			}
			cmd := append([]string{ex.ProcessConfig.Entrypoint}, ex.ProcessConfig.Arguments...)
			return ex.ID, ex.ContainerID, cmd, true
		}
		return "", "", nil, false
	}
}

// infoBackend adds the daemon's labels and the audit drop count to /info.
type infoBackend struct {
	system.Backend
	o *observer
}

func (b infoBackend) SystemInfo(ctx context.Context) (*types.Info, error) {
	info, err := b.Backend.SystemInfo(ctx)
	if err != nil {
		return nil, err
	}
	if l := b.o.labels.Load(); l != nil && len(*l) > 0 {
		info.Labels = append([]string(nil), *l...)
	}
	if b.o.audit.Load() != nil {
		info.SystemStatus = append(info.SystemStatus, [2]string{"Audit Log Dropped", strconv.FormatUint(b.o.auditDropped(), 10)})
	}
	return info, nil
}

// registerCollectors adds the engine's metrics, read at scrape time.
func (o *observer) registerCollectors(eng *engine.Engine) {
	o.metrics.Collect(func(w *metrics.Writer) {
		ctx := context.Background()
		if info, err := eng.SystemInfo(ctx); err == nil {
			w.Gauge("engine_daemon_container_states_containers", "The count of containers in various states.",
				metrics.L("state", "running"), float64(info.ContainersRunning),
				metrics.L("state", "paused"), float64(info.ContainersPaused),
				metrics.L("state", "stopped"), float64(info.ContainersStopped))
			// Every running or paused container is served by a shim (one
			// shim process serves several).
			w.Gauge("skiffd_shims", "Containers served by shims (running or paused).", nil,
				float64(info.ContainersRunning+info.ContainersPaused))
			w.Gauge("engine_daemon_events_subscribers_total", "The number of current subscribers to events.", nil, float64(info.NEventsListener))
		}
		w.Counter("skiffd_events_subscribers_dropped_total", "Events subscribers dropped for falling behind.", nil, float64(eng.EventsDropped()))
		counts := eng.EventCounts()
		w.Counter("skiffd_container_starts_total", "Container starts.", nil, float64(counts[[2]string{"container", "start"}]))
		w.Counter("skiffd_container_exits_total", "Container exits.", nil, float64(counts[[2]string{"container", "die"}]))
		w.Counter("skiffd_container_ooms_total", "Containers killed by the OOM killer.", nil, float64(counts[[2]string{"container", "oom"}]))
		if du, err := eng.SystemDiskUsage(ctx); err == nil {
			var imgBytes int64
			for _, img := range du.Images {
				imgBytes += img.Size
			}
			w.Gauge("skiffd_image_bytes", "Bytes of all images.", nil, float64(imgBytes))
			w.Gauge("skiffd_layer_bytes", "Bytes of all unpacked layers, each counted once.", nil, float64(du.LayersSize))
		}
		w.Counter("skiffd_audit_dropped_total", "Audit records dropped because the audit log could not keep up.", nil, float64(o.auditDropped()))
	})
}

// defaultUlimits is the engine's form of --default-ulimit.
func defaultUlimits(us []config.Ulimit) []types.Ulimit {
	var out []types.Ulimit
	for _, u := range us {
		out = append(out, types.Ulimit{Name: u.Name, Hard: u.Hard, Soft: u.Soft})
	}
	return out
}

// daemonTCPPorts are the addresses of the daemon's own TCP listeners,
// which no container may publish on (dockerd's allocateDaemonPort).
func daemonTCPPorts(hosts []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, h := range hosts {
		rest, ok := strings.CutPrefix(h, "tcp://")
		if !ok {
			continue
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		a := netip.IPv4Unspecified()
		if host != "" {
			if a, err = netip.ParseAddr(host); err != nil {
				continue
			}
		}
		out = append(out, netip.AddrPortFrom(a, uint16(p)))
	}
	return out
}
