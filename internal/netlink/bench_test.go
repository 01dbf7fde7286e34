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
// lo and eth0 up, the default route. "separate" sends one request per
// change and looks the host end up after creating it; "batched" is what
// the engine does: no lookup of the host end, lo by its fixed index, and
// eth0's changes in one RouteBatch. Removing the pair is not timed.
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
	veth := Veth{Name: "bveth0", PeerName: "eth0", PeerNS: ctr, MasterIndex: br.Index, Up: true, PeerHardwareAddr: mac}
	separate := func(c *Handle) error {
		if _, err := h.AddVeth(veth); err != nil {
			return err
		}
		lo, err := c.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := c.SetUp(lo.Index); err != nil {
			return err
		}
		eth0, err := c.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := c.AddAddr(eth0.Index, mustPrefix("10.88.0.2/16")); err != nil {
			return err
		}
		if err := c.SetUp(eth0.Index); err != nil {
			return err
		}
		return c.AddDefaultRoute(gw, eth0.Index)
	}
	batched := func(c *Handle) error {
		if err := h.CreateVeth(veth); err != nil {
			return err
		}
		if err := c.SetUp(LoopbackIndex); err != nil {
			return err
		}
		eth0, err := c.LinkByName("eth0")
		if err != nil {
			return err
		}
		bt := c.RouteBatch()
		bt.AddAddr(eth0.Index, mustPrefix("10.88.0.2/16"))
		bt.SetUp(eth0.Index)
		bt.AddDefaultRoute(gw, eth0.Index)
		return bt.Send()
	}
	for _, v := range []struct {
		name string
		wire func(*Handle) error
	}{{"separate", separate}, {"batched", batched}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				c, err := Open(ctr)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.wire(c); err != nil {
					b.Fatal(err)
				}
				c.Close()
				b.StopTimer()
				host, err := h.LinkByName("bveth0")
				if err == nil {
					err = h.DeleteLink(host.Index)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
