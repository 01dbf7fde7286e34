package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"skiffd/internal/netlink"
)

// skiffd's nf_tables table (issue 14) is built whole once, at daemon
// start (rebuildRules: it reconciles the table with the records after a
// kill -9), and then changed by owner, one batch per change
// (replaceRules): a container's port rules go in when it starts and out
// when it stops, a network's when it is created and removed, and the
// rules of the other owners keep their handles. Every rule carries its
// owner's tag as user data:
//
//	ctr:<container ID>      DNAT and hairpin rules of its published ports
//	net:<network ID>        masquerade of the network's subnet (or, for an
//	                        internal network, its drops) and masquerade of
//	                        loopback sources leaving its bridge
//	pair:<net ID>:<net ID>  isolation between two networks, both ways (IDs
//	                        in order)
//
// The two builders, netRules and ctrRules, serve the rebuild and the
// changes alike, and take the nf_tables family: the table exists once per
// family in n.families. The ip table always; the ip6 table while an IPv6
// network exists (syncFamilies), so that a daemon without IPv6 networks
// adds nothing to the host's IPv6 firewall. An ip table sees IPv4 only:
// masquerade, isolation and the walls of internal networks are needed
// again in the ip6 table for IPv6 traffic. Without a default bridge
// (--bridge=none) the table exists only while it has something to hold: a
// daemon without bridge networks adds nothing to the host's firewall.

