package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"skiffd/internal/config"
	"skiffd/internal/sdnotify"
)

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
// Hooks for other parts (see addHook): authorization plugins and listener
// policies (issue 12 items 1 and 3) and registry mirrors and insecure
// registries register themselves here, each with a Prepare that validates
// and a commit that swaps.
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

// tlsReloader lets a reload swap the server's TLS configuration (and so
// its certificate and client CAs) for new connections: the listener's
// config hands every handshake the current one through GetConfigForClient.
// Established connections finished their handshake and are untouched.
type tlsReloader struct {
	cur atomic.Pointer[tls.Config]
}

// newTLSReloader returns the reloader and the config to give listeners:
// a clone of tc (so the start-up checks still see its client
// authentication) that defers each handshake to the current config.
func newTLSReloader(tc *tls.Config) (*tlsReloader, *tls.Config) {
	if tc == nil {
		return nil, nil
	}
	r := &tlsReloader{}
	r.cur.Store(tc)
	base := tc.Clone()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.cur.Load(), nil }
	return r, base
}
