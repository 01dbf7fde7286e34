package netlink

import (
	"net"
	"net/netip"
	"testing"
)

// BenchmarkWireContainer measures what endpoint wiring costs docker run
// (issue 14 wants networking to add at most 5 ms): one veth pair created
// with its peer directly in the container's namespace as eth0, enslaved
// and up; a Handle opened in the container namespace; eth0's address,
// lo and eth0 up, the default route. Removing the pair is not timed.
func BenchmarkWireContainer(b *testing.B) {
	_, h := testNetns(b)
	ctr, _ := testNetns(b)
	br, err := h.AddBridge("bbr0", 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := h.AddAddr(br.Index, mustPrefix("10.88.0.1/16")); err != nil {
		b.Fatal(err)
	}
	if err := h.SetUp(br.Index); err != nil {
		b.Fatal(err)
	}
	gw := netip.MustParseAddr("10.88.0.1")
	mac := net.HardwareAddr{0x02, 0x42, 0x0a, 0x58, 0x00, 0x02}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		host, err := h.AddVeth(Veth{Name: "bveth0", PeerName: "eth0", PeerNS: ctr, MasterIndex: br.Index, Up: true, PeerHardwareAddr: mac})
		if err != nil {
			b.Fatal(err)
		}
		c, err := Open(ctr)
		if err != nil {
			b.Fatal(err)
		}
		eth0, err := c.LinkByName("eth0")
		if err != nil {
			b.Fatal(err)
		}
		if err := c.AddAddr(eth0.Index, mustPrefix("10.88.0.2/16")); err != nil {
			b.Fatal(err)
		}
		if err := c.SetUp(eth0.Index); err != nil {
			b.Fatal(err)
		}
		if err := c.SetUp(1); err != nil { // lo is always index 1
			b.Fatal(err)
		}
		if err := c.AddDefaultRoute(gw, eth0.Index); err != nil {
			b.Fatal(err)
		}
		c.Close()
		b.StopTimer()
		if err := h.DeleteLink(host.Index); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPublishPort measures one nf_tables transaction adding the
// DNAT rules of a published port (prerouting/output chain and hairpin
// masquerade) with echoed handles, and one deleting them by handle.
func BenchmarkPublishPort(b *testing.B) {
	ns, _ := testNetns(b)
	n, err := OpenNFT(ns, "skiff-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	bt := n.Batch()
	bt.AddTable(FamilyIP)
	bt.AddChain(FamilyIP, "ports", nil)
	bt.AddChain(FamilyIP, "post", &Hook{Num: HookPostrouting, Priority: PrioritySrcNAT, Type: "nat", Policy: PolicyAccept})
	if err := n.Commit(bt); err != nil {
		b.Fatal(err)
	}
	to := netip.MustParseAddrPort("10.88.0.2:80")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := n.Batch()
		dn := bt.AddRule(FamilyIP, "ports", []byte("c1"), R(DstLocal(), DstPort(ProtoTCP, 8080), DNAT(to))...)
		hp := bt.AddRule(FamilyIP, "post", []byte("c1"), R(SrcNet(netip.PrefixFrom(to.Addr(), 32), CmpEq), DstNet(netip.PrefixFrom(to.Addr(), 32), CmpEq), DstPort(ProtoTCP, 80), []Expr{Masquerade()})...)
		if err := n.Commit(bt); err != nil {
			b.Fatal(err)
		}
		bt = n.Batch()
		bt.DelRule(FamilyIP, "ports", dn.Handle)
		bt.DelRule(FamilyIP, "post", hp.Handle)
		if err := n.Commit(bt); err != nil {
			b.Fatal(err)
		}
	}
}