// tableChains adds skiffd's table in family f with its base chains.
func tableChains(b *netlink.Batch, f netlink.Family) {
	b.AddTable(f)
	b.AddChain(f, "postrouting", &netlink.Hook{
		Num: netlink.HookPostrouting, Priority: netlink.PrioritySrcNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(f, "prerouting", &netlink.Hook{
		Num: netlink.HookPrerouting, Priority: netlink.PriorityDstNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(f, "output", &netlink.Hook{
		Num: netlink.HookOutput, Priority: netlink.PriorityDstNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(f, "forward", &netlink.Hook{
		Num: netlink.HookForward, Priority: netlink.PriorityFilter, Type: "filter", Policy: netlink.PolicyAccept})
}

// inFamily reports whether address a belongs in the table of family f.
func inFamily(f netlink.Family, a netip.Addr) bool {
	return a.IsValid() && (f == netlink.FamilyIP) == a.Unmap().Is4()
}

func netTag(id string) string { return "net:" + id }
func ctrTag(id string) string { return "ctr:" + id }

// pairTag is the tag of the isolation rules between networks a and b,
// the same whichever was created first.
func pairTag(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "pair:" + a + ":" + b
}

// netOwns reports whether a rule tagged tag belongs to network id: its
// own rules and its isolation from the others.
func netOwns(tag, id string) bool {
	if tag == netTag(id) {
		return true
	}
	pair, ok := strings.CutPrefix(tag, "pair:")
	if !ok {
		return false
	}
	a, b, _ := strings.Cut(pair, ":")
	return a == id || b == id
}

// netRules adds to b, in family f, the rules of network bn: outbound
// masquerade of its subnet, masquerade of loopback sources leaving its
// bridge (published ports reached through 127.0.0.1 with route_localnet;
// without it no such packet exists, so the rule costs nothing until a
// port is published), or for an internal network no way in or out; and
// isolation, both ways, from each of others that is not internal. It
// returns the rules added, whose handles Commit fills.
func netRules(b *netlink.Batch, f netlink.Family, bn *bridgeNet, others []*bridgeNet) []*netlink.Rule {
	var out []*netlink.Rule
	add := func(chain, tag string, exprs ...[]netlink.Expr) {
		out = append(out, b.AddRule(f, chain, []byte(tag), netlink.R(exprs...)...))
	}
	tag := netTag(bn.id)
	if bn.internal {
		add("forward", tag, netlink.Iifname(bn.name, netlink.CmpEq), netlink.Oifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Drop()})
		add("forward", tag, netlink.Oifname(bn.name, netlink.CmpEq), netlink.Iifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Drop()})
	} else if subnet := bn.subnetOf(f); subnet.IsValid() && !bn.noMasquerade {
		add("postrouting", tag, netlink.SrcNet(subnet, netlink.CmpEq), netlink.Oifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Masquerade()})
	}
	if f == netlink.FamilyIP {
		add("postrouting", tag, netlink.SrcNet(netip.MustParsePrefix("127.0.0.0/8"), netlink.CmpEq),
			netlink.Oifname(bn.name, netlink.CmpEq), []netlink.Expr{netlink.Masquerade()})
	}
	if bn.internal {
		return out
	}
	for _, o := range others {
		if o.id == bn.id || o.internal {
			continue
		}
		pt := pairTag(bn.id, o.id)
		add("forward", pt, netlink.Iifname(bn.name, netlink.CmpEq), netlink.Oifname(o.name, netlink.CmpEq), []netlink.Expr{netlink.Drop()})
		add("forward", pt, netlink.Iifname(o.name, netlink.CmpEq), netlink.Oifname(bn.name, netlink.CmpEq), []netlink.Expr{netlink.Drop()})
	}
	return out
}

// ctrRules adds to b, in family f, the rules of container id's published
// ports: DNAT from the host address and port (prerouting for traffic from
// outside, output for the host's own) and the hairpin masquerade of the
// container reaching itself through its published port. Ports of another
// family than f are left out. It returns the rules added.
//
// IPv6 has no route_localnet: ::1 is not routable, a connection from it
// cannot be DNATed to a container. Ports published on [::1] have no rule
// (a proxy serves them, startProxies), and the host's own connections to
// [::1] are not DNATed for ports published on ::.
func ctrRules(b *netlink.Batch, f netlink.Family, id string, pubs []published) []*netlink.Rule {
	var out []*netlink.Rule
	tag := []byte(ctrTag(id))
	for _, p := range pubs {
		if !inFamily(f, p.ctr.Addr()) || (p.hostIP.IsValid() && !inFamily(f, p.hostIP)) {
			continue
		}
		if p.hostIP.Is6() && p.hostIP.IsLoopback() {
			continue
		}
		proto := uint8(netlink.ProtoTCP)
		if p.proto == "udp" {
			proto = netlink.ProtoUDP
		}
		dst := netlink.DstLocal()
		if p.hostIP.IsValid() && !p.hostIP.IsUnspecified() {
			dst = netlink.DstNet(netip.PrefixFrom(p.hostIP, p.hostIP.BitLen()), netlink.CmpEq)
		}
		out = append(out, b.AddRule(f, "prerouting", tag, netlink.R(dst, netlink.DstPort(proto, p.hostPort), netlink.DNAT(p.ctr))...))
		var notLoopback []netlink.Expr
		if f == netlink.FamilyIP6 {
			notLoopback = netlink.DstNet(netip.PrefixFrom(netip.IPv6Loopback(), 128), netlink.CmpNeq)
		}
		out = append(out, b.AddRule(f, "output", tag, netlink.R(notLoopback, dst, netlink.DstPort(proto, p.hostPort), netlink.DNAT(p.ctr))...))
		host := netip.PrefixFrom(p.ctr.Addr(), p.ctr.Addr().BitLen())
		out = append(out, b.AddRule(f, "postrouting", tag, netlink.R(
			netlink.SrcNet(host, netlink.CmpEq), netlink.DstNet(host, netlink.CmpEq),
			netlink.DstPort(proto, p.ctr.Port()), []netlink.Expr{netlink.Masquerade()})...))
	}
	return out
}

// rebuildRules replaces skiffd's whole table, in every family, in one
// atomic batch built from the bridges and the published ports. Deleting
// the table first makes it idempotent, after a kill -9 too. The daemon
// does it at start; later changes go through replaceRules.
func (n *networking) rebuildRules() error {
	if n.nft == nil {
		return nil
	}
	n.rulesMu.Lock()
	defer n.rulesMu.Unlock()
	return n.rebuildLocked()
}

// rebuildLocked is rebuildRules with n.rulesMu held.
func (n *networking) rebuildLocked() error {
	n.mu.Lock()
	bridges := make([]*bridgeNet, 0, len(n.bridges))
	for _, bn := range n.bridges {
		if !bn.macvlan {
			bridges = append(bridges, bn)
		}
	}
	ids := make([]string, 0, len(n.published))
	pubs := make(map[string][]published, len(n.published))
	for id, p := range n.published {
		ids = append(ids, id)
		pubs[id] = p
	}
	n.mu.Unlock()
	slices.SortFunc(bridges, func(a, b *bridgeNet) int { return strings.Compare(a.id, b.id) })
	slices.Sort(ids)
	empty := len(bridges) == 0 && len(ids) == 0

	tables, err := n.nft.Tables(0)
	if err != nil {
		return err
	}
	b := n.nft.Batch()
	// A table of a family skiffd no longer uses goes (the ip6 table once
	// the last IPv6 network is gone, before or during a restart), and
	// every table when there is nothing to hold.
	for _, f := range []netlink.Family{netlink.FamilyIP, netlink.FamilyIP6} {
		if (empty || !slices.Contains(n.families, f)) && slices.Contains(tables, f.String()+" "+n.opts.NFTable) {
			b.DelTable(f)
		}
	}
	var added []*netlink.Rule
	for _, f := range n.families {
		if empty {
			break
		}
		if slices.Contains(tables, f.String()+" "+n.opts.NFTable) {
			b.DelTable(f)
		}
		tableChains(b, f)
		for i, bn := range bridges {
			// Each pair of networks once: with those before it.
			added = append(added, netRules(b, f, bn, bridges[:i])...)
		}
		for _, id := range ids {
			added = append(added, ctrRules(b, f, id, pubs[id])...)
		}
	}
	if err := n.nft.Commit(b); err != nil {
		return err
	}
	n.tableUp = !empty
	n.handles = map[string][]netlink.Rule{}
	n.keep(added)
	return nil
}

// holdsNothing reports whether the table would be empty: no bridge
// network, no published port.
func (n *networking) holdsNothing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, bn := range n.bridges {
		if !bn.macvlan {
			return false
		}
	}
	return len(n.published) == 0
}

// keep records the handles of committed rules by owner tag (n.rulesMu
// held).
func (n *networking) keep(added []*netlink.Rule) {
	for _, r := range added {
		tag := string(r.UserData)
		n.handles[tag] = append(n.handles[tag], *r)
	}
}

// replaceRules deletes the rules of the owners drop selects and adds
// those add builds for each family, in one atomic batch: the rules of
// other owners keep their handles. The state (n.bridges, n.published)
// must already say what the table is to hold: when the batch fails (a
// handle the kernel did not echo, a rule or the table deleted behind
// skiffd's back) the whole table is rebuilt from it instead. add may be
// nil; it is called without n.mu held.
func (n *networking) replaceRules(drop func(tag string) bool, add func(b *netlink.Batch, f netlink.Family) []*netlink.Rule) error {
	if n.nft == nil {
		return nil
	}
	n.rulesMu.Lock()
	defer n.rulesMu.Unlock()
	if !n.tableUp || n.holdsNothing() {
		// The first network makes the table, the last one's going
		// removes it (without a default bridge).
		return n.rebuildLocked()
	}
	b := n.nft.Batch()
	var gone []string
	for tag, rs := range n.handles {
		if !drop(tag) {
			continue
		}
		gone = append(gone, tag)
		for _, r := range rs {
			if r.Handle == 0 {
				return n.rebuildLocked()
			}
			b.DelRule(r.Family, r.Chain, r.Handle)
		}
	}
	var added []*netlink.Rule
	if add != nil {
		for _, f := range n.families {
			added = append(added, add(b, f)...)
		}
	}
	if err := n.nft.Commit(b); err != nil {
		if rerr := n.rebuildLocked(); rerr != nil {
			return fmt.Errorf("%w (and rebuilding the table: %v)", err, rerr)
		}
		return nil
	}
	for _, tag := range gone {
		delete(n.handles, tag)
	}
	n.keep(added)
	return nil
}

// addNetworkRules puts the rules of network id (its bridge recorded by
// ensureBridge) into the table, replacing any it had.
func (n *networking) addNetworkRules(id string) error {
	return n.replaceRules(func(tag string) bool { return netOwns(tag, id) }, func(b *netlink.Batch, f netlink.Family) []*netlink.Rule {
		n.mu.Lock()
		bn := n.bridges[id]
		others := make([]*bridgeNet, 0, len(n.bridges))
		for _, o := range n.bridges {
			if !o.macvlan {
				others = append(others, o)
			}
		}
		n.mu.Unlock()
		if bn == nil || bn.macvlan {
			return nil
		}
		slices.SortFunc(others, func(a, b *bridgeNet) int { return strings.Compare(a.id, b.id) })
		return netRules(b, f, bn, others)
	})
}

// removeNetworkRules takes the rules of network id out of the table.
func (n *networking) removeNetworkRules(id string) error {
	return n.replaceRules(func(tag string) bool { return netOwns(tag, id) }, nil)
}

// setContainerRules replaces the port rules of container id with those of
// pubs (none: the container's rules go). n.published must already hold
// pubs.
func (n *networking) setContainerRules(id string, pubs []published) error {
	tag := ctrTag(id)
	var add func(b *netlink.Batch, f netlink.Family) []*netlink.Rule
	if len(pubs) > 0 {
		add = func(b *netlink.Batch, f netlink.Family) []*netlink.Rule { return ctrRules(b, f, id, pubs) }
	}
	return n.replaceRules(func(t string) bool { return t == tag }, add)
}

// subnetOf is bn's subnet in family f: IPv4 or IPv6 (invalid on a network
// without IPv6).
func (bn *bridgeNet) subnetOf(f netlink.Family) netip.Prefix {
	if f == netlink.FamilyIP6 {
		return bn.subnet6
	}
	return bn.subnet
}

// need6 reports whether an IPv6 network exists, which needs the ip6
// table.
func (n *networking) need6() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, bn := range n.bridges {
		if bn.subnet6.IsValid() && !bn.macvlan {
			return true
		}
	}
	return false
}

// syncFamilies adds the ip6 table when the first IPv6 network appears and
// removes it with the last one, rebuilding the tables (rebuilt reports
// it); otherwise it does nothing.
func (n *networking) syncFamilies() (rebuilt bool, err error) {
	if n.nft == nil {
		return false, nil
	}
	need6 := n.need6()
	n.rulesMu.Lock()
	defer n.rulesMu.Unlock()
	if need6 == slices.Contains(n.families, netlink.FamilyIP6) {
		return false, nil
	}
	if need6 {
		n.families = append(n.families, netlink.FamilyIP6)
	} else {
		n.families = slices.DeleteFunc(n.families, func(f netlink.Family) bool { return f == netlink.FamilyIP6 })
	}
	return true, n.rebuildLocked()
}
