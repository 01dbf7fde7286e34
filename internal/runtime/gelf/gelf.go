// Package gelf sends a container's log lines to a Graylog (GELF) endpoint,
// as dockerd's gelf logging driver does: one GELF 1.1 message a line, with
// the container's fields (_container_id, _container_name, _image_id,
// _image_name, _command, _tag, _created and the labels and env the
// options pick), level 6 for stdout and 3 for stderr; over UDP gzipped (or
// zlib, or plain) and chunked above 1420 bytes, or over TCP plain and
// NUL-delimited. A line that cannot be sent is dropped after one
// reconnection (TCP), so a dead endpoint does not stop the container.
package gelf

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// chunkSize is the largest UDP datagram before chunking, go-gelf's.
const chunkSize = 1420

// maxChunks is GELF's limit on the chunks of one message.
const maxChunks = 128

// Config is where and how to send.
type Config struct {
	Proto, Address string // udp or tcp, host:port
	// Compression is gzip (UDP's default), zlib or none; Level is its
	// flate level (dockerd's default: 1, flate.BestSpeed).
	Compression string
	Level       int
	Host        string
	// Extra is the JSON object of the container's fields, merged into
	// every message.
	Extra map[string]any
}

// Writer is a connection to a GELF endpoint; safe for concurrent use.
type Writer struct {
	cfg   Config
	extra []byte // the Extra fields, marshalled, without braces
	mu    sync.Mutex
	conn  net.Conn
	buf   bytes.Buffer
}

// Dial connects to the endpoint cfg names.
func Dial(cfg Config) (*Writer, error) {
	w := &Writer{cfg: cfg}
	if len(cfg.Extra) > 0 {
		b, err := json.Marshal(cfg.Extra)
		if err != nil {
			return nil, err
		}
		w.extra = b[1 : len(b)-1]
	}
	c, err := net.DialTimeout(cfg.Proto, cfg.Address, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("gelf: cannot connect to GELF endpoint: %s %v", cfg.Address, err)
	}
	w.conn = c
	return w, nil
}

// Message is the GELF JSON of one line at time t.
func (w *Writer) Message(stream string, line []byte, t time.Time) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	level := 6
	if stream == "stderr" {
		level = 3
	}
	short, _ := json.Marshal(string(line))
	host, _ := json.Marshal(w.cfg.Host)
	var b bytes.Buffer
	b.WriteString(`{"version":"1.1","host":`)
	b.Write(host)
	b.WriteString(`,"short_message":`)
	b.Write(short)
	b.WriteString(`,"timestamp":`)
	b.WriteString(strconv.FormatFloat(float64(t.UnixNano()/int64(time.Millisecond))/1000.0, 'f', -1, 64))
	b.WriteString(`,"level":`)
	b.WriteString(strconv.Itoa(level))
	if len(w.extra) > 0 {
		b.WriteByte(',')
		b.Write(w.extra)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Send sends one line of stream; an empty line sends nothing, as in
// dockerd.
func (w *Writer) Send(stream string, line []byte) error {
	if len(line) == 0 || len(line) == 1 && line[0] == '\n' {
		return nil
	}
	msg := w.Message(stream, line, time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cfg.Proto == "udp" {
		return w.sendUDP(msg)
	}
	msg = append(msg, 0)
	if w.conn != nil {
		w.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := w.conn.Write(msg); err == nil {
			return nil
		}
		w.conn.Close()
		w.conn = nil
	}
	c, err := net.DialTimeout("tcp", w.cfg.Address, 2*time.Second)
	if err != nil {
		return fmt.Errorf("gelf: %w", err)
	}
	w.conn = c
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(msg); err != nil {
		c.Close()
		w.conn = nil
		return fmt.Errorf("gelf: %w", err)
	}
	return nil
}

// sendUDP compresses msg and sends it in one datagram, or in GELF chunks.
func (w *Writer) sendUDP(msg []byte) error {
	w.buf.Reset()
	level := w.cfg.Level
	switch w.cfg.Compression {
	case "none":
		w.buf.Write(msg)
	case "zlib":
		zw, err := zlib.NewWriterLevel(&w.buf, level)
		if err != nil {
			return err
		}
		zw.Write(msg)
		zw.Close()
	default:
		zw, err := gzip.NewWriterLevel(&w.buf, level)
		if err != nil {
			return err
		}
		zw.Write(msg)
		zw.Close()
	}
	data := w.buf.Bytes()
	if len(data) <= chunkSize {
		_, err := w.conn.Write(data)
		return err
	}
	const header = 12
	per := chunkSize - header
	n := (len(data) + per - 1) / per
	if n > maxChunks {
		return fmt.Errorf("gelf: message of %d bytes needs %d chunks, more than %d", len(data), n, maxChunks)
	}
	var id [8]byte
	rand.Read(id[:])
	chunk := make([]byte, 0, chunkSize)
	for i := 0; i < n; i++ {
		chunk = append(chunk[:0], 0x1e, 0x0f)
		chunk = append(chunk, id[:]...)
		chunk = append(chunk, byte(i), byte(n))
		end := min((i+1)*per, len(data))
		chunk = append(chunk, data[i*per:end]...)
		if _, err := w.conn.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the connection.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}
