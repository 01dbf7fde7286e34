// Package syslog sends a container's log lines to a syslog server, as
// dockerd's syslog logging driver does: one message a line, in the
// driver's formats ("" (dockerd's default, the local syslog daemon's
// form), rfc3164, rfc5424, rfc5424micro), over unix, unixgram, udp, tcp
// or tcp+tls, info for stdout and err for stderr. The shim owns one Writer
// per container; a line that cannot be sent is dropped after one
// reconnection, so that a dead server does not stop the container.
//
//	w, err := syslog.Dial(syslog.Config{Proto: "udp", Address: "127.0.0.1:514", Facility: 3, Tag: "abc123def456"})
//	w.Send("stdout", []byte("hello\n"))
package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Severities of stdout and stderr lines (RFC 5424).
const (
	sevErr  = 3
	sevInfo = 6
)

// writeTimeout bounds one send on a stream connection: a server that
// stops reading costs the container's output that long per line, then
// the line is dropped.
const writeTimeout = 2 * time.Second

// Config is where and how to send.
type Config struct {
	// Proto is unix, unixgram, udp, tcp or tcp+tls; "" is the local
	// syslog daemon (/dev/log, unixgram then unix).
	Proto, Address string
	// Facility is the syslog facility number (daemon: 3).
	Facility int
	// Format is "", rfc3164, rfc5424 or rfc5424micro.
	Format   string
	Tag      string
	Hostname string
	// TLS configures tcp+tls.
	TLS *tls.Config
}

// Writer is a connection to a syslog server; safe for concurrent use.
type Writer struct {
	cfg  Config
	pid  int
	mu   sync.Mutex
	conn net.Conn
}

// ValidFormat reports whether f is one of the formats.
func ValidFormat(f string) bool {
	switch f {
	case "", "rfc3164", "rfc5424", "rfc5424micro":
		return true
	}
	return false
}

// Dial connects to the server cfg names.
func Dial(cfg Config) (*Writer, error) {
	if !ValidFormat(cfg.Format) {
		return nil, errors.New("Invalid syslog format")
	}
	w := &Writer{cfg: cfg, pid: os.Getpid()}
	c, err := w.dial()
	if err != nil {
		return nil, err
	}
	w.conn = c
	return w, nil
}

func (w *Writer) dial() (net.Conn, error) {
	switch w.cfg.Proto {
	case "":
		for _, p := range []string{"unixgram", "unix"} {
			for _, a := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
				if c, err := net.DialTimeout(p, a, writeTimeout); err == nil {
					return c, nil
				}
			}
		}
		return nil, errors.New("Unix syslog delivery error")
	case "tcp+tls":
		d := &net.Dialer{Timeout: writeTimeout}
		return tls.DialWithDialer(d, "tcp", w.cfg.Address, w.cfg.TLS)
	}
	return net.DialTimeout(w.cfg.Proto, w.cfg.Address, writeTimeout)
}

// Send sends one line of stream ("stdout" or "stderr"); an empty line
// sends nothing, as in dockerd.
func (w *Writer) Send(stream string, line []byte) error {
	if len(line) == 0 || len(line) == 1 && line[0] == '\n' {
		return nil
	}
	sev := sevInfo
	if stream == "stderr" {
		sev = sevErr
	}
	msg := w.Format(w.cfg.Facility<<3|sev, line, time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		if err := w.write(msg); err == nil {
			return nil
		}
		w.conn.Close()
		w.conn = nil
	}
	c, err := w.dial()
	if err != nil {
		return fmt.Errorf("syslog: %w", err)
	}
	w.conn = c
	if err := w.write(msg); err != nil {
		w.conn.Close()
		w.conn = nil
		return fmt.Errorf("syslog: %w", err)
	}
	return nil
}

func (w *Writer) write(msg []byte) error {
	w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := w.conn.Write(msg)
	return err
}

// Format is the message of line at priority pri and time t, as dockerd's
// driver (its srslog formatter and framer) writes it: ending with one
// newline, and octet-counted (RFC 5425) for rfc5424 over tcp+tls.
func (w *Writer) Format(pri int, line []byte, t time.Time) []byte {
	content := string(line)
	if len(content) == 0 || content[len(content)-1] != '\n' {
		content += "\n"
	}
	pid := strconv.Itoa(w.pid)
	var s string
	switch w.cfg.Format {
	case "":
		s = fmt.Sprintf("<%d>%s %s[%s]: %s", pri, t.Format(time.Stamp), w.cfg.Tag, pid, content)
	case "rfc3164":
		s = fmt.Sprintf("<%d>%s %s %s[%s]: %s", pri, t.Format(time.Stamp), w.cfg.Hostname, w.cfg.Tag, pid, content)
	case "rfc5424", "rfc5424micro":
		layout := time.RFC3339
		if w.cfg.Format == "rfc5424micro" {
			layout = "2006-01-02T15:04:05.000000Z07:00"
		}
		s = fmt.Sprintf("<%d>1 %s %s %s %s %s - %s", pri, t.Format(layout), w.cfg.Hostname, w.cfg.Tag, pid, w.cfg.Tag, content)
		if w.cfg.Proto == "tcp+tls" {
			s = strconv.Itoa(len(s)) + " " + s
		}
	}
	return []byte(s)
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
