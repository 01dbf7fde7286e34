package netlink

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestBridgeVethReachability wires a Docker-style bridge network between
// two private namespaces ("host" H and "container" C) and proves it with a
// real TCP exchange in both directions, then checks the counters moved.
func TestBridgeVethReachability(t *testing.T) {
	hostNS, h := testNetns(t)
	ctrNS, c := testNetns(t)

	br, err := h.AddBridge("tbr0", 1400)
	if err != nil {
		t.Fatalf("AddBridge: %v", err)
	}
	if br.Kind != "bridge" || br.MTU != 1400 || br.Name != "tbr0" {
		t.Fatalf("bridge = %+v, want kind bridge, mtu 1400", br)
	}
	if _, err := h.AddBridge("tbr0", 0); !IsExist(err) {
		t.Fatalf("second AddBridge error = %v, want EEXIST", err)
	}
	if err := h.AddAddr(br.Index, mustPrefix("10.77.0.1/24")); err != nil {
		t.Fatalf("AddAddr bridge: %v", err)
	}
	if err := h.SetUp(br.Index); err != nil {
		t.Fatalf("SetUp bridge: %v", err)
	}

	mac := net.HardwareAddr{0x02, 0x42, 0x0a, 0x4d, 0x00, 0x02}
	host, err := h.AddVeth(Veth{Name: "tveth0", PeerName: "eth0", PeerNS: ctrNS, MTU: 1400, MasterIndex: br.Index, Up: true, PeerHardwareAddr: mac})
	if err != nil {
		t.Fatalf("AddVeth: %v", err)
	}
	if host.MasterIndex != br.Index || host.Kind != "veth" || host.Flags&net.FlagUp == 0 || host.MTU != 1400 {
		t.Fatalf("host veth = %+v, want enslaved to %d, up, mtu 1400", host, br.Index)
	}
	if _, err := h.LinkByName("eth0"); !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("peer visible in host ns: err = %v, want ENODEV", err)
	}
	eth0, err := c.LinkByName("eth0")
	if err != nil {
		t.Fatalf("peer in container ns: %v", err)
	}
	if eth0.HardwareAddr.String() != mac.String() || eth0.MTU != 1400 {
		t.Fatalf("eth0 = %+v, want mac %v, mtu 1400", eth0, mac)
	}
	if err := c.SetUp(eth0.Index); err != nil {
		t.Fatalf("SetUp eth0: %v", err)
	}
	if err := c.AddAddr(eth0.Index, mustPrefix("10.77.0.2/24")); err != nil {
		t.Fatalf("AddAddr eth0: %v", err)
	}
	if err := c.AddDefaultRoute(netip.MustParseAddr("10.77.0.1"), eth0.Index); err != nil {
		t.Fatalf("AddDefaultRoute: %v", err)
	}
	addrs, err := c.Addrs(eth0.Index, syscall.AF_INET)
	if err != nil || len(addrs) != 1 || addrs[0].Prefix != mustPrefix("10.77.0.2/24") {
		t.Fatalf("Addrs(eth0) = %+v, %v; want [10.77.0.2/24]", addrs, err)
	}
	routes, err := c.Routes(syscall.AF_INET)
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	var sawDefault, sawSubnet bool
	for _, r := range routes {
		if r.Table == RouteTableMain && r.IsDefault() && r.Gateway == netip.MustParseAddr("10.77.0.1") && r.LinkIndex == eth0.Index {
			sawDefault = true
		}
		if r.Table == RouteTableMain && r.Dst == mustPrefix("10.77.0.0/24") {
			sawSubnet = true
		}
	}
	if !sawDefault || !sawSubnet {
		t.Fatalf("routes %+v: default via 10.77.0.1 %v, subnet %v", routes, sawDefault, sawSubnet)
	}

	listen(t, hostNS, "10.77.0.1:7000", "from-host")
	listen(t, ctrNS, "10.77.0.2:7001", "from-container")
	if got, err := dial(ctrNS, "10.77.0.1:7000", 5*time.Second); err != nil || got != "from-host" {
		t.Fatalf("container -> host: %q, %v", got, err)
	}
	if got, err := dial(hostNS, "10.77.0.2:7001", 5*time.Second); err != nil || got != "from-container" {
		t.Fatalf("host -> container: %q, %v", got, err)
	}
	after, err := c.LinkByIndex(eth0.Index)
	if err != nil {
		t.Fatalf("LinkByIndex: %v", err)
	}
	if after.Stats.RxPackets == 0 || after.Stats.TxPackets == 0 || after.Stats.RxBytes <= eth0.Stats.RxBytes || after.Stats.TxBytes <= eth0.Stats.TxBytes {
		t.Fatalf("eth0 counters did not move: before %+v after %+v", eth0.Stats, after.Stats)
	}
	// What the host end sent, the container end received: read in that
	// order, since a late packet (a FIN's ACK, neighbour discovery) can
	// cross between the reads, and a veth delivers at once.
	hostAfter, err := h.LinkByName("tveth0")
	if err != nil {
		t.Fatalf("LinkByName(tveth0): %v", err)
	}
	ctrAfter, err := c.LinkByIndex(eth0.Index)
	if err != nil || hostAfter.Stats.TxBytes == 0 || ctrAfter.Stats.RxBytes < hostAfter.Stats.TxBytes {
		t.Fatalf("host end tx %d, container rx read after it %d, want at least as much (err %v)", hostAfter.Stats.TxBytes, ctrAfter.Stats.RxBytes, err)
	}

	def := Route{Dst: mustPrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.77.0.1"), LinkIndex: eth0.Index}
	if err := c.DelRoute(def); err != nil {
		t.Fatalf("DelRoute(default): %v", err)
	}
	if _, err := dial(ctrNS, "10.77.1.1:7000", time.Second); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("dial off-subnet without a default route: %v, want ENETUNREACH", err)
	}

	// Deleting the host end takes the peer with it.
	if err := h.DeleteLink(host.Index); err != nil {
		t.Fatalf("DeleteLink: %v", err)
	}
	if _, err := c.LinkByName("eth0"); !IsNotFound(err) {
		t.Fatalf("peer after delete: %v, want not found", err)
	}
	if err := h.DeleteLink(br.Index); err != nil {
		t.Fatalf("DeleteLink bridge: %v", err)
	}
	links, err := h.Links()
	if err != nil || len(links) != 1 || links[0].Name != "lo" {
		t.Fatalf("Links after cleanup = %+v, %v; want only lo", links, err)
	}
}

