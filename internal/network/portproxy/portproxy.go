// Package portproxy forwards TCP connections from a host address to a
// container, in user space: what dockerd's docker-proxy does. skiffd
// publishes ports with nf_tables DNAT; it needs this only where DNAT
// cannot work, for ports published on the IPv6 loopback address: ::1 is
// not routable, so a connection from [::1] cannot be sent to a container
// (IPv4 has route_localnet for 127.0.0.0/8; IPv6 has no equivalent).
//
//	p, err := portproxy.ListenTCP(netip.MustParseAddrPort("[::1]:8080"), ctr) // ctr: [fd..::2]:80
//	defer p.Close()                                                        // listener and connections
package portproxy

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// TCP is one published TCP port served in user space.
type TCP struct {
	ln  net.Listener
	dst netip.AddrPort

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ListenTCP listens on host (in the calling goroutine's network
// namespace, the daemon's) and forwards each connection to dst until
// Close.
func ListenTCP(host, dst netip.AddrPort) (*TCP, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(host))
	if err != nil {
		return nil, err
	}
	p := &TCP{ln: ln, dst: dst, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *TCP) Addr() net.Addr { return p.ln.Addr() }

func (p *TCP) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // closed
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track records c for Close; false once closed.
func (p *TCP) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *TCP) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// forward copies between the client c and a new connection to the
// container, each direction half-closed when its source ends, as
// docker-proxy does.
func (p *TCP) forward(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	up, err := net.DialTimeout("tcp", p.dst.String(), 10*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		closeWrite(up)
		close(done)
	}()
	io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// Close stops listening, ends the connections in flight and waits for
// their goroutines.
func (p *TCP) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
