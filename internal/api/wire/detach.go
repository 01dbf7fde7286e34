package wire

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	"skiffd/internal/sys"
)

// ErrStreamClosed is what Send returns once a detached stream has ended.
var ErrStreamClosed = errors.New("stream closed")

// StreamDetacher is implemented by a ResponseWriter in the middleware chain
// that accounts for a response when its handler returns (the audit log and
// the metrics): a detached stream outlives its handler, so Detach tells it
// and calls the returned func when the stream has ended, with the body
// bytes sent after the detach.
type StreamDetacher interface {
	DetachStream() (end func(written int64))
}

// DetachedStream is a chunked HTTP response that no goroutine serves while
// it is idle (issue 13, memory per stream: the connection goroutine of an
// open events, stats or logs stream held 16 KiB+ of stack, and net/http
// its 4 KiB buffers). After Detach, the handler returns; whoever produces
// the stream's data (the event bus, the stats collector) calls Send, which
// writes at once without blocking when the socket takes it, and otherwise
// queues the rest for a goroutine that lives only while there is such a
// backlog: a slow or stuck client never holds up the producer. The client
// going away (closing, or half-closing, as for any response net/http
// serves) ends the stream, noticed by one epoll shared by all of them.
//
// What the client sees is what net/http sends: the headers net/http wrote,
// then each Send's bytes as one chunk, then, on End, the last chunk.
type DetachedStream struct {
	conn net.Conn
	raw  syscall.RawConn // nil: every write goes through the writer goroutine

	mu      sync.Mutex
	pending []byte // framed bytes not written yet
	// spare is the pooled frame buffer pending was cut from or appended
	// to, put back once the writer goroutine has written pending (nil:
	// none). Without it a client that is behind (logs -f) cost a new
	// buffer a batch, the daemon's every allocation (issue 13).
	spare   *[]byte
	writing bool // the writer goroutine runs
	// idling: the writer goroutine is in the onIdle func, where the
	// producer may send again: a backlog then is left to it rather than
	// to a new goroutine (issue 13: a goroutine a batch, each growing its
	// stack for the follower's reads).
	idling   bool
	ending   bool // End was called: the last chunk is in pending or sent
	closed   bool
	written  int64 // body bytes accepted (the audit log's count)
	onClose  []func(written int64)
	onIdle   func()
	stopWait func()
}

// Detach takes the connection of a streaming GET response over from
// net/http once the handler has set its headers and called WriteHeader
// (200): the headers are sent as they are, announcing a chunked body. The
// handler must not write to w afterwards, and returns. It fails, with
// nothing sent, when the connection cannot be taken over (HTTP/2), and the
// handler then serves the stream itself.
func Detach(w http.ResponseWriter, r *http.Request) (*DetachedStream, error) {
	if !CanDetach(r) {
		return nil, errNoDetach
	}
	var ends []func(int64)
	for rw := w; rw != nil; {
		if d, ok := rw.(StreamDetacher); ok {
			ends = append(ends, d.DetachStream())
		}
		u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		rw = u.Unwrap()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		for _, end := range ends {
			end(0)
		}
		return nil, err
	}
	s := &DetachedStream{conn: conn, onClose: ends}
	nc := conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	} else if sc, ok := nc.(syscall.Conn); ok {
		s.raw, _ = sc.SyscallConn()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if stop, err := sys.OnPeerGone(int(fd), s.Abort); err == nil {
					s.watching(stop)
				}
			})
		}
	}
	if t, ok := r.Context().Value(hijackKey{}).(HijackTracker); ok && t != nil {
		untrack := t(s.End) // daemon shutdown: the stream ends as a whole
		s.onClose = append(s.onClose, func(int64) { untrack() })
	}
	return s, nil
}

var errNoDetach = errors.New("response cannot be detached")

// CanDetach reports whether r's response can be detached: an HTTP/1.1 GET,
// whose body net/http would send chunked. HTTP/1.0 bodies are not chunked,
// HEAD answers have none, and HTTP/2 connections cannot be taken over.
func CanDetach(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.Method == http.MethodGet
}

