package netlink

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// router is the three-namespace topology of the nf_tables tests:
// client C (10.1.0.2) — router R (10.1.0.1 on r-c, 10.2.0.1 on r-u) —
// upstream U (10.2.0.2, no route back to 10.1.0.0/24 unless given).
type router struct {
	c, r, u   int
	hr, hu    *Handle
	nft       *NFT
	uAddr     string
	rcIdx, ru int
}

func newRouter(t *testing.T) *router {
	t.Helper()
	var rt router
	var hc *Handle
	rt.c, hc = testNetns(t)
	rt.r, rt.hr = testNetns(t)
	rt.u, rt.hu = testNetns(t)
	wire := func(peerNS int, peerH *Handle, name, rAddr, peerAddr string) int {
		l, err := rt.hr.AddVeth(Veth{Name: name, PeerName: "eth0", PeerNS: peerNS, Up: true})
		if err != nil {
			t.Fatalf("AddVeth %s: %v", name, err)
		}
		if err := rt.hr.AddAddr(l.Index, mustPrefix(rAddr)); err != nil {
			t.Fatal(err)
		}
		e, err := peerH.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if err := peerH.AddAddr(e.Index, mustPrefix(peerAddr)); err != nil {
			t.Fatal(err)
		}
		if err := peerH.SetUp(e.Index); err != nil {
			t.Fatal(err)
		}
		return l.Index
	}
	rt.rcIdx = wire(rt.c, hc, "r-c", "10.1.0.1/24", "10.1.0.2/24")
	rt.ru = wire(rt.u, rt.hu, "r-u", "10.2.0.1/24", "10.2.0.2/24")
	eth0, _ := hc.LinkByName("eth0")
	if err := hc.AddDefaultRoute(netip.MustParseAddr("10.1.0.1"), eth0.Index); err != nil {
		t.Fatal(err)
	}
	if err := SetSysctl(rt.r, "net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	var err error
	if rt.nft, err = OpenNFT(rt.r, "skiff-test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.nft.Close() })
	// U answers every connection with the address it sees the client at.
	var ln net.Listener
	if err := Do(rt.u, func() error {
		ln, err = net.Listen("tcp", "10.2.0.2:8000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			c.Write([]byte(h))
			c.Close()
		}
	}()
	rt.uAddr = "10.2.0.2:8000"
	return &rt
}

func (rt *router) commit(t *testing.T, fill func(b *Batch)) {
	t.Helper()
	b := rt.nft.Batch()
	fill(b)
	if err := rt.nft.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// A dial that must fail gets a short timeout: the failure is a SYN-ACK
// that can never be routed, so only a timeout shows it.
const failDial = 700 * time.Millisecond

// TestNFTMasquerade proves masquerade with real traffic: without the rule
// U cannot answer C; with it U sees R's address; after deleting the rule by
// its handle, new connections fail again.
func TestNFTMasquerade(t *testing.T) {
	rt := newRouter(t)
	if got, err := dial(rt.c, rt.uAddr, failDial); err == nil {
		t.Fatalf("control: C reached U without NAT (%q)", got)
	}
	var masq *Rule
	rt.commit(t, func(b *Batch) {
		b.AddTable(FamilyIP)
		b.AddChain(FamilyIP, "post", &Hook{Num: HookPostrouting, Priority: PrioritySrcNAT, Type: "nat", Policy: PolicyAccept})
		masq = b.AddRule(FamilyIP, "post", []byte("net1"), R(SrcNet(mustPrefix("10.1.0.0/24"), CmpEq), Oifname("r-c", CmpNeq), []Expr{Counter{}, Masquerade()})...)
	})
	if masq.Handle == 0 {
		t.Fatal("AddRule: no handle echoed")
	}
	if got, err := dial(rt.c, rt.uAddr, 5*time.Second); err != nil || got != "10.2.0.1" {
		t.Fatalf("with masquerade: U saw %q, %v; want 10.2.0.1", got, err)
	}
	rules, err := rt.nft.Rules(FamilyIP, "post")
	if err != nil || len(rules) != 1 || rules[0].Handle != masq.Handle || string(rules[0].UserData) != "net1" {
		t.Fatalf("Rules = %+v, %v; want handle %d tagged net1", rules, err, masq.Handle)
	}
	rt.commit(t, func(b *Batch) { b.DelRule(FamilyIP, "post", masq.Handle) })
	if got, err := dial(rt.c, rt.uAddr, failDial); err == nil {
		t.Fatalf("after rule deletion C still reached U (%q)", got)
	}
	rt.commit(t, func(b *Batch) { b.DelTable(FamilyIP) })
	if tables, err := rt.nft.Tables(0); err != nil || len(tables) != 0 {
		t.Fatalf("Tables after delete = %v, %v; want none", tables, err)
	}
}

// TestNFTPublishedPort proves the DNAT rules of a published port: from
// another namespace to R's address (client address preserved), from R
// itself to its own address and to 127.0.0.1 (route_localnet plus
// masquerade of loopback sources), forward filtering with established
// accept, chain flush, and that deleting the table removes everything.
func TestNFTPublishedPort(t *testing.T) {
	rt := newRouter(t)
	if err := rt.hu.AddDefaultRoute(netip.MustParseAddr("10.2.0.1"), mustLink(t, rt.hu, "eth0")); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(rt.c, "10.1.0.1:8080", 5*time.Second); err == nil {
		t.Fatal("control: port 8080 on R answered before DNAT")
	}
	to := netip.MustParseAddrPort(rt.uAddr)
	pub := R(DstLocal(), DstPort(ProtoTCP, 8080), DNAT(to))
	rt.commit(t, func(b *Batch) {
		b.AddTable(FamilyIP)
		b.AddChain(FamilyIP, "pre", &Hook{Num: HookPrerouting, Priority: PriorityDstNAT, Type: "nat", Policy: PolicyAccept})
		b.AddChain(FamilyIP, "out", &Hook{Num: HookOutput, Priority: PriorityDstNAT, Type: "nat", Policy: PolicyAccept})
		b.AddChain(FamilyIP, "post", &Hook{Num: HookPostrouting, Priority: PrioritySrcNAT, Type: "nat", Policy: PolicyAccept})
		b.AddChain(FamilyIP, "fwd", &Hook{Num: HookForward, Priority: PriorityFilter, Type: "filter", Policy: PolicyAccept})
		b.AddChain(FamilyIP, "isolate", nil)
		b.AddChain(FamilyIP, "ports", nil)
		b.AddRule(FamilyIP, "pre", nil, Jump("ports"))
		b.AddRule(FamilyIP, "out", nil, Jump("ports"))
		b.AddRule(FamilyIP, "ports", nil, pub...)
		b.AddRule(FamilyIP, "post", nil, R(SrcNet(mustPrefix("127.0.0.0/8"), CmpEq), Oifname("r-u", CmpEq), []Expr{Masquerade()})...)
		b.AddRule(FamilyIP, "fwd", nil, R(CtState(CtStateEstab|CtStateRelated), []Expr{Accept()})...)
		b.AddRule(FamilyIP, "fwd", nil, Jump("isolate"))
		b.AddRule(FamilyIP, "isolate", nil, Return())
	})
	if got, err := dial(rt.c, "10.1.0.1:8080", 5*time.Second); err != nil || got != "10.1.0.2" {
		t.Fatalf("C -> R:8080: U saw %q, %v; want the client's 10.1.0.2", got, err)
	}
	// From R itself the socket's source is the address it dialled.
	if got, err := dial(rt.r, "10.1.0.1:8080", 5*time.Second); err != nil || got != "10.1.0.1" {
		t.Fatalf("R -> own address:8080: %q, %v; want 10.1.0.1", got, err)
	}
	if got, err := dial(rt.r, "127.0.0.1:8080", failDial); err == nil {
		t.Fatalf("R -> 127.0.0.1:8080 answered (%q) without route_localnet", got)
	}
	if err := SetSysctl(rt.r, "net/ipv4/conf/r-u/route_localnet", "1"); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(rt.r, "127.0.0.1:8080", 5*time.Second); err != nil || got != "10.2.0.1" {
		t.Fatalf("R -> 127.0.0.1:8080: %q, %v; want 10.2.0.1", got, err)
	}

	// UDP: a datagram to R:5353 reaches U:5300, which answers with the
	// source it saw.
	var uc net.PacketConn
	if err := Do(rt.u, func() error {
		var err error
		uc, err = net.ListenPacket("udp", "10.2.0.2:5300")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from)
		}
	}()
	udpAsk := func() (string, error) {
		var c net.Conn
		if err := Do(rt.c, func() error {
			var err error
			c, err = net.Dial("udp", "10.1.0.1:5353")
			return err
		}); err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(failDial))
		buf := make([]byte, 64)
		if _, err := c.Write([]byte("q")); err != nil {
			return "", err
		}
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := udpAsk(); err == nil {
		t.Fatalf("control: UDP 5353 answered (%q) before its rule", got)
	}
	rt.commit(t, func(b *Batch) {
		b.AddRule(FamilyIP, "ports", nil, R(DstLocal(), DstPort(ProtoUDP, 5353), DNAT(netip.MustParseAddrPort("10.2.0.2:5300")))...)
	})
	if got, err := udpAsk(); err != nil || got != "10.1.0.2" {
		t.Fatalf("UDP via DNAT: U saw %q, %v; want 10.1.0.2", got, err)
	}

	// Isolation: new connections from r-c are dropped, flushing the chain
	// lifts it.
	rt.commit(t, func(b *Batch) {
		b.FlushChain(FamilyIP, "isolate")
		b.AddRule(FamilyIP, "isolate", nil, R(Iifname("r-c", CmpEq), Oifname("r-u", CmpEq), []Expr{Counter{}, Drop()})...)
	})
	if got, err := dial(rt.c, "10.1.0.1:8080", failDial); err == nil {
		t.Fatalf("forward drop: C still reached U (%q)", got)
	}
	rt.commit(t, func(b *Batch) { b.FlushChain(FamilyIP, "isolate") })
	if got, err := dial(rt.c, "10.1.0.1:8080", 5*time.Second); err != nil || got != "10.1.0.2" {
		t.Fatalf("after flush: %q, %v", got, err)
	}

	rt.commit(t, func(b *Batch) { b.DelTable(FamilyIP) })
	if chains, err := rt.nft.Chains(0); err != nil || len(chains) != 0 {
		t.Fatalf("Chains after table delete = %+v, %v", chains, err)
	}
	if _, err := dial(rt.c, "10.1.0.1:8080", 5*time.Second); err == nil {
		t.Fatal("port 8080 still forwarded after table delete")
	}
}

func mustLink(t *testing.T, h *Handle, name string) int {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Index
}

// TestNFTForwardDrops reports another table's forward chain with policy
// drop (what iptables-nft's FORWARD DROP looks like) and not skiffd's own.
func TestNFTForwardDrops(t *testing.T) {
	ns, _ := testNetns(t)
	own, err := OpenNFT(ns, "skiff-test")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	other, err := OpenNFT(ns, "filter")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if d, err := own.ForwardDrops(); err != nil || len(d) != 0 {
		t.Fatalf("ForwardDrops on an empty ruleset = %+v, %v", d, err)
	}
	b := own.Batch()
	b.AddTable(FamilyIP)
	b.AddChain(FamilyIP, "fwd", &Hook{Num: HookForward, Type: "filter", Policy: PolicyDrop})
	if err := own.Commit(b); err != nil {
		t.Fatal(err)
	}
	b = other.Batch()
	b.AddTable(FamilyIP)
	b.AddChain(FamilyIP, "FORWARD", &Hook{Num: HookForward, Type: "filter", Policy: PolicyDrop})
	b.AddChain(FamilyIP, "INPUT", &Hook{Num: HookInput, Type: "filter", Policy: PolicyDrop})
	if err := other.Commit(b); err != nil {
		t.Fatal(err)
	}
	d, err := own.ForwardDrops()
	if err != nil || len(d) != 1 || d[0].Table != "filter" || d[0].Name != "FORWARD" || d[0].Family != FamilyIP {
		t.Fatalf("ForwardDrops = %+v, %v; want ip filter FORWARD", d, err)
	}
	// A batch only ever names its own table: committing another handle's
	// batch is refused.
	if err := own.Commit(other.Batch()); err == nil {
		t.Fatal("Commit of a batch for another table accepted")
	}
}

// TestNFTBatchErrors checks that a refused message aborts the whole
// transaction and that the error names it, with the inet family.
func TestNFTBatchErrors(t *testing.T) {
	ns, _ := testNetns(t)
	n, err := OpenNFT(ns, "skiff-test")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b := n.Batch()
	b.AddTable(FamilyINET)
	b.AddChain(FamilyINET, "c", nil)
	b.AddRule(FamilyINET, "nosuch", nil, Accept())
	err = n.Commit(b)
	if !IsNotFound(err) {
		t.Fatalf("Commit with a rule in a missing chain = %v, want ENOENT", err)
	}
	if tables, _ := n.Tables(0); len(tables) != 0 {
		t.Fatalf("aborted batch left tables %v", tables)
	}
	b = n.Batch()
	b.AddTable(FamilyINET)
	b.AddChain(FamilyINET, "c", nil)
	r6 := b.AddRule(FamilyINET, "c", nil, R(SrcNet(mustPrefix("fd00:1::/64"), CmpNeq), DstPort(ProtoUDP, 53), []Expr{Accept()})...)
	if err := n.Commit(b); err != nil {
		t.Fatal(err)
	}
	if tables, _ := n.Tables(0); !slices.Equal(tables, []string{"inet skiff-test"}) || r6.Handle == 0 {
		t.Fatalf("tables = %v, handle %d", tables, r6.Handle)
	}
	// The socket stays usable after an error and later handles keep coming.
	b = n.Batch()
	b.DelTable(FamilyINET)
	if err := n.Commit(b); err != nil {
		t.Fatal(err)
	}
	b = n.Batch()
	b.DelTable(FamilyINET)
	if err := n.Commit(b); !IsNotFound(err) {
		t.Fatalf("second DelTable = %v, want ENOENT", err)
	}
}

// TestNFTInetIPv6 proves the same rules in an inet table for IPv6: a
// published TCP port DNATed to U, and masquerade of C's subnet.
func TestNFTInetIPv6(t *testing.T) {
	rt := newRouter(t)
	hc, err := Open(rt.c)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	for _, s := range []struct {
		h    *Handle
		link string
		addr string
	}{
		{rt.hr, "r-c", "fd01::1/64"}, {rt.hr, "r-u", "fd02::1/64"},
		{hc, "eth0", "fd01::2/64"}, {rt.hu, "eth0", "fd02::2/64"},
	} {
		if err := s.h.AddAddr(mustLink(t, s.h, s.link), mustPrefix(s.addr)); err != nil {
			t.Fatal(err)
		}
	}
	if err := hc.AddDefaultRoute(netip.MustParseAddr("fd01::1"), mustLink(t, hc, "eth0")); err != nil {
		t.Fatal(err)
	}
	if err := SetSysctl(rt.r, "net/ipv6/conf/all/forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := Do(rt.u, func() error {
		ln, err = net.Listen("tcp", "[fd02::2]:8000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			c.Write([]byte(h))
			c.Close()
		}
	}()
	if got, err := dial(rt.c, "[fd02::2]:8000", failDial); err == nil {
		t.Fatalf("control: C reached U over IPv6 without NAT (%q)", got)
	}
	rt.commit(t, func(b *Batch) {
		b.AddTable(FamilyINET)
		b.AddChain(FamilyINET, "pre", &Hook{Num: HookPrerouting, Priority: PriorityDstNAT, Type: "nat", Policy: PolicyAccept})
		b.AddChain(FamilyINET, "post", &Hook{Num: HookPostrouting, Priority: PrioritySrcNAT, Type: "nat", Policy: PolicyAccept})
		b.AddRule(FamilyINET, "post", nil, R(SrcNet(mustPrefix("fd01::/64"), CmpEq), Oifname("r-c", CmpNeq), []Expr{Masquerade()})...)
		b.AddRule(FamilyINET, "pre", nil, R(DstNet(mustPrefix("fd01::1/128"), CmpEq), DstPort(ProtoTCP, 8080), DNAT(netip.MustParseAddrPort("[fd02::2]:8000")))...)
	})
	if got, err := dial(rt.c, "[fd02::2]:8000", 5*time.Second); err != nil || got != "fd02::1" {
		t.Fatalf("IPv6 masquerade: U saw %q, %v; want fd02::1", got, err)
	}
	if got, err := dial(rt.c, "[fd01::1]:8080", 5*time.Second); err != nil || got != "fd02::1" {
		t.Fatalf("IPv6 DNAT: U saw %q, %v; want fd02::1 (masqueraded)", got, err)
	}
	// The IPv4 side is untouched by the IPv6 matches.
	if got, err := dial(rt.c, rt.uAddr, failDial); err == nil {
		t.Fatalf("IPv4 masqueraded by an IPv6 rule (%q)", got)
	}
}

// TestNFTRulesWholeTable lists the rules of every chain of the table at
// once, each with its expressions as the kernel keeps them: equal for
// rules built alike (in any chain, by any batch), different otherwise.
func TestNFTRulesWholeTable(t *testing.T) {
	ns, _ := testNetns(t)
	nft, err := OpenNFT(ns, "skiff-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	masq := func() []Expr {
		return R(SrcNet(mustPrefix("10.1.0.0/24"), CmpEq), Oifname("br0", CmpNeq), []Expr{Masquerade()})
	}
	b := nft.Batch()
	b.AddTable(FamilyIP)
	b.AddChain(FamilyIP, "a", &Hook{Num: HookPostrouting, Priority: PrioritySrcNAT, Type: "nat", Policy: PolicyAccept})
	b.AddChain(FamilyIP, "b", nil)
	b.AddRule(FamilyIP, "a", []byte("one"), masq()...)
	b.AddRule(FamilyIP, "a", []byte("two"), R(SrcNet(mustPrefix("10.2.0.0/24"), CmpEq), []Expr{Masquerade()})...)
	if err := nft.Commit(b); err != nil {
		t.Fatal(err)
	}
	b = nft.Batch()
	b.AddRule(FamilyIP, "b", []byte("three"), masq()...)
	if err := nft.Commit(b); err != nil {
		t.Fatal(err)
	}
	rules, err := nft.Rules(FamilyIP, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.Chain+"/"+string(r.UserData))
		if len(r.Exprs) == 0 {
			t.Errorf("rule %s/%s listed without expressions", r.Chain, r.UserData)
		}
	}
	if want := []string{"a/one", "a/two", "b/three"}; !slices.Equal(got, want) {
		t.Fatalf("Rules(ip, \"\") = %v, want %v", got, want)
	}
	if !slices.Equal(rules[0].Exprs, rules[2].Exprs) {
		t.Errorf("rules built alike list different expressions:\n%x\n%x", rules[0].Exprs, rules[2].Exprs)
	}
	if slices.Equal(rules[0].Exprs, rules[1].Exprs) {
		t.Errorf("rules built differently list the same expressions %x", rules[0].Exprs)
	}
}
