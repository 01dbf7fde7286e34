package wire

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// unixPair returns the two ends of a unix socket connection, the server's
// wrapped in a BatchConn.
func unixPair(t *testing.T) (*BatchConn, *net.UnixConn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := BatchListener{Listener: l}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	bc, ok := server.(*BatchConn)
	if !ok {
		t.Fatalf("BatchListener accepted a %T, want a *BatchConn", server)
	}
	return bc, client.(*net.UnixConn)
}

// pending reads what the peer has received so far, without waiting for
// more.
func pending(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 1<<16)
	for {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

// TestBatchConnHoldsUntilTheBody: in a batch the small writes (net/http's
// buffer with the headers) reach the peer only together with the next
// large one (the body past the buffer), and what is still held goes out
// when the batch ends, the read deadline changes or the writing side is
// shut; outside a batch every
// write goes out at once.
func TestBatchConnHoldsUntilTheBody(t *testing.T) {
	bc, peer := unixPair(t)
	head := bytes.Repeat([]byte("h"), batchSize)
	body := bytes.Repeat([]byte("b"), 60000)

	bc.batching.Store(true)
	if n, err := bc.Write(head); n != len(head) || err != nil {
		t.Fatalf("Write(head) = %d, %v", n, err)
	}
	if got := pending(t, peer); len(got) != 0 {
		t.Fatalf("the peer got %d bytes before the body was written, want none", len(got))
	}
	if n, err := bc.Write(body); n != len(body) || err != nil {
		t.Fatalf("Write(body) = %d, %v; want %d", n, err, len(body))
	}
	if got, want := pending(t, peer), append(head, body...); !bytes.Equal(got, want) {
		t.Fatalf("the peer got %d bytes, want the head and the body (%d)", len(got), len(want))
	}
	bc.Write([]byte("tail"))
	if got := pending(t, peer); len(got) != 0 {
		t.Fatalf("the peer got %q before the batch ended", got)
	}
	bc.end()
	if got := string(pending(t, peer)); got != "tail" {
		t.Fatalf("after the batch ended the peer got %q, want tail", got)
	}
	if _, err := bc.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if got := string(pending(t, peer)); got != "now" {
		t.Fatalf("outside a batch the peer got %q, want now", got)
	}

	bc.batching.Store(true)
	bc.Write([]byte("held"))
	bc.SetReadDeadline(time.Time{})
	if got := string(pending(t, peer)); got != "held" {
		t.Fatalf("after SetReadDeadline the peer got %q, want held", got)
	}
	bc.Write([]byte("last"))
	bc.CloseWrite()
	peer.SetReadDeadline(time.Time{})
	if got, err := io.ReadAll(peer); string(got) != "last" || err != nil {
		t.Fatalf("after CloseWrite the peer read %q, %v; want last", got, err)
	}
}

// TestWriteWholeServes: WriteWhole's answers over a BatchListener, as the
// daemon serves its unix sockets, arrive whole with their length, one after
// the other on one kept-alive connection, whatever their size.
func TestWriteWholeServes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			body := bytes.Repeat([]byte("x"), n)
			w.Header().Set("Content-Type", "application/json")
			if err := WriteWhole(w, r, []string{strconv.Itoa(n)}, body); err != nil {
				t.Error(err)
			}
		}),
		ConnContext: WithBatchConn,
	}
	go srv.Serve(BatchListener{Listener: l})
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, n := range []int{0, 10, batchSize - 200, batchSize, batchSize + 1, 65000, 300000, 65000} {
		req, _ := http.NewRequest("GET", "http://x/?n="+strconv.Itoa(n), nil)
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(n) || len(body) != n || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("n=%d: %d, length %d, %d bytes (%v), type %q", n, resp.StatusCode, resp.ContentLength, len(body), err, resp.Header.Get("Content-Type"))
		}
	}
}

// TestBatchConnCloseDoesNotWaitForAStuckWrite: a batch's write to a client
// that reads nothing blocks, and a Close from another goroutine (the
// server's shutdown) still returns, and ends that write.
func TestBatchConnCloseDoesNotWaitForAStuckWrite(t *testing.T) {
	bc, _ := unixPair(t)
	bc.batching.Store(true)
	bc.Write([]byte("head"))
	written := make(chan error, 1)
	go func() {
		_, err := bc.Write(make([]byte, 64<<20)) // far beyond the socket's buffers
		written <- err
	}()
	select {
	case err := <-written:
		t.Fatalf("a write of 64 MiB that nobody reads returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	closed := make(chan error, 1)
	go func() { closed <- bc.Close() }()
	for _, ch := range []chan error{closed, written} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return, or did not end the stuck write, within 10s")
		}
	}
}
