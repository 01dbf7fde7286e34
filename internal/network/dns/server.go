// Package dns is skiffd's embedded DNS server, the 127.0.0.11 that
// containers on user-defined networks use as their only nameserver, as
// dockerd's libnetwork resolver is.
//
// One Server serves one container. The engine creates the sockets (bound
// to 127.0.0.11:53 inside the container's network namespace, on a locked
// thread) and hands them over; the Server answers from the names of the
// networks the container is attached to and forwards everything else,
// verbatim, to upstream resolvers through a dialer the engine supplies
// (one that dials from the host's namespace):
//
//	srv := dns.NewServer(dns.Config{
//		Networks:  []dns.Network{{Name: "app", LookupName: appNames, LookupAddr: appAddrs}},
//		Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
//		Dial:      (&net.Dialer{}).DialContext,
//	})
//	go srv.ServePacket(udpConn) // returns when udpConn is closed
//	go srv.ServeStream(tcpListener)
//	srv.SetNetworks(...)        // on docker network connect/disconnect
//
// What it answers, as dockerd does:
//   - A and AAAA for a name on one of the container's networks: every
//     address, TTL 600. "name.network" asks that network only. A name that
//     exists locally without an address of the asked family gets an empty
//     NOERROR answer (NODATA), never a forwarded one.
//   - PTR for an address on one of the networks: "<name>.<network>".
//   - MX for a local name: empty NOERROR, so mailers fall back to A.
//   - Anything else is forwarded to the upstreams in order; SERVFAIL and
//     REFUSED move on to the next one. The answer is relayed as received
//     (ID included, since the query is sent as received). With no upstream
//     (an --internal network) or none answering, SERVFAIL.
//   - With Ndots set (the container's resolv.conf has an explicit ndots),
//     A/AAAA for a single-label name not found locally is answered with an
//     empty NOERROR instead of being forwarded: the client then tries its
//     search domains.
//
// Search domains and ndots are otherwise the client's business. SRV
// (swarm services) is not answered locally and is forwarded.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Network is one network the querying container is attached to.
type Network struct {
	// Name is the network's name, which also works as a domain:
	// "db.app" is "db" on network "app".
	Name string
	// LookupName returns the addresses name (lower case, no final dot) has
	// on this network: container names, aliases, short IDs, compose
	// service names, as the caller decides. ok reports that the name
	// exists on the network, even when it has no address of a family.
	// It must be safe for concurrent use.
	LookupName func(name string) (addrs []netip.Addr, ok bool)
	// LookupAddr returns the name of the container holding addr on this
	// network, "" if none. It may be nil.
	LookupAddr func(addr netip.Addr) string
}

// Dialer opens a connection to an upstream resolver; network is "udp" or
// "tcp". (*net.Dialer).DialContext fits.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Config is what a Server answers from.
type Config struct {
	Networks []Network
	// Upstreams are the resolvers forwarded to, in order (dockerd tries
	// at most three).
	Upstreams []netip.AddrPort
	// Dial creates forwarding sockets; nil dials from the daemon's
	// namespace with a net.Dialer. dockerd reaches the host's own
	// nameservers (etcfiles.ExtServer.HostLoopback) from the host's
	// namespace and --dns servers from the container's, and on an
	// --internal network only the latter: a Dial choosing the namespace
	// by address, and Upstreams filtered by the caller, do the same.
	Dial Dialer
	// Ndots is set when the container's resolv.conf sets ndots explicitly.
	Ndots bool
	// Timeout bounds one exchange with one upstream; 0 means 4s, dockerd's
	// extIOTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// maxUpstreams is how many upstream resolvers are tried (dockerd's maxExtDNS).
const maxUpstreams = 3

// Server is the embedded DNS server of one container. Its methods are safe
// for concurrent use.
type Server struct {
	cfg    atomic.Pointer[Config]
	logger *slog.Logger
	// fwd limits concurrent forwarded queries, as dockerd's fwdSem does.
	fwd chan struct{}
}

// NewServer returns a Server answering from cfg.
func NewServer(cfg Config) *Server {
	s := &Server{fwd: make(chan struct{}, 1024), logger: cfg.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.SetConfig(cfg)
	return s
}

// SetConfig replaces what the server answers from; queries in flight finish
// with the old configuration.
func (s *Server) SetConfig(cfg Config) {
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 4 * time.Second
	}
	s.cfg.Store(&cfg)
}

// SetNetworks replaces the container's networks (connect, disconnect) and
// keeps the rest of the configuration.
func (s *Server) SetNetworks(nets []Network) {
	cfg := *s.cfg.Load()
	cfg.Networks = nets
	s.cfg.Store(&cfg)
}

// ServePacket answers the UDP queries arriving on pc until pc is closed;
// then it waits for the answers in flight and returns nil. Each query is answered on its own goroutine, so a
// slow upstream never holds back local answers.
func (s *Server) ServePacket(pc net.PacketConn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, maxMsgSize)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		msg := append([]byte(nil), buf[:n]...)
		wg.Go(func() {
			if resp := s.Handle(context.Background(), msg, false); resp != nil {
				pc.WriteTo(resp, from)
			}
		})
	}
}

