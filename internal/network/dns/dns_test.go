package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// query builds a standard query for name/typ with RD set; edns > 0 adds an
// OPT record announcing that UDP size.
func query(id uint16, name string, typ uint16, edns int) []byte {
	b := make([]byte, headerLen)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flagRD)
	binary.BigEndian.PutUint16(b[4:], 1)
	b = appendName(b, name)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, ClassINET)
	if edns > 0 {
		binary.BigEndian.PutUint16(b[10:], 1)
		b = append(b, 0)
		b = binary.BigEndian.AppendUint16(b, TypeOPT)
		b = binary.BigEndian.AppendUint16(b, uint16(edns))
		b = append(b, 0, 0, 0, 0, 0, 0)
	}
	return b
}

// answer is a decoded response: header fields and the answers' data.
type answer struct {
	id     uint16
	rcode  int
	tc, aa bool
	addrs  []netip.Addr
	ptrs   []string
	ttls   []uint32
}

func decode(t testing.TB, msg []byte) answer {
	t.Helper()
	if len(msg) < headerLen {
		t.Fatalf("response of %d bytes", len(msg))
	}
	var a answer
	a.id = binary.BigEndian.Uint16(msg)
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR == 0 {
		t.Fatalf("response without QR")
	}
	a.rcode, a.tc, a.aa = int(flags&0xf), flags&flagTC != 0, flags&flagAA != 0
	an := int(binary.BigEndian.Uint16(msg[6:]))
	_, off, err := readName(msg, headerLen)
	if err != nil {
		t.Fatalf("question: %v", err)
	}
	off += 4
	for range an {
		_, next, err := readName(msg, off)
		if err != nil {
			t.Fatalf("answer name: %v", err)
		}
		typ := binary.BigEndian.Uint16(msg[next:])
		a.ttls = append(a.ttls, binary.BigEndian.Uint32(msg[next+4:]))
		rdlen := int(binary.BigEndian.Uint16(msg[next+8:]))
		rdata := msg[next+10 : next+10+rdlen]
		switch typ {
		case TypeA, TypeAAAA:
			ip, _ := netip.AddrFromSlice(rdata)
			a.addrs = append(a.addrs, ip)
		case TypePTR:
			n, _, err := readName(msg, next+10)
			if err != nil {
				t.Fatalf("ptr: %v", err)
			}
			a.ptrs = append(a.ptrs, n)
		}
		off = next + 10 + rdlen
	}
	return a
}

