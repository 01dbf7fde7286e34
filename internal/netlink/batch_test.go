package netlink

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

// TestLoopbackIndex: a new namespace's lo has LoopbackIndex, which lets a
// caller bring it up without looking it up.
func TestLoopbackIndex(t *testing.T) {
	_, h := testNetns(t)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Index != LoopbackIndex {
		t.Fatalf("lo index = %d, want %d", lo.Index, LoopbackIndex)
	}
}

// TestRouteBatch configures an interface as a container's eth0 is (IPv4
// and IPv6 addresses, up, default routes) in one RouteBatch, and checks a
// failing change is reported, in order, with its own text while the
// changes after it are still applied.
func TestRouteBatch(t *testing.T) {
	_, h := testNetns(t)
	if err := h.CreateVeth(Veth{Name: "ba", PeerName: "bb", PeerNS: Self}); err != nil {
		t.Fatalf("CreateVeth: %v", err)
	}
	l, err := h.LinkByName("ba")
	if err != nil {
		t.Fatal(err)
	}
	if peer, err := h.LinkByName("bb"); err != nil || peer.Kind != "veth" {
		t.Fatalf("peer bb = %+v, %v", peer, err)
	}
	b := h.RouteBatch()
	b.AddAddr(l.Index, mustPrefix("10.78.0.2/24"))
	b.AddAddr(l.Index, mustPrefix("fd00:78::2/64"))
	b.SetUp(l.Index)
	b.AddDefaultRoute(netip.MustParseAddr("10.78.0.1"), l.Index)
	b.AddDefaultRoute(netip.MustParseAddr("fd00:78::1"), l.Index)
	if err := b.Send(); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if l, _ = h.LinkByIndex(l.Index); l.Flags&net.FlagUp == 0 {
		t.Fatalf("ba not up: %+v", l)
	}
	addrs, err := h.Addrs(l.Index, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range addrs {
		got[a.Prefix.String()] = true
	}
	for _, want := range []string{"10.78.0.2/24", "fd00:78::2/64"} {
		if !got[want] {
			t.Errorf("addresses %v lack %s", addrs, want)
		}
	}
	routes, err := h.Routes(0)
	if err != nil {
		t.Fatal(err)
	}
	gws := map[string]bool{}
	for _, r := range routes {
		if r.IsDefault() && r.LinkIndex == l.Index {
			gws[r.Gateway.String()] = true
		}
	}
	if !gws["10.78.0.1"] || !gws["fd00:78::1"] {
		t.Fatalf("default routes via %v, want 10.78.0.1 and fd00:78::1", gws)
	}

	// The address exists: EEXIST, reported for that change; the route
	// after it is added all the same.
	b = h.RouteBatch()
	b.AddAddr(l.Index, mustPrefix("10.78.0.2/24"))
	b.AddRoute(Route{Dst: mustPrefix("10.79.0.0/24"), Gateway: netip.MustParseAddr("10.78.0.1"), LinkIndex: l.Index})
	err = b.Send()
	if !errors.Is(err, syscall.EEXIST) || !strings.Contains(err.Error(), "add address 10.78.0.2/24") {
		t.Fatalf("Send = %v, want EEXIST for add address 10.78.0.2/24", err)
	}
	if err := h.DelRoute(Route{Dst: mustPrefix("10.79.0.0/24"), LinkIndex: l.Index}); err != nil {
		t.Fatalf("the route after the failure was not added: %v", err)
	}

	// A change that cannot be encoded fails before anything is sent.
	b = h.RouteBatch()
	b.SetDown(l.Index)
	b.AddAddr(l.Index, netip.Prefix{})
	if err := b.Send(); err == nil || !strings.Contains(err.Error(), "invalid prefix") {
		t.Fatalf("Send = %v, want invalid prefix", err)
	}
	if l, _ = h.LinkByIndex(l.Index); l.Flags&net.FlagUp == 0 {
		t.Fatalf("ba went down: a batch with an invalid change was sent")
	}
}
