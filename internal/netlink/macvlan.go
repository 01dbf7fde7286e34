package netlink

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
)

// Attribute numbers and modes of macvlan and 802.1q links, from
// include/uapi/linux/if_link.h.
const (
	iflaMacvlanMode = 1
	iflaVlanID      = 1
)

// Macvlan modes (enum macvlan_mode).
const (
	MacvlanPrivate  = 1
	MacvlanVEPA     = 2
	MacvlanBridge   = 4
	MacvlanPassthru = 8
)

// Macvlan describes a macvlan interface for CreateMacvlan.
type Macvlan struct {
	Name        string // in NS, e.g. "eth0"
	ParentIndex int    // the parent interface, in the Handle's namespace
	Mode        uint32 // MacvlanBridge...
	// NS is the fd of the network namespace the interface is created
	// in, or Self.
	NS           int
	MTU          int // 0 for the parent's
	HardwareAddr net.HardwareAddr
}

// CreateMacvlan creates macvlan interface m on its parent in one
// RTM_NEWLINK request, directly in m.NS (the parent is looked up in the
// Handle's namespace), down.
func (h *Handle) CreateMacvlan(m Macvlan) error {
	if m.Name == "" || len(m.Name) >= ifnamsiz || m.ParentIndex <= 0 {
		return fmt.Errorf("netlink: invalid macvlan %q on interface %d", m.Name, m.ParentIndex)
	}
	e := encoder{b: ifinfomsg(syscall.AF_UNSPEC, 0, 0, 0)}
	e.str(iflaIfname, m.Name)
	e.u32(iflaLink, uint32(m.ParentIndex))
	if m.MTU > 0 {
		e.u32(iflaMTU, uint32(m.MTU))
	}
	if len(m.HardwareAddr) > 0 {
		e.attr(iflaAddress, m.HardwareAddr)
	}
	if m.NS != Self {
		e.u32(iflaNetNsFd, uint32(m.NS))
	}
	e.begin(iflaLinkinfo)
	e.str(iflaInfoKind, "macvlan")
	e.begin(iflaInfoData)
	e.u32(iflaMacvlanMode, m.Mode)
	e.end()
	e.end()
	_, err := h.c.request("add macvlan "+m.Name, syscall.RTM_NEWLINK, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, e.b)
	return err
}

// AddDummy creates a dummy interface called name, up, and returns it.
func (h *Handle) AddDummy(name string) (*Link, error) {
	if name == "" || len(name) >= ifnamsiz {
		return nil, fmt.Errorf("netlink: invalid interface name %q", name)
	}
	e := encoder{b: ifinfomsg(syscall.AF_UNSPEC, 0, syscall.IFF_UP, syscall.IFF_UP)}
	e.str(iflaIfname, name)
	e.begin(iflaLinkinfo)
	e.str(iflaInfoKind, "dummy")
	e.end()
	if _, err := h.c.request("add dummy "+name, syscall.RTM_NEWLINK, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, e.b); err != nil {
		return nil, err
	}
	return h.LinkByName(name)
}

// AddVLAN creates the 802.1q interface name for VLAN id on interface
// parent, up, and returns it.
func (h *Handle) AddVLAN(name string, parent int, id uint16) (*Link, error) {
	if name == "" || len(name) >= ifnamsiz || parent <= 0 || id == 0 || id > 4094 {
		return nil, fmt.Errorf("netlink: invalid VLAN %q (id %d) on interface %d", name, id, parent)
	}
	e := encoder{b: ifinfomsg(syscall.AF_UNSPEC, 0, syscall.IFF_UP, syscall.IFF_UP)}
	e.str(iflaIfname, name)
	e.u32(iflaLink, uint32(parent))
	e.begin(iflaLinkinfo)
	e.str(iflaInfoKind, "vlan")
	e.begin(iflaInfoData)
	e.attr(iflaVlanID, binary.NativeEndian.AppendUint16(nil, id))
	e.end()
	e.end()
	if _, err := h.c.request("add vlan "+name, syscall.RTM_NEWLINK, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, e.b); err != nil {
		return nil, err
	}
	return h.LinkByName(name)
}
