package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/metrics"
)

// makeHTTPHandler adapts an API handler to http.Handler: the one place where
// an error's kind becomes a status code and a {"message": ...} body. Only
// server-side failures (5xx) are logged; a client that went away gets
// nothing written.
func makeHTTPHandler(h wire.HandlerFunc, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		if r.Context().Err() != nil {
			logger.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "error", err)
			return
		}
		status := errdefs.Status(err)
		if status >= 500 {
			logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
		}
		wire.WriteError(w, status, err.Error())
	})
}

// notFound answers every path no route claims, as dockerd's router does: a
// JSON 404 without the version headers (dockerd's fallback sits outside its
// middlewares).
func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { wire.PageNotFound(w) })
}

// Timeouts for every API listener. There is deliberately no WriteTimeout:
// logs -f, events, attach and stats stream for as long as the client wants.
const (
	readHeaderTimeout = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 1 << 20
	shutdownGrace     = 10 * time.Second
)

// apiServer runs one http.Server per listener.
type apiServer struct {
	handler http.Handler
	logger  *slog.Logger
	grace   time.Duration // how long in-flight requests get at shutdown
	guards  *guards       // listener policies, plugins, limits; nil in tests that need none
	// connContext, when set, gives each listener's connections their
	// context (the audit log's peer identity); onReady runs once every
	// listener serves, onStop when shutdown starts (sd_notify).
	connContext     func(listener string) func(context.Context, net.Conn) context.Context
	onReady, onStop func()

	mu       sync.Mutex
	nextID   int
	hijacked map[int]func() // closers for hijacked connections
}

// trackHijacked registers a closer that shutdown calls: http.Server.Shutdown
// does not touch hijacked connections (attach, exec), so they are closed here.
// The returned func unregisters it when the connection ends on its own.
func (s *apiServer) trackHijacked(closeFn func()) (untrack func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hijacked == nil {
		s.hijacked = make(map[int]func())
	}
	id := s.nextID
	s.nextID++
	s.hijacked[id] = closeFn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.hijacked, id)
	}
}

func (s *apiServer) closeHijacked() {
	s.mu.Lock()
	fns := s.hijacked
	s.hijacked = nil
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// serve runs every listener in its own goroutine and fans their errors into
// one channel. It returns when ctx is cancelled (a signal) or a listener
// fails; either way it shuts all servers down: listeners close first, long
// streams are told to end, short requests get s.grace to finish, then
// whatever is left is cut off. A listener closed by shutdown is not an error.
func (s *apiServer) serve(ctx context.Context, listeners []apiListener) error {
	streamsDone := make(chan struct{})
	// Requests outlive the signal that starts shutdown; they are cancelled
	// only if they overrun the grace period.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	baseCtx := wire.WithHijackTracker(wire.WithStreamsDone(reqCtx, streamsDone), s.trackHijacked)

	errLog := slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	for i, l := range listeners {
		lctx := s.guards.withListener(baseCtx, l.Addr)
		srv := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return lctx },
		}
		srv.ConnContext = withConn(s.connContext, l.Addr.String())
		servers[i] = srv
		s.logger.Info("API listen", "addr", l.Addr.String())
		go func() {
			err := srv.Serve(l.Listener)
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
				err = nil
			}
			errc <- err
		}()
	}

	if s.onReady != nil {
		s.onReady()
	}
	var firstErr error
	pending := len(servers)
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down", "reason", context.Cause(ctx))
	case firstErr = <-errc:
		pending--
		if firstErr != nil {
			s.logger.Error("API listener failed", "error", firstErr)
		}
	}

	if s.onStop != nil {
		s.onStop()
	}
	close(streamsDone)
	s.closeHijacked()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(shutdownCtx); err != nil {
				s.logger.Warn("requests still running after grace period; closing them", "error", err)
				cancelReqs()
				srv.Close()
			}
		})
	}
	wg.Wait()
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// withConn is the ConnContext of the listener named listener: it lends the
// handlers the connection when they can batch its writes (wire.WriteWhole),
// then applies connContext's, when there is one.
func withConn(connContext func(listener string) func(context.Context, net.Conn) context.Context, listener string) func(context.Context, net.Conn) context.Context {
	var next func(context.Context, net.Conn) context.Context
	if connContext != nil {
		next = connContext(listener)
	}
	return func(ctx context.Context, c net.Conn) context.Context {
		ctx = wire.WithBatchConn(ctx, c)
		if next != nil {
			ctx = next(ctx, c)
		}
		return ctx
	}
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
