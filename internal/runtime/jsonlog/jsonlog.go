// Package jsonlog writes a container's output in dockerd's json-file log
// format, byte for byte: one object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}
//
// with moby's escaping, lines split into 16 KiB pieces (a piece without a
// trailing newline is a partial line), and max-size/max-file rotation. The
// shim is the writer, so logs keep flowing while the daemon is down.
//
//	w, err := jsonlog.OpenWith(path, jsonlog.Options{MaxSize: 10 << 20, MaxFiles: 3})
//	out := w.Stream("stdout")
//	out.Write(p) // any chunking
//	out.Flush()  // at EOF: the last partial line
package jsonlog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"skiffd/internal/runtime/fluentd"
	"skiffd/internal/runtime/gelf"
	"skiffd/internal/runtime/journald"
	"skiffd/internal/runtime/syslog"
	"skiffd/internal/sys"
)

// MaxLine is the longest piece of a line written as one entry (moby's
// defaultBufSize); longer lines are split.
const MaxLine = 16 * 1024

// Writer appends entries to a json-file log and rotates it.
//
// Entries are gathered in a batch and written with one write(2) per chunk
// of output handed to a Stream (issue 13: a write per line held the shim
// to 20 MB/s). Nothing is fsynced: dockerd's json-file driver does not
// sync either, and a container's output is not state the daemon
// acknowledges.
type Writer struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64 // bytes in the live file, not counting batch
	maxSize  int64 // 0: no rotation
	maxFiles int
	compress bool
	syslog   *syslog.Writer
	gelf     *gelf.Writer
	fluentd  *fluentd.Writer
	journald *journald.Writer
	attrs    []byte // JSON object, or nil
	batch    []byte // entries not yet written; see newBatch
	mapped   bool   // batch is a sys.MapBuffer buffer
	closed   bool
	err      error // the first write error
	now      func() time.Time
	// tail is what follows the "log" value in an entry of tailStream
	// stamped tailTime, from the stream to the final newline: the lines
	// of one chunk share it (see Stream.Write), so it is built once.
	tail       []byte
	tailStream string
	tailTime   time.Time
}

// batchSize is the size at which a batch is written even within a chunk.
const batchSize = 256 << 10

// batchCap is the capacity of the batch buffer: a batch reaches
// batchSize plus at most one entry (a MaxLine piece escaped whole is under
// 100 KiB) before it is written. The buffer is outside the Go heap (see
// newBatch), so only what a burst writes into it is ever resident.
const batchCap = 512 << 10

// heapBatch is the batch buffer's capacity on the Go heap, when the system
// refuses a mapping.
const heapBatch = 16 << 10

// Options are the json-file log options (--log-opt).
type Options struct {
	// MaxSize is max-size in bytes; 0 means no rotation.
	MaxSize int64
	// MaxFiles is max-file: how many files rotation keeps, the live one
	// included (at least 1).
	MaxFiles int
	// Compress gzips rotated files (<path>.1.gz, ...), as compress=true.
	Compress bool
	// Syslog, if set, is sent every entry's line too, as it is logged
	// (the syslog driver), with the writer's lock held. A concrete type,
	// not a func: the lines handed to the writer then do not escape.
	Syslog *syslog.Writer
	// Gelf, if set, is sent every entry's line too (the gelf driver),
	// as Syslog is.
	Gelf *gelf.Writer
	// Fluentd, if set, is sent every entry's line too (the fluentd
	// driver), as Syslog is.
	Fluentd *fluentd.Writer
	// Journald, if set, is sent every entry's line too (the journald
	// driver), as Syslog is.
	Journald *journald.Writer
	// Attrs are the extra attributes of every entry (the labels, env and
	// tag log options), written as "attrs" the way dockerd does.
	Attrs map[string]string
}

// Open opens (appending to) the log at path, without compression.
// maxSize 0 means no limit; maxFiles is how many files rotation keeps,
// the live one included.
func Open(path string, maxSize int64, maxFiles int) (*Writer, error) {
	return OpenWith(path, Options{MaxSize: maxSize, MaxFiles: maxFiles})
}

