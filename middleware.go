package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"skiffd/internal/api/wire"
	"skiffd/internal/audit"
	"skiffd/internal/metrics"
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
	mws := []middleware{
		recoverMiddleware(opts.Logger),
		logMiddleware(opts.Logger),
		versionMiddleware(opts.ServerHeader),
	}
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
