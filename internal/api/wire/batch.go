package wire

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// BatchConn is a unix socket connection of the API server that can send a
// whole response in one write (issue 13, list rate): net/http writes a
// response of more than its 4 KiB buffer in two writes (the buffer, with
// the headers, then the rest of the body), and each write wakes the client
// and, when the client has read it, the daemon's network poller. Between
// Batch and the func it returns, writes of up to batchSize bytes are
// copied and held, and the next larger write goes out together with them
// in one writev; whatever is still held is sent when the func is called,
// and in any case before the connection's read deadline changes (which
// net/http does when a response is finished) or it closes. Outside a batch
// it is the connection itself.
//
// It embeds *net.UnixConn, so that its methods (CloseWrite, SyscallConn)
// stay available to hijacked streams; NetConn returns the connection.
type BatchConn struct {
	*net.UnixConn

	mu       sync.Mutex
	batching bool
	held     []byte
	// err is the first error of a write made for held bytes after their
	// Write returned: the next Write returns it.
	err error
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.err; err != nil {
		c.err = nil
		return 0, err
	}
	if !c.batching {
		return c.UnixConn.Write(p)
	}
	if len(c.held)+len(p) <= batchSize {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.UnixConn.Write(p)
	}
	bufs := net.Buffers{c.held, p}
	n, err := bufs.WriteTo(c.UnixConn)
	held := len(c.held)
	c.held = c.held[:0]
	if n < int64(held) {
		return 0, err
	}
	return int(n) - held, err
}

// flushLocked sends what a batch holds.
func (c *BatchConn) flushLocked() {
	if len(c.held) == 0 {
		return
	}
	if _, err := c.UnixConn.Write(c.held); err != nil && c.err == nil {
		c.err = err
	}
	c.held = c.held[:0]
}

// end ends a batch, sending what it holds.
func (c *BatchConn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.batching = false
	if cap(c.held) > batchSize {
		c.held = nil
	}
}

// SetReadDeadline sends what a batch holds first: net/http changes the
// read deadline when it has finished a response, before it waits for the
// next request.
func (c *BatchConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	return c.UnixConn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline's counterpart for both directions.
func (c *BatchConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	return c.UnixConn.SetDeadline(t)
}

// Close sends what a batch holds, then closes the connection.
func (c *BatchConn) Close() error {
	c.mu.Lock()
	c.flushLocked()
	c.batching = false
	c.mu.Unlock()
	return c.UnixConn.Close()
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
		bc.mu.Lock()
		bc.batching = true
		bc.mu.Unlock()
		defer bc.end()
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}
