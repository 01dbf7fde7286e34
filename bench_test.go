package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/audit"
)

// benchWriter is a ResponseWriter that reuses its header map, so the
// benchmarks below measure the handler chain rather than the recorder.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }

func benchPing(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest("GET", path, nil)
	w := &benchWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkPingBareMux is the baseline: /_ping through a ServeMux alone.
func BenchmarkPingBareMux(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	mux := newRouter(backends{System: &fakeBackend{}, Events: &fakeBackend{}, Image: &fakeBackend{}, Volume: &fakeBackend{}, Container: fakeContainers{}, Exec: fakeExec{}}, logger)
	benchPing(b, mux, "/_ping")
}

// BenchmarkPingChain is /_ping through the full middleware chain
// (recover, log, version, experimental) in front of the same mux.
func BenchmarkPingChain(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	mux := newRouter(backends{System: &fakeBackend{}, Events: &fakeBackend{}, Image: &fakeBackend{}, Volume: &fakeBackend{}, Container: fakeContainers{}, Exec: fakeExec{}}, logger)
	benchPing(b, newHandler(mux, handlerOptions{Logger: logger, ServerHeader: "Docker/bench (linux)"}), "/_ping")
}

// BenchmarkPingChainVersioned adds the /v1.50 prefix the CLI sends.
func BenchmarkPingChainVersioned(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	mux := newRouter(backends{System: &fakeBackend{}, Events: &fakeBackend{}, Image: &fakeBackend{}, Volume: &fakeBackend{}, Container: fakeContainers{}, Exec: fakeExec{}}, logger)
	benchPing(b, newHandler(mux, handlerOptions{Logger: logger, ServerHeader: "Docker/bench (linux)"}), "/v1.50/_ping")
}

// BenchmarkPingUnixSocket serves the full stack on a real unix socket and
// hits it from concurrent keep-alive clients (b.SetParallelism(4) per CPU).
func BenchmarkPingUnixSocket(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	mux := newRouter(backends{System: &fakeBackend{}, Events: &fakeBackend{}, Image: &fakeBackend{}, Volume: &fakeBackend{}, Container: fakeContainers{}, Exec: fakeExec{}}, logger)
	srv := &apiServer{handler: newHandler(mux, handlerOptions{Logger: logger, ServerHeader: "Docker/bench (linux)"}), logger: logger, grace: time.Second}
	l, path := unixTestListener(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, []apiListener{l}) }()
	defer func() {
		cancel()
		<-done
	}()
	client := unixClient(path)
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get("http://skiffd/v1.50/_ping")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkAuditUnixSocket measures the audit log's cost (issue 12): 16
// concurrent keep-alive clients over a real unix socket, on /_ping and GET
// /containers/json, with the audit log off, on (reads pass through: only
// the middleware and the peer lookup per connection), and on with
// --audit-log-reads (every request becomes a JSON line on disk).
func BenchmarkAuditUnixSocket(b *testing.B) {
	for _, path := range []string{"/v1.50/_ping", "/v1.50/containers/json"} {
		for _, mode := range []string{"off", "on", "reads"} {
			b.Run(strings.TrimPrefix(path, "/v1.50/")+"/"+mode, func(b *testing.B) {
				logger := slog.New(slog.DiscardHandler)
				mux := newRouter(backends{System: &fakeBackend{}, Events: &fakeBackend{}, Image: &fakeBackend{}, Volume: &fakeBackend{}, Container: fakeContainers{}, Exec: fakeExec{}}, logger)
				obs := &observer{}
				if mode != "off" {
					lg, err := audit.Open(audit.Options{Path: filepath.Join(b.TempDir(), "audit.log"), Reads: mode == "reads", MaxSize: 100 << 20, MaxFiles: 2})
					if err != nil {
						b.Fatal(err)
					}
					defer lg.Close()
					obs.audit.Store(lg)
				}
				srv := &apiServer{handler: newHandler(mux, handlerOptions{Logger: logger, ServerHeader: "Docker/bench (linux)", Observe: obs.middlewareIfUsed()}),
					logger: logger, grace: time.Second, connContext: obs.connContext}
				var conns atomic.Int64
				if cc := srv.connContext; cc != nil {
					srv.connContext = func(l string) func(context.Context, net.Conn) context.Context {
						f := cc(l)
						if f == nil {
							return func(ctx context.Context, c net.Conn) context.Context { conns.Add(1); return ctx }
						}
						return func(ctx context.Context, c net.Conn) context.Context { conns.Add(1); return f(ctx, c) }
					}
				}
				defer func() { b.ReportMetric(float64(conns.Load()), "conns") }()
				l, sock := unixTestListener(b)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- srv.serve(ctx, []apiListener{l}) }()
				defer func() {
					cancel()
					<-done
				}()
				client := unixClient(sock)
				client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
				// 16 clients whatever GOMAXPROCS is.
				b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				var ru0, ru1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := client.Get("http://skiffd" + path)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
				b.StopTimer()
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				// CPU per request (client and server, this process) is
				// steadier than req/s on a machine shared with other work.
				cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				if lg := obs.audit.Load(); lg != nil && lg.Dropped() > 0 {
					b.ReportMetric(float64(lg.Dropped()), "dropped")
				}
			})
		}
	}
}
