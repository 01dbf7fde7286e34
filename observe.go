package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"skiffd/internal/api/system"
	"skiffd/internal/api/types"
	"skiffd/internal/audit"
	"skiffd/internal/config"
	"skiffd/internal/engine"
	"skiffd/internal/metrics"
)

// observer is what issue 12 adds around the API: the audit log, the
// metrics and the reloadable values /info shows. Its fields are read by
// the request path and swapped by reload, hence the atomics.
type observer struct {
	audit   atomic.Pointer[audit.Logger]
	metrics *metrics.Registry // nil without --metrics-addr
	labels  atomic.Pointer[[]string]
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

// auditMiddleware is the chain's audit and metrics hook.
func (o *observer) middleware() middleware {
	var observe audit.Observer
	if o.metrics != nil {
		observe = o.metrics.ObserveRequest
	}
	return audit.Middleware(o.audit.Load, observe)
}

// middlewareIfUsed is middleware, or nil when there is neither an audit
// log nor metrics, so that the chain is as short as before.
func (o *observer) middlewareIfUsed() middleware {
	if o.audit.Load() == nil && o.metrics == nil {
		return nil
	}
	return o.middleware()
}

// connContext names the listener and reads the peer's credentials once per
// connection; only with an audit log, which is the only reader.
func (o *observer) connContext(listener string) func(context.Context, net.Conn) context.Context {
	if o.audit.Load() == nil {
		return nil
	}
	return audit.ConnContext(listener)
}

// auditDropped is the audit log's drop count, 0 without one.
func (o *observer) auditDropped() uint64 {
	if l := o.audit.Load(); l != nil {
		return l.Dropped()
	}
	return 0
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
			// One shim per running or paused container.
			w.Gauge("skiffd_shims", "Container shims (one per running or paused container).", nil,
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

// serveMetrics serves /metrics on addr until ctx ends; errors after start
// are logged, not fatal, as in dockerd.
func serveMetrics(ctx context.Context, addr string, reg *metrics.Registry, logger *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: readHeaderTimeout}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener failed", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Info("metrics listen", "addr", ln.Addr().String())
	return ln.Addr(), nil
}
