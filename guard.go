package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"skiffd/internal/api/wire"
	"skiffd/internal/authz"
	"skiffd/internal/config"
	"skiffd/internal/policy"
)

// Limits on request bodies and streams (issue 12, item 7).
const (
	// maxJSONBody caps the body of every route whose body is a JSON
	// document (create, update, exec, ...): the same 1 MiB that dockerd
	// forwards to authorization plugins, so the answer to an oversized body
	// does not depend on whether a plugin is configured. Routes whose body
	// is a tar stream (load, import, cp in, build) have no cap.
	maxJSONBody = authz.MaxBodySize
	// bodyReadTimeout bounds reading a JSON body, like http.Server's
	// ReadTimeout but only for that: the deadline is cleared once the body
	// is read, so logs -f, events and attach stream on.
	bodyReadTimeout = 30 * time.Second
)

// routeInfo is what the guard knows of a route: its policy group, and
// whether its body is a stream (never buffered, capped or forwarded to
// plugins) and whether it hijacks the connection (counted against the
// stream cap).
type routeInfo struct {
	Group      policy.Group
	StreamBody bool
	Hijack     bool
	// Subs maps a last path segment to the group of the action it selects
	// inside this route (GET /images/{name}/get is images:save).
	Subs map[string]policy.Group
}

// group is the policy group of r on this route.
func (info routeInfo) group(r *http.Request) policy.Group {
	if info.Subs != nil {
		p := r.URL.Path
		if g, ok := info.Subs[p[strings.LastIndexByte(p, '/')+1:]]; ok {
			return g
		}
	}
	return info.Group
}

// guards is the daemon's reloadable request-guarding state: the
// authorization plugin chain and each listener's policy, each behind an
// atomic pointer so a reload swaps them without a lock on the request path.
// Requests already past the guard finish under the state they started with.
type guards struct {
	logger  *slog.Logger
	authz   atomic.Pointer[authz.Chain]
	streams atomic.Int64 // hijacked streams running
	// maxStreams caps streams; 0 means no cap.
	maxStreams atomic.Int64
	listeners  map[string]*listenerGuard // by listenAddr.Key(); fixed after start
	// bodyTimeout bounds reading a JSON body (bodyReadTimeout; tests
	// shorten it). Set before serving.
	bodyTimeout time.Duration
}

// listenerGuard is one listener's view: its policy and the shared state.
type listenerGuard struct {
	*guards
	policy atomic.Pointer[policy.Policy]
}

type guardKey struct{}

// newGuards builds the guard state for the listeners' addresses.
func newGuards(logger *slog.Logger, chain *authz.Chain, maxStreams int, addrs []listenAddr) *guards {
	g := &guards{logger: logger, listeners: map[string]*listenerGuard{}, bodyTimeout: bodyReadTimeout}
	g.authz.Store(chain)
	g.maxStreams.Store(int64(maxStreams))
	for _, a := range addrs {
		lg := &listenerGuard{guards: g}
		p := a.Policy()
		lg.policy.Store(&p)
		g.listeners[a.Key()] = lg
	}
	return g
}

// authzChain builds the plugin chain cfg names (an empty chain when none).
func authzChain(cfg *config.Config, logger *slog.Logger) (*authz.Chain, error) {
	var dirs authz.Dirs
	if cfg.PluginDir != "" {
		dirs.Sockets, dirs.Specs = cfg.PluginDir, []string{cfg.PluginDir}
	}
	return authz.NewChain(cfg.AuthorizationPlugins, dirs, logger)
}

// withListener returns ctx carrying the guard of the listener at a; the
// server calls it once per listener (BaseContext).
func (g *guards) withListener(ctx context.Context, a listenAddr) context.Context {
	if g == nil {
		return ctx
	}
	lg := g.listeners[a.Key()]
	if lg == nil {
		return ctx
	}
	return context.WithValue(ctx, guardKey{}, lg)
}

// Reload swaps in a new plugin chain, stream cap and listener policies
// (SIGHUP). policies maps listenAddr.Key() (the address without its
// options) to the listener's new policy; listeners not named keep theirs,
// and a policy for an address that is not listening is an error (listeners
// are not opened or closed by a reload). Nothing is swapped on error. The
// old chain is closed; requests already running under it finish.
func (g *guards) Reload(chain *authz.Chain, maxStreams int, policies map[string]policy.Policy) error {
	for k := range policies {
		if g.listeners[k] == nil {
			return fmt.Errorf("reload: no listener %s: listeners cannot be added by a reload", k)
		}
	}
	for k, p := range policies {
		p := p
		g.listeners[k].policy.Store(&p)
	}
	g.maxStreams.Store(int64(maxStreams))
	if old := g.authz.Swap(chain); old != nil && old != chain {
		old.Close()
	}
	return nil
}

// guardRoute wraps one route's handler with, in order: the listener's
// policy, the stream cap, the body cap and read deadline, and the
// authorization plugins. Requests on a connection that carries no guard
// (tests that build the handler alone) go straight to the handler.
func guardRoute(info routeInfo, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lg, _ := r.Context().Value(guardKey{}).(*listenerGuard)
		if lg == nil {
			next.ServeHTTP(w, r)
			return
		}
		if p := lg.policy.Load(); p != nil {
			if err := p.Check(r.Method, info.group(r)); err != nil {
				wire.WriteError(w, http.StatusForbidden, err.Error())
				return
			}
		}
		if info.Hijack {
			n := lg.streams.Add(1)
			defer lg.streams.Add(-1)
			if max := lg.maxStreams.Load(); max > 0 && n > max {
				wire.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("too many concurrent attach and exec streams (limit %d); try again later", max))
				return
			}
		}
		chain := lg.authz.Load()
		var body []byte
		if !info.StreamBody && r.ContentLength != 0 {
			var err error
			body, err = readBody(w, r, lg.bodyTimeout)
			if err != nil {
				var tooLarge authz.BodyTooLarge
				if errors.As(err, &tooLarge) {
					msg := fmt.Sprintf("request body too large: size exceeds %d bytes", maxJSONBody)
					if chain.Len() > 0 {
						msg = err.Error() // dockerd's words when a plugin is configured
					}
					wire.WriteError(w, http.StatusRequestEntityTooLarge, msg)
				} else {
					wire.WriteError(w, http.StatusBadRequest, "error reading request body: "+err.Error())
				}
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		if chain.Len() == 0 {
			next.ServeHTTP(w, r)
			return
		}
		chain.Serve(w, r, body, !info.StreamBody, next, writeGuardError)
	})
}

// readBody reads a JSON body whole, under bodyReadTimeout, refusing one
// over maxJSONBody. Reading it whole before anything else runs is what
// makes the body an authorization plugin judges the very bytes the handler
// decodes, whatever the framing (Content-Length, chunked).
func readBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err == nil && len(b) > maxJSONBody {
		err = authz.BodyTooLarge{}
	}
	if err != nil {
		// The rest of the body is not wanted: keep the deadline in the
		// past so the server does not wait for it before answering, and
		// do not reuse the connection.
		rc.SetReadDeadline(time.Now())
		w.Header().Set("Connection", "close")
		return nil, err
	}
	rc.SetReadDeadline(time.Time{})
	return b, nil
}

// writeGuardError writes the answer to an authorization failure: 403 for
// a plugin's refusal, 500 for a plugin that failed, as dockerd.
func writeGuardError(w http.ResponseWriter, err error) {
	var denied *authz.Denied
	if errors.As(err, &denied) {
		wire.WriteError(w, http.StatusForbidden, err.Error())
		return
	}
	wire.WriteError(w, http.StatusInternalServerError, err.Error())
}
