package wire

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDetach: after Detach the handler returns; the stream's chunks and
// its end reach the client as net/http's own chunked body would, with the
// headers the handler set; a client that goes away ends the stream (its
// OnClose funcs run) with no goroutine waiting on it; a client that does
// not read holds back nobody: Send returns at once and queues.
func TestDetach(t *testing.T) {
	streams := make(chan *DetachedStream, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		ds, err := Detach(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		streams <- ds
	}))
	defer srv.Close()

	t.Run("chunks and end", func(t *testing.T) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		ds := <-streams
		ds.Send([]byte(`{"a":1}` + "\n"))
		ds.Send(nil) // nothing: an empty chunk would end the body
		ds.Send([]byte(`{"b":2}` + "\n"))
		ds.End()
		if err := ds.Send([]byte("late")); err != ErrStreamClosed {
			t.Errorf("Send after End = %v, want ErrStreamClosed", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != "{\"a\":1}\n{\"b\":2}\n" || resp.Header.Get("Content-Type") != "application/json" || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("body %q, Content-Type %q, Transfer-Encoding %q", body, resp.Header.Get("Content-Type"), resp.TransferEncoding)
		}
	})

	t.Run("raw framing", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		ds := <-streams
		ds.Send([]byte("0123456789abcdefg"))
		ds.End()
		raw, _ := io.ReadAll(conn) // End closes the connection
		_, body, _ := strings.Cut(string(raw), "\r\n\r\n")
		if want := "11\r\n0123456789abcdefg\r\n0\r\n\r\n"; body != want {
			t.Errorf("raw body %q, want %q", body, want)
		}
	})

	t.Run("client gone", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		ds := <-streams
		closed := make(chan struct{})
		ds.OnClose(func() { close(closed) })
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("the stream did not end when its client went away")
		}
		if err := ds.Send([]byte("x")); err != ErrStreamClosed {
			t.Errorf("Send after the client went = %v, want ErrStreamClosed", err)
		}
	})

	t.Run("stuck client", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		ds := <-streams
		defer ds.Abort()
		// The client reads nothing: the socket's buffers fill, and the
		// rest waits in the stream's backlog; no Send blocks.
		chunk := make([]byte, 64<<10)
		for ds.Backlog() == 0 {
			if err := ds.Send(chunk); err != nil {
				t.Fatal(err)
			}
		}
		idle := make(chan struct{}, 1)
		ds.OnIdle(func() { idle <- struct{}{} })
		go io.Copy(io.Discard, conn)
		select {
		case <-idle:
		case <-time.After(30 * time.Second):
			t.Fatal("the backlog was not written once the client read")
		}
		if n := ds.Backlog(); n != 0 {
			t.Errorf("backlog %d after OnIdle", n)
		}
	})
}

// TestDetachRefused: HTTP/1.0 (no chunked bodies) and HEAD (no body)
// responses are not detached; the handler serves them itself.
func TestDetachRefused(t *testing.T) {
	errs := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		ds, err := Detach(w, r)
		if err == nil {
			ds.Abort()
		}
		errs <- err
	}))
	defer srv.Close()
	for _, req := range []string{"GET / HTTP/1.0\r\n\r\n", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, req)
		if err := <-errs; err == nil {
			t.Errorf("%q: detached", req)
		}
		conn.Close()
	}
}

// TestDetachedStreamClientBehind: a producer that sends a batch each time
// the client has taken the backlog (a logs -f follower whose client is
// behind: it pauses at a backlog and goes on from OnIdle) is served by one
// writer goroutine for the whole stream, and its batches travel in pooled
// frame buffers. Issue 13: a goroutine a batch, and a new buffer a batch,
// made such a stream the daemon's main allocator.
func TestDetachedStreamClientBehind(t *testing.T) {
	const batches = 200
	batch := bytes.Repeat([]byte("0123456789abcde\n"), 70<<10/16) // a logs batch: just over 64 KiB
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		ds, err := Detach(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		// OnIdle runs on the writer goroutine, which can drain the
		// backlog and call it while the first call below still runs:
		// a producer serialises itself, as the logs follower does.
		var mu sync.Mutex
		sent := 0
		produce := func() {
			mu.Lock()
			defer mu.Unlock()
			for sent < batches {
				if ds.Send(batch) != nil {
					return
				}
				sent++
				if ds.Backlog() > 0 {
					return // OnIdle goes on
				}
			}
			ds.End()
		}
		ds.OnIdle(produce)
		produce()
	})
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener = l
	// A small send buffer: every batch leaves a backlog.
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		c.(*net.UnixConn).SetWriteBuffer(16 << 10)
		return ctx
	}
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 16<<10)
	samples := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	created0, allocs0 := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var body int
	for {
		n, err := conn.Read(buf)
		body += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", body, err)
		}
	}
	metrics.Read(samples)
	created, allocs := samples[0].Value.Uint64()-created0, samples[1].Value.Uint64()-allocs0
	if want := batches * len(batch); body < want {
		t.Fatalf("the client got %d bytes, want more than %d", body, want)
	}
	// The connection's own goroutine, the first backlog's writer and
	// a few of the runtime's or net/http's.
	if created > 8 {
		t.Errorf("%d goroutines were started for a stream of %d batches, want at most 8", created, batches)
	}
	limit := uint64(batches << 10)
	if raceEnabled {
		limit = uint64(batches * len(batch) / 2)
	}
	if allocs > limit {
		t.Errorf("a stream of %d batches of %d bytes allocated %d bytes, want at most %d", batches, len(batch), allocs, limit)
	}
}

// TestDetachWatchEndedWhateverTheOrder: the watch on a stream's socket is
// ended once whichever comes first: the stream ending after the watch is
// in place, or the stream having ended (the client gone, Abort run on the
// watcher's goroutine) before the watch's stop is known.
func TestDetachWatchEndedWhateverTheOrder(t *testing.T) {
	for _, abortFirst := range []bool{false, true} {
		a, b := net.Pipe()
		defer b.Close()
		s := &DetachedStream{conn: a}
		stops := 0
		if abortFirst {
			s.Abort()
		}
		s.watching(func() { stops++ })
		if !abortFirst {
			if stops != 0 {
				t.Errorf("the watch ended while the stream runs")
			}
			s.Abort()
		}
		s.Abort() // a second end changes nothing
		if stops != 1 {
			t.Errorf("abort first %v: the watch was ended %d times, want once", abortFirst, stops)
		}
	}
}