// watching records how to end the watch on the client's socket (a
// duplicate of its fd). The client may have gone already and Abort have
// run, on the watcher's goroutine, before stop is known: the watch is then
// ended here, or it would hold the socket open for good (the soak test
// found such sockets once, on a loaded CI host).
func (s *DetachedStream) watching(stop func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		stop()
		return
	}
	s.stopWait = stop
	s.mu.Unlock()
}

// OnClose registers fn to run once the stream has ended (the client went
// away, Abort, or End's last chunk was sent); at once if it already has.
func (s *DetachedStream) OnClose(fn func()) {
	s.mu.Lock()
	if !s.closed {
		s.onClose = append(s.onClose, func(int64) { fn() })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	fn()
}

// OnIdle registers fn to run, on the writer goroutine, each time a backlog
// has been written out: a producer that held back while the client was
// slow (Backlog) can send again.
func (s *DetachedStream) OnIdle(fn func()) {
	s.mu.Lock()
	s.onIdle = fn
	s.mu.Unlock()
}

// Backlog is how many bytes wait for a slow client.
func (s *DetachedStream) Backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Send sends p as one chunk; it never blocks on the client. p may be
// reused once Send returns. An empty p sends nothing (an empty chunk would
// end the body).
func (s *DetachedStream) Send(p []byte) error {
	s.mu.Lock()
	if s.closed || s.ending {
		s.mu.Unlock()
		return ErrStreamClosed
	}
	if len(p) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.written += int64(len(p))
	if s.writing || len(s.pending) > 0 || s.raw == nil {
		s.queueLocked(p)
		s.flushLocked() // unlocks
		return nil
	}
	// The usual case: the socket takes the chunk at once, framed in a
	// pooled buffer, and the stream keeps no buffer of its own.
	bp := frameBufs.Get().(*[]byte)
	buf := appendChunk((*bp)[:0], p)
	n, err := s.writeNow(buf)
	if err == nil && n < len(buf) {
		// The rest waits in the pooled buffer itself, which the writer
		// goroutine puts back: a follower the client is behind on
		// (logs -f) meets this once a batch, and a copy into a new
		// buffer each time held it to two thirds of its rate.
		*bp = buf
		s.pending, s.spare = buf[n:], bp
	} else if cap(buf) <= maxPooledFrame {
		*bp = buf
		frameBufs.Put(bp)
	}
	if err != nil {
		s.closeLocked()
		return nil
	}
	s.flushLocked()
	return nil
}

// queueLocked appends p, framed, to pending: into a pooled buffer when
// nothing is pending, so that a stream the client is behind on allocates
// nothing a batch. s.mu is held.
func (s *DetachedStream) queueLocked(p []byte) {
	if len(s.pending) == 0 && s.spare == nil {
		bp := frameBufs.Get().(*[]byte)
		*bp = appendChunk((*bp)[:0], p)
		s.pending, s.spare = *bp, bp
		return
	}
	s.pending = appendChunk(s.pending, p)
}

// frameBufs holds the buffers Send frames chunks in.
var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledFrame is the largest frame buffer kept for reuse: room for a
// logs batch (64 KiB and the record that passed it) and its chunk framing;
// at 64 KiB no batch's buffer was ever kept (issue 13).
const maxPooledFrame = 128 << 10

// appendChunk appends p framed as one HTTP/1.1 chunk.
func appendChunk(dst, p []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, p...)
	return append(dst, "\r\n"...)
}

// writeNow writes as much of b as the socket takes without waiting.
func (s *DetachedStream) writeNow(b []byte) (int, error) {
	var n int
	var werr error
	if err := s.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					werr = err
				}
				break
			}
			n += m
		}
		return true // one attempt: never wait for the client here
	}); err != nil {
		werr = err
	}
	return n, werr
}

// Write sends p as one chunk, waiting for the client to take it: for a
// producer with a goroutine of its own per stream (a logs follower), which
// is held back by a slow client rather than queueing for it. It fails once
// the stream has ended. Write is not for concurrent use with itself or
// Send.
func (s *DetachedStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed || s.ending {
		s.mu.Unlock()
		return 0, ErrStreamClosed
	}
	if len(p) == 0 {
		s.mu.Unlock()
		return 0, nil
	}
	s.written += int64(len(p))
	if s.writing || len(s.pending) > 0 {
		s.queueLocked(p)
		s.flushLocked()
		return len(p), nil
	}
	// Writing marks the connection busy: an End meanwhile queues the
	// last chunk behind this one.
	s.writing = true
	s.mu.Unlock()
	bp := frameBufs.Get().(*[]byte)
	buf := appendChunk((*bp)[:0], p)
	_, err := s.conn.Write(buf)
	if cap(buf) <= maxPooledFrame {
		*bp = buf
		frameBufs.Put(bp)
	}
	s.mu.Lock()
	s.writing = false
	if err != nil {
		s.closeLocked()
		return 0, err
	}
	s.flushLocked()
	return len(p), nil
}