// TestLinkSettings covers the single-attribute link changes and IPv6
// addresses on one veth pair kept inside one private namespace.
func TestLinkSettings(t *testing.T) {
	_, h := testNetns(t)
	v, err := h.AddVeth(Veth{Name: "ta", PeerName: "tb", PeerNS: Self})
	if err != nil {
		t.Fatalf("AddVeth: %v", err)
	}
	if v.Flags&net.FlagUp != 0 {
		t.Fatalf("veth up without Up: %+v", v)
	}
	mac := net.HardwareAddr{0x02, 0x42, 1, 2, 3, 4}
	steps := []struct {
		name string
		do   func() error
		ok   func(*Link) bool
	}{
		{"mtu", func() error { return h.SetMTU(v.Index, 1280) }, func(l *Link) bool { return l.MTU == 1280 }},
		{"mac", func() error { return h.SetHardwareAddr(v.Index, mac) }, func(l *Link) bool { return l.HardwareAddr.String() == mac.String() }},
		{"rename", func() error { return h.Rename(v.Index, "tc") }, func(l *Link) bool { return l.Name == "tc" }},
		{"up", func() error { return h.SetUp(v.Index) }, func(l *Link) bool { return l.Flags&net.FlagUp != 0 }},
		{"down", func() error { return h.SetDown(v.Index) }, func(l *Link) bool { return l.Flags&net.FlagUp == 0 }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		l, err := h.LinkByIndex(v.Index)
		if err != nil || !s.ok(l) {
			t.Fatalf("after %s: %+v, %v", s.name, l, err)
		}
	}
	br, err := h.AddBridge("tbr1", 0)
	if err != nil {
		t.Fatalf("AddBridge: %v", err)
	}
	if err := h.SetMaster(v.Index, br.Index); err != nil {
		t.Fatalf("SetMaster: %v", err)
	}
	if l, _ := h.LinkByIndex(v.Index); l.MasterIndex != br.Index {
		t.Fatalf("master = %d, want %d", l.MasterIndex, br.Index)
	}
	if err := h.SetMaster(v.Index, 0); err != nil {
		t.Fatalf("SetMaster(0): %v", err)
	}
	if l, _ := h.LinkByIndex(v.Index); l.MasterIndex != 0 {
		t.Fatalf("master = %d after release", l.MasterIndex)
	}

	p6 := mustPrefix("fd00:77::2/64")
	if err := h.AddAddr(v.Index, p6); err != nil {
		t.Fatalf("AddAddr v6: %v", err)
	}
	if err := h.AddAddr(v.Index, p6); !IsExist(err) {
		t.Fatalf("AddAddr twice: %v, want EEXIST", err)
	}
	as, err := h.Addrs(v.Index, syscall.AF_INET6)
	var found bool
	for _, a := range as {
		if a.Prefix == p6 {
			found = a.Flags&ifaFNodad != 0
		}
	}
	if err != nil || !found {
		t.Fatalf("Addrs v6 = %+v, %v; want %v with nodad", as, err, p6)
	}
	if err := h.DelAddr(v.Index, p6); err != nil {
		t.Fatalf("DelAddr: %v", err)
	}
	if err := h.DelAddr(v.Index, p6); !IsNotFound(err) {
		t.Fatalf("DelAddr twice: %v, want not found", err)
	}
	if _, err := h.LinkByName("nosuch"); !IsNotFound(err) {
		t.Fatalf("LinkByName(nosuch) = %v", err)
	}
	// Routes: a subnet route via the link, deleted again.
	if err := h.SetUp(v.Index); err != nil {
		t.Fatal(err)
	}
	r := Route{Dst: mustPrefix("10.66.0.0/16"), LinkIndex: v.Index}
	if err := h.AddRoute(r); err != nil {
		t.Fatalf("AddRoute: %v", err)
	}
	if err := h.DelRoute(r); err != nil {
		t.Fatalf("DelRoute: %v", err)
	}
	if err := h.DelRoute(r); !IsNotFound(err) {
		t.Fatalf("DelRoute twice: %v, want not found", err)
	}
}

// TestSysctlPerNamespace writes a sysctl in a private namespace and checks
// that the daemon's own namespace keeps its value.
func TestSysctlPerNamespace(t *testing.T) {
	ns, _ := testNetns(t)
	host, err := Sysctl(Self, "net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	want := "1"
	if host == "1" {
		want = "0"
	}
	if err := SetSysctl(ns, "net/ipv4/ip_forward", want); err != nil {
		t.Fatal(err)
	}
	if got, err := Sysctl(ns, "net/ipv4/ip_forward"); err != nil || got != want {
		t.Fatalf("netns ip_forward = %q, %v; want %q", got, err, want)
	}
	if got, _ := Sysctl(Self, "net/ipv4/ip_forward"); got != host {
		t.Fatalf("host ip_forward changed to %q", got)
	}
	for _, bad := range []string{"kernel/hostname", "net/../kernel/x", "/net/ipv4/ip_forward", "net/ipv4//x"} {
		if _, err := Sysctl(ns, bad); err == nil {
			t.Errorf("Sysctl(%q) accepted", bad)
		}
	}
}

// TestPortIsolation: two isolated ports of a bridge (dockerd's
// enable_icc=false) cannot reach each other, while each reaches the host
// through the bridge; with isolation turned off again they can.
func TestPortIsolation(t *testing.T) {
	hostNS, h := testNetns(t)
	br, err := h.AddBridge("tbr1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddAddr(br.Index, mustPrefix("10.78.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := h.SetUp(br.Index); err != nil {
		t.Fatal(err)
	}
	var ports []int
	var nss []int
	for i, addr := range []string{"10.78.0.2/24", "10.78.0.3/24"} {
		ns, c := testNetns(t)
		port, err := h.AddVeth(Veth{Name: "tiso" + string(rune('0'+i)), PeerName: "eth0", PeerNS: ns, MasterIndex: br.Index, Up: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.SetPortIsolated(port.Index, true); err != nil {
			t.Fatalf("SetPortIsolated: %v", err)
		}
		eth0, err := c.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddAddr(eth0.Index, mustPrefix(addr)); err != nil {
			t.Fatal(err)
		}
		if err := c.SetUp(eth0.Index); err != nil {
			t.Fatal(err)
		}
		ports, nss = append(ports, port.Index), append(nss, ns)
	}
	listen(t, hostNS, "10.78.0.1:7100", "host")
	listen(t, nss[1], "10.78.0.3:7101", "peer")
	if got, err := dial(nss[0], "10.78.0.1:7100", 5*time.Second); err != nil || got != "host" {
		t.Fatalf("isolated port -> host: %q, %v", got, err)
	}
	if got, err := dial(nss[0], "10.78.0.3:7101", time.Second); err == nil {
		t.Fatalf("isolated port -> isolated port: %q, want no connection", got)
	}
	if err := h.SetPortIsolated(ports[1], false); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(nss[0], "10.78.0.3:7101", 5*time.Second); err != nil || got != "peer" {
		t.Fatalf("isolated port -> port without isolation: %q, %v", got, err)
	}
	// A port that went away (its container exited) is not found: the
	// daemon's start, which sets the isolation of the ports it finds,
	// passes over it.
	if err := h.DeleteLink(ports[0]); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPortIsolated(ports[0], true); !IsNotFound(err) {
		t.Errorf("SetPortIsolated of a deleted port = %v, want not found", err)
	}
}