func TestParse(t *testing.T) {
	q := query(0x1234, "Web.App", TypeAAAA, 1232)
	got, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 0x1234 || got.Name != "web.app" || got.Type != TypeAAAA || got.Class != ClassINET || got.UDPSize != 1232 {
		t.Errorf("Parse = %+v", got)
	}
	if string(got.Question[1:4]) != "Web" {
		t.Errorf("Question = %q, want the case as sent", got.Question)
	}

	compressed := query(1, "a", TypeA, 0)
	// An additional record whose owner is a pointer to the question.
	binary.BigEndian.PutUint16(compressed[10:], 1)
	compressed = append(compressed, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4)

	selfLoop := query(1, "a", TypeA, 0)
	binary.BigEndian.PutUint16(selfLoop[10:], 1)
	n := len(selfLoop)
	selfLoop = append(selfLoop, 0xc0, byte(n)) // points at itself
	selfLoop = append(selfLoop, make([]byte, 10)...)

	forward := query(1, "a", TypeA, 0)
	forward[12] = 0xc0
	forward[13] = 40 // question name points forward

	long := make([]byte, headerLen)
	binary.BigEndian.PutUint16(long[4:], 1)
	for range 5 {
		long = append(long, 63)
		long = append(long, strings.Repeat("x", 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1)

	response := query(1, "a", TypeA, 0)
	response[2] |= 0x80

	twoQ := query(1, "a", TypeA, 0)
	binary.BigEndian.PutUint16(twoQ[4:], 2)

	for _, tc := range []struct {
		name string
		msg  []byte
		err  error
	}{
		{"compressed additional", compressed, nil},
		{"pointer to itself", selfLoop, ErrPointerLoop},
		{"forward pointer", forward, ErrPointerLoop},
		{"name over 255", long, ErrBadName},
		{"response", response, ErrNotQuery},
		{"two questions", twoQ, ErrNoQuestion},
		{"header only", q[:headerLen], ErrShort},
		{"cut in name", q[:15], ErrShort},
		{"cut in type", q[:len(q)-13], ErrShort},
		{"cut in OPT", q[:len(q)-3], ErrShort},
		{"label type 0x40", append(query(1, "", TypeA, 0)[:12], 0x41, 'a', 0, 0, 1, 0, 1), ErrBadName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.msg)
			if !errors.Is(err, tc.err) {
				t.Errorf("Parse(%x) error = %v, want %v", tc.msg, err, tc.err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(query(1, "web.app", TypeA, 0))
	f.Add(query(2, "2.0.99.10.in-addr.arpa", TypePTR, 4096))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xc0, 12, 0, 1, 0, 1})
	srv := NewServer(Config{Networks: testNetworks()})
	f.Fuzz(func(t *testing.T, msg []byte) {
		q, err := Parse(msg)
		if err == nil {
			if len(q.Name) > 4*maxNameLen {
				t.Fatalf("name of %d bytes", len(q.Name))
			}
			// The name survives a round trip through the wire form.
			again, err := Parse(query(q.ID, q.Name, q.Type, 0))
			if err != nil || again.Name != q.Name {
				t.Fatalf("round trip of %q: %q, %v", q.Name, again.Name, err)
			}
		}
		resp := srv.Handle(context.Background(), msg, false)
		if len(resp) > minUDPSize && (err != nil || q.UDPSize <= minUDPSize) {
			t.Fatalf("UDP answer of %d bytes", len(resp))
		}
	})
}

func testNetworks() []Network {
	names := map[string][]netip.Addr{
		"web":          {netip.MustParseAddr("10.99.0.2")},
		"database":     {netip.MustParseAddr("10.99.0.3"), netip.MustParseAddr("fd00:99::3")},
		"db":           {netip.MustParseAddr("10.99.0.3"), netip.MustParseAddr("fd00:99::3")},
		"v6only":       {netip.MustParseAddr("fd00:99::4")},
		"0123456789ab": {netip.MustParseAddr("10.99.0.2")},
	}
	addrs := map[netip.Addr]string{
		netip.MustParseAddr("10.99.0.2"):  "web",
		netip.MustParseAddr("fd00:99::3"): "db",
	}
	other := map[string][]netip.Addr{"cache": {netip.MustParseAddr("10.98.0.5")}}
	return []Network{
		{
			Name:       "app",
			LookupName: func(n string) ([]netip.Addr, bool) { a, ok := names[n]; return slices.Clone(a), ok },
			LookupAddr: func(a netip.Addr) string { return addrs[a] },
		},
		{
			Name:       "back.end",
			LookupName: func(n string) ([]netip.Addr, bool) { a, ok := other[n]; return slices.Clone(a), ok },
		},
	}
}

func TestHandleLocal(t *testing.T) {
	srv := NewServer(Config{Networks: testNetworks()}) // no upstream: what is not local is SERVFAIL
	for _, tc := range []struct {
		name  string
		qname string
		typ   uint16
		rcode int
		addrs []string
		ptrs  []string
	}{
		{"container name", "web", TypeA, RcodeSuccess, []string{"10.99.0.2"}, nil},
		{"case and final dot", "WEB.", TypeA, RcodeSuccess, []string{"10.99.0.2"}, nil},
		{"alias", "database", TypeA, RcodeSuccess, []string{"10.99.0.3"}, nil},
		{"short ID", "0123456789ab", TypeA, RcodeSuccess, []string{"10.99.0.2"}, nil},
		{"AAAA", "db", TypeAAAA, RcodeSuccess, []string{"fd00:99::3"}, nil},
		{"name.network", "web.app", TypeA, RcodeSuccess, []string{"10.99.0.2"}, nil},
		{"dotted network name", "cache.back.end", TypeA, RcodeSuccess, []string{"10.98.0.5"}, nil},
		{"name on another network", "cache.app", TypeA, RcodeServFail, nil, nil},
		{"NODATA AAAA", "web", TypeAAAA, RcodeSuccess, nil, nil},
		{"NODATA A", "v6only", TypeA, RcodeSuccess, nil, nil},
		{"MX of a local name", "web", TypeMX, RcodeSuccess, nil, nil},
		{"PTR v4", "2.0.99.10.in-addr.arpa", TypePTR, RcodeSuccess, nil, []string{"web.app"}},
		{"PTR v6", reverse6("fd00:99::3"), TypePTR, RcodeSuccess, nil, []string{"db.app"}},
		{"PTR unknown", "9.0.99.10.in-addr.arpa", TypePTR, RcodeServFail, nil, nil},
		{"unknown name", "nope", TypeA, RcodeServFail, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := decode(t, srv.Handle(context.Background(), query(7, tc.qname, tc.typ, 0), false))
			var addrs []string
			for _, ip := range a.addrs {
				addrs = append(addrs, ip.String())
			}
			if a.id != 7 || a.rcode != tc.rcode || !slices.Equal(addrs, tc.addrs) || !slices.Equal(a.ptrs, tc.ptrs) {
				t.Errorf("Handle(%s %d) = id %d rcode %d %v %v; want rcode %d %v %v", tc.qname, tc.typ, a.id, a.rcode, addrs, a.ptrs, tc.rcode, tc.addrs, tc.ptrs)
			}
			for _, ttl := range a.ttls {
				if ttl != TTL {
					t.Errorf("TTL = %d, want %d", ttl, TTL)
				}
			}
		})
	}
}

func reverse6(s string) string {
	a := netip.MustParseAddr(s).As16()
	var parts []string
	for i := 15; i >= 0; i-- {
		parts = append(parts, string("0123456789abcdef"[a[i]&0xf]), string("0123456789abcdef"[a[i]>>4]))
	}
	return strings.Join(parts, ".") + ".ip6.arpa"
}

func TestHandleNdots(t *testing.T) {
	srv := NewServer(Config{Networks: testNetworks(), Ndots: true})
	a := decode(t, srv.Handle(context.Background(), query(1, "nope", TypeA, 0), false))
	if a.rcode != RcodeSuccess || len(a.addrs) != 0 {
		t.Errorf("single label with ndots: rcode %d %v, want empty NOERROR", a.rcode, a.addrs)
	}
	a = decode(t, srv.Handle(context.Background(), query(1, "no.pe", TypeA, 0), false))
	if a.rcode != RcodeServFail {
		t.Errorf("dotted name with ndots: rcode %d, want it forwarded (SERVFAIL without upstream)", a.rcode)
	}
}

func TestHandleTruncatesUDP(t *testing.T) {
	var many []netip.Addr
	for i := range 60 {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	srv := NewServer(Config{Networks: []Network{{Name: "n", LookupName: func(string) ([]netip.Addr, bool) { return slices.Clone(many), true }}}})
	resp := srv.Handle(context.Background(), query(1, "x", TypeA, 0), false)
	if a := decode(t, resp); !a.tc || len(resp) > minUDPSize || len(a.addrs) == 0 {
		t.Errorf("UDP: %d bytes, tc=%v, %d answers; want ≤512 bytes and TC", len(resp), a.tc, len(a.addrs))
	}
	resp = srv.Handle(context.Background(), query(1, "x", TypeA, 4096), false)
	if a := decode(t, resp); a.tc || len(a.addrs) != 60 {
		t.Errorf("UDP with EDNS 4096: tc=%v, %d answers; want all 60", a.tc, len(a.addrs))
	}
	if a := decode(t, srv.Handle(context.Background(), query(1, "x", TypeA, 0), true)); a.tc || len(a.addrs) != 60 {
		t.Errorf("TCP: tc=%v, %d answers; want all 60", a.tc, len(a.addrs))
	}
}

func TestHandleMalformed(t *testing.T) {
	srv := NewServer(Config{})
	if r := srv.Handle(context.Background(), []byte{1}, false); r != nil {
		t.Errorf("1-byte message answered: %x", r)
	}
	r := srv.Handle(context.Background(), []byte{0xab, 0xcd, 1, 0, 0, 1}, false)
	if len(r) != headerLen || r[0] != 0xab || r[1] != 0xcd || rcodeOf(r) != RcodeFormErr {
		t.Errorf("short message answered %x, want FORMERR with ID abcd", r)
	}
}

// upstream is a resolver on loopback that answers A for example.com with
// 192.0.2.1 and, for big.example, 40 addresses: truncated over UDP.
type upstream struct {
	udp  net.PacketConn
	tcp  net.Listener
	addr netip.AddrPort
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	u := &upstream{udp: pc, tcp: ln, addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	answer := func(msg []byte, limit int) []byte {
		q, err := Parse(msg)
		if err != nil {
			return errorReply(msg, RcodeFormErr)
		}
		var rrs []record
		switch q.Name {
		case "example.com":
			rrs = []record{{typ: TypeA, addr: netip.MustParseAddr("192.0.2.1")}}
		case "big.example":
			for i := range 40 {
				rrs = append(rrs, record{typ: TypeA, addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})})
			}
		default:
			return reply(q, RcodeNXDomain, nil, limit)
		}
		r := reply(q, RcodeSuccess, rrs, limit)
		r[2] |= flagAA >> 8 // mark upstream answers so relaying verbatim is visible
		return r
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(answer(buf[:n], minUDPSize), from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					msg, err := readStream(c)
					if err != nil {
						return
					}
					writeStream(c, answer(msg, maxMsgSize))
				}
			}()
		}
	}()
	return u
}

