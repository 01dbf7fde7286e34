package journald

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ParseFields reads a native-protocol message as journald does: KEY=value
// lines, and KEY, newline, 64-bit little-endian length, value, newline.
func parseFields(b []byte) (map[string]string, error) {
	m := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("field without a newline: %q", b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			m[string(k)] = string(v)
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("binary field %q without its length", line)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("binary field %q of %d bytes cut short", line, n)
		}
		m[string(line)] = string(b[:n])
		b = b[n+1:]
	}
	return m, nil
}

// journal is a socket the test listens on as journald would; next returns
// the fields of the next message, read from the datagram or from the
// memfd it carries.
func journal(t *testing.T) (string, func() map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	buf, oob := make([]byte, 1<<20), make([]byte, 64)
	return path, func() map[string]string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		msg := buf[:n]
		if oobn > 0 {
			cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
			if err != nil || len(cmsgs) != 1 {
				t.Fatalf("control messages %v, %v", cmsgs, err)
			}
			fds, err := syscall.ParseUnixRights(&cmsgs[0])
			if err != nil || len(fds) != 1 {
				t.Fatalf("rights %v, %v", fds, err)
			}
			f := os.NewFile(uintptr(fds[0]), "memfd")
			defer f.Close()
			// From its start, as journald maps it: the offset is the
			// writer's, at the end.
			if msg, err = io.ReadAll(io.NewSectionReader(f, 0, 1<<30)); err != nil {
				t.Fatal(err)
			}
		}
		m, err := parseFields(msg)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}

func TestSend(t *testing.T) {
	path, next := journal(t)
	w, err := Dial(path, map[string]string{"CONTAINER_ID": "abc", "CONTAINER_NAME": "web", "MULTI": "two\nlines"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	big := strings.Repeat("y", 400<<10) // more than a datagram holds
	for _, tc := range []struct{ stream, line, message, priority string }{
		{"stdout", "hello\n", "hello", "6"},
		{"stderr", "oops", "oops", "3"},
		{"stdout", big + "\n", big, "6"},
	} {
		if err := w.Send(tc.stream, []byte(tc.line)); err != nil {
			t.Fatalf("send %d bytes: %v", len(tc.line), err)
		}
		m := next()
		if m["MESSAGE"] != tc.message || m["PRIORITY"] != tc.priority || m["CONTAINER_ID"] != "abc" || m["CONTAINER_NAME"] != "web" || m["MULTI"] != "two\nlines" {
			t.Errorf("fields %.300v", m)
		}
		if ts, err := time.Parse(time.RFC3339Nano, m["SYSLOG_TIMESTAMP"]); err != nil || time.Since(ts).Abs() > time.Minute {
			t.Errorf("SYSLOG_TIMESTAMP %q: %v", m["SYSLOG_TIMESTAMP"], err)
		}
		if len(m["CONTAINER_LOG_EPOCH"]) != 64 {
			t.Errorf("CONTAINER_LOG_EPOCH %q", m["CONTAINER_LOG_EPOCH"])
		}
	}
	if got := w.ordinal; got != 3 {
		t.Errorf("ordinal %d after three lines", got)
	}
	// A cut line: dockerd's CONTAINER_PARTIAL_* fields.
	w.Send("stdout", []byte("cut"))
	w.Send("stdout", []byte("rest\n"))
	a, b := next(), next()
	if a["MESSAGE"] != "cut" || a["CONTAINER_PARTIAL_ORDINAL"] != "1" || a["CONTAINER_PARTIAL_LAST"] != "false" || a["CONTAINER_PARTIAL_MESSAGE"] != "true" ||
		b["MESSAGE"] != "rest" || b["CONTAINER_PARTIAL_ORDINAL"] != "2" || b["CONTAINER_PARTIAL_LAST"] != "true" || b["CONTAINER_PARTIAL_MESSAGE"] != "" ||
		len(a["CONTAINER_PARTIAL_ID"]) != 64 || a["CONTAINER_PARTIAL_ID"] != b["CONTAINER_PARTIAL_ID"] {
		t.Errorf("pieces of a cut line: %v, %v", a, b)
	}
}

// TestStuckJournal: a journal that stops reading costs lines, each after
// the send's timeout, not the container's output for ever.
func TestStuckJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socket")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // never read
	w, err := Dial(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.timeout = 50 * time.Millisecond
	var failed int
	for i := 0; i < 100000 && failed == 0; i++ {
		if err := w.Send("stdout", []byte("line\n")); err != nil {
			if !os.IsTimeout(errors.Unwrap(err)) {
				t.Fatalf("send to a full queue: %v, want a timeout", err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("100000 lines went into a queue nobody reads")
	}
}

// TestNoJournal: without the journal's socket the writer is refused with
// dockerd's words.
func TestNoJournal(t *testing.T) {
	for _, p := range []string{filepath.Join(t.TempDir(), "none"), t.TempDir()} {
		if _, err := Dial(p, nil); err == nil || err.Error() != "journald is not enabled on this host" {
			t.Errorf("Dial(%s) = %v", p, err)
		}
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"com.example.app": "COM_EXAMPLE_APP", "_x-y": "X_Y", "Ab9": "AB9", "__": "", "é1": "1"} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}