// OpenWith opens (appending to) the log at path.
func OpenWith(path string, opts Options) (*Writer, error) {
	maxSize, maxFiles := opts.MaxSize, opts.MaxFiles
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	if maxFiles < 1 {
		maxFiles = 1
	}
	w := &Writer{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFiles: maxFiles, compress: opts.Compress, now: time.Now,
		syslog: opts.Syslog, gelf: opts.Gelf, fluentd: opts.Fluentd, journald: opts.Journald}
	if len(opts.Attrs) > 0 {
		// encoding/json sorts the keys and escapes <, > and &, as
		// dockerd's marshalling of the same map does.
		if w.attrs, err = json.Marshal(opts.Attrs); err != nil {
			f.Close()
			return nil, fmt.Errorf("open log: %w", err)
		}
	}
	return w, nil
}

// Close closes the log file and frees the batch buffer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mapped {
		sys.UnmapBuffer(w.batch)
	}
	w.batch, w.mapped, w.closed = nil, false, true
	return w.f.Close()
}

// newBatch makes the batch buffer. It is mapped outside the Go heap
// (issue 13): a shim's log writer then produces no garbage, however much
// its container writes, and after a burst Release hands the pages back
// to the system at once. On the Go heap a burst's buffers stay resident
// until a garbage collection, and the first collections of a shim cost
// it more runtime metadata (some 600 KiB of span sets) than they free.
func (w *Writer) newBatch() {
	if b, err := sys.MapBuffer(batchCap); err == nil {
		w.batch, w.mapped = b[:0], true
		return
	}
	w.batch = make([]byte, 0, heapBatch)
}

// entryBound is the most bytes appendEntry adds for an entry of line:
// each byte of line and stream escaped to at most 6 (\u00XX), the
// attributes, a time stamp and the fixed parts.
func (w *Writer) entryBound(stream string, line []byte) int {
	return 128 + 6*(len(line)+len(stream)) + len(w.attrs)
}

// WriteEntry writes one entry. line is written as given (with its newline,
// if any).
func (w *Writer) WriteEntry(stream string, line []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.appendLocked(stream, line, t)
	return w.flushLocked()
}

// appendLocked adds one entry to the batch, first rotating if the live
// file (with what the batch holds) has reached max-size: the same check,
// entry by entry, as when each entry was written on its own, so rotation
// cuts the log at the same places.
func (w *Writer) appendLocked(stream string, line []byte, t time.Time) {
	if w.syslog != nil {
		// dockerd logs a send that fails and goes on; so does the
		// file here.
		w.syslog.Send(stream, line)
	}
	if w.gelf != nil {
		w.gelf.Send(stream, line)
	}
	if w.fluentd != nil {
		w.fluentd.Send(stream, line)
	}
	if w.journald != nil {
		w.journald.Send(stream, line)
	}
	if w.maxSize > 0 && w.size+int64(len(w.batch)) >= w.maxSize {
		w.fail(w.flushLocked())
		if err := w.rotate(); err != nil {
			w.fail(err)
		}
	}
	if w.closed {
		w.fail(os.ErrClosed)
		return
	}
	if w.batch == nil {
		w.newBatch()
	}
	need := w.entryBound(stream, line)
	if len(w.batch) >= batchSize || len(w.batch)+need > cap(w.batch) {
		w.fail(w.flushLocked())
	}
	if need > cap(w.batch) {
		// Only attributes of hundreds of KiB get here: the entry is
		// built on the heap and written on its own.
		n, err := w.f.Write(w.appendEntry(nil, stream, line, t))
		w.size += int64(n)
		w.fail(err)
		return
	}
	// Within the capacity, append never moves the batch to the heap.
	w.batch = w.appendEntry(w.batch, stream, line, t)
}

// flushLocked writes the batch and returns the first error since the last
// flush. A batch that cannot be written is dropped, so a full disk does
// not make the shim hold output for ever.
func (w *Writer) flushLocked() error {
	if len(w.batch) > 0 {
		n, err := w.f.Write(w.batch)
		w.size += int64(n)
		w.fail(err)
		w.batch = w.batch[:0]
	}
	err := w.err
	w.err = nil
	return err
}

// fail keeps err (if not nil) for the next flush to report.
func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Release hands the pages a burst of output wrote into the batch buffer
// back to the system; the shim's copier calls it when its stream has gone
// quiet, so that a container that once wrote a lot does not keep them for
// ever. The buffer stays, for the next burst.
func (w *Writer) Release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.batch) == 0 && w.mapped {
		sys.DropPages(w.batch)
	}
}

