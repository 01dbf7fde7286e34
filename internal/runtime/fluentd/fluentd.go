// Package fluentd sends a container's log lines to a Fluentd or Fluent Bit
// forward input, as dockerd's fluentd logging driver does: one forward
// protocol message a line, [tag, time, record, option] in MessagePack,
// whose record has container_id, container_name, source ("stdout" or
// "stderr"), log (the line without its newline) and the labels and env the
// options pick; time in whole seconds, or as the EventTime extension with
// fluentd-sub-second-precision; with fluentd-request-ack each message
// carries a chunk ID the server must answer.
//
// Over tcp, tls or a unix socket. dockerd connects at the container's
// start and fails it when no server answers, unless fluentd-async; so does
// this package. Where dockerd retries a failed write for ever (holding up
// the container's output), a line that cannot be sent here is dropped
// after one reconnection; with fluentd-async, lines wait in a buffer of at
// most BufferLimit bytes while a connection is made in the background.
package fluentd

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"skiffd/internal/runtime/partial"
)

// Config is where and how to send.
type Config struct {
	// Network is tcp, tls or unix; Address is host:port, or the
	// socket's path.
	Network, Address string
	Tag              string
	// Record is the container's part of every record: container_id,
	// container_name and the picked labels and env (which replace
	// source or log if they are so named, as in dockerd).
	Record map[string]string
	// SubSecond sends times as EventTime (nanoseconds) rather than
	// whole seconds.
	SubSecond bool
	// RequestAck asks the server to acknowledge each message.
	RequestAck bool
	// Async connects in the background: the start does not wait for the
	// server, and lines wait while there is none.
	Async bool
	// BufferLimit is how many bytes of messages wait for a connection
	// (Async); 0 is 1 MiB.
	BufferLimit int
	// RetryWait is the pause between attempts to connect (Async); 0 is
	// one second.
	RetryWait time.Duration
	// MaxRetries is how many attempts to connect may fail in a row
	// before the writer gives up and drops what comes (Async); 0 is no
	// limit.
	MaxRetries int
	// ReconnectInterval, if set, is how long a connection is used before
	// a new one is made (Async: to follow a server name whose address
	// changes).
	ReconnectInterval time.Duration
	// WriteTimeout and ReadTimeout bound a write and the wait for an
	// acknowledgement; 0 is a few seconds.
	WriteTimeout, ReadTimeout time.Duration
}

// Defaults of Config's zero fields.
const (
	defaultBufferLimit = 1 << 20
	defaultRetryWait   = time.Second
	defaultTimeout     = 3 * time.Second
)

// fixedKeys are the record's own keys, in the order they are written.
var fixedKeys = [4]string{"container_id", "container_name", "source", "log"}

// Writer is a connection to a forward input; safe for concurrent use.
type Writer struct {
	cfg Config
	// extra is the record's other pairs, encoded, and their count;
	// override holds the values Record gives of the fixed keys.
	extra    []byte
	nextra   int
	override map[string]string

	mu       sync.Mutex
	conn     net.Conn
	buf      []byte
	pending  []queued // Async: messages waiting for a connection
	queued   int      // their bytes
	dialing  bool
	nextDial time.Time
	failures int  // attempts to connect that failed in a row
	gaveUp   bool // after MaxRetries of them
	connAt   time.Time
	closed   bool
	parts    partial.Tracker
	// dial connects; a field for tests.
	dial func() (net.Conn, error)
}

// Dial makes the writer; unless cfg.Async it connects first, and fails as
// dockerd's driver does when nothing answers.
func Dial(cfg Config) (*Writer, error) {
	switch cfg.Network {
	case "tcp", "tls", "unix":
	default:
		return nil, fmt.Errorf("fluentd: unknown network %q", cfg.Network)
	}
	if cfg.BufferLimit <= 0 {
		cfg.BufferLimit = defaultBufferLimit
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = defaultRetryWait
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = defaultTimeout
	}
	w := &Writer{cfg: cfg, override: map[string]string{}}
	w.dial = w.connect
	for _, k := range slices.Sorted(maps.Keys(cfg.Record)) {
		if slices.Contains(fixedKeys[:], k) {
			w.override[k] = cfg.Record[k]
			continue
		}
		w.extra = appendStr(appendStr(w.extra, k), cfg.Record[k])
		w.nextra++
	}
	if cfg.Async {
		return w, nil
	}
	c, err := w.dial()
	if err != nil {
		return nil, err
	}
	w.conn, w.connAt = c, time.Now()
	return w, nil
}

