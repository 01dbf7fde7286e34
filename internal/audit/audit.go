// Package audit writes one JSON line per API request that changes state
// (and, when asked, per read): who (the peer identity of the connection),
// what (method, path, the object acted on), and how it ended (status,
// bytes, duration). Issue 12, item 2.
//
//	l, err := audit.Open(audit.Options{Path: "/var/log/skiffd-audit.log", MaxSize: 100 << 20, MaxFiles: 5})
//	srv.ConnContext = audit.ConnContext("unix:///var/run/skiffd.sock")
//	handler = audit.Middleware(l, observe)(handler)
//	// in a handler, once the object is known:
//	wire.Annotate(r.Context(), "container", resp.ID, name)
//
// When a record is written. The middleware enqueues the record when the
// handler returns: after the handler's last Write, but before net/http
// flushes what it still buffers and ends the response (the final chunk or
// the last buffered bytes, which for a response under 4 KiB is all of it).
// For a hijacked connection (attach, exec start) the record is enqueued
// when the handler hijacks, before the stream starts, with status 101. A
// record is therefore enqueued before a client can see the end of its
// response; it reaches the file a few milliseconds later (batchInterval),
// in order, from a single writer goroutine. Enqueueing never blocks: a full queue (a slow or stuck disk)
// drops the record and counts it in Dropped, which /info and the metrics
// show. Close drains the queue.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// QueueSize is how many records may wait for the disk before new ones are
// dropped.
const QueueSize = 4096

// Object is what a request acted on, as the handler resolved it.
type Object struct {
	Kind string `json:"kind"` // container, image, volume, network, exec
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Entry is one line of the audit log.
type Entry struct {
	Time       time.Time `json:"time"`
	Listener   string    `json:"listener"`
	Peer       Peer      `json:"peer"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Query      string    `json:"query,omitempty"`
	APIVersion string    `json:"api_version"`
	Object     *Object   `json:"object,omitempty"`
	Cmd        []string  `json:"cmd,omitempty"` // exec's command line
	Status     int       `json:"status"`
	Bytes      int64     `json:"bytes"`
	DurationMS float64   `json:"duration_ms"`
}

// Resolver turns a reference a client gave (a name, an ID prefix) into the
// object's full ID and name. It runs in the handler's goroutine, before the
// backend acts, so a removed object is still found. ok is false when the
// reference resolves to nothing; the record then keeps the reference.
type Resolver func(ctx context.Context, kind, ref string) (id, name string, cmd []string, ok bool)

// Options configures Open.
type Options struct {
	Path     string
	Reads    bool  // also log GET/HEAD
	MaxSize  int64 // rotate when the file would exceed this; 0 never
	MaxFiles int   // rotated files kept (path.1 ... path.N); 0 means 1
	Logger   *slog.Logger
	Resolve  Resolver
}

// Logger owns the queue and the file. Its methods are safe for concurrent
// use.
type Logger struct {
	opts    Options
	queue   chan *Entry
	dropped atomic.Uint64
	done    chan struct{}
	closing chan struct{} // closed by Close: stop batching, drain

	closeOnce sync.Once
	// mu guards closed against sends racing Close.
	mu     sync.RWMutex
	closed bool

	// Owned by the writer goroutine.
	f    *os.File
	size int64
}

// Open opens (creating, mode 0600) the audit file and starts the writer.
// The file is opened read-write: a FIFO then opens without waiting for a
// reader, and a stuck reader shows up as drops, not as a stuck daemon.
func Open(opts Options) (*Logger, error) {
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Logger{opts: opts, queue: make(chan *Entry, QueueSize), done: make(chan struct{}), closing: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

func (l *Logger) open() error {
	f, err := os.OpenFile(l.opts.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	l.f = f
	l.size = 0
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		l.size = fi.Size()
	}
	return nil
}

// Reads reports whether reads are logged too.
func (l *Logger) Reads() bool { return l.opts.Reads }

// Dropped is how many records were lost because the queue was full.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// enqueue hands e to the writer without ever blocking.
func (l *Logger) enqueue(e *Entry) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
	}
}

// Close stops accepting records, writes those queued and closes the file.
// A writer stuck on the disk keeps Close waiting.
func (l *Logger) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.closing)
		close(l.queue)
		l.mu.Unlock()
	})
	<-l.done
	return nil
}

func (l *Logger) run() {
	defer close(l.done)
	defer func() {
		if l.f != nil {
			l.f.Close()
		}
	}()
	buf := make([]byte, 0, 64<<10)
	for {
		// Block only when idle; under load, wake every batchInterval and
		// write what gathered in one write(2), so that senders do not
		// wake this goroutine once per record.
		e, ok := <-l.queue
		if !ok {
			return
		}
		buf = l.appendEntry(buf[:0], e)
		for open := true; open; {
			select {
			case e, ok := <-l.queue:
				if !ok {
					open = false
					break
				}
				buf = l.appendEntry(buf, e)
				if len(buf) >= 64<<10 {
					l.write(buf)
					buf = buf[:0]
				}
				continue
			default:
			}
			l.write(buf)
			buf = buf[:0]
			if len(l.queue) == 0 {
				break
			}
		}
		if len(buf) > 0 {
			l.write(buf)
		}
		select {
		case <-time.After(batchInterval):
		case <-l.closing:
		}
	}
}

// batchInterval is how long the writer lets records gather after a write.
// Records are enqueued (and so ordered and counted) at once; they reach the
// file at most this much later, or at Close.
const batchInterval = 2 * time.Millisecond

// appendEntry appends e's JSON line to buf; a record that would push the file past MaxSize ends the batch
// so that rotation happens between records.
func (l *Logger) appendEntry(buf []byte, e *Entry) []byte {
	start := len(buf)
	buf = appendJSON(buf, e)
	if l.opts.MaxSize > 0 && start > 0 && l.size+int64(len(buf))+1 > l.opts.MaxSize {
		// Write what came before this record, then move it to the front.
		l.write(buf[:start])
		buf = buf[:copy(buf, buf[start:])]
	}
	return append(buf, '\n')
}

// write appends p, rotating first when it would pass MaxSize.
func (l *Logger) write(p []byte) {
	if len(p) == 0 {
		return
	}
	if l.opts.MaxSize > 0 && l.size > 0 && l.size+int64(len(p)) > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			l.opts.Logger.Error("audit log rotation failed", "path", l.opts.Path, "error", err)
		}
	}
	if l.f == nil {
		return
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		l.opts.Logger.Error("audit log write failed", "path", l.opts.Path, "error", err)
	}
}

// rotate renames path.N-1 to path.N ... path to path.1 and starts a new
// file; the oldest beyond MaxFiles is removed.
func (l *Logger) rotate() error {
	l.f.Close()
	l.f = nil
	p := l.opts.Path
	os.Remove(p + "." + strconv.Itoa(l.opts.MaxFiles))
	for i := l.opts.MaxFiles - 1; i >= 1; i-- {
		if err := os.Rename(p+"."+strconv.Itoa(i), p+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(p, p+".1"); err != nil {
		return err
	}
	return l.open()
}

// ParseSize parses a size such as "100m", "512k", "1g" or bytes.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size: %q", s)
	}
	return n * mult, nil
}

var _ io.Closer = (*Logger)(nil)
