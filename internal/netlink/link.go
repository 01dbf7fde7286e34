package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// rtnetlink attribute numbers from include/uapi/linux/if_link.h and
// veth.h that package syscall lacks or names differently.
const (
	iflaAddress   = 1
	iflaIfname    = 3
	iflaMTU       = 4
	iflaLink      = 5
	iflaMaster    = 10
	iflaOperstate = 16
	iflaLinkinfo  = 18
	iflaStats64   = 23
	iflaNetNsFd   = 28
	iflaInfoKind  = 1
	iflaInfoData  = 2
	vethInfoPeer  = 1

	ifinfomsgLen = 16
	ifnamsiz     = 16
)

// LoopbackIndex is the index of the loopback interface "lo" in every
// network namespace (LOOPBACK_IFINDEX in include/net/net_namespace.h): the
// kernel registers it first, with that index, when it creates the
// namespace, so no lookup is needed to bring it up.
const LoopbackIndex = 1

// Handle is an rtnetlink (NETLINK_ROUTE) socket bound to one network
// namespace for its whole life. It is safe for concurrent use; requests
// are serialised on the socket.
type Handle struct {
	c *conn
}

// Open returns a Handle on the network namespace nsfd refers to (for
// example an open /proc/<pid>/ns/net), or on the daemon's own namespace
// with Self. The socket is created on a thread inside that namespace and
// keeps it: nsfd may be closed afterwards.
func Open(nsfd int) (*Handle, error) {
	c, err := openConn(syscall.NETLINK_ROUTE, nsfd)
	if err != nil {
		return nil, err
	}
	return &Handle{c: c}, nil
}

func openConn(proto, nsfd int) (*conn, error) {
	if nsfd == Self {
		return newConn(proto)
	}
	var c *conn
	err := Do(nsfd, func() error {
		var err error
		c, err = newConn(proto)
		return err
	})
	return c, err
}

// Close closes the socket.
func (h *Handle) Close() error { return h.c.close() }

// Link is a network interface as RTM_GETLINK reports it.
type Link struct {
	Index        int
	Name         string
	Kind         string // IFLA_INFO_KIND: "bridge", "veth", ""...
	Flags        net.Flags
	MTU          int
	HardwareAddr net.HardwareAddr
	MasterIndex  int // the bridge it is enslaved to, 0 for none
	ParentIndex  int // IFLA_LINK: a veth's peer index (in its own namespace)
	OperState    uint8
	Stats        LinkStats
}

// LinkStats are the interface counters of IFLA_STATS64, what `docker
// stats` shows per interface.
type LinkStats struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
}

func ifinfomsg(family uint8, index int32, flags, change uint32) []byte {
	b := make([]byte, ifinfomsgLen)
	b[0] = family
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// parseLink decodes an RTM_NEWLINK message body.
func parseLink(b []byte) (Link, error) {
	if len(b) < ifinfomsgLen {
		return Link{}, errShort
	}
	l := Link{
		Index: int(int32(binary.NativeEndian.Uint32(b[4:8]))),
		Flags: ifFlags(binary.NativeEndian.Uint32(b[8:12])),
	}
	as, err := attrMap(b[ifinfomsgLen:])
	if err != nil {
		return l, err
	}
	l.Name = cstr(as[iflaIfname])
	if v, ok := u32(as[iflaMTU]); ok {
		l.MTU = int(v)
	}
	if v, ok := u32(as[iflaMaster]); ok {
		l.MasterIndex = int(v)
	}
	if v, ok := u32(as[iflaLink]); ok {
		l.ParentIndex = int(v)
	}
	if v := as[iflaOperstate]; len(v) > 0 {
		l.OperState = v[0]
	}
	if a := as[iflaAddress]; len(a) > 0 {
		l.HardwareAddr = net.HardwareAddr(append([]byte(nil), a...))
	}
	if li, ok := as[iflaLinkinfo]; ok {
		im, err := attrMap(li)
		if err != nil {
			return l, err
		}
		l.Kind = cstr(im[iflaInfoKind])
	}
	if s := as[iflaStats64]; len(s) >= 8*8 {
		g := func(i int) uint64 { return binary.NativeEndian.Uint64(s[8*i:]) }
		l.Stats = LinkStats{
			RxPackets: g(0), TxPackets: g(1), RxBytes: g(2), TxBytes: g(3),
			RxErrors: g(4), TxErrors: g(5), RxDropped: g(6), TxDropped: g(7),
		}
	}
	return l, nil
}

// ifFlags maps the kernel's IFF_* bits to net.Flags.
func ifFlags(raw uint32) net.Flags {
	var f net.Flags
	if raw&syscall.IFF_UP != 0 {
		f |= net.FlagUp
	}
	if raw&syscall.IFF_BROADCAST != 0 {
		f |= net.FlagBroadcast
	}
	if raw&syscall.IFF_LOOPBACK != 0 {
		f |= net.FlagLoopback
	}
	if raw&syscall.IFF_POINTOPOINT != 0 {
		f |= net.FlagPointToPoint
	}
	if raw&syscall.IFF_MULTICAST != 0 {
		f |= net.FlagMulticast
	}
	if raw&syscall.IFF_RUNNING != 0 {
		f |= net.FlagRunning
	}
	return f
}

func (h *Handle) oneLink(op string, body []byte) (*Link, error) {
	ms, err := h.c.request(op, syscall.RTM_GETLINK, 0, body)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Type == syscall.RTM_NEWLINK {
			l, err := parseLink(m.Data)
			if err != nil {
				return nil, fmt.Errorf("netlink %s: %w", op, err)
			}
			return &l, nil
		}
	}
	return nil, &Error{Op: op, Errno: syscall.ENODEV}
}

