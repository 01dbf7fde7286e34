package netlink

import (
	"fmt"
	"net/netip"
	"syscall"
)

const (
	rtaDst      = 1
	rtaOif      = 4
	rtaGateway  = 5
	rtaPriority = 6
	rtaPrefsrc  = 7
	rtaTable    = 15

	rtmsgLen = 12

	// RouteTableMain is the main routing table (RT_TABLE_MAIN), the one
	// `ip route` shows; RouteTableLocal holds the local and broadcast
	// routes of the namespace's own addresses.
	RouteTableMain  = 254
	RouteTableLocal = 255

	rtprotBoot     = 3
	rtScopeUniv    = 0
	rtScopeLink    = 253
	rtScopeNowhere = 255
	rtnUnicast     = 1
	routeTableFull = 252 // RT_TABLE_COMPAT: the real table id is in RTA_TABLE
)

// Route is a routing table entry. Dst with zero bits is a default route.
type Route struct {
	Dst       netip.Prefix
	Gateway   netip.Addr // invalid for a directly connected route
	LinkIndex int        // output interface, 0 for none
	Src       netip.Addr // preferred source, invalid for none
	Table     int        // RouteTableMain when zero in AddRoute
	Priority  int        // metric
	Protocol  uint8      // RTPROT_*; boot (3) when zero in AddRoute
	Scope     uint8
	Type      uint8 // RTN_*: 1 unicast, 2 local, 3 broadcast...
}

// IsDefault reports whether r is a default route (0.0.0.0/0 or ::/0).
func (r Route) IsDefault() bool { return r.Dst.IsValid() && r.Dst.Bits() == 0 }

func (h *Handle) routeRequest(op string, typ, flags uint16, r Route) error {
	b, err := routeMsg(op, typ, r)
	if err != nil {
		return err
	}
	_, err = h.c.request(op, typ, flags, b)
	return err
}

// routeMsg is the body of an RTM_NEWROUTE or RTM_DELROUTE request for r.
func routeMsg(op string, typ uint16, r Route) ([]byte, error) {
	if !r.Dst.IsValid() {
		return nil, fmt.Errorf("netlink %s: invalid destination", op)
	}
	dst := r.Dst.Masked()
	fam := family(dst.Addr())
	b := make([]byte, rtmsgLen)
	b[0] = fam
	b[1] = uint8(dst.Bits())
	table := r.Table
	if table == 0 {
		table = RouteTableMain
	}
	if table < 256 {
		b[4] = uint8(table)
	} else {
		b[4] = routeTableFull
	}
	b[5] = r.Protocol
	if b[5] == 0 && typ == syscall.RTM_NEWROUTE {
		b[5] = rtprotBoot
	}
	b[6] = r.Scope
	b[7] = r.Type
	if typ == syscall.RTM_NEWROUTE {
		if b[6] == 0 && !r.Gateway.IsValid() && r.LinkIndex != 0 {
			b[6] = rtScopeLink
		}
		if b[7] == 0 {
			b[7] = rtnUnicast
		}
	} else if b[6] == 0 {
		b[6] = rtScopeNowhere // RT_SCOPE_NOWHERE matches any scope on delete
	}
	e := encoder{b: b}
	if dst.Bits() > 0 {
		e.attr(rtaDst, dst.Addr().AsSlice())
	}
	if r.Gateway.IsValid() {
		if family(r.Gateway.Unmap()) != fam {
			return nil, fmt.Errorf("netlink %s: gateway %v of another family", op, r.Gateway)
		}
		e.attr(rtaGateway, r.Gateway.Unmap().AsSlice())
	}
	if r.LinkIndex != 0 {
		e.u32(rtaOif, uint32(r.LinkIndex))
	}
	if r.Src.IsValid() {
		e.attr(rtaPrefsrc, r.Src.Unmap().AsSlice())
	}
	if r.Priority != 0 {
		e.u32(rtaPriority, uint32(r.Priority))
	}
	if table >= 256 {
		e.u32(rtaTable, uint32(table))
	}
	return e.b, nil
}

// AddRoute adds r (EEXIST if an identical route exists).
func (h *Handle) AddRoute(r Route) error {
	return h.routeRequest("add route "+r.Dst.String(), syscall.RTM_NEWROUTE, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, r)
}

// DelRoute deletes the route matching r's destination, table, gateway and
// interface (ESRCH when none matches).
func (h *Handle) DelRoute(r Route) error {
	return h.routeRequest("delete route "+r.Dst.String(), syscall.RTM_DELROUTE, 0, r)
}

// AddDefaultRoute adds a default route via gw out of interface index, the
// route a container gets towards its network's gateway.
func (h *Handle) AddDefaultRoute(gw netip.Addr, index int) error {
	return h.AddRoute(defaultRoute(gw, index))
}

// defaultRoute is the default route via gw out of interface index.
func defaultRoute(gw netip.Addr, index int) Route {
	gw = gw.Unmap()
	any := netip.IPv4Unspecified()
	if gw.Is6() {
		any = netip.IPv6Unspecified()
	}
	return Route{Dst: netip.PrefixFrom(any, 0), Gateway: gw, LinkIndex: index}
}

// Routes lists the routes of every table for family (syscall.AF_INET,
// AF_INET6 or 0 for both); filter on Table (RouteTableMain is the one
// `ip route` shows) and Type to find subnets in use on the host.
func (h *Handle) Routes(fam int) ([]Route, error) {
	b := make([]byte, rtmsgLen)
	b[0] = uint8(fam)
	ms, err := h.c.request("list routes", syscall.RTM_GETROUTE, syscall.NLM_F_DUMP, b)
	if err != nil {
		return nil, err
	}
	var out []Route
	for _, m := range ms {
		if m.Type != syscall.RTM_NEWROUTE {
			continue
		}
		r, err := parseRoute(m.Data)
		if err != nil {
			return nil, fmt.Errorf("netlink list routes: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// parseRoute decodes an RTM_NEWROUTE body.
func parseRoute(b []byte) (Route, error) {
	if len(b) < rtmsgLen {
		return Route{}, errShort
	}
	r := Route{Table: int(b[4]), Protocol: b[5], Scope: b[6], Type: b[7]}
	fam, bits := b[0], int(b[1])
	as, err := attrMap(b[rtmsgLen:])
	if err != nil {
		return r, err
	}
	var any netip.Addr
	switch fam {
	case syscall.AF_INET:
		any = netip.IPv4Unspecified()
	case syscall.AF_INET6:
		any = netip.IPv6Unspecified()
	default:
		return r, fmt.Errorf("route of family %d", fam)
	}
	dst := any
	if raw, ok := as[rtaDst]; ok {
		a, ok := netip.AddrFromSlice(raw)
		if !ok || a.BitLen() != any.BitLen() {
			return r, fmt.Errorf("route destination of %d bytes", len(raw))
		}
		dst = a
	}
	if bits > dst.BitLen() {
		return r, fmt.Errorf("route prefix length %d", bits)
	}
	r.Dst = netip.PrefixFrom(dst, bits)
	if raw, ok := as[rtaGateway]; ok {
		r.Gateway, _ = netip.AddrFromSlice(raw)
	}
	if raw, ok := as[rtaPrefsrc]; ok {
		r.Src, _ = netip.AddrFromSlice(raw)
	}
	if v, ok := u32(as[rtaOif]); ok {
		r.LinkIndex = int(v)
	}
	if v, ok := u32(as[rtaPriority]); ok {
		r.Priority = int(v)
	}
	if v, ok := u32(as[rtaTable]); ok {
		r.Table = int(v)
	}
	return r, nil
}
