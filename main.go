// Command skiffd is a container engine that serves the Docker Engine API
// from one static, standard-library-only binary.
//
//	skiffd                                   # unix:///var/run/skiffd.sock
//	skiffd -H unix:///tmp/s.sock -H tcp://127.0.0.1:2375 --data-root /srv/skiffd
//
// The same binary has hidden roles (the per-container shim, the container
// init, the exec helper); main dispatches those before any daemon set-up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/api/container"
	"skiffd/internal/api/exec"
	"skiffd/internal/api/image"
	"skiffd/internal/api/system"
	"skiffd/internal/api/volume"
	"skiffd/internal/config"
	"skiffd/internal/distribution"
	"skiffd/internal/engine"
	"skiffd/internal/pidfile"
	"skiffd/internal/runtime/roles"
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
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))

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
			IPTables: cfg.IPTables, NFTable: cfg.NFTable, IPForward: cfg.IPForward,
			ReservedTCP: daemonTCPPorts(cfg.Hosts),
		},
		Registry: distribution.Config{
			Mirrors:            cfg.RegistryMirrors,
			InsecureRegistries: cfg.InsecureRegistries,
		},
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads,
		MaxConcurrentUploads:   cfg.MaxConcurrentUploads,
	})
	if err != nil {
		return err
	}
	defer eng.Close()

	listeners, err := openListeners(cfg, tlsConfig, getenv, logger)
	if err != nil {
		return err
	}
	mux := newRouter(backends{
		System: eng, Events: eng, Image: eng, Commit: eng, Volume: eng, Registry: eng, Network: eng,
		Container: eng, Archive: eng, Exec: eng,
	}, logger)
	srv := &apiServer{
		handler: newHandler(mux, handlerOptions{
			Logger:       logger,
			ServerHeader: "Docker/" + engineVersion + " (" + runtime.GOOS + ")",
			Experimental: cfg.Experimental,
			CORSOrigin:   cfg.CORSHeaders,
		}),
		logger: logger,
		grace:  shutdownGrace,
	}
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
