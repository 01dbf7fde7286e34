package netlink

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestMacvlanReachability: two macvlan interfaces in bridge mode on one
// parent (a veth whose peer is the "LAN", in a namespace of its own),
// each created straight into a namespace of its own, reach each other
// and the LAN; the parent's deletion takes them along.
func TestMacvlanReachability(t *testing.T) {
	_, h := testNetns(t)
	lanNS, lan := testNetns(t)
	parent, err := h.AddVeth(Veth{Name: "tpv0", PeerName: "lan0", PeerNS: lanNS, Up: true})
	if err != nil {
		t.Fatal(err)
	}
	lan0, err := lan.LinkByName("lan0")
	if err != nil {
		t.Fatal(err)
	}
	if err := lan.AddAddr(lan0.Index, mustPrefix("10.78.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := lan.SetUp(lan0.Index); err != nil {
		t.Fatal(err)
	}
	listen(t, lanNS, "10.78.0.1:80", "lan")
	var nss []int
	for i, addr := range []string{"10.78.0.2/24", "10.78.0.3/24"} {
		ns, c := testNetns(t)
		mac := net.HardwareAddr{0x02, 0x42, 0x0a, 0x4e, 0x00, byte(2 + i)}
		if err := h.CreateMacvlan(Macvlan{Name: "eth0", ParentIndex: parent.Index, Mode: MacvlanBridge, NS: ns, MTU: 1400, HardwareAddr: mac}); err != nil {
			t.Fatalf("CreateMacvlan: %v", err)
		}
		l, err := c.LinkByName("eth0")
		if err != nil {
			t.Fatalf("macvlan in its namespace: %v", err)
		}
		if l.Kind != "macvlan" || l.HardwareAddr.String() != mac.String() || l.MTU != 1400 {
			t.Fatalf("macvlan = %+v, want kind macvlan, mac %v, mtu 1400", l, mac)
		}
		if err := c.AddAddr(l.Index, mustPrefix(addr)); err != nil {
			t.Fatal(err)
		}
		if err := c.SetUp(l.Index); err != nil {
			t.Fatal(err)
		}
		nss = append(nss, ns)
	}
	if _, err := h.LinkByName("eth0"); !IsNotFound(err) {
		t.Errorf("a macvlan appeared in the parent's namespace: %v", err)
	}
	listen(t, nss[1], "10.78.0.3:80", "sibling")
	if got, err := dial(nss[0], "10.78.0.3:80", 3*time.Second); err != nil || got != "sibling" {
		t.Errorf("from one macvlan to its sibling: %q, %v", got, err)
	}
	if got, err := dial(nss[0], "10.78.0.1:80", 3*time.Second); err != nil || got != "lan" {
		t.Errorf("from a macvlan to the parent's LAN: %q, %v", got, err)
	}
	if err := h.DeleteLink(parent.Index); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(nss[0], "10.78.0.3:80", 300*time.Millisecond); err == nil {
		t.Errorf("the macvlans outlived their parent")
	}
}

// TestDummyAndVLAN: dummy and 802.1q interfaces where the kernel has
// them (CONFIG_DUMMY, CONFIG_VLAN_8021Q), and EOPNOTSUPP where it has
// not, which the engine reports.
func TestDummyAndVLAN(t *testing.T) {
	_, h := testNetns(t)
	d, err := h.AddDummy("tdm0")
	if errors.Is(err, syscall.EOPNOTSUPP) {
		t.Logf("this kernel has no dummy interfaces: %v", err)
		if _, err := h.LinkByName("tdm0"); !IsNotFound(err) {
			t.Errorf("a refused dummy left an interface: %v", err)
		}
	} else if err != nil {
		t.Fatalf("AddDummy: %v", err)
	} else if d.Kind != "dummy" || d.Flags&net.FlagUp == 0 {
		t.Errorf("dummy = %+v, want kind dummy, up", d)
	}
	parent, err := h.AddBridge("tvp0", 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.AddVLAN("tvp0.42", parent.Index, 42)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		t.Logf("this kernel has no 802.1q interfaces: %v", err)
	} else if err != nil {
		t.Fatalf("AddVLAN: %v", err)
	} else if v.Kind != "vlan" || v.ParentIndex != parent.Index {
		t.Errorf("vlan = %+v, want kind vlan on %d", v, parent.Index)
	}
	if _, err := h.AddVLAN("tvp0.0", parent.Index, 0); err == nil {
		t.Errorf("AddVLAN with id 0 succeeded")
	}
}
