package wire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/stdcopy"
	"skiffd/internal/sys"
)

// Media types of hijacked and log streams. API 1.42+ says which framing a
// stream has; older clients were always sent raw-stream.
const (
	MediaTypeRawStream         = "application/vnd.docker.raw-stream"
	MediaTypeMultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// StreamMediaType is the Content-Type of an attach, exec or logs stream:
// multiplexed framing is announced only to API 1.42+ clients, as dockerd does.
func StreamMediaType(ctx context.Context, tty bool) string {
	if tty || VersionLess(ctx, "1.42") {
		return MediaTypeRawStream
	}
	return MediaTypeMultiplexedStream
}

type hijackKey struct{}

// HijackTracker registers a hijacked connection's closer with the server,
// which calls it at shutdown; the returned func unregisters it.
type HijackTracker func(closeFn func()) (untrack func())

// WithHijackTracker attaches the server's tracker to request contexts.
func WithHijackTracker(ctx context.Context, t HijackTracker) context.Context {
	return context.WithValue(ctx, hijackKey{}, t)
}

// HijackedConn is a connection taken over from net/http for a raw stream.
// Reads first drain what the HTTP server had already buffered (a client may
// send stdin right after its request).
type HijackedConn struct {
	net.Conn
	r       io.Reader
	untrack func()

	hupOnce sync.Once
	hup     <-chan struct{}
	hupStop func()
}

// Hangup returns a channel that is closed when the client has gone away:
// after the take-over the request's context no longer says so, and a read
// cannot either, because clients half-close a stream they have no input
// for. A client's half-close is not a hang-up. Only unix socket clients
// (and reset TCP connections) are told; on other connections the channel
// is never closed.
func (c *HijackedConn) Hangup() <-chan struct{} {
	c.hupOnce.Do(func() {
		nc := c.Conn
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		sc, ok := nc.(syscall.Conn)
		if !ok {
			return
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return
		}
		rc.Control(func(fd uintptr) {
			c.hup, c.hupStop, _ = sys.WatchHangup(int(fd))
		})
	})
	return c.hup
}

func (c *HijackedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection, telling the client no more output
// comes while still reading its stdin.
func (c *HijackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection and stops tracking it.
func (c *HijackedConn) Close() error {
	if c.untrack != nil {
		c.untrack()
	}
	c.hupOnce.Do(func() {}) // no watch can start any more
	if c.hupStop != nil {
		c.hupStop()
	}
	return c.Conn.Close()
}

// Hijack takes over the connection of an attach or exec start request and
// writes the answer header the way dockerd does: "101 UPGRADED" with
// Connection/Upgrade headers when the client asked to upgrade, else the
// legacy "200 OK" after which the raw stream runs until the connection
// closes (no Content-Length, no chunking). withAPIHeaders copies the version
// middleware's headers into the answer (exec does, attach does not).
func Hijack(w http.ResponseWriter, r *http.Request, mediaType string, withAPIHeaders bool) (*HijackedConn, error) {
	var extra http.Header
	if withAPIHeaders {
		extra = w.Header().Clone()
		extra.Del("Content-Type")
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	// Streams last as long as the container; the server's deadlines were
	// meant for the request header.
	conn.SetDeadline(time.Time{})
	upgrade := r.Header.Get("Upgrade") != ""
	if upgrade {
		brw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + mediaType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	} else {
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + mediaType + "\r\n")
	}
	for k, vs := range extra {
		for _, v := range vs {
			brw.WriteString(k + ": " + v + "\r\n")
		}
	}
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	hc := &HijackedConn{Conn: conn, r: io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), conn)}
	if t, ok := r.Context().Value(hijackKey{}).(HijackTracker); ok && t != nil {
		hc.untrack = t(func() { conn.Close() })
	}
	return hc, nil
}

// StreamTakeover is the connection take-over shared by attach and exec
// start: the engine validates first and calls Take only then, so errors
// found before still become ordinary HTTP answers.
type StreamTakeover struct {
	w              http.ResponseWriter
	r              *http.Request
	withAPIHeaders bool
	conn           *HijackedConn
	tty            bool
}

// NewStreamTakeover prepares to take over r's connection.
func NewStreamTakeover(w http.ResponseWriter, r *http.Request, withAPIHeaders bool) *StreamTakeover {
	return &StreamTakeover{w: w, r: r, withAPIHeaders: withAPIHeaders}
}

// Take hijacks the connection and returns the client's input and the
// output writers: raw with a TTY, stdcopy-framed otherwise.
func (s *StreamTakeover) Take(tty bool) (io.ReadCloser, io.Writer, io.Writer, error) {
	c, err := Hijack(s.w, s.r, StreamMediaType(s.r.Context(), tty), s.withAPIHeaders)
	if err != nil {
		return nil, nil, nil, err
	}
	s.conn, s.tty = c, tty
	if tty {
		return c, c, c, nil
	}
	o, e := stdcopy.NewWriters(c)
	return c, o, e, nil
}

// Taken reports whether Take ran: afterwards no HTTP answer can be sent.
func (s *StreamTakeover) Taken() bool { return s.conn != nil }

// Finish reports err in band (a systemerr frame on a multiplexed stream;
// a raw TTY stream has no place for it) and closes the connection.
func (s *StreamTakeover) Finish(err error) {
	if err != nil && !errors.Is(err, io.EOF) && !s.tty && !errors.Is(err, net.ErrClosed) &&
		!strings.Contains(err.Error(), "use of closed network connection") {
		fmt.Fprintf(stdcopy.NewWriter(s.conn, stdcopy.Systemerr), "%v\n", err)
	}
	s.conn.Close()
}

// TrackHijacked registers closeFn with the server's hijack tracker, for
// connections taken over outside Hijack (the websocket attach); the
// returned func unregisters it.
func TrackHijacked(ctx context.Context, closeFn func()) (untrack func()) {
	if t, ok := ctx.Value(hijackKey{}).(HijackTracker); ok && t != nil {
		return t(closeFn)
	}
	return func() {}
}