// End sends the last chunk after what is pending and then closes the
// connection (net/http would keep it for the next request; a stream ends
// seldom, and a client opens a new connection then). Later calls, and
// calls after the client went away, do nothing.
func (s *DetachedStream) End() {
	s.mu.Lock()
	if s.closed || s.ending {
		s.mu.Unlock()
		return
	}
	s.ending = true
	s.pending = append(s.pending, "0\r\n\r\n"...)
	s.flushLocked()
}

// Abort closes the connection now, dropping what is pending: the client
// has gone, or a producer gives up on it.
func (s *DetachedStream) Abort() {
	s.mu.Lock()
	s.closeLocked()
}

// flushLocked writes pending if it can without blocking, hands what is
// left to the writer goroutine, and closes the stream once the last chunk
// is out. s.mu is held; flushLocked unlocks it.
func (s *DetachedStream) flushLocked() {
	if s.writing {
		s.mu.Unlock()
		return
	}
	if len(s.pending) == 0 {
		s.mu.Unlock()
		return
	}
	if s.raw != nil {
		n, werr := s.writeNow(s.pending)
		if werr != nil {
			s.closeLocked()
			return
		}
		if n == len(s.pending) {
			s.pending = nil // an idle stream keeps no buffer
			s.putSpare()
			if s.ending {
				s.closeLocked()
				return
			}
			s.mu.Unlock()
			return
		}
		s.pending = s.pending[n:] // its own buffer: nothing else refers to it
	}
	s.writing = true
	if s.idling {
		// Called from the onIdle func, on the writer goroutine or
		// beside it: that goroutine writes the backlog once the func
		// returns.
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	go s.writeBacklog()
}

// putSpare puts back the pooled buffer pending was in, once pending is
// written or dropped. s.mu is held.
func (s *DetachedStream) putSpare() {
	if bp := s.spare; bp != nil {
		s.spare = nil
		if cap(*bp) <= maxPooledFrame {
			*bp = (*bp)[:0]
			frameBufs.Put(bp)
		}
	}
}

// writeBacklog writes pending out while there is any, blocking on the
// client; Abort (the client went away, or shutdown) unblocks it. Once the
// backlog is out it runs the onIdle func, and writes on if that sent more
// than the socket took.
func (s *DetachedStream) writeBacklog() {
	for {
		s.mu.Lock()
		if s.closed {
			s.writing = false
			s.mu.Unlock()
			return
		}
		buf, spare := s.pending, s.spare
		s.pending, s.spare = nil, nil
		if len(buf) == 0 {
			s.writing = false
			if s.ending {
				s.closeLocked()
				return
			}
			idle := s.onIdle
			if idle == nil {
				s.mu.Unlock()
				return
			}
			s.idling = true
			s.mu.Unlock()
			idle()
			s.mu.Lock()
			s.idling = false
			if s.writing && !s.closed {
				// idle sent a backlog (flushLocked left it to
				// this goroutine).
				s.mu.Unlock()
				continue
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		_, err := s.conn.Write(buf)
		switch {
		case spare != nil:
			if cap(*spare) <= maxPooledFrame {
				*spare = (*spare)[:0]
				frameBufs.Put(spare)
			}
		case cap(buf) <= maxPooledFrame:
			b := buf[:0]
			frameBufs.Put(&b)
		}
		if err != nil {
			s.Abort()
			return
		}
	}
}

// closeLocked closes the connection and runs the OnClose funcs, once. s.mu
// is held; closeLocked unlocks it.
func (s *DetachedStream) closeLocked() {
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.pending = nil
	s.putSpare()
	fns, written, stop := s.onClose, s.written, s.stopWait
	s.onClose, s.onIdle = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.conn.Close()
	for _, fn := range fns {
		fn(written)
	}
}
