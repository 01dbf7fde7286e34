package audit

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"skiffd/internal/api/wire"
)

// Observer is told about every request once it ends (the metrics).
// pattern is the route pattern that served it ("" for none).
type Observer func(pattern string, status int, d time.Duration)

type recordKey struct{}

// record is the per-request state handlers annotate and the middleware
// finishes. Only the request's own goroutine touches it.
type record struct {
	entry   Entry
	resolve Resolver
	pattern string
	logged  bool
	log     bool
}

// Annotate records the object a request acts on; handlers call it as
// wire.Annotate, which finds the record in the request's context. ref is
// an ID or a name as the client gave it, or the full ID the engine
// returned; name may be empty. With a resolver, a reference is resolved
// now, before the handler acts, so that a removal still records the
// object's ID and name.
func (rec *record) Annotate(ctx context.Context, kind, ref, name string) {
	if !rec.log {
		return
	}
	obj := &Object{Kind: kind, ID: ref, Name: name}
	if rec.resolve != nil {
		if id, n, cmd, ok := rec.resolve(ctx, kind, ref); ok {
			obj.ID = id
			if name == "" {
				obj.Name = n
			}
			if cmd != nil && rec.entry.Cmd == nil {
				rec.entry.Cmd = cmd
			}
		}
	}
	rec.entry.Object = obj
}

// AnnotateCmd records an exec's command line (wire.AnnotateCmd).
func (rec *record) AnnotateCmd(cmd []string) {
	if rec.log {
		rec.entry.Cmd = append([]string(nil), cmd...)
	}
}

// SetPattern records the route pattern that served r. The router calls it
// (through PatternRecorder) because middlewares outside the router see a
// copy of the request without the pattern.
func setPattern(r *http.Request) {
	if rec, _ := r.Context().Value(recordKey{}).(*record); rec != nil {
		rec.pattern = r.Pattern
	}
}

// PatternRecorder wraps the router so the route pattern reaches the
// middleware.
func PatternRecorder(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		setPattern(r)
	})
}

// mutating reports whether a request can change state.
func mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// Middleware audits requests to l (nil: no audit log) and reports every
// request to observe (nil: none). It must sit inside the version
// middleware, which strips /v1.NN and records the API version, and outside
// authorization, so that refused requests are audited too.
func Middleware(l func() *Logger, observe Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			lg := l()
			if lg == nil && observe == nil {
				next.ServeHTTP(w, r)
				return
			}
			log := lg != nil && (lg.opts.Reads || mutating(r.Method))
			if !log && observe == nil {
				// A read with reads not audited and no metrics: nothing
				// to record, nothing to allocate.
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			rec := &record{log: log}
			if rec.log {
				rec.resolve = lg.opts.Resolve
			}
			rw := &responseRecorder{ResponseWriter: w, rec: rec, lg: lg, start: start, r: r, observe: observe}
			next.ServeHTTP(rw, r.WithContext(wire.WithAnnotator(context.WithValue(r.Context(), recordKey{}, rec), rec)))
			if rw.detach != nil {
				rw.detach.mu.Lock()
				// The stream outlives net/http's response: keep none
				// of it (its connection's buffers) until it ends.
				rw.ResponseWriter = nil
				rw.detach.mu.Unlock()
				if !rw.detach.handoff() {
					return // the detached stream accounts for itself when it ends
				}
			}
			rw.done(observe)
		})
	}
}

// done reports the request to observe and to the audit log.
func (rw *responseRecorder) done(observe Observer) {
	rec := rw.rec
	status := rw.status
	if status == 0 {
		status = http.StatusOK
		if rw.hijacked {
			status = http.StatusSwitchingProtocols
		}
	}
	d := time.Since(rw.start)
	if observe != nil {
		observe(rec.pattern, status, d)
	}
	if rec.log && !rec.logged {
		rw.finish(status, d)
	}
}

// detachState hands the accounting of a detached stream (wire.Detach) to
// whichever ends last: the handler, which records the route pattern when
// it returns, or the stream.
type detachState struct {
	mu      sync.Mutex
	pending int // of the two
}

// handoff records that one side has ended and reports whether it was the
// last.
func (d *detachState) handoff() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending--
	return d.pending == 0
}

// DetachStream implements wire.StreamDetacher: the request is accounted
// for when its stream ends, with its whole duration and body, as when the
// handler served the stream itself.
func (rw *responseRecorder) DetachStream() func(written int64) {
	rw.detach = &detachState{pending: 2}
	return func(written int64) {
		rw.detach.mu.Lock()
		rw.bytes += written
		rw.detach.mu.Unlock()
		if rw.detach.handoff() {
			rw.done(rw.observe)
		}
	}
}

// responseRecorder counts status and bytes; Unwrap lets
// http.ResponseController reach Flush underneath. Hijack is intercepted so
// the record is enqueued before the stream starts.
type responseRecorder struct {
	http.ResponseWriter
	rec      *record
	lg       *Logger
	r        *http.Request
	start    time.Time
	status   int
	bytes    int64
	hijacked bool
	// detach is set once the handler detached its stream; observe is the
	// middleware's, for a detached stream's end.
	detach  *detachState
	observe Observer
}

func (rw *responseRecorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseRecorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseRecorder) Flush() {
	http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil {
		rw.hijacked = true
		if rw.rec.log && !rw.rec.logged && rw.detach == nil {
			rw.finish(http.StatusSwitchingProtocols, time.Since(rw.start))
		}
	}
	return conn, brw, err
}

func (rw *responseRecorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// finish fills the entry and enqueues it.
func (rw *responseRecorder) finish(status int, d time.Duration) {
	rec := rw.rec
	rec.logged = true
	e := rec.entry // copy: handlers may still annotate after a hijack
	r := rw.r
	e.Time = rw.start.UTC()
	if ci, _ := r.Context().Value(connKey{}).(*connInfo); ci != nil {
		e.Listener = ci.listener
		e.Peer = ci.peer
	} else {
		e.Peer.Addr = r.RemoteAddr
	}
	tlsPeer(&e.Peer, r.TLS)
	e.Method = r.Method
	e.Path = r.URL.Path
	e.Query = r.URL.RawQuery
	e.APIVersion = wire.VersionFrom(r.Context())
	e.Status = status
	e.Bytes = rw.bytes
	e.DurationMS = float64(d.Microseconds()) / 1000
	rw.lg.enqueue(&e)
}