// startServer serves srv on fresh loopback sockets and returns their address.
func startServer(t testing.TB, srv *Server) (udp, tcp string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.ServePacket(pc) }()
	go func() { done <- srv.ServeStream(ln) }()
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("Serve returned %v after close", err)
			}
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func exchangeUDP(t testing.TB, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func exchangeTCP(t testing.TB, addr string, msgs ...[]byte) [][]byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var out [][]byte
	for _, m := range msgs {
		if err := writeStream(c, m); err != nil {
			t.Fatal(err)
		}
		r, err := readStream(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestServeRoundTrip(t *testing.T) {
	up := startUpstream(t)
	// Dial counts forwarded exchanges, standing in for the engine's
	// host-namespace dialer.
	dials := make(chan string, 100)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials <- network
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	dead := netip.MustParseAddrPort("127.0.0.1:1") // refuses: skipped
	srv := NewServer(Config{Networks: testNetworks(), Upstreams: []netip.AddrPort{dead, up.addr}, Dial: dial})
	udp, tcp := startServer(t, srv)

	t.Run("local over UDP", func(t *testing.T) {
		a := decode(t, exchangeUDP(t, udp, query(0x5151, "db", TypeA, 0)))
		if a.id != 0x5151 || a.rcode != 0 || len(a.addrs) != 1 || a.addrs[0] != netip.MustParseAddr("10.99.0.3") {
			t.Errorf("db A = %+v", a)
		}
	})
	t.Run("local over TCP, two queries on one connection", func(t *testing.T) {
		rs := exchangeTCP(t, tcp, query(1, "web", TypeA, 0), query(2, "db", TypeAAAA, 0))
		a, b := decode(t, rs[0]), decode(t, rs[1])
		if a.id != 1 || len(a.addrs) != 1 || b.id != 2 || len(b.addrs) != 1 || !b.addrs[0].Is6() {
			t.Errorf("TCP answers %+v %+v", a, b)
		}
	})
	t.Run("forwarded over UDP, verbatim", func(t *testing.T) {
		q := query(0xbeef, "example.com", TypeA, 0)
		got := exchangeUDP(t, udp, q)
		a := decode(t, got)
		if a.id != 0xbeef || !a.aa || len(a.addrs) != 1 || a.addrs[0] != netip.MustParseAddr("192.0.2.1") {
			t.Errorf("example.com = %+v, want the upstream's answer with our ID", a)
		}
	})
	t.Run("forwarded NXDOMAIN", func(t *testing.T) {
		if a := decode(t, exchangeUDP(t, udp, query(3, "nope.example", TypeA, 0))); a.rcode != RcodeNXDomain {
			t.Errorf("rcode = %d, want NXDOMAIN", a.rcode)
		}
	})
	t.Run("forwarded over TCP", func(t *testing.T) {
		a := decode(t, exchangeTCP(t, tcp, query(4, "example.com", TypeA, 0))[0])
		if a.id != 4 || len(a.addrs) != 1 {
			t.Errorf("example.com over TCP = %+v", a)
		}
	})
	t.Run("truncated upstream answer retried over TCP", func(t *testing.T) {
		for len(dials) > 0 {
			<-dials
		}
		// 40 A records need 652 bytes: too big for a plain UDP client,
		// within an EDNS client's 4096.
		a := decode(t, exchangeUDP(t, udp, query(5, "big.example", TypeA, 4096)))
		if a.tc || len(a.addrs) != 40 {
			t.Errorf("EDNS client: tc=%v, %d answers; want the full TCP answer", a.tc, len(a.addrs))
		}
		var protos []string
		for len(dials) > 0 {
			protos = append(protos, <-dials)
		}
		if !slices.Contains(protos, "tcp") {
			t.Errorf("dials = %v, want a TCP retry", protos)
		}
		a = decode(t, exchangeUDP(t, udp, query(6, "big.example", TypeA, 0)))
		if !a.tc {
			t.Errorf("plain client: tc=false with %d answers, want the truncated answer relayed", len(a.addrs))
		}
	})
}

func TestServeNoUpstreamAnswers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv := NewServer(Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort(pc.LocalAddr().String())}, Timeout: 100 * time.Millisecond})
	udp, _ := startServer(t, srv)
	if a := decode(t, exchangeUDP(t, udp, query(9, "example.com", TypeA, 0))); a.rcode != RcodeServFail || a.id != 9 {
		t.Errorf("silent upstream: %+v, want SERVFAIL", a)
	}
}