// rotate shifts log.N to log.N+1, the live file to log.1, and starts a new
// live file; with maxFiles 1 it truncates the live file, as moby does.
// With compression the files from log.2 on are log.N.gz: log.1 stays as
// it is until the next rotation compresses it into log.2.gz (written
// under a temporary name first, so that a reader never sees a half-written
// .gz), so that a reader following the live file finds it, by inode,
// under log.1 after a rotation; the gzip header names the inode and
// modification time the file had (GzipIdentity) for one that fell
// further behind.
func (w *Writer) rotate() error {
	if w.maxFiles < 2 {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
		w.size = 0
		return nil
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	if w.compress {
		for i := w.maxFiles - 1; i > 2; i-- {
			os.Rename(w.path+"."+strconv.Itoa(i-1)+".gz", w.path+"."+strconv.Itoa(i)+".gz")
		}
		if w.maxFiles > 2 {
			if err := gzipFile(w.path+".1", w.path+".2.gz"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotate log: %w", err)
			}
		}
	} else {
		for i := w.maxFiles - 1; i > 1; i-- {
			os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
		}
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f, w.size = f, 0
	return nil
}

// GzipIdentity formats the comment of a compressed rotated file's gzip
// header: the inode number and modification time (ns) the file had
// before compression, by which a reader following the log recognises the
// file it was reading (ParseGzipIdentity).
func GzipIdentity(ino uint64, mtime int64) string {
	return "skiffd-id=" + strconv.FormatUint(ino, 10) + ":" + strconv.FormatInt(mtime, 10)
}

// ParseGzipIdentity reads what GzipIdentity wrote; ok is false for any
// other comment.
func ParseGzipIdentity(comment string) (ino uint64, mtime int64, ok bool) {
	v, found := strings.CutPrefix(comment, "skiffd-id=")
	if !found {
		return 0, 0, false
	}
	i, m, found := strings.Cut(v, ":")
	ino, err1 := strconv.ParseUint(i, 10, 64)
	mtime, err2 := strconv.ParseInt(m, 10, 64)
	return ino, mtime, found && err1 == nil && err2 == nil
}

// gzipFile replaces name with dst, its compressed copy.
func gzipFile(name, dst string) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(in.Fd()), &st); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	zw.Comment = GzipIdentity(st.Ino, st.Mtim.Nano())
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(name)
}

// AppendEntry appends one json-file line (with its final newline) to buf,
// fields in moby's order.
func AppendEntry(buf *bytes.Buffer, stream string, line []byte, t time.Time) {
	AppendEntryAttrs(buf, stream, line, nil, t)
}

// AppendEntryAttrs is AppendEntry with an "attrs" object (raw JSON, nil
// for none) between the stream and the time.
func AppendEntryAttrs(buf *bytes.Buffer, stream string, line []byte, attrs []byte, t time.Time) {
	buf.Write(appendEntry(nil, stream, line, attrs, appendStamp(nil, t)))
}

// appendEntry is the writer's batch form of AppendEntry: a writer with
// attributes adds them, and the part after the line is built once for all
// the lines of a stream stamped with one time.
func (w *Writer) appendEntry(dst []byte, stream string, line []byte, t time.Time) []byte {
	if len(line) == 0 || stream == "" {
		return appendEntry(dst, stream, line, w.attrs, appendStamp(nil, t))
	}
	if w.tail == nil || stream != w.tailStream || !t.Equal(w.tailTime) {
		w.tailStream, w.tailTime = stream, t
		w.tail = append(w.tail[:0], `,"stream":`...)
		w.tail = appendString(w.tail, []byte(stream))
		if len(w.attrs) > 0 {
			w.tail = append(w.tail, `,"attrs":`...)
			w.tail = append(w.tail, w.attrs...)
		}
		w.tail = append(w.tail, `,"time":`...)
		w.tail = appendStamp(w.tail, t)
		w.tail = append(w.tail, "}\n"...)
	}
	dst = append(dst, `{"log":`...)
	dst = appendString(dst, line)
	return append(dst, w.tail...)
}

// appendStamp appends t as the quoted value of an entry's "time": UTC,
// RFC 3339 with as many fractional digits as it needs, as dockerd's
// time.Time marshalling writes it.
func appendStamp(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendEntry appends one entry with the quoted time stamp.
func appendEntry(dst []byte, stream string, line []byte, attrs []byte, stamp []byte) []byte {
	dst = append(dst, '{')
	first := true
	if len(line) > 0 {
		dst = append(dst, `"log":`...)
		dst = appendString(dst, line)
		first = false
	}
	if stream != "" {
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, `"stream":`...)
		dst = appendString(dst, []byte(stream))
		first = false
	}
	if len(attrs) > 0 {
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, `"attrs":`...)
		dst = append(dst, attrs...)
		first = false
	}
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, `"time":`...)
	dst = append(dst, stamp...)
	return append(dst, "}\n"...)
}

