package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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