// ServeStream answers DNS over TCP (2-byte length prefixed messages, several
// per connection) on ln until ln is closed; then it closes the connections
// it serves and returns nil.
func (s *Server) ServeStream(ln net.Listener) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			s.serveConn(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
}

// idleTimeout closes a TCP connection without a new query for this long.
const idleTimeout = 10 * time.Second

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		msg, err := readStream(c)
		if err != nil {
			return
		}
		resp := s.Handle(context.Background(), msg, true)
		if resp == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(idleTimeout))
		if err := writeStream(c, resp); err != nil {
			return
		}
	}
}

func readStream(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(r, msg)
	return msg, err
}

func writeStream(w io.Writer, msg []byte) error {
	buf := make([]byte, 2, 2+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	_, err := w.Write(append(buf, msg...))
	return err
}

// Handle answers one DNS message; overTCP tells the size limit (a UDP
// answer never exceeds what the client announced). It returns nil for a
// message that deserves no answer at all (shorter than an ID, or itself a
// response).
func (s *Server) Handle(ctx context.Context, msg []byte, overTCP bool) []byte {
	q, err := Parse(msg)
	if err != nil {
		if len(msg) >= 4 && binary.BigEndian.Uint16(msg[2:])&flagQR != 0 {
			return nil
		}
		if errors.Is(err, ErrNotQuery) {
			return errorReply(msg, 4) // NOTIMP
		}
		return errorReply(msg, RcodeFormErr)
	}
	limit := q.UDPSize
	if overTCP {
		limit = maxMsgSize
	}
	cfg := s.cfg.Load()
	if q.Class == ClassINET {
		if resp, ok := s.local(cfg, q, limit); ok {
			return resp
		}
		if cfg.Ndots && (q.Type == TypeA || q.Type == TypeAAAA) && !strings.Contains(q.Name, ".") {
			return reply(q, RcodeSuccess, nil, limit)
		}
	}
	if resp := s.forward(ctx, cfg, msg, overTCP, limit); resp != nil {
		return resp
	}
	return reply(q, RcodeServFail, nil, limit)
}

// local answers q from the container's networks; ok is false when the
// query must be forwarded.
func (s *Server) local(cfg *Config, q Query, limit int) ([]byte, bool) {
	switch q.Type {
	case TypeA, TypeAAAA, TypeMX:
		addrs, ok := resolveName(cfg.Networks, q.Name, q.Type)
		if !ok {
			return nil, false
		}
		if q.Type == TypeMX {
			return reply(q, RcodeSuccess, nil, limit), true
		}
		// Shuffled as dockerd does, a poor man's load balancing between
		// containers sharing an alias.
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		rrs := make([]record, len(addrs))
		for i, a := range addrs {
			rrs[i] = record{typ: q.Type, addr: a}
		}
		return reply(q, RcodeSuccess, rrs, limit), true
	case TypePTR:
		addr, ok := parsePTR(q.Name)
		if !ok {
			return nil, false
		}
		for _, n := range cfg.Networks {
			if n.LookupAddr == nil {
				continue
			}
			if name := n.LookupAddr(addr); name != "" {
				return reply(q, RcodeSuccess, []record{{typ: TypePTR, names: name + "." + n.Name}}, limit), true
			}
		}
	}
	return nil, false
}

// resolveName finds name as dockerd's sandbox does: "a.b.c" is "a.b.c" on
// any network, then "a.b" on network "c", then "a" on network "b.c". ok is
// true as soon as a candidate exists; addrs holds only the asked family
// (for MX, any).
func resolveName(nets []Network, name string, typ uint16) (addrs []netip.Addr, ok bool) {
	try := func(n Network, host string) bool {
		all, found := n.LookupName(host)
		if !found {
			return false
		}
		ok = true
		for _, a := range all {
			if typ == TypeMX || (typ == TypeA) == a.Unmap().Is4() {
				addrs = append(addrs, a.Unmap())
			}
		}
		return true
	}
	for _, n := range nets {
		if n.LookupName != nil && try(n, name) {
			return addrs, ok
		}
	}
	for i := strings.LastIndexByte(name, '.'); i > 0; i = strings.LastIndexByte(name[:i], '.') {
		host, netName := name[:i], name[i+1:]
		for _, n := range nets {
			if n.LookupName != nil && strings.EqualFold(n.Name, netName) && try(n, host) {
				return addrs, ok
			}
		}
	}
	return nil, false
}

// parsePTR reads the address out of "4.3.2.1.in-addr.arpa" or a nibble
// ip6.arpa name.
func parsePTR(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		parts := strings.Split(rest, ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, p := range parts {
			if len(p) == 0 || len(p) > 3 {
				return netip.Addr{}, false
			}
			v := 0
			for _, c := range []byte(p) {
				if !isDigit(c) {
					return netip.Addr{}, false
				}
				v = v*10 + int(c-'0')
			}
			if v > 255 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		parts := strings.Split(rest, ".")
		if len(parts) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, p := range parts {
			if len(p) != 1 {
				return netip.Addr{}, false
			}
			var v byte
			switch c := p[0]; {
			case isDigit(c):
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			nib := 31 - i
			if nib%2 == 0 {
				b[nib/2] |= v << 4
			} else {
				b[nib/2] |= v
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// forward sends msg, as received, to the upstreams in turn and returns the
// first answer that is neither SERVFAIL nor REFUSED. Over UDP a truncated
// answer is retried over TCP with the same upstream; the full answer is
// relayed if it fits the client's limit, else the truncated one is, and
// the client retries over TCP itself.
func (s *Server) forward(ctx context.Context, cfg *Config, msg []byte, overTCP bool, limit int) []byte {
	if len(cfg.Upstreams) == 0 {
		return nil
	}
	select {
	case s.fwd <- struct{}{}:
		defer func() { <-s.fwd }()
	default:
		return errorReply(msg, RcodeRefused)
	}
	ups := cfg.Upstreams
	if len(ups) > maxUpstreams {
		ups = ups[:maxUpstreams]
	}
	for _, up := range ups {
		proto := "udp"
		if overTCP {
			proto = "tcp"
		}
		resp, err := s.exchange(ctx, cfg, proto, up, msg)
		if err != nil {
			s.logger.Debug("dns forward failed", "upstream", up, "proto", proto, "error", err)
			continue
		}
		if !overTCP && truncated(resp) {
			if full, err := s.exchange(ctx, cfg, "tcp", up, msg); err == nil && len(full) <= limit {
				resp = full
			}
		}
		switch rcodeOf(resp) {
		case RcodeServFail, RcodeRefused:
			continue
		}
		return resp
	}
	return nil
}

// exchange sends one query to one upstream and waits for the answer with
// the same ID.
func (s *Server) exchange(ctx context.Context, cfg *Config, proto string, up netip.AddrPort, msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := cfg.Dial(ctx, proto, up.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if proto == "tcp" {
		if err := writeStream(c, msg); err != nil {
			return nil, err
		}
		for {
			resp, err := readStream(c)
			if err != nil {
				return nil, err
			}
			if len(resp) >= 2 && resp[0] == msg[0] && resp[1] == msg[1] {
				return resp, nil
			}
		}
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, maxMsgSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if n >= headerLen && buf[0] == msg[0] && buf[1] == msg[1] {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}
