package fluentd

import (
	"bufio"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"skiffd/internal/runtime/fluentd/fluentdtest"
	"skiffd/internal/runtime/partial"
)

func TestMessage(t *testing.T) {
	w, err := Dial(Config{Network: "tcp", Address: "127.0.0.1:1", Async: true, Tag: "web.abc",
		Record: map[string]string{"container_id": "abc123", "container_name": "/web", "env1": "v", "source": "mine"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	at := time.Unix(1796690000, 123456789)
	long := strings.Repeat("x", 70000)
	for _, tc := range []struct {
		line, ack, want string
		sub             bool
	}{
		{"hello\n", "", "hello", false},
		{"no newline", "", "no newline", true},
		{long + "\n", "Zm9v", long, false},
	} {
		w.cfg.SubSecond = tc.sub
		b := w.Message(nil, "stderr", []byte(tc.line), at, tc.ack, partial.Meta{})
		v, err := fluentdtest.Decode(bufio.NewReader(strings.NewReader(string(b) + "trailer")))
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		a, ok := v.([]any)
		if !ok || len(a) != 4 {
			t.Fatalf("message %#v, want an array of 4", v)
		}
		if a[0] != "web.abc" {
			t.Errorf("tag %v", a[0])
		}
		if tc.sub {
			if tm, ok := a[1].(time.Time); !ok || !tm.Equal(at) {
				t.Errorf("time %v, want EventTime %v", a[1], at)
			}
		} else if a[1] != at.Unix() {
			t.Errorf("time %v, want %d", a[1], at.Unix())
		}
		wantRec := map[string]any{"container_id": "abc123", "container_name": "/web", "source": "mine", "log": tc.want, "env1": "v"}
		if !reflect.DeepEqual(a[2], wantRec) {
			t.Errorf("record %v, want %v", a[2], wantRec)
		}
		wantOpt := map[string]any{}
		if tc.ack != "" {
			wantOpt["chunk"] = tc.ack
		}
		if !reflect.DeepEqual(a[3], wantOpt) {
			t.Errorf("option %v, want %v", a[3], wantOpt)
		}
	}
}

// TestSendTCPAndUnix: lines go one message each, over TCP and a unix
// socket, acknowledged when asked; a wrong acknowledgement fails the send
// and the next line goes on a new connection.
func TestSendTCPAndUnix(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "fluent.sock")
			}
			s := fluentdtest.Serve(t, network, addr)
			w, err := Dial(Config{Network: network, Address: s.Ln.Addr().String(), Tag: "t", RequestAck: true,
				Record: map[string]string{"container_id": "id"}})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for _, l := range []string{"one\n", "two\n", "", "\n", "three"} {
				if err := w.Send("stdout", []byte(l)); err != nil {
					t.Fatalf("send %q: %v", l, err)
				}
			}
			for _, want := range []string{"one", "two", "three"} {
				if got := s.Next(t); got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			}
			a := <-s.Msgs
			if opt := a[3].(map[string]any); len(opt["chunk"].(string)) != 24 {
				t.Errorf("chunk ID %q, want 16 bytes in base64", opt["chunk"])
			}
			s.Mangle.Store(true)
			if err := w.Send("stdout", []byte("four\n")); err == nil || !strings.Contains(err.Error(), "acknowledgement") {
				t.Errorf("send with a wrong acknowledgement: %v", err)
			}
			s.Mangle.Store(false)
			if err := w.Send("stdout", []byte("five\n")); err != nil {
				t.Errorf("send after a wrong acknowledgement: %v", err)
			}
			for _, want := range []string{"four", "four", "five"} {
				if got := s.Next(t); got != want {
					t.Errorf("got %q, want %q (the failed one is sent again once, on a new connection)", got, want)
				}
			}
			if n := s.Conns.Load(); n != 3 {
				t.Errorf("%d connections, want 3 (a new one after each failure)", n)
			}
		})
	}
}

