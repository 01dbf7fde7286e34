package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"skiffd/internal/api/wire"
)

func unixTestListener(t testing.TB) (apiListener, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "skt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return apiListener{Listener: l, Addr: listenAddr{Proto: "unix", Addr: path}}, path
}

// TestGracefulShutdown: at shutdown, long streams end at once, a short
// request in flight still completes, and the socket is closed and removed.
func TestGracefulShutdown(t *testing.T) {
	l, path := unixTestListener(t)
	slowEntered, streamEntered := make(chan struct{}), make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(slowEntered)
		<-release
		w.Write([]byte("done"))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		wire.Flush(w)
		close(streamEntered)
		<-wire.StreamsDone(r.Context())
		w.Write([]byte("bye"))
	})
	srv := &apiServer{handler: mux, logger: slog.New(slog.NewTextHandler(t.Output(), nil)), grace: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, []apiListener{l}) }()

	client := unixClient(path)
	slowResp := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://x/slow")
		if err != nil {
			slowResp <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowResp <- string(b)
	}()
	<-slowEntered
	streamResp, err := client.Get("http://x/stream")
	if err != nil {
		t.Fatal(err)
	}
	<-streamEntered

	cancel() // as SIGTERM would
	b, err := io.ReadAll(streamResp.Body)
	if err != nil || string(b) != "bye" {
		t.Fatalf("stream at shutdown: %q, %v; want it ended with \"bye\"", b, err)
	}
	select {
	case err := <-served:
		t.Fatalf("serve returned (%v) while a request was still in flight", err)
	default:
	}
	close(release)
	if got := <-slowResp; got != "done" {
		t.Errorf("in-flight request = %q, want \"done\"", got)
	}
	if err := <-served; err != nil {
		t.Errorf("serve = %v, want nil after a clean shutdown", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("socket still accepts connections after shutdown")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still present after shutdown: %v", err)
	}
}

// TestShutdownGraceExpires: a request that outlives the grace period has
// its context cancelled instead of holding the daemon forever.
func TestShutdownGraceExpires(t *testing.T) {
	l, path := unixTestListener(t)
	entered := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	srv := &apiServer{handler: mux, logger: slog.New(slog.NewTextHandler(t.Output(), nil)), grace: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, []apiListener{l}) }()
	go unixClient(path).Get("http://x/stuck")
	<-entered
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve = %v, want nil", err)
	}
}

// failingListener fails Accept once asked, like a listener whose fd broke.
type failingListener struct {
	net.Listener
	err error
}

func (f failingListener) Accept() (net.Conn, error) { return nil, f.err }

// TestListenerErrorStopsAll: the first real listener error is returned and
// the other listeners are shut down too.
func TestListenerErrorStopsAll(t *testing.T) {
	good, path := unixTestListener(t)
	bad, _ := unixTestListener(t)
	boom := errors.New("accept: boom")
	bad.Listener = failingListener{Listener: bad.Listener, err: boom}
	srv := &apiServer{handler: http.NotFoundHandler(), logger: slog.New(slog.NewTextHandler(t.Output(), nil)), grace: time.Second}
	err := srv.serve(context.Background(), []apiListener{good, bad})
	if !errors.Is(err, boom) {
		t.Fatalf("serve = %v, want %v", err, boom)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("the healthy listener still accepts after another one failed")
	}
}

// TestHijackedClosedAtShutdown: connections taken over by a handler are
// closed by shutdown, which http.Server.Shutdown alone would not do.
func TestHijackedClosedAtShutdown(t *testing.T) {
	l, path := unixTestListener(t)
	srv := &apiServer{logger: slog.New(slog.NewTextHandler(t.Output(), nil)), grace: time.Second}
	hijacked := make(chan struct{})
	srv.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		buf.Flush()
		untrack := srv.trackHijacked(func() { conn.Close() })
		go func() {
			defer untrack()
			io.Copy(io.Discard, conn)
		}()
		close(hijacked)
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, []apiListener{l}) }()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	<-hijacked
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve = %v", err)
	}
	// Read the upgrade answer, then EOF: the daemon closed the connection.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading hijacked conn: %v", err)
	}
	if len(rest) == 0 {
		t.Error("no upgrade answer on the hijacked connection")
	}
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}
