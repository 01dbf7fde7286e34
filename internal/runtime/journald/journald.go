// Package journald sends a container's log lines to the systemd journal
// over its native protocol, as dockerd's journald logging driver does: one
// datagram a line on the journal's socket, of KEY=value fields (a value
// with a newline in the protocol's binary form): MESSAGE, PRIORITY (6 for
// stdout, 3 for stderr), SYSLOG_TIMESTAMP, the container's fields
// (CONTAINER_ID, CONTAINER_ID_FULL, CONTAINER_NAME, CONTAINER_TAG,
// IMAGE_NAME, SYSLOG_IDENTIFIER and the picked labels and env, keys in
// upper case) and the writer's CONTAINER_LOG_EPOCH and
// CONTAINER_LOG_ORDINAL. A message too big for a datagram goes in a
// sealed memfd whose descriptor the datagram carries, as journald takes
// it. A line the journal does not take within a few seconds is dropped.
package journald

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/runtime/partial"
	"skiffd/internal/sys"
)

// DefaultSocket is where journald listens.
const DefaultSocket = "/run/systemd/journal/socket"

// sendTimeout is how long a line waits for room in the journal's queue.
const sendTimeout = 3 * time.Second

// Writer is a socket to the journal; safe for concurrent use.
type Writer struct {
	conn    *net.UnixConn
	fields  []byte // the container's fields and the epoch, encoded
	mu      sync.Mutex
	ordinal uint64
	buf     []byte
	timeout time.Duration // sendTimeout; shorter in tests
	parts   partial.Tracker
}

// Dial makes a writer to the journal at socket, with vars (the
// container's fields) in every message. It fails as dockerd's driver does
// when the host has no journal there.
func Dial(socket string, vars map[string]string) (*Writer, error) {
	if fi, err := os.Stat(socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, errors.New("journald is not enabled on this host")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("journald: %w", err)
	}
	var epoch [32]byte
	rand.Read(epoch[:])
	w := &Writer{conn: c, timeout: sendTimeout}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		w.fields = appendField(w.fields, k, vars[k])
	}
	w.fields = appendField(w.fields, "CONTAINER_LOG_EPOCH", hex.EncodeToString(epoch[:]))
	return w, nil
}

// Message appends the fields of one line at time t to b; part is its
// place in a cut line (dockerd's CONTAINER_PARTIAL_* fields).
func (w *Writer) Message(b []byte, stream string, line []byte, t time.Time, ordinal uint64, part partial.Meta) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	priority := "6"
	if stream == "stderr" {
		priority = "3"
	}
	b = appendField(b, "PRIORITY", priority)
	b = appendField(b, "MESSAGE", line)
	b = append(b, w.fields...)
	b = appendField(b, "SYSLOG_TIMESTAMP", t.Format(time.RFC3339Nano))
	if part.ID != "" {
		b = appendField(b, "CONTAINER_PARTIAL_ID", part.ID)
		b = appendField(b, "CONTAINER_PARTIAL_ORDINAL", strconv.Itoa(part.Ordinal))
		b = appendField(b, "CONTAINER_PARTIAL_LAST", strconv.FormatBool(part.Last))
		if !part.Last {
			b = appendField(b, "CONTAINER_PARTIAL_MESSAGE", "true")
		}
	}
	return appendField(b, "CONTAINER_LOG_ORDINAL", strconv.FormatUint(ordinal, 10))
}

// Send sends one line of stream.
func (w *Writer) Send(stream string, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return errors.New("journald: writer closed")
	}
	w.ordinal++
	now := time.Now()
	w.buf = w.Message(w.buf[:0], stream, line, now, w.ordinal, w.parts.Next(stream, line))
	// A journal that stops reading fills the socket's queue: a line
	// then waits a while and is dropped, rather than holding up the
	// container's output for as long as the journal is stuck.
	w.conn.SetWriteDeadline(now.Add(w.timeout))
	_, err := w.conn.Write(w.buf)
	if errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS) {
		err = w.sendMemfd(w.buf)
	}
	if err != nil {
		return fmt.Errorf("journald: %w", err)
	}
	return nil
}

// sendMemfd sends msg in a sealed memfd, the datagram carrying only its
// descriptor (journald's way for what a datagram cannot hold).
func (w *Writer) sendMemfd(msg []byte) error {
	fd, err := sys.MemfdCreate("journal-message", sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "journal-message")
	defer f.Close()
	if _, err := f.Write(msg); err != nil {
		return err
	}
	if err := sys.AddSeals(fd, sys.F_SEAL_SHRINK|sys.F_SEAL_GROW|sys.F_SEAL_WRITE|sys.F_SEAL_SEAL); err != nil {
		return err
	}
	// sendmsg itself: net refuses a message with rights on a connected
	// datagram socket.
	rc, err := w.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(s uintptr) bool {
		serr = syscall.Sendmsg(int(s), nil, syscall.UnixRights(fd), nil, 0)
		return serr != syscall.EAGAIN
	}); err != nil {
		return err
	}
	return serr
}

// Close closes the socket.
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

// appendField appends KEY=value and a newline, or, for a value with a
// newline, the protocol's binary form: KEY, a newline, the value's length
// as 64 bits little-endian, the value and a newline.
func appendField[V string | []byte](b []byte, key string, value V) []byte {
	b = append(b, key...)
	for i := 0; i < len(value); i++ {
		if value[i] == '\n' {
			b = append(b, '\n')
			b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
			b = append(b, value...)
			return append(b, '\n')
		}
	}
	b = append(b, '=')
	b = append(b, value...)
	return append(b, '\n')
}

// FieldName is a label's or env variable's name as a journal field, as
// dockerd makes it: letters in upper case, other characters but digits as
// underscores, leading underscores dropped (a journal field may not start
// with one: those are the journal's own).
func FieldName(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		default:
			r = '_'
		}
		if len(out) == 0 && r == '_' {
			continue
		}
		out = append(out, byte(r))
	}
	return string(out)
}