// TestDialRefused: without fluentd-async a start fails when no server
// answers, with the dial's own words (as dockerd's); a server that goes
// away costs lines, not a hang.
func TestDialRefused(t *testing.T) {
	s := fluentdtest.Serve(t, "tcp", "127.0.0.1:0")
	addr := s.Ln.Addr().String()
	w, err := Dial(Config{Network: "tcp", Address: addr, Tag: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s.Ln.Close()
	_, err = Dial(Config{Network: "tcp", Address: addr, Tag: "t"})
	if want := "dial tcp " + addr + ": connect: connection refused"; err == nil || err.Error() != want {
		t.Errorf("dial to a closed port: %v, want %q", err, want)
	}
	// The server's side of the open connection: gone.
	w.mu.Lock()
	w.conn.Close()
	w.mu.Unlock()
	if err := w.Send("stdout", []byte("lost\n")); err == nil {
		t.Error("send with no server: no error")
	}
}

// TestAsyncWaitsForServer: with fluentd-async the writer is made with no
// server, lines wait, and they all arrive in order once one answers.
func TestAsyncWaitsForServer(t *testing.T) {
	var up atomic.Bool
	s := fluentdtest.Serve(t, "tcp", "127.0.0.1:0")
	w, err := Dial(Config{Network: "tcp", Address: s.Ln.Addr().String(), Tag: "t", Async: true, RetryWait: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	connect := w.dial
	w.mu.Lock()
	w.dial = func() (net.Conn, error) {
		if !up.Load() {
			return nil, errors.New("down")
		}
		return connect()
	}
	w.mu.Unlock()
	for _, l := range []string{"a\n", "b\n", "c\n"} {
		if err := w.Send("stdout", []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	up.Store(true)
	// The next line after the server is up starts a connection (or
	// finds one on its way), which sends everything in order.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := w.Send("stdout", []byte("d\n")); err != nil {
			t.Fatal(err)
		}
		if s.Conns.Load() > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for _, want := range []string{"a", "b", "c", "d"} {
		if got := s.Next(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestAsyncGivesUpAndReconnects: after MaxRetries failed attempts in a row
// an async writer drops what waits and what comes; with a reconnect
// interval it uses a new connection once the last is that old.
func TestAsyncGivesUpAndReconnects(t *testing.T) {
	w, err := Dial(Config{Network: "tcp", Address: "127.0.0.1:1", Tag: "t", Async: true, RetryWait: time.Nanosecond, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var attempts atomic.Int32
	w.mu.Lock()
	w.dial = func() (net.Conn, error) { attempts.Add(1); return nil, errors.New("down") }
	w.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.Send("stdout", []byte("x\n"))
		w.mu.Lock()
		gaveUp, queued, dialing := w.gaveUp, w.queued, w.dialing
		w.mu.Unlock()
		if gaveUp && !dialing {
			if queued != 0 {
				t.Errorf("%d bytes still wait after giving up", queued)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no giving up after %d attempts", attempts.Load())
		}
		time.Sleep(time.Millisecond)
	}
	w.Send("stdout", []byte("y\n"))
	w.mu.Lock()
	dialing, queued := w.dialing, w.queued
	w.mu.Unlock()
	if n := attempts.Load(); n != 2 || dialing || queued != 0 {
		t.Errorf("after giving up: %d attempts (want 2), dialing %v, %d bytes queued", n, dialing, queued)
	}

	s := fluentdtest.Serve(t, "tcp", "127.0.0.1:0")
	w2, err := Dial(Config{Network: "tcp", Address: s.Ln.Addr().String(), Tag: "t", Async: true, ReconnectInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	for _, l := range []string{"1", "2", "3"} {
		w2.Send("stdout", []byte(l))
		if got := s.Next(t); got != l {
			t.Fatalf("got %q, want %q", got, l)
		}
	}
	if n := s.Conns.Load(); n != 3 {
		t.Errorf("%d connections for 3 lines a reconnect interval apart, want 3", n)
	}
}

// TestPartial: the pieces of a cut line carry dockerd's partial_* fields,
// an empty last piece included; whole lines carry none.
func TestPartial(t *testing.T) {
	s := fluentdtest.Serve(t, "tcp", "127.0.0.1:0")
	w, err := Dial(Config{Network: "tcp", Address: s.Ln.Addr().String(), Tag: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, l := range []string{"whole\n", "cut ", "here\n", "and", "\n"} {
		if err := w.Send("stdout", []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	var recs []map[string]any
	for range 5 {
		select {
		case m := <-s.Msgs:
			recs = append(recs, m[2].(map[string]any))
		case <-time.After(10 * time.Second):
			t.Fatalf("%d messages came, want 5", len(recs))
		}
	}
	if _, ok := recs[0]["partial_id"]; ok {
		t.Errorf("a whole line with partial fields: %v", recs[0])
	}
	for i, want := range []struct{ log, ordinal, last string }{{"cut ", "1", "false"}, {"here", "2", "true"}, {"and", "1", "false"}, {"", "2", "true"}} {
		r := recs[i+1]
		if r["log"] != want.log || r["partial_message"] != "true" || r["partial_ordinal"] != want.ordinal || r["partial_last"] != want.last {
			t.Errorf("piece %d: %v, want %+v", i, r, want)
		}
	}
	if recs[1]["partial_id"] != recs[2]["partial_id"] || recs[3]["partial_id"] == recs[1]["partial_id"] || len(recs[1]["partial_id"].(string)) != 64 {
		t.Errorf("partial IDs %v %v %v", recs[1]["partial_id"], recs[2]["partial_id"], recs[3]["partial_id"])
	}
}
