package netlink

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// requireRoot fails rather than skips: these tests are the package's proof
// and the suite runs as root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("netlink tests need root (network namespaces)")
	}
}

// testNetns creates a private network namespace that lives until the test
// ends; its loopback is up.
func testNetns(t testing.TB) (int, *Handle) {
	t.Helper()
	requireRoot(t)
	f, err := NewNetns()
	if err != nil {
		t.Fatalf("NewNetns: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	h, err := Open(int(f.Fd()))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatalf("LinkByName(lo): %v", err)
	}
	if err := h.SetUp(lo.Index); err != nil {
		t.Fatalf("SetUp(lo): %v", err)
	}
	return int(f.Fd()), h
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// listen opens a TCP listener inside ns that answers every connection with
// reply, then closes it.
func listen(t testing.TB, ns int, addr string, reply string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln
}

// dial connects from inside ns to addr and returns what the server sent.
func dial(ns int, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := Do(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		err = nil
	}
	return string(buf[:n]), err
}