// connect makes a connection to the server.
func (w *Writer) connect() (net.Conn, error) {
	d := &net.Dialer{Timeout: defaultTimeout}
	if w.cfg.Network == "tls" {
		return tls.DialWithDialer(d, "tcp", w.cfg.Address, &tls.Config{})
	}
	return d.Dial(w.cfg.Network, w.cfg.Address)
}

// Message appends the forward message of one line at time t to b; ack is
// its chunk ID ("" for none), part its place in a cut line (dockerd's
// partial_* fields).
func (w *Writer) Message(b []byte, stream string, line []byte, t time.Time, ack string, part partial.Meta) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	b = append(b, 0x94) // [tag, time, record, option]
	b = appendStr(b, w.cfg.Tag)
	if w.cfg.SubSecond {
		// EventTime: ext 0 of 8 bytes, seconds and nanoseconds (UTC).
		b = append(b, 0xd7, 0x00)
		b = binary.BigEndian.AppendUint32(b, uint32(t.Unix()))
		b = binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	} else {
		b = appendInt(b, t.Unix())
	}
	n := len(fixedKeys) + w.nextra
	if part.ID != "" {
		n += 4
	}
	b = appendMapHeader(b, n)
	for _, k := range fixedKeys {
		b = appendStr(b, k)
		v, ok := w.override[k]
		switch {
		case ok:
			b = appendStr(b, v)
		case k == "source":
			b = appendStr(b, stream)
		case k == "log":
			b = appendBytes(b, line)
		default:
			b = appendStr(b, "")
		}
	}
	b = append(b, w.extra...)
	if part.ID != "" {
		b = appendStr(appendStr(b, "partial_message"), "true")
		b = appendStr(appendStr(b, "partial_id"), part.ID)
		b = appendStr(appendStr(b, "partial_ordinal"), strconv.Itoa(part.Ordinal))
		b = appendStr(appendStr(b, "partial_last"), strconv.FormatBool(part.Last))
	}
	if ack == "" {
		return append(b, 0x80) // an empty option map
	}
	b = appendMapHeader(b, 1)
	return appendStr(appendStr(b, "chunk"), ack)
}

// Send sends one line of stream; an empty line sends nothing, as in
// dockerd, unless it ends a cut line.
func (w *Writer) Send(stream string, line []byte) error {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	part := w.parts.Next(stream, line)
	if (len(line) == 0 || len(line) == 1 && line[0] == '\n') && !part.Last {
		return nil
	}
	if w.closed {
		return errors.New("fluentd: writer closed")
	}
	var ack string
	if w.cfg.RequestAck {
		ack = chunkID(now)
	}
	w.buf = w.Message(w.buf[:0], stream, line, now, ack, part)
	if w.cfg.Async && w.conn != nil && w.cfg.ReconnectInterval > 0 && now.Sub(w.connAt) > w.cfg.ReconnectInterval {
		w.conn.Close()
		w.conn = nil
	}
	if w.cfg.Async && w.conn == nil {
		w.queueLocked(w.buf, ack)
		return nil
	}
	err := w.sendLocked(w.buf, ack)
	if err == nil || w.cfg.Async {
		if err != nil {
			w.queueLocked(w.buf, ack)
		}
		return nil
	}
	// Once more on a new connection; then the line is dropped, where
	// dockerd would retry for ever.
	c, derr := w.dial()
	if derr != nil {
		return fmt.Errorf("fluentd: %w", derr)
	}
	w.conn = c
	if err := w.sendLocked(w.buf, ack); err != nil {
		return fmt.Errorf("fluentd: %w", err)
	}
	return nil
}