func TestSetNetworks(t *testing.T) {
	srv := NewServer(Config{})
	if a := decode(t, srv.Handle(context.Background(), query(1, "web", TypeA, 0), false)); a.rcode != RcodeServFail {
		t.Fatalf("before connect: rcode %d", a.rcode)
	}
	srv.SetNetworks(testNetworks())
	if a := decode(t, srv.Handle(context.Background(), query(1, "web", TypeA, 0), false)); len(a.addrs) != 1 {
		t.Fatalf("after connect: %+v", a)
	}
}

func BenchmarkLocalAnswerUDP(b *testing.B) {
	srv := NewServer(Config{Networks: testNetworks()})
	udp, _ := startServer(b, srv)
	c, err := net.Dial("udp", udp)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q := query(1, "web", TypeA, 0)
	buf := make([]byte, 512)
	b.ResetTimer()
	for b.Loop() {
		c.Write(q)
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandleLocal(b *testing.B) {
	srv := NewServer(Config{Networks: testNetworks()})
	q := query(1, "web.app", TypeA, 0)
	for b.Loop() {
		srv.Handle(context.Background(), q, false)
	}
}

// TestServeStreamCloses checks that closing the listener ends ServeStream
// at once, even with an idle client connection open (the engine closes the
// sockets when a container stops).
func TestServeStreamCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- NewServer(Config{}).ServeStream(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchangeTCP(t, ln.Addr().String(), query(1, "x", TypeA, 0)) // the server is up
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeStream = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeStream still running 5s after its listener was closed")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("idle connection still open")
	}
}

func BenchmarkForwardedAnswerUDP(b *testing.B) {
	up := startUpstream(b)
	srv := NewServer(Config{Upstreams: []netip.AddrPort{up.addr}})
	udp, _ := startServer(b, srv)
	c, err := net.Dial("udp", udp)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q := query(1, "example.com", TypeA, 0)
	buf := make([]byte, 512)
	for b.Loop() {
		c.Write(q)
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
