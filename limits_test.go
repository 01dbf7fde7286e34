package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/websocket"
)

// attachContainers answers attach by echoing: a greeting on stdout and
// stderr, then stdin back on stdout until the client stops. hold, when
// set, keeps the stream open until it closes.
type attachContainers struct {
	fakeContainers
	hold     chan struct{}
	attached chan struct{}
}

func (c attachContainers) ContainerAttach(ctx context.Context, name string, cfg *types.AttachConfig) error {
	in, out, errw, err := cfg.GetStreams(false)
	if err != nil {
		return err
	}
	defer in.Close()
	if c.attached != nil {
		c.attached <- struct{}{}
	}
	if c.hold != nil {
		<-c.hold
		return nil
	}
	io.WriteString(out, "hello\n")
	io.WriteString(errw, "oops\n")
	_, err = io.Copy(out, in)
	return err
}

// serveTest runs the full server (middlewares, guards) on a unix socket.
func serveTest(t *testing.T, b backends, maxStreams int, tweak ...func(*guards)) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	a := listenAddr{Proto: "unix", Addr: sock}
	srv := &apiServer{
		handler: newHandler(newRouter(b, logger), handlerOptions{Logger: logger, ServerHeader: "Docker/test (linux)"}),
		logger:  logger, grace: time.Second,
		guards: newGuards(logger, nil, maxStreams, []listenAddr{a}),
	}
	for _, f := range tweak {
		f(srv.guards)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, []apiListener{{Listener: l, Addr: a}}) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

// wsClient is a minimal RFC 6455 client: it masks what it sends, as a
// client must.
type wsClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialWS(t *testing.T, sock, path string) (*wsClient, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	k := make([]byte, 16)
	rand.Read(k)
	key := base64.StdEncoding.EncodeToString(k)
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && resp.Header.Get("Sec-WebSocket-Accept") != websocket.Accept(key) {
		t.Fatalf("Sec-WebSocket-Accept = %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), websocket.Accept(key))
	}
	return &wsClient{c: c, br: br}, resp
}

func (w *wsClient) send(op byte, p []byte) {
	var mask [4]byte
	rand.Read(mask[:])
	hdr := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		hdr = append(hdr, 0x80|byte(len(p)))
	case len(p) <= 0xFFFF:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(p)))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(p)))
	}
	hdr = append(hdr, mask[:]...)
	m := make([]byte, len(p))
	for i := range p {
		m[i] = p[i] ^ mask[i%4]
	}
	w.c.Write(append(hdr, m...))
}

func (w *wsClient) recv(t *testing.T) (op byte, p []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatalf("server frame is masked")
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(w.br, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(w.br, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	p = make([]byte, n)
	if _, err := io.ReadFull(w.br, p); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0F, p
}

func TestAttachWebsocket(t *testing.T) {
	b := testBackends()
	b.Container = attachContainers{}
	sock := serveTest(t, b, 0)

	for _, tt := range []struct {
		version string
		op      byte
	}{{"/v1.50", 2}, {"/v1.27", 1}, {"", 2}} {
		t.Run("version"+tt.version, func(t *testing.T) {
			ws, resp := dialWS(t, sock, tt.version+"/containers/c1/attach/ws?stream=1&stdin=1&stdout=1&stderr=1")
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake answer = %s", resp.Status)
			}
			var got string
			for len(got) < len("hello\noops\n") {
				op, p := ws.recv(t)
				if op != tt.op {
					t.Fatalf("frame opcode = %d, want %d", op, tt.op)
				}
				got += string(p)
			}
			if got != "hello\noops\n" {
				t.Fatalf("output = %q, want raw (not multiplexed) stdout and stderr", got)
			}
			// Ping is answered with the same payload.
			ws.send(0x9, []byte("are you there"))
			if op, p := ws.recv(t); op != 0xA || string(p) != "are you there" {
				t.Fatalf("ping answer = %d %q, want pong", op, p)
			}
			// Input in two frames, one large, comes back as one stream.
			big := strings.Repeat("x", 70000)
			ws.send(0x2, []byte("echo "))
			ws.send(0x1, []byte(big))
			want := "echo " + big
			got = ""
			for len(got) < len(want) {
				_, p := ws.recv(t)
				got += string(p)
			}
			if got != want {
				t.Fatalf("echo = %d bytes, want %d", len(got), len(want))
			}
			// Close: the server echoes the close and ends the stream.
			ws.send(0x8, []byte{0x03, 0xE8})
			if op, p := ws.recv(t); op != 0x8 || len(p) < 2 || binary.BigEndian.Uint16(p) != 1000 {
				t.Fatalf("close answer = %d %v", op, p)
			}
			if _, err := ws.br.ReadByte(); err != io.EOF {
				t.Fatalf("after close: %v, want the connection closed", err)
			}
		})
	}

	t.Run("unmasked frame", func(t *testing.T) {
		ws, _ := dialWS(t, sock, "/v1.50/containers/c1/attach/ws?stream=1&stdin=1&stdout=1")
		ws.recv(t)
		ws.recv(t)
		ws.c.Write([]byte{0x82, 0x01, 'x'})
		if op, p := ws.recv(t); op != 0x8 || binary.BigEndian.Uint16(p) != 1002 {
			t.Fatalf("answer to an unmasked frame = %d %v, want close 1002", op, p)
		}
	})

	t.Run("not a websocket", func(t *testing.T) {
		c, _ := net.Dial("unix", sock)
		defer c.Close()
		io.WriteString(c, "GET /v1.50/containers/c1/attach/ws HTTP/1.1\r\nHost: d\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("plain GET = %v %v, want 400", resp, err)
		}
	})
}

func TestStreamCap(t *testing.T) {
	b := testBackends()
	hold := make(chan struct{})
	attached := make(chan struct{}, 4)
	b.Container = attachContainers{hold: hold, attached: attached}
	sock := serveTest(t, b, 2)
	defer close(hold)
	for range 2 {
		ws, resp := dialWS(t, sock, "/v1.50/containers/c1/attach/ws?stream=1&stdout=1")
		if resp.StatusCode != 101 {
			t.Fatalf("stream within the cap: %s", resp.Status)
		}
		_ = ws
		<-attached
	}
	_, resp := dialWS(t, sock, "/v1.50/containers/c1/attach/ws?stream=1&stdout=1")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too many concurrent attach and exec streams (limit 2)") {
		t.Fatalf("third stream = %s %s, want 429", resp.Status, body)
	}
	// A plain request is not a stream and is still served.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", sock)
	}}}
	r, err := c.Get("http://d/v1.50/_ping")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("ping with the stream cap reached: %v %v", r, err)
	}
	r.Body.Close()
}

