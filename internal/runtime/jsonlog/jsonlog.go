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
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest piece of a line written as one entry (moby's
// defaultBufSize); longer lines are split.
const MaxLine = 16 * 1024

// Writer appends entries to a json-file log and rotates it.
type Writer struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64 // 0: no rotation
	maxFiles int
	compress bool
	attrs    []byte // JSON object, or nil
	buf      bytes.Buffer
	now      func() time.Time
}

// Options are the json-file log options (--log-opt).
type Options struct {
	// MaxSize is max-size in bytes; 0 means no rotation.
	MaxSize int64
	// MaxFiles is max-file: how many files rotation keeps, the live one
	// included (at least 1).
	MaxFiles int
	// Compress gzips rotated files (<path>.1.gz, ...), as compress=true.
	Compress bool
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
	w := &Writer{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFiles: maxFiles, compress: opts.Compress, now: time.Now}
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

// Close closes the log file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// WriteEntry writes one entry. line is written as given (with its newline,
// if any).
func (w *Writer) WriteEntry(stream string, line []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	AppendEntryAttrs(&w.buf, stream, line, w.attrs, t)
	if w.maxSize > 0 && w.size >= w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	return err
}

// rotate shifts log.N to log.N+1, the live file to log.1, and starts a new
// live file; with maxFiles 1 it truncates the live file, as moby does.
// With compression the rotated files are log.N.gz; the new log.1 is
// compressed here, before logging goes on, so that a reader never sees a
// half-written .gz under its final name.
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
	ext := ""
	if w.compress {
		ext = ".gz"
	}
	for i := w.maxFiles - 1; i > 1; i-- {
		os.Rename(w.path+"."+strconv.Itoa(i-1)+ext, w.path+"."+strconv.Itoa(i)+ext)
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	if w.compress {
		if err := gzipFile(w.path + ".1"); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f, w.size = f, 0
	return nil
}

// gzipFile replaces name with name.gz.
func gzipFile(name string) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := name + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name+".gz")
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
	buf.WriteString(`{`)
	first := true
	if len(line) > 0 {
		buf.WriteString(`"log":`)
		appendString(buf, line)
		first = false
	}
	if stream != "" {
		if !first {
			buf.WriteString(`,`)
		}
		buf.WriteString(`"stream":`)
		appendString(buf, []byte(stream))
		first = false
	}
	if len(attrs) > 0 {
		if !first {
			buf.WriteString(`,`)
		}
		buf.WriteString(`"attrs":`)
		buf.Write(attrs)
		first = false
	}
	if !first {
		buf.WriteString(`,`)
	}
	buf.WriteString(`"time":"`)
	buf.WriteString(t.UTC().Format(time.RFC3339Nano))
	buf.WriteString("\"}\n")
}

// appendString writes s as a JSON string the way moby's json-file driver
// does: besides \\ and \", newline and carriage return get short escapes;
// other control bytes and <, >, & become \u00XX; invalid UTF-8 becomes
// \ufffd; U+2028 and U+2029 are escaped.
func appendString(buf *bytes.Buffer, s []byte) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf.Write(s[start:i])
			switch b {
			case '\\', '"':
				buf.WriteByte('\\')
				buf.WriteByte(b)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			default:
				buf.WriteString(`\u00`)
				buf.WriteByte(hex[b>>4])
				buf.WriteByte(hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf.Write(s[start:i])
			buf.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf.Write(s[start:i])
			buf.WriteString(`\u202`)
			buf.WriteByte(hex[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf.Write(s[start:])
	buf.WriteByte('"')
}

// Stream cuts one output stream into log entries.
type Stream struct {
	w      *Writer
	name   string
	buf    []byte
	err    error
	linets time.Time // when the first piece of the pending line arrived
}

// Stream returns a line splitter for the stream named name ("stdout",
// "stderr"). It is not safe for concurrent use; use one per stream.
func (w *Writer) Stream(name string) *Stream {
	return &Stream{w: w, name: name} // buf grows with the longest line, up to MaxLine
}

// Write logs every complete line of p and keeps the rest. A line reaching
// MaxLine bytes is logged as a partial entry. It always consumes all of p;
// the first write error is kept and returned from then on.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	now := s.w.now()
	for len(p) > 0 {
		if len(s.buf) == 0 {
			s.linets = now
		}
		room := MaxLine - len(s.buf)
		chunk := p
		if len(chunk) > room {
			chunk = chunk[:room]
		}
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			chunk = chunk[:i+1]
		}
		s.buf = append(s.buf, chunk...)
		p = p[len(chunk):]
		if s.buf[len(s.buf)-1] == '\n' || len(s.buf) == MaxLine {
			s.emit()
		}
	}
	return n, s.err
}

// Flush logs a pending partial line; call it at EOF.
func (s *Stream) Flush() error {
	if len(s.buf) > 0 {
		s.emit()
	}
	return s.err
}

func (s *Stream) emit() {
	if err := s.w.WriteEntry(s.name, s.buf, s.linets); err != nil && s.err == nil {
		s.err = err
	}
	s.buf = s.buf[:0]
}
