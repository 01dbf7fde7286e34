package engine

import (
	"net/netip"
	"slices"

	"skiffd/internal/netlink"
)

// rules6 adds to b the IPv6 side of skiffd's rules, in an ip6 table of the
// same name, built like the ip table from the bridges (n.mu held): exists
// says whether the table is there already, to be replaced. Only IPv6
// networks and ports published on IPv6 need it; without any the table is
// removed, so a host without IPv6 networks never sees one.
//
// An ip table sees IPv4 only: masquerade, isolation between networks and
// the walls of internal networks are needed again here for IPv6 traffic.
func (n *networking) rules6(b *netlink.Batch, exists bool) {
	const f = netlink.FamilyIP6
	if exists {
		b.DelTable(f)
	}
	ids := make([]string, 0, len(n.bridges))
	for id, bn := range n.bridges {
		if bn.subnet6.IsValid() {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 && !n.hasPorts6() {
		return
	}
	slices.Sort(ids)
	b.AddTable(f)
	b.AddChain(f, "postrouting", &netlink.Hook{
		Num: netlink.HookPostrouting, Priority: netlink.PrioritySrcNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(f, "prerouting", &netlink.Hook{
		Num: netlink.HookPrerouting, Priority: netlink.PriorityDstNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(f, "output", &netlink.Hook{
		Num: netlink.HookOutput, Priority: netlink.PriorityDstNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(f, "forward", &netlink.Hook{
		Num: netlink.HookForward, Priority: netlink.PriorityFilter, Type: "filter", Policy: netlink.PolicyAccept})
	for _, id := range ids {
		bn := n.bridges[id]
		if bn.internal {
			b.AddRule(f, "forward", []byte("net:"+id), netlink.R(
				netlink.Iifname(bn.name, netlink.CmpEq), netlink.Oifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Drop()})...)
			b.AddRule(f, "forward", []byte("net:"+id), netlink.R(
				netlink.Oifname(bn.name, netlink.CmpEq), netlink.Iifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Drop()})...)
			continue
		}
		b.AddRule(f, "postrouting", []byte("net:"+id), netlink.R(
			netlink.SrcNet(bn.subnet6, netlink.CmpEq),
			netlink.Oifname(bn.name, netlink.CmpNeq),
			[]netlink.Expr{netlink.Masquerade()})...)
		for _, other := range ids {
			if o := n.bridges[other]; other != id && !o.internal {
				b.AddRule(f, "forward", []byte("net:"+id), netlink.R(
					netlink.Iifname(bn.name, netlink.CmpEq), netlink.Oifname(o.name, netlink.CmpEq), []netlink.Expr{netlink.Drop()})...)
			}
		}
	}
	n.portRules6(b)
}

// hasPorts6 reports whether a container publishes a port on IPv6 (n.mu
// held).
func (n *networking) hasPorts6() bool {
	for _, pubs := range n.published {
		if slices.ContainsFunc(pubs, func(p published) bool { return p.ctr.Addr().Is6() }) {
			return true
		}
	}
	return false
}

// portRules6 adds the DNAT rules of the ports published on IPv6 host
// addresses (n.mu held). IPv6 has no route_localnet: connections to [::1]
// cannot be DNATed to a container and are left to the proxies
// (startProxies).
func (n *networking) portRules6(b *netlink.Batch) {
	const f = netlink.FamilyIP6
	ids := make([]string, 0, len(n.published))
	for id := range n.published {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, p := range n.published[id] {
			if !p.ctr.Addr().Is6() {
				continue
			}
			proto := uint8(netlink.ProtoTCP)
			if p.proto == "udp" {
				proto = netlink.ProtoUDP
			}
			if p.hostIP.IsLoopback() {
				continue // only its proxy serves it
			}
			dst := netlink.DstLocal()
			if !p.hostIP.IsUnspecified() {
				dst = netlink.DstNet(netip.PrefixFrom(p.hostIP, 128), netlink.CmpEq)
			}
			b.AddRule(f, "prerouting", []byte("ctr:"+id), netlink.R(
				dst, netlink.DstPort(proto, p.hostPort), netlink.DNAT(p.ctr))...)
			// Locally, [::1] goes to the proxy, not through a DNAT that
			// could not route it.
			b.AddRule(f, "output", []byte("ctr:"+id), netlink.R(
				netlink.DstNet(netip.PrefixFrom(netip.IPv6Loopback(), 128), netlink.CmpNeq),
				dst, netlink.DstPort(proto, p.hostPort), netlink.DNAT(p.ctr))...)
			// Hairpin: the container reaching itself through its published port.
			b.AddRule(f, "postrouting", []byte("ctr:"+id), netlink.R(
				netlink.SrcNet(netip.PrefixFrom(p.ctr.Addr(), 128), netlink.CmpEq),
				netlink.DstNet(netip.PrefixFrom(p.ctr.Addr(), 128), netlink.CmpEq),
				netlink.DstPort(proto, p.ctr.Port()), []netlink.Expr{netlink.Masquerade()})...)
		}
	}
}