func TestBodyLimits(t *testing.T) {
	b := testBackends()
	var fx authzFixture
	b.Container = recordingContainers{creates: &fx.creates, last: &fx.last}
	sock := serveTest(t, b, 0)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", sock)
	}}}
	big := `{"Image":"busybox","Labels":{"pad":"` + strings.Repeat("x", maxJSONBody) + `"}}`
	resp, err := c.Post("http://d/v1.50/containers/create", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "request body too large: size exceeds 1048576 bytes") || fx.creates.Load() != 0 {
		t.Errorf("oversized create = %d %s (creates %d), want 413 and no create", resp.StatusCode, out, fx.creates.Load())
	}
	// A tar stream route takes more than the JSON cap: the load reaches the
	// backend (whose fake refuses it in-band after reading).
	resp, err = c.Post("http://d/v1.50/images/load", "application/x-tar", strings.NewReader(strings.Repeat("y", 3*maxJSONBody)))
	if err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), "fake: no load") {
		t.Errorf("large load = %d %s, want it streamed to the backend", resp.StatusCode, out)
	}
}

// TestBodyReadDeadline: a JSON body that trickles in is cut off at the
// deadline, while a stream that outlives the deadline (events) goes on.
func TestBodyReadDeadline(t *testing.T) {
	b := testBackends()
	var fx authzFixture
	b.Container = recordingContainers{creates: &fx.creates, last: &fx.last}
	live := make(chan types.EventMessage)
	b.Events = &fakeBackend{live: live}
	const timeout = 300 * time.Millisecond
	sock := serveTest(t, b, 0, func(g *guards) { g.bodyTimeout = timeout })

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Image\":")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("slow body: no answer: %v", err)
	}
	if resp.StatusCode != 400 || time.Since(start) < timeout || fx.creates.Load() != 0 {
		t.Fatalf("slow body = %s after %v (creates %d), want 400 after >= %v", resp.Status, time.Since(start), fx.creates.Load(), timeout)
	}

	// events with a (small) body: the deadline is cleared once it is read.
	ec, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	io.WriteString(ec, "GET /v1.50/events HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	br := bufio.NewReader(ec)
	ec.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events = %v %v", resp, err)
	}
	events := bufio.NewReader(resp.Body)
	deadline := time.Now().Add(3 * timeout)
	for time.Now().Before(deadline) {
		select {
		case live <- types.EventMessage{Type: "container", Action: "start", TimeNano: time.Now().UnixNano()}:
		case <-time.After(10 * time.Second):
			t.Fatal("events stream stopped taking events")
		}
		line, err := events.ReadString('\n')
		if err != nil || !strings.Contains(line, `"start"`) {
			t.Fatalf("event after %v: %q %v; the stream was cut", time.Since(start), line, err)
		}
	}
}