// LinkByName returns the interface called name. A missing interface is an
// *Error with Errno ENODEV (errors.Is(err, syscall.ENODEV)).
func (h *Handle) LinkByName(name string) (*Link, error) {
	if len(name) >= ifnamsiz || name == "" {
		return nil, fmt.Errorf("netlink: invalid interface name %q", name)
	}
	e := encoder{b: ifinfomsg(0, 0, 0, 0)}
	e.str(iflaIfname, name)
	return h.oneLink("get link "+name, e.b)
}

// LinkByIndex returns the interface with index i (ENODEV when missing).
func (h *Handle) LinkByIndex(i int) (*Link, error) {
	return h.oneLink(fmt.Sprintf("get link %d", i), ifinfomsg(0, int32(i), 0, 0))
}

// Links lists every interface of the namespace.
func (h *Handle) Links() ([]Link, error) {
	ms, err := h.c.request("list links", syscall.RTM_GETLINK, syscall.NLM_F_DUMP, ifinfomsg(syscall.AF_UNSPEC, 0, 0, 0))
	if err != nil {
		return nil, err
	}
	var out []Link
	for _, m := range ms {
		if m.Type != syscall.RTM_NEWLINK {
			continue
		}
		l, err := parseLink(m.Data)
		if err != nil {
			return nil, fmt.Errorf("netlink list links: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// AddBridge creates a bridge called name, down, with the given MTU (0 for
// the kernel's default), and returns it. An existing interface of that
// name is an error wrapping EEXIST.
func (h *Handle) AddBridge(name string, mtu int) (*Link, error) {
	e := encoder{b: ifinfomsg(syscall.AF_UNSPEC, 0, 0, 0)}
	e.str(iflaIfname, name)
	if mtu > 0 {
		e.u32(iflaMTU, uint32(mtu))
	}
	e.begin(iflaLinkinfo)
	e.str(iflaInfoKind, "bridge")
	e.end()
	if _, err := h.c.request("add bridge "+name, syscall.RTM_NEWLINK, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, e.b); err != nil {
		return nil, err
	}
	return h.LinkByName(name)
}

// Veth describes a veth pair for AddVeth. The host end lives in the
// Handle's namespace; the peer is created directly in PeerNS, so it can be
// named "eth0" at once without a rename, and the host end can be enslaved
// and brought up and the peer given its MAC address in the same request.
type Veth struct {
	Name     string // host end
	PeerName string // container end, e.g. "eth0"
	PeerNS   int    // fd of the peer's network namespace, or Self
	MTU      int    // both ends; 0 for the default
	// MasterIndex enslaves the host end to this bridge; 0 for none.
	MasterIndex int
	// Up brings the host end up. The peer stays down: the kernel cannot
	// open a veth end before its pair is complete (ENOTCONN), so bring it
	// up with a Handle on PeerNS, together with its address and routes.
	Up bool
	// PeerHardwareAddr sets the peer's MAC address; nil for a random one.
	PeerHardwareAddr net.HardwareAddr
}

// AddVeth creates the veth pair v in one RTM_NEWLINK request and returns
// the host end. Deleting either end deletes both.
func (h *Handle) AddVeth(v Veth) (*Link, error) {
	if err := h.CreateVeth(v); err != nil {
		return nil, err
	}
	return h.LinkByName(v.Name)
}

// CreateVeth is AddVeth without looking the host end up afterwards: one
// request, for a caller that needs nothing of the new interface but its
// existence (a container's endpoint, configured from the peer's side).
func (h *Handle) CreateVeth(v Veth) error {
	if v.Name == "" || v.PeerName == "" || len(v.Name) >= ifnamsiz || len(v.PeerName) >= ifnamsiz {
		return fmt.Errorf("netlink: invalid veth names %q, %q", v.Name, v.PeerName)
	}
	var up uint32
	if v.Up {
		up = syscall.IFF_UP
	}
	e := encoder{b: ifinfomsg(syscall.AF_UNSPEC, 0, up, up)}
	e.str(iflaIfname, v.Name)
	if v.MTU > 0 {
		e.u32(iflaMTU, uint32(v.MTU))
	}
	if v.MasterIndex > 0 {
		e.u32(iflaMaster, uint32(v.MasterIndex))
	}
	e.begin(iflaLinkinfo)
	e.str(iflaInfoKind, "veth")
	e.begin(iflaInfoData)
	e.begin(vethInfoPeer)
	e.raw(ifinfomsg(syscall.AF_UNSPEC, 0, 0, 0))
	e.str(iflaIfname, v.PeerName)
	if v.MTU > 0 {
		e.u32(iflaMTU, uint32(v.MTU))
	}
	if len(v.PeerHardwareAddr) > 0 {
		e.attr(iflaAddress, v.PeerHardwareAddr)
	}
	if v.PeerNS != Self {
		e.u32(iflaNetNsFd, uint32(v.PeerNS))
	}
	e.end()
	e.end()
	e.end()
	_, err := h.c.request("add veth "+v.Name, syscall.RTM_NEWLINK, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, e.b)
	return err
}

// setLink sends RTM_NEWLINK for an existing interface.
func (h *Handle) setLink(op string, index int, flags, change uint32, attrs func(*encoder)) error {
	e := encoder{b: ifinfomsg(syscall.AF_UNSPEC, int32(index), flags, change)}
	if attrs != nil {
		attrs(&e)
	}
	_, err := h.c.request(op, syscall.RTM_NEWLINK, 0, e.b)
	return err
}

// SetUp brings interface index up.
func (h *Handle) SetUp(index int) error {
	return h.setLink("set up", index, syscall.IFF_UP, syscall.IFF_UP, nil)
}

// upMsg is the body of the RTM_NEWLINK request that brings index up.
func upMsg(index int) []byte {
	return ifinfomsg(syscall.AF_UNSPEC, int32(index), syscall.IFF_UP, syscall.IFF_UP)
}

// SetDown brings interface index down.
func (h *Handle) SetDown(index int) error {
	return h.setLink("set down", index, 0, syscall.IFF_UP, nil)
}

// SetMaster enslaves interface index to the bridge master; master 0
// releases it.
func (h *Handle) SetMaster(index, master int) error {
	return h.setLink("set master", index, 0, 0, func(e *encoder) { e.u32(iflaMaster, uint32(master)) })
}

// Bridge port attributes (IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA,
// IFLA_BRPORT_ISOLATED).
const (
	iflaInfoSlaveKind  = 4
	iflaInfoSlaveData  = 5
	iflaBrportIsolated = 33
)

// SetPortIsolated turns a bridge port's isolation on or off: an isolated
// port forwards to no other isolated port of its bridge, only to the ones
// that are not and to the bridge itself (the host; routed traffic leaves
// through it). Interface index must be enslaved to a bridge.
func (h *Handle) SetPortIsolated(index int, on bool) error {
	var v uint8
	if on {
		v = 1
	}
	return h.setLink("set bridge port isolated", index, 0, 0, func(e *encoder) {
		e.begin(iflaLinkinfo)
		e.str(iflaInfoSlaveKind, "bridge")
		e.begin(iflaInfoSlaveData)
		e.u8(iflaBrportIsolated, v)
		e.end()
		e.end()
	})
}

// SetMTU sets the MTU of interface index.
func (h *Handle) SetMTU(index, mtu int) error {
	return h.setLink("set mtu", index, 0, 0, func(e *encoder) { e.u32(iflaMTU, uint32(mtu)) })
}

// SetHardwareAddr sets the MAC address of interface index.
func (h *Handle) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	return h.setLink("set address", index, 0, 0, func(e *encoder) { e.attr(iflaAddress, mac) })
}

// Rename renames interface index; the kernel refuses (EBUSY) while it is up.
func (h *Handle) Rename(index int, name string) error {
	if name == "" || len(name) >= ifnamsiz {
		return fmt.Errorf("netlink: invalid interface name %q", name)
	}
	return h.setLink("rename", index, 0, 0, func(e *encoder) { e.str(iflaIfname, name) })
}

// DeleteLink deletes interface index (for a veth, both ends).
func (h *Handle) DeleteLink(index int) error {
	_, err := h.c.request("delete link", syscall.RTM_DELLINK, 0, ifinfomsg(syscall.AF_UNSPEC, int32(index), 0, 0))
	return err
}

// IsNotFound reports whether err says an interface, address, route, table,
// chain or rule does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// IsExist reports whether err says the object already exists.
func IsExist(err error) bool { return errors.Is(err, syscall.EEXIST) }
