package portproxy

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// echoServer serves on a loopback port, writing back each line it reads
// in upper case, and returns its address.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, strings.ToUpper(l))
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestTCPForwardsAndCloses: bytes go both ways through the proxy, a
// client's half-close reaches the server, and Close ends the listener
// and the connections in flight.
func TestTCPForwardsAndCloses(t *testing.T) {
	dst := echoServer(t)
	p, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"), dst)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"hello\n", "again\n"} {
		io.WriteString(c, line)
		got, err := r.ReadString('\n')
		if err != nil || got != strings.ToUpper(line) {
			t.Fatalf("through the proxy: %q, %v; want %q", got, err, strings.ToUpper(line))
		}
	}
	// Half-close: the server sees EOF and closes, the client sees EOF.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "last\n")
	c2.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(c2); err != nil || string(b) != "LAST\n" {
		t.Errorf("after a half-close: %q, %v", b, err)
	}

	p.Close()
	if _, err := r.ReadString('\n'); err == nil {
		t.Errorf("a connection survived Close")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the proxy still accepts after Close")
	}
}