// sendLocked writes one message on the connection and, with an ack,
// waits for its acknowledgement; a connection that fails is closed.
func (w *Writer) sendLocked(msg []byte, ack string) error {
	if w.conn == nil {
		return errors.New("not connected")
	}
	w.conn.SetWriteDeadline(time.Now().Add(w.cfg.WriteTimeout))
	_, err := w.conn.Write(msg)
	if err == nil && ack != "" {
		w.conn.SetReadDeadline(time.Now().Add(w.cfg.ReadTimeout))
		var got string
		if got, err = readAck(w.conn); err == nil && got != ack {
			err = fmt.Errorf("acknowledgement %q for chunk %q", got, ack)
		}
	}
	if err != nil {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

// queueLocked keeps a message for the connection being made (Async),
// dropping it when the buffer is full, and starts a connection unless one
// is on its way or the last failed less than RetryWait ago.
func (w *Writer) queueLocked(msg []byte, ack string) {
	if w.gaveUp {
		return
	}
	if w.queued+len(msg) <= w.cfg.BufferLimit {
		w.pending = append(w.pending, queued{msg: bytes.Clone(msg), ack: ack})
		w.queued += len(msg)
	}
	if w.dialing || time.Now().Before(w.nextDial) {
		return
	}
	w.dialing = true
	go w.redial()
}

// redial connects in the background and sends what waits (Async).
func (w *Writer) redial() {
	c, err := w.dial()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dialing = false
	if w.closed {
		if c != nil {
			c.Close()
		}
		return
	}
	if err != nil {
		w.nextDial = time.Now().Add(w.cfg.RetryWait)
		w.failures++
		if w.cfg.MaxRetries > 0 && w.failures >= w.cfg.MaxRetries {
			w.gaveUp = true
			w.pending, w.queued = nil, 0
		}
		return
	}
	w.conn, w.connAt, w.failures = c, time.Now(), 0
	for len(w.pending) > 0 {
		q := w.pending[0]
		if w.sendLocked(q.msg, q.ack) != nil {
			w.nextDial = time.Now().Add(w.cfg.RetryWait)
			return
		}
		w.pending[0] = queued{}
		w.pending = w.pending[1:]
		w.queued -= len(q.msg)
	}
}

// queued is a message waiting for a connection, with its chunk ID.
type queued struct {
	msg []byte
	ack string
}

// Close closes the connection; what waits for one is dropped.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.pending, w.queued = nil, 0
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}

// chunkID is a message's unique ID for acknowledgement: the time and 8
// random bytes, little-endian, in base64 (fluent-logger-golang's form).
func chunkID(t time.Time) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(t.Unix()))
	rand.Read(b[8:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// readAck reads the server's answer, a map with "ack", and returns it.
func readAck(r io.Reader) (string, error) {
	br := &byteReader{r: r}
	n, err := br.mapHeader()
	if err != nil {
		return "", err
	}
	var ack string
	for range n {
		k, err := br.str()
		if err != nil {
			return "", err
		}
		v, err := br.str()
		if err != nil {
			return "", err
		}
		if k == "ack" {
			ack = v
		}
	}
	return ack, nil
}

// MessagePack encoding, the few forms the forward protocol needs.

func appendStr(b []byte, s string) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

// appendBytes appends a line as a MessagePack string (a line need not be
// UTF-8; the forward protocol's readers take a string's bytes as they
// are, as fluent-logger-golang sends them).
func appendBytes(b []byte, s []byte) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n < 1<<8:
		return append(b, 0xd9, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

// appendInt appends a non-negative integer in its shortest form (times
// before 1970 are not sent).
func appendInt(b []byte, i int64) []byte {
	switch {
	case i < 0:
		return append(b, 0)
	case i < 128:
		return append(b, byte(i))
	case i < 1<<15:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(i))
	case i < 1<<31:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
	}
}

// byteReader decodes the maps of strings an acknowledgement is.
type byteReader struct {
	r   io.Reader
	one [1]byte
}

func (br *byteReader) byte() (byte, error) {
	_, err := io.ReadFull(br.r, br.one[:])
	return br.one[0], err
}

func (br *byteReader) uint(n int) (int, error) {
	var b [4]byte
	if _, err := io.ReadFull(br.r, b[4-n:]); err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint32(b[:])), nil
}

func (br *byteReader) mapHeader() (int, error) {
	c, err := br.byte()
	switch {
	case err != nil:
		return 0, err
	case c&0xf0 == 0x80:
		return int(c & 0x0f), nil
	case c == 0xde:
		return br.uint(2)
	case c == 0xdf:
		return br.uint(4)
	}
	return 0, fmt.Errorf("acknowledgement: a map expected, got type %#x", c)
}

// maxAck bounds a string of an acknowledgement.
const maxAck = 1 << 10

func (br *byteReader) str() (string, error) {
	c, err := br.byte()
	var n int
	switch {
	case err != nil:
		return "", err
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9, c == 0xc4:
		n, err = br.uint(1)
	case c == 0xda, c == 0xc5:
		n, err = br.uint(2)
	case c == 0xdb, c == 0xc6:
		n, err = br.uint(4)
	default:
		return "", fmt.Errorf("acknowledgement: a string expected, got type %#x", c)
	}
	if err != nil {
		return "", err
	}
	if n > maxAck {
		return "", fmt.Errorf("acknowledgement: a string of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br.r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
