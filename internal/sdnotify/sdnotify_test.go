package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/sys"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestSend covers both socket kinds systemd uses.
func TestSend(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@skiffd-notify-test-%d", os.Getpid()),
	} {
		t.Run(name, func(t *testing.T) {
			c := listen(t, name)
			n := New(func(k string) string {
				if k == "NOTIFY_SOCKET" {
					return name
				}
				return ""
			})
			if err := n.Send(Ready); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != "READY=1" {
				t.Fatalf("got %q, want READY=1", got)
			}
		})
	}
}

// TestReloadingCarriesMonotonicTime: MONOTONIC_USEC is CLOCK_MONOTONIC now.
func TestReloadingCarriesMonotonicTime(t *testing.T) {
	msg := Reloading()
	first, usec, ok := strings.Cut(msg, "\nMONOTONIC_USEC=")
	if first != "RELOADING=1" || !ok {
		t.Fatalf("Reloading() = %q", msg)
	}
	v, err := strconv.ParseInt(usec, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := sys.MonotonicMicros()
	if v <= 0 || now-v < 0 || now-v > 10e6 {
		t.Fatalf("MONOTONIC_USEC=%d, now %d", v, now)
	}
}

// TestNoSocketIsNoop: outside systemd nothing is sent and nothing fails.
func TestNoSocketIsNoop(t *testing.T) {
	n := New(func(string) string { return "" })
	if n.Enabled() || n.Send(Ready) != nil {
		t.Fatal("Send without NOTIFY_SOCKET did something")
	}
}
