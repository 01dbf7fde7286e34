package netlink

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
)

const (
	ifaAddress   = 1
	ifaLocal     = 2
	ifaBroadcast = 4
	ifaFlags     = 8
	ifaFNodad    = 0x02 // IFA_F_NODAD

	ifaddrmsgLen = 8
)

// Addr is an interface address: the address with its prefix length, as
// `ip addr` shows it (10.88.0.2/16).
type Addr struct {
	Prefix    netip.Prefix
	LinkIndex int
	Scope     uint8
	Flags     uint32
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

func (h *Handle) addrRequest(op string, typ, flags uint16, index int, p netip.Prefix) error {
	b, err := addrMsg(op, typ, index, p)
	if err != nil {
		return err
	}
	_, err = h.c.request(op, typ, flags, b)
	return err
}

// addrMsg is the body of an RTM_NEWADDR or RTM_DELADDR request for address
// p on interface index.
func addrMsg(op string, typ uint16, index int, p netip.Prefix) ([]byte, error) {
	if !p.IsValid() {
		return nil, fmt.Errorf("netlink %s: invalid prefix", op)
	}
	a := p.Addr().Unmap()
	p = netip.PrefixFrom(a, p.Bits())
	b := make([]byte, ifaddrmsgLen)
	b[0] = family(a)
	b[1] = uint8(p.Bits())
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	e := encoder{b: b}
	e.attr(ifaLocal, a.AsSlice())
	e.attr(ifaAddress, a.AsSlice())
	if a.Is4() {
		if p.Bits() < 31 {
			e.attr(ifaBroadcast, broadcast(p).AsSlice())
		}
	} else if typ == syscall.RTM_NEWADDR {
		// As dockerd does: no duplicate address detection for container
		// addresses, which IPAM already made unique; DAD would hold the
		// address "tentative" and unusable for a second or more.
		e.b[2] = ifaFNodad
		e.u32(ifaFlags, ifaFNodad)
	}
	return e.b, nil
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// AddAddr adds address p (e.g. 10.88.0.2/16) to interface index; for IPv4
// with the subnet's broadcast address, for IPv6 without duplicate address
// detection. An address already present is an error wrapping EEXIST.
func (h *Handle) AddAddr(index int, p netip.Prefix) error {
	return h.addrRequest("add address "+p.String(), syscall.RTM_NEWADDR, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, index, p)
}

// DelAddr removes address p from interface index (EADDRNOTAVAIL when it
// is not there).
func (h *Handle) DelAddr(index int, p netip.Prefix) error {
	return h.addrRequest("delete address "+p.String(), syscall.RTM_DELADDR, 0, index, p)
}

// Addrs lists the addresses of interface index (0 for all interfaces) of
// the given family (syscall.AF_INET, AF_INET6, or 0 for both).
func (h *Handle) Addrs(index int, fam int) ([]Addr, error) {
	b := make([]byte, ifaddrmsgLen)
	b[0] = uint8(fam)
	ms, err := h.c.request("list addresses", syscall.RTM_GETADDR, syscall.NLM_F_DUMP, b)
	if err != nil {
		return nil, err
	}
	var out []Addr
	for _, m := range ms {
		if m.Type != syscall.RTM_NEWADDR {
			continue
		}
		a, err := parseAddr(m.Data)
		if err != nil {
			return nil, fmt.Errorf("netlink list addresses: %w", err)
		}
		if index != 0 && a.LinkIndex != index {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// parseAddr decodes an RTM_NEWADDR body.
func parseAddr(b []byte) (Addr, error) {
	if len(b) < ifaddrmsgLen {
		return Addr{}, errShort
	}
	a := Addr{
		Flags:     uint32(b[2]),
		Scope:     b[3],
		LinkIndex: int(binary.NativeEndian.Uint32(b[4:8])),
	}
	bits := int(b[1])
	as, err := attrMap(b[ifaddrmsgLen:])
	if err != nil {
		return a, err
	}
	raw := as[ifaLocal] // the interface's own address; IFA_ADDRESS is the peer's on point-to-point links
	if raw == nil {
		raw = as[ifaAddress]
	}
	ip, ok := netip.AddrFromSlice(raw)
	if !ok {
		return a, fmt.Errorf("address of %d bytes", len(raw))
	}
	if bits > ip.BitLen() {
		return a, fmt.Errorf("prefix length %d for %v", bits, ip)
	}
	a.Prefix = netip.PrefixFrom(ip, bits)
	if v, ok := u32(as[ifaFlags]); ok {
		a.Flags = v
	}
	return a, nil
}