// Byte classes of escapeTable.
const (
	plainByte  = iota // copied as is
	shortEsc          // a backslash and the byte: \\ and \"
	controlEsc        // \n, \r or \u00XX
	multiByte         // the first byte of a UTF-8 sequence (or invalid)
)

// escapeTable classifies each byte for appendString.
var escapeTable = func() (t [256]byte) {
	for b := range 0x20 {
		t[b] = controlEsc
	}
	t['<'], t['>'], t['&'] = controlEsc, controlEsc, controlEsc
	t['\\'], t['"'] = shortEsc, shortEsc
	for b := utf8.RuneSelf; b < 256; b++ {
		t[b] = multiByte
	}
	return t
}()

// appendString appends s as a JSON string the way moby's json-file driver
// does: besides \\ and \", newline and carriage return get short escapes;
// other control bytes and <, >, & become \u00XX; invalid UTF-8 becomes
// \ufffd; U+2028 and U+2029 are escaped. Runs of bytes that need nothing
// are copied whole (issue 13).
func appendString(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := escapeTable[s[i]]
		if c == plainByte {
			i++
			continue
		}
		if c == multiByte {
			r, size := utf8.DecodeRune(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			default:
				i += size
				continue
			}
			i += size
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		b := s[i]
		switch {
		case c == shortEsc:
			dst = append(dst, '\\', b)
		case b == '\n':
			dst = append(dst, '\\', 'n')
		case b == '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Stream cuts one output stream into log entries.
type Stream struct {
	w    *Writer
	name string
	// buf holds the start of a line whose end has not arrived yet.
	buf    []byte
	err    error
	linets time.Time // when the first piece of the pending line arrived
}

// Stream returns a line splitter for the stream named name ("stdout",
// "stderr"). It is not safe for concurrent use; use one per stream.
func (w *Writer) Stream(name string) *Stream {
	return &Stream{w: w, name: name} // buf grows with the longest line, up to MaxLine
}

// Write logs every complete line of p and keeps the rest, all with the
// time of this call (a line completed here has the time its first piece
// arrived). A line reaching MaxLine bytes is logged as a partial entry.
// The entries go to the file in one write. Write always consumes all of
// p; the first write error is kept and returned from then on.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	now := s.w.now()
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 {
		if len(s.buf) == 0 {
			// Lines that p holds whole are logged from p itself.
			head := p[:min(len(p), MaxLine)]
			if i := bytes.IndexByte(head, '\n'); i >= 0 {
				w.appendLocked(s.name, p[:i+1], now)
				p = p[i+1:]
				continue
			}
			if len(head) == MaxLine {
				w.appendLocked(s.name, head, now)
				p = p[MaxLine:]
				continue
			}
			s.linets = now
			s.buf = append(s.buf, p...)
			break
		}
		room := MaxLine - len(s.buf)
		chunk := p[:min(len(p), room)]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			chunk = chunk[:i+1]
		}
		s.buf = append(s.buf, chunk...)
		p = p[len(chunk):]
		if s.buf[len(s.buf)-1] == '\n' || len(s.buf) == MaxLine {
			w.appendLocked(s.name, s.buf, s.linets)
			s.buf = s.buf[:0]
		}
	}
	if err := w.flushLocked(); err != nil && s.err == nil {
		s.err = err
	}
	return n, s.err
}

// Flush logs a pending partial line; call it at EOF.
func (s *Stream) Flush() error {
	if len(s.buf) > 0 {
		s.w.mu.Lock()
		s.w.appendLocked(s.name, s.buf, s.linets)
		err := s.w.flushLocked()
		s.w.mu.Unlock()
		if err != nil && s.err == nil {
			s.err = err
		}
		s.buf = s.buf[:0]
	}
	return s.err
}

// Release lets go of the buffers a burst of output grew, keeping a
// pending partial line; the copier calls it when the stream goes quiet.
func (s *Stream) Release() {
	if len(s.buf) == 0 {
		s.buf = nil
	}
	s.w.Release()
}
