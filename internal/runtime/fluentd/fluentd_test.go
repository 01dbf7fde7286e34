package fluentd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// decode reads one MessagePack value: the forms a forward message uses
// (nil, bools, ints, strings, binaries, arrays, maps, fixext8 as
// EventTime), decoded as a server would.
func decode(r *bufio.Reader) (any, error) {
	c, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	n := func(size int) (int, error) {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return 0, err
		}
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return int(v), nil
	}
	str := func(size int, err error) (any, error) {
		if err != nil {
			return nil, err
		}
		b := make([]byte, size)
		_, err = io.ReadFull(r, b)
		return string(b), err
	}
	seq := func(size int, err error, isMap bool) (any, error) {
		if err != nil {
			return nil, err
		}
		if !isMap {
			a := make([]any, size)
			for i := range a {
				if a[i], err = decode(r); err != nil {
					return nil, err
				}
			}
			return a, nil
		}
		m := map[string]any{}
		for range size {
			k, err := decode(r)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("map key %v", k)
			}
			if m[ks], err = decode(r); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	switch {
	case c < 0x80:
		return int64(c), nil
	case c&0xf0 == 0x80:
		return seq(int(c&0x0f), nil, true)
	case c&0xf0 == 0x90:
		return seq(int(c&0x0f), nil, false)
	case c&0xe0 == 0xa0:
		return str(int(c&0x1f), nil)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2, 0xc3:
		return c == 0xc3, nil
	case 0xd9:
		return str(n(1))
	case 0xda:
		return str(n(2))
	case 0xdb:
		return str(n(4))
	case 0xd0, 0xd1, 0xd2, 0xd3:
		v, err := n(1 << (c - 0xd0))
		return int64(v), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := n(1 << (c - 0xcc))
		return int64(v), err
	case 0xdc:
		l, err := n(2)
		return seq(l, err, false)
	case 0xde:
		l, err := n(2)
		return seq(l, err, true)
	case 0xd7:
		typ, err := r.ReadByte()
		if err != nil || typ != 0 {
			return nil, fmt.Errorf("ext type %d, %v", typ, err)
		}
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		return time.Unix(int64(binary.BigEndian.Uint32(b[:4])), int64(binary.BigEndian.Uint32(b[4:]))), nil
	}
	return nil, fmt.Errorf("type %#x", c)
}

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
		sub          bool
	}{
		{"hello\n", "", "hello", false},
		{"no newline", "", "no newline", true},
		{long + "\n", "Zm9v", long, false},
	} {
		w.cfg.SubSecond = tc.sub
		b := w.Message(nil, "stderr", []byte(tc.line), at, tc.ack)
		v, err := decode(bufio.NewReader(strings.NewReader(string(b) + "trailer")))
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

// server is a forward input on ln: it decodes each message, answers the
// chunk IDs it is asked to (wrongly while mangle is set) and passes the
// records' logs on.
type server struct {
	ln     net.Listener
	logs   chan string
	msgs   chan []any
	mangle atomic.Bool
	conns  atomic.Int32
}

func serve(t *testing.T, network, addr string) *server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, logs: make(chan string, 100), msgs: make(chan []any, 100)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.handle(c)
		}
	}()
	return s
}

func (s *server) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		v, err := decode(r)
		if err != nil {
			return
		}
		a, _ := v.([]any)
		if len(a) != 4 {
			return
		}
		s.msgs <- a
		if rec, ok := a[2].(map[string]any); ok {
			s.logs <- fmt.Sprint(rec["log"])
		}
		if opt, ok := a[3].(map[string]any); ok && opt["chunk"] != nil {
			ack := opt["chunk"].(string)
			if s.mangle.Load() {
				ack = "x" + ack
			}
			c.Write(appendStr(appendStr(appendMapHeader(nil, 1), "ack"), ack))
		}
	}
}

func (s *server) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.logs:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no message came")
		return ""
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
			s := serve(t, network, addr)
			w, err := Dial(Config{Network: network, Address: s.ln.Addr().String(), Tag: "t", RequestAck: true,
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
				if got := s.next(t); got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			}
			a := <-s.msgs
			if opt := a[3].(map[string]any); len(opt["chunk"].(string)) != 24 {
				t.Errorf("chunk ID %q, want 16 bytes in base64", opt["chunk"])
			}
			s.mangle.Store(true)
			if err := w.Send("stdout", []byte("four\n")); err == nil || !strings.Contains(err.Error(), "acknowledgement") {
				t.Errorf("send with a wrong acknowledgement: %v", err)
			}
			s.mangle.Store(false)
			if err := w.Send("stdout", []byte("five\n")); err != nil {
				t.Errorf("send after a wrong acknowledgement: %v", err)
			}
			for _, want := range []string{"four", "four", "five"} {
				if got := s.next(t); got != want {
					t.Errorf("got %q, want %q (the failed one is sent again once, on a new connection)", got, want)
				}
			}
			if n := s.conns.Load(); n != 3 {
				t.Errorf("%d connections, want 3 (a new one after each failure)", n)
			}
		})
	}
}

// TestDialRefused: without fluentd-async a start fails when no server
// answers, with the dial's own words (as dockerd's); a server that goes
// away costs lines, not a hang.
func TestDialRefused(t *testing.T) {
	s := serve(t, "tcp", "127.0.0.1:0")
	addr := s.ln.Addr().String()
	w, err := Dial(Config{Network: "tcp", Address: addr, Tag: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s.ln.Close()
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
	s := serve(t, "tcp", "127.0.0.1:0")
	w, err := Dial(Config{Network: "tcp", Address: s.ln.Addr().String(), Tag: "t", Async: true, RetryWait: time.Nanosecond})
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
		if s.conns.Load() > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for _, want := range []string{"a", "b", "c", "d"} {
		if got := s.next(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
