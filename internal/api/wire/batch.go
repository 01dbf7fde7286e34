package wire

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// BatchConn is a unix socket connection of the API server that can send a
// whole response in one write (issue 13, list rate): net/http writes a
// response of more than its 4 KiB buffer in two writes (the buffer, with
// the headers, then the rest of the body), and each write wakes the client
// and, when the client has read it, the daemon's network poller. In a batch
// (WriteWhole), writes of up to batchSize bytes are copied and held, and
// the next larger write goes out together with them in one writev;
// whatever is still held is sent when the batch ends, and in any case
// before the connection's read deadline changes (which net/http does when
// a response is finished) or its writing side is shut. Outside a batch it
// is the connection itself.
//
// Only the goroutine serving the connection batches, and no lock is held
// while writing: a Close from another goroutine (shutdown) never waits for
// a stuck client. It embeds *net.UnixConn, so that its methods (CloseWrite,
// SyscallConn) stay available to hijacked streams; NetConn returns the
// connection.
type BatchConn struct {
	*net.UnixConn

	batching atomic.Bool
	mu       sync.Mutex
	held     []byte // nil while a write of it is under way
}

// batchSize bounds the writes a batch holds: net/http's buffer flushes
// (4 KiB) and smaller. A larger write is a body written past the buffer,
// sent at once with what is held.
const batchSize = 4 << 10

// NewBatchConn wraps c.
func NewBatchConn(c *net.UnixConn) *BatchConn { return &BatchConn{UnixConn: c} }

// NetConn returns the underlying connection, as tls.Conn's NetConn does.
func (c *BatchConn) NetConn() net.Conn { return c.UnixConn }

// Write writes p, or holds a copy of it in a batch.
func (c *BatchConn) Write(p []byte) (int, error) {
	if !c.batching.Load() {
		return c.UnixConn.Write(p)
	}
	c.mu.Lock()
	if len(c.held)+len(p) <= batchSize {
		c.held = append(c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	held := c.take()
	if len(held) == 0 {
		c.give(held)
		return c.UnixConn.Write(p)
	}
	bufs := net.Buffers{held, p}
	n, err := bufs.WriteTo(c.UnixConn)
	c.give(held)
	if n -= int64(len(held)); n < 0 {
		n = 0
	}
	return int(n), err
}

// take takes the held bytes out, with c.mu locked, and unlocks it.
func (c *BatchConn) take() []byte {
	held := c.held
	c.held = nil
	c.mu.Unlock()
	return held
}

// give hands the buffer of held bytes back, emptied, for the next batch.
func (c *BatchConn) give(b []byte) {
	if cap(b) > batchSize {
		return
	}
	c.mu.Lock()
	if c.held == nil {
		c.held = b[:0]
	}
	c.mu.Unlock()
}

// flush sends what a batch holds. An error is left to the next read or
// write on the connection, which fails the same way.
func (c *BatchConn) flush() {
	c.mu.Lock()
	held := c.take()
	if len(held) > 0 {
		c.UnixConn.Write(held)
	}
	c.give(held)
}

// end ends a batch, sending what it holds.
func (c *BatchConn) end() {
	c.flush()
	c.batching.Store(false)
}

// SetReadDeadline sends what a batch holds first: net/http changes the
// read deadline when it has finished a response, before it waits for the
// next request.
func (c *BatchConn) SetReadDeadline(t time.Time) error {
	if c.batching.Load() {
		c.flush()
	}
	return c.UnixConn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline for both directions.
func (c *BatchConn) SetDeadline(t time.Time) error {
	if c.batching.Load() {
		c.flush()
	}
	return c.UnixConn.SetDeadline(t)
}

// CloseWrite sends what a batch holds, then shuts the writing side.
func (c *BatchConn) CloseWrite() error {
	if c.batching.Load() {
		c.flush()
	}
	return c.UnixConn.CloseWrite()
}

// BatchListener wraps the unix socket connections l accepts in BatchConns.
type BatchListener struct{ net.Listener }

// Accept returns the next connection, a *BatchConn when it is a unix one.
func (l BatchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if uc, ok := c.(*net.UnixConn); ok && err == nil {
		return NewBatchConn(uc), nil
	}
	return c, err
}

type batchKey struct{}

// WithBatchConn returns ctx carrying c when it is a *BatchConn; for
// http.Server.ConnContext.
func WithBatchConn(ctx context.Context, c net.Conn) context.Context {
	if bc, ok := c.(*BatchConn); ok {
		return context.WithValue(ctx, batchKey{}, bc)
	}
	return ctx
}

// WriteWhole answers r with status 200, the headers set on w and body,
// with its Content-Length (length, the decimal length of body, shared by
// the caller), in one write when the connection allows it (BatchConn) and
// the whole answer reaches it before WriteWhole returns: net/http sends a
// body beyond its buffer straight to the connection.
func WriteWhole(w http.ResponseWriter, r *http.Request, length []string, body []byte) error {
	w.Header()["Content-Length"] = length
	if bc, ok := r.Context().Value(batchKey{}).(*BatchConn); ok && len(body) > batchSize {
		bc.batching.Store(true)
		defer bc.end()
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}
