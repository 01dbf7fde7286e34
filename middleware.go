package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"skiffd/internal/api/wire"
	"skiffd/internal/audit"
	"skiffd/internal/authz"
	"skiffd/internal/config"
	"skiffd/internal/memtrim"
	"skiffd/internal/metrics"
	"skiffd/internal/policy"
)

// The API versions skiffd serves. 1.50 is what docker CLI 28.x speaks, so it
// is never told it was "downgraded"; 1.24 is moby v28's floor, the most
// tolerant of old docker-py and compose pins.
const (
	apiVersion    = "1.50"
	minAPIVersion = "1.24"
)

// middleware wraps a handler; the chain is assembled in newHandler.
type middleware func(http.Handler) http.Handler

// chain applies mws so that the first one is the outermost.
func chain(h http.Handler, mws ...middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// recoverMiddleware turns a handler panic into a logged 500 with a JSON body
// instead of a dropped connection. http.ErrAbortHandler keeps its meaning.
func recoverMiddleware(logger *slog.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "handler panic", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				wire.WriteError(w, http.StatusInternalServerError, "internal server error")
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// statusRecorder remembers the status a handler wrote, for the request log.
// Unwrap lets http.ResponseController reach Flush and Hijack underneath.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logMiddleware logs each request at debug level: method, path, status and
// duration. Bodies are never logged (they carry registry credentials and
// environment secrets). When debug logging is off it costs one check.
func logMiddleware(logger *slog.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !logger.Enabled(r.Context(), slog.LevelDebug) {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			status := rec.status
			if status == 0 {
				// A hijacked connection never writes through the recorder.
				status = http.StatusSwitchingProtocols
			}
			logger.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
				"status", status, "duration", time.Since(start))
		})
	}
}

// versionMiddleware strips an optional /v{major}.{minor} prefix, refuses
// versions outside [minAPIVersion, apiVersion] with dockerd's messages,
// records the version in the request context, and sets the headers every
// routed response carries. Unversioned paths mean the current version.
func versionMiddleware(serverHeader string) middleware {
	apiHdr := []string{apiVersion}
	osHdr := []string{"linux"}
	srvHdr := []string{serverHeader}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			// Shared slices under canonical keys: no allocation per request.
			h["Api-Version"] = apiHdr
			h["Ostype"] = osHdr
			h["Server"] = srvHdr
			version, rest, ok := splitVersion(r.URL.Path)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			if wire.CompareVersions(version, minAPIVersion) < 0 {
				// Clients this old expect plain-text errors.
				http.Error(w, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, minAPIVersion), http.StatusBadRequest)
				return
			}
			if wire.CompareVersions(version, apiVersion) > 0 {
				wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, apiVersion))
				return
			}
			r2 := r.WithContext(wire.WithVersion(r.Context(), version))
			u := *r.URL
			u.Path = rest
			if u.RawPath != "" {
				if _, rawRest, ok := splitVersion(u.RawPath); ok {
					u.RawPath = rawRest
				} else {
					u.RawPath = ""
				}
			}
			r2.URL = &u
			next.ServeHTTP(w, r2)
		})
	}
}

// splitVersion splits "/v1.50/containers/json" into "1.50" and
// "/containers/json". Only digits and dots form a version, as in dockerd's
// router, so "/volumes" is not mistaken for one.
func splitVersion(path string) (version, rest string, ok bool) {
	if len(path) < 3 || path[0] != '/' || path[1] != 'v' {
		return "", path, false
	}
	i := 2
	for i < len(path) && (path[i] == '.' || (path[i] >= '0' && path[i] <= '9')) {
		i++
	}
	if i == 2 || i == len(path) || path[i] != '/' {
		return "", path, false
	}
	return path[2:i], path[i:], true
}

// experimentalMiddleware sets Docker-Experimental, which clients read from
// /_ping to decide whether to show experimental commands.
func experimentalMiddleware(enabled bool) middleware {
	v := []string{"false"}
	if enabled {
		v = []string{"true"}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Docker-Experimental"] = v
			next.ServeHTTP(w, r)
		})
	}
}

// corsMiddleware is installed only with --api-cors-header. It adds dockerd's
// CORS headers to every response; preflight OPTIONS requests go on to the
// options route like any other request, as in dockerd.
func corsMiddleware(origin string) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth")
			h.Set("Access-Control-Allow-Methods", "HEAD, GET, POST, DELETE, PUT, OPTIONS")
			next.ServeHTTP(w, r)
		})
	}
}

// newHandler assembles the middleware chain around the router, in the order
// DESIGN.md gives: recover, log, version, experimental, CORS, then any
// authorization middlewares (the hook point for authz plugins).
func newHandler(mux http.Handler, opts handlerOptions) http.Handler {
	var mws []middleware
	if opts.Trim != nil {
		mws = append(mws, trimMiddleware(opts.Trim))
	}
	mws = append(mws,
		recoverMiddleware(opts.Logger),
		logMiddleware(opts.Logger),
		versionMiddleware(opts.ServerHeader),
	)
	if opts.Observe != nil {
		// Inside version (stripped path, API version known), outside
		// authorization (refusals are audited too).
		mws = append(mws, opts.Observe)
		mux = audit.PatternRecorder(mux)
	}
	mws = append(mws, experimentalMiddleware(opts.Experimental))
	switch {
	case opts.CORS != nil:
		mws = append(mws, reloadableCORS(opts.CORS))
	case opts.CORSOrigin != "":
		mws = append(mws, corsMiddleware(opts.CORSOrigin))
	}
	mws = append(mws, opts.Authz...)
	return chain(mux, mws...)
}

// handlerOptions configures newHandler.
type handlerOptions struct {
	Logger       *slog.Logger
	ServerHeader string // e.g. "Docker/28.3.0+skiffd (linux)"
	Experimental bool
	CORSOrigin   string
	// CORS, when set, replaces CORSOrigin with an origin a reload can
	// change ("" for no CORS headers).
	CORS *atomic.Pointer[string]
	// Observe is the audit and metrics middleware (issue 12).
	Observe middleware
	Authz   []middleware
	// Trim, when set, is touched at the end of every request, so that
	// memory goes back to the system once a burst of work is over.
	Trim *memtrim.Trimmer
}

// trimMiddleware touches t when a request ends (a hijacked stream: when it
// closes).
func trimMiddleware(t *memtrim.Trimmer) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer t.Touch()
			next.ServeHTTP(w, r)
		})
	}
}

// reloadableCORS is corsMiddleware with the origin read per request.
func reloadableCORS(origin *atomic.Pointer[string]) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if o := origin.Load(); o != nil && *o != "" {
				corsMiddleware(*o)(next).ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// observer is what issue 12 adds around the API: the audit log, the
// metrics and the reloadable values /info shows. Its fields are read by
// the request path and swapped by reload, hence the atomics.
type observer struct {
	audit   atomic.Pointer[audit.Logger]
	metrics *metrics.Registry // nil without --metrics-addr
	labels  atomic.Pointer[[]string]
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
	if err := g.checkPolicies(policies); err != nil {
		return err
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

// checkPolicies refuses policies for addresses that are not listening: a
// reload changes what listeners allow, never which listeners there are.
func (g *guards) checkPolicies(policies map[string]policy.Policy) error {
	for k := range policies {
		if !g.listening(k) {
			return fmt.Errorf("reload: no listener %s: listeners cannot be added by a reload", k)
		}
	}
	return nil
}

// listening reports whether a listener has key (listenAddr.Key).
func (g *guards) listening(key string) bool { return g.listeners[key] != nil }
