package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/netlink"
	"skiffd/internal/network"
	"skiffd/internal/network/etcfiles"
	"skiffd/internal/network/ipam"
	"skiffd/internal/network/portalloc"
)

// NetworkOptions configures bridge networking (issue 14). The zero value
// (no Bridge) turns it off: containers on the default network get a
// loopback interface only, as before networking existed, which is what
// the engine's unit tests want.
type NetworkOptions struct {
	// Bridge is the host bridge of the default network, created if
	// missing; "" or "none" turns bridge networking off.
	Bridge string
	// BIP is the bridge's address with its prefix length (--bip); empty
	// keeps the recorded subnet or picks a free one.
	BIP string
	// FixedCIDR is where containers' addresses come from (--fixed-cidr).
	FixedCIDR string
	MTU       int
	// IPTables keeps NAT rules in skiffd's own nf_tables table NFTable;
	// no other table is ever changed.
	IPTables bool
	NFTable  string
	// IPForward turns on net.ipv4.ip_forward when it is off.
	IPForward bool
	// ReservedTCP are the daemon's own TCP API addresses, which no
	// container may publish on.
	ReservedTCP []netip.AddrPort
	// DefaultAddressPools (--default-address-pools, "base=CIDR,size=N"
	// each) replace dockerd's default pools for networks without a subnet.
	DefaultAddressPools []string
}

// networking is the engine's network state: the stores and the host's
// bridge and rules.
type networking struct {
	opts  NetworkOptions
	store *network.Store
	ipam  *ipam.Store
	host  *netlink.Handle
	nft   *netlink.NFT

	// bridgeID is the default network's ID; bridges holds the host side
	// of every bridge network by ID (mu guards it).
	bridgeID string
	mu       sync.Mutex
	bridges  map[string]*bridgeNet
	// dns holds the embedded DNS server of each container by ID.
	dns map[string]*ctrDNS
	// ports allocates published host ports; published holds the ports
	// of each running container, from which the DNAT rules are built.
	ports     *portalloc.Allocator
	published map[string][]published
	mtu       int
	// pools are where networks without a subnet get one.
	pools []ipam.Pool
	// warnings are shown by /info (a firewall dropping forwarded traffic).
	warnings []string
}

// openNetworking sets up the default bridge network: its record and
// address allocations, the host bridge with the gateway address and, with
// IPTables, skiffd's nf_tables table rebuilt from the records.
func (e *Engine) openNetworking() error {
	o := e.opts.Network
	if o.Bridge == "" || o.Bridge == "none" {
		return nil
	}
	if o.NFTable == "" {
		o.NFTable = "skiffd"
	}
	if o.MTU <= 0 {
		o.MTU = 1500
	}
	pools := ipam.DefaultPools()
	if len(o.DefaultAddressPools) > 0 {
		pools = nil
		for _, v := range o.DefaultAddressPools {
			p, err := ipam.ParsePool(v)
			if err != nil {
				return fmt.Errorf("invalid default address pool %q: %w", v, err)
			}
			pools = append(pools, p)
		}
	}
	root := filepath.Join(e.opts.DataRoot, "network")
	store, err := network.Open(filepath.Join(root, "networks"))
	if err != nil {
		return err
	}
	ipams, err := ipam.Open(filepath.Join(root, "ipam"))
	if err != nil {
		return err
	}
	host, err := netlink.Open(netlink.Self)
	if err != nil {
		return fmt.Errorf("open rtnetlink: %w", err)
	}
	n := &networking{opts: o, store: store, ipam: ipams, host: host, mtu: o.MTU, pools: pools, bridges: map[string]*bridgeNet{}, dns: map[string]*ctrDNS{}, published: map[string][]published{}}
	if n.ports, err = portalloc.New(portalloc.Config{Probe: portalloc.CheckFree}); err != nil {
		host.Close()
		return err
	}
	for _, ap := range o.ReservedTCP {
		n.ports.Reserve(ap.Addr(), "tcp", ap.Port())
	}
	if err := n.setupBridge(); err != nil {
		host.Close()
		return fmt.Errorf("default bridge network on %s: %w", o.Bridge, err)
	}
	for _, nw := range store.List() {
		if nw.Driver != network.DriverBridge || nw.ID == n.bridgeID {
			continue
		}
		if _, err := n.ensureBridge(nw); err != nil {
			e.logger.Warn("setting up a network's bridge", "network", nw.Name, "error", err)
		}
	}
	if o.IPForward {
		if v, err := netlink.Sysctl(netlink.Self, "net/ipv4/ip_forward"); err == nil && v != "1" {
			if err := netlink.SetSysctl(netlink.Self, "net/ipv4/ip_forward", "1"); err != nil {
				e.logger.Warn("enabling IP forwarding", "error", err)
			}
		}
	}
	// The port rules of the containers the records say are running go
	// in at once, before the first request: the restore, later, drops
	// those of containers that died meanwhile.
	e.nets = n
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running {
			e.restorePorts(c, e.endpoints(c))
		}
		c.Unlock()
	}
	e.nets = nil
	if o.IPTables {
		if err := n.setupRules(); err != nil {
			host.Close()
			return fmt.Errorf("nf_tables table %s: %w", o.NFTable, err)
		}
		if drops, err := n.nft.ForwardDrops(); err == nil {
			for _, c := range drops {
				w := fmt.Sprintf("WARNING: the %s chain %q of nf_tables table %q drops forwarded packets by policy: containers on bridge %s cannot reach other networks. Accept traffic of %s in that chain, or set its policy to accept", c.Family, c.Name, c.Table, o.Bridge, o.Bridge)
				n.warnings = append(n.warnings, w)
				e.logger.Warn(w)
			}
		}
	}
	e.nets = n
	return nil
}

// setupBridge records the default network and creates or adopts the host
// bridge with its gateway address.
func (n *networking) setupBridge() error {
	o := n.opts
	var subnet netip.Prefix
	var gw netip.Addr
	if o.BIP != "" {
		p, err := netip.ParsePrefix(o.BIP)
		if err != nil || !p.Addr().Is4() {
			return errdefs.InvalidParameter(fmt.Errorf("invalid bip %q", o.BIP))
		}
		subnet, gw = p.Masked(), p.Addr()
	}
	link, err := n.host.LinkByName(o.Bridge)
	if err != nil && !netlink.IsNotFound(err) {
		return err
	}
	if !subnet.IsValid() {
		if cur, err := n.store.Find(network.NameBridge); err == nil && len(cur.IPAM.Config) > 0 {
			if p, err := netip.ParsePrefix(cur.IPAM.Config[0].Subnet); err == nil {
				subnet = p
				gw, _ = netip.ParseAddr(cur.IPAM.Config[0].Gateway)
			}
		}
	}
	if !subnet.IsValid() && link != nil {
		if addrs, err := n.host.Addrs(link.Index, syscall.AF_INET); err == nil && len(addrs) > 0 {
			subnet, gw = addrs[0].Prefix.Masked(), addrs[0].Prefix.Addr()
		}
	}
	if !subnet.IsValid() {
		var used []netip.Prefix
		for _, nw := range n.store.List() {
			if nw.Name == network.NameBridge {
				continue
			}
			for _, c := range nw.IPAM.Config {
				if p, err := netip.ParsePrefix(c.Subnet); err == nil {
					used = append(used, p)
				}
			}
		}
		reserved, err := n.hostPrefixes()
		if err != nil {
			return err
		}
		if subnet, err = ipam.PickSubnet(n.pools, 4, used, reserved); err != nil {
			return err
		}
	}
	if !gw.IsValid() {
		gw = subnet.Addr().Next()
	}
	r := ipam.Range{Subnet: subnet, Gateway: gw}
	if o.FixedCIDR != "" {
		p, err := netip.ParsePrefix(o.FixedCIDR)
		if err != nil || !subnet.Contains(p.Addr()) {
			return errdefs.InvalidParameter(fmt.Errorf("invalid fixed-cidr %q for subnet %s", o.FixedCIDR, subnet))
		}
		r.IPRange = p.Masked()
	}
	rec := network.Network{
		EnableIPv4: true,
		Options: map[string]string{
			network.OptDefaultBridge:   "true",
			network.OptEnableICC:       "true",
			network.OptEnableIPMasq:    "true",
			network.OptHostBindingIPv4: "0.0.0.0",
			network.OptBridgeName:      o.Bridge,
			network.OptMTU:             strconv.Itoa(o.MTU),
		},
	}
	rec.IPAM.SetRanges([]ipam.Range{r})
	nets, err := n.store.EnsurePredefined(rec)
	if err != nil {
		return err
	}
	n.bridgeID = nets[network.NameBridge].ID
	got, err := n.ipam.Create(n.bridgeID, network.NameBridge, []ipam.Range{r})
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0].Subnet != r.Subnet || got[0].Gateway != r.Gateway || got[0].IPRange != r.IPRange {
		// --bip or --fixed-cidr changed: the old allocations are void
		// (the containers that held them get new ones at their start).
		if err := n.ipam.Delete(n.bridgeID); err != nil {
			return err
		}
		if _, err := n.ipam.Create(n.bridgeID, network.NameBridge, []ipam.Range{r}); err != nil {
			return err
		}
	}
	_, err = n.ensureBridge(nets[network.NameBridge])
	return err
}

// bridgeNet is the host side of a bridge network.
type bridgeNet struct {
	id, name string // network ID, host bridge interface
	index    int
	subnet   netip.Prefix
	gateway  netip.Addr
	internal bool
	mtu      int
}

// ensureBridge creates (or adopts) the host bridge of network nw with its
// gateway address, up, and records it.
func (n *networking) ensureBridge(nw network.Network) (*bridgeNet, error) {
	ranges := n.ipam.Ranges(nw.ID)
	if len(ranges) == 0 {
		return nil, fmt.Errorf("network %s has no address ranges", nw.Name)
	}
	name := nw.Options[network.OptBridgeName]
	if name == "" {
		name = "br-" + nw.ID[:12]
	}
	mtu := n.mtu
	if v, err := strconv.Atoi(nw.Options[network.OptMTU]); err == nil && v > 0 {
		mtu = v
	}
	link, err := n.host.LinkByName(name)
	if err != nil && !netlink.IsNotFound(err) {
		return nil, err
	}
	if link == nil {
		if link, err = n.host.AddBridge(name, mtu); err != nil && !netlink.IsExist(err) {
			return nil, err
		} else if err != nil {
			if link, err = n.host.LinkByName(name); err != nil {
				return nil, err
			}
		}
	}
	bn := &bridgeNet{id: nw.ID, name: name, index: link.Index, internal: nw.Internal, mtu: mtu}
	addrs, err := n.host.Addrs(link.Index, syscall.AF_INET)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		if !r.Subnet.Addr().Is4() || !r.Gateway.IsValid() {
			continue
		}
		if !bn.subnet.IsValid() {
			bn.subnet, bn.gateway = r.Subnet, r.Gateway
		}
		want := netip.PrefixFrom(r.Gateway, r.Subnet.Bits())
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.Prefix == want }) {
			if err := n.host.AddAddr(link.Index, want); err != nil && !netlink.IsExist(err) {
				return nil, err
			}
		}
	}
	if err := n.host.SetUp(link.Index); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.bridges[nw.ID] = bn
	n.mu.Unlock()
	return bn, nil
}

// bridge returns the host side of network id, nil if it has none.
func (n *networking) bridge(id string) *bridgeNet {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bridges[id]
}

// hostPrefixes are the host's routes (other than default routes), which
// a picked subnet must not overlap, as dockerd's reserved networks.
func (n *networking) hostPrefixes() ([]netip.Prefix, error) {
	routes, err := n.host.Routes(syscall.AF_INET)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst.IsValid() && !r.IsDefault() && !r.Dst.Addr().IsLoopback() && r.Dst.Addr().Is4() && !r.Dst.Addr().IsMulticast() {
			if r.Type != 1 { // RTN_UNICAST only: local and broadcast entries repeat the subnets
				continue
			}
			out = append(out, r.Dst)
		}
	}
	return out, nil
}

// setupRules opens skiffd's table and builds it from the records.
func (n *networking) setupRules() error {
	nft, err := netlink.OpenNFT(netlink.Self, n.opts.NFTable)
	if err != nil {
		return err
	}
	n.nft = nft
	return n.rebuildRules()
}

// rebuildRules replaces skiffd's whole table in one atomic batch built
// from the bridges: outbound masquerade per non-internal subnet,
// isolation between networks, no way out of an internal network.
// Deleting the table first makes it idempotent, after a kill -9 too.
func (n *networking) rebuildRules() error {
	if n.nft == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	nft := n.nft
	b := nft.Batch()
	tables, err := nft.Tables(netlink.FamilyIP)
	if err != nil {
		return err
	}
	if slices.Contains(tables, netlink.FamilyIP.String()+" "+n.opts.NFTable) {
		b.DelTable(netlink.FamilyIP)
	}
	b.AddTable(netlink.FamilyIP)
	b.AddChain(netlink.FamilyIP, "postrouting", &netlink.Hook{
		Num: netlink.HookPostrouting, Priority: netlink.PrioritySrcNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(netlink.FamilyIP, "prerouting", &netlink.Hook{
		Num: netlink.HookPrerouting, Priority: netlink.PriorityDstNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(netlink.FamilyIP, "output", &netlink.Hook{
		Num: netlink.HookOutput, Priority: netlink.PriorityDstNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddChain(netlink.FamilyIP, "forward", &netlink.Hook{
		Num: netlink.HookForward, Priority: netlink.PriorityFilter, Type: "filter", Policy: netlink.PolicyAccept})
	ids := make([]string, 0, len(n.bridges))
	for id := range n.bridges {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		bn := n.bridges[id]
		if bn.internal {
			b.AddRule(netlink.FamilyIP, "forward", []byte("net:"+id), netlink.R(
				netlink.Iifname(bn.name, netlink.CmpEq), netlink.Oifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Drop()})...)
			b.AddRule(netlink.FamilyIP, "forward", []byte("net:"+id), netlink.R(
				netlink.Oifname(bn.name, netlink.CmpEq), netlink.Iifname(bn.name, netlink.CmpNeq), []netlink.Expr{netlink.Drop()})...)
			continue
		}
		b.AddRule(netlink.FamilyIP, "postrouting", []byte("net:"+id), netlink.R(
			netlink.SrcNet(bn.subnet, netlink.CmpEq),
			netlink.Oifname(bn.name, netlink.CmpNeq),
			[]netlink.Expr{netlink.Masquerade()})...)
		for _, other := range ids {
			if o := n.bridges[other]; other != id && !o.internal {
				b.AddRule(netlink.FamilyIP, "forward", []byte("net:"+id), netlink.R(
					netlink.Iifname(bn.name, netlink.CmpEq), netlink.Oifname(o.name, netlink.CmpEq), []netlink.Expr{netlink.Drop()})...)
			}
		}
	}
	n.portRules(b)
	return nft.Commit(b)
}

// closeNetworking releases the netlink sockets; the bridge and rules stay
// for the running containers and the next daemon.
func (e *Engine) closeNetworking() {
	if n := e.nets; n != nil {
		n.host.Close()
		if n.nft != nil {
			n.nft.Close()
		}
	}
}

// epRef is one of a container's endpoints with its network.
type epRef struct {
	name string // the key in NetworkSettings.Networks
	ep   *types.EndpointSettings
	nw   network.Network
	br   *bridgeNet // nil unless a bridge network
}

// endpoints lists c's endpoints on networks that still exist, the network
// of its NetworkMode first, then the others by name (eth0, eth1...).
func (e *Engine) endpoints(c *container.Container) []epRef {
	n := e.nets
	if n == nil || c.NetworkSettings == nil {
		return nil
	}
	mode := networkName(c.HostConfig.NetworkMode)
	var out []epRef
	for name, ep := range c.NetworkSettings.Networks {
		if ep == nil {
			continue
		}
		term := name
		if ep.NetworkID != "" {
			term = ep.NetworkID
		}
		nw, err := n.store.Find(term)
		if err != nil {
			if nw, err = n.store.Find(name); err != nil {
				continue
			}
		}
		out = append(out, epRef{name: name, ep: ep, nw: nw, br: n.bridge(nw.ID)})
	}
	slices.SortFunc(out, func(a, b epRef) int {
		switch {
		case a.name == mode:
			return -1
		case b.name == mode:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// createNetworkSettings checks the create request's network mode and
// endpoint settings and returns the container's NetworkSettings, keyed by
// network name, echoing IPAMConfig, Aliases, DriverOpts, Links and the
// requested MAC address.
func (e *Engine) createNetworkSettings(hc *types.HostConfig, nc *types.NetworkingConfig) (*types.NetworkSettings, error) {
	mode := hc.NetworkMode
	ns := newNetworkSettings(mode)
	predefined := mode == "" || mode == "default" || mode == network.NameBridge || mode == network.NameHost || mode == network.NameNone
	if strings.HasPrefix(mode, "container:") {
		return ns, nil
	}
	if _, err := portalloc.ParseBindings(hc.PortBindings, nil, false); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if e.nets == nil {
		if !predefined {
			return nil, network.NotFoundError(mode)
		}
		if hasPortBindings(hc.PortBindings) {
			return nil, errdefs.InvalidParameter(errors.New("skiffd does not support published ports (HostConfig.PortBindings) yet: bridge networking is off"))
		}
		return ns, nil
	}
	var cfgs map[string]*types.EndpointSettings
	if nc != nil {
		cfgs = nc.EndpointsConfig
	}
	name := networkName(mode)
	ns.Networks = map[string]*types.EndpointSettings{}
	add := func(term string, req *types.EndpointSettings) error {
		nw, err := e.nets.store.Find(term)
		if err != nil {
			return err
		}
		ep := &types.EndpointSettings{}
		if req != nil {
			cp := *req
			ep = &cp
		}
		ep.NetworkID, ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen = "", "", "", "", 0
		if nw.Driver == network.DriverBridge && nw.ID == e.nets.bridgeID {
			if len(ep.Aliases) > 0 {
				return errdefs.InvalidParameter(errors.New("network-scoped alias is supported only for containers in user defined networks"))
			}
			if ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address != "" || ep.IPAMConfig.IPv6Address != "") {
				return errdefs.InvalidParameter(errors.New("user specified IP address is supported on user defined networks only"))
			}
		}
		if ep.MacAddress != "" {
			if _, err := net.ParseMAC(ep.MacAddress); err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", ep.MacAddress))
			}
		}
		if nw.Driver != network.DriverBridge {
			ep = &types.EndpointSettings{}
		}
		ep.NetworkID = nw.ID
		ns.Networks[nw.Name] = ep
		return nil
	}
	nwm, err := e.nets.store.Find(name)
	if err != nil {
		return nil, err
	}
	isMode := func(k string) bool {
		nw, err := e.nets.store.Find(networkName(k))
		return err == nil && nw.ID == nwm.ID
	}
	var req *types.EndpointSettings
	for k, v := range cfgs {
		if isMode(k) {
			req = v
		}
	}
	if err := add(name, req); err != nil {
		return nil, err
	}
	for k, v := range cfgs {
		if isMode(k) {
			continue
		}
		if err := add(k, v); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// prepareNetwork runs before the container's process exists: it
// allocates the container's address on each bridge network (the same one
// again for an owner that holds one) and writes its /etc/hosts and
// resolv.conf.
func (e *Engine) prepareNetwork(c *container.Container) error {
	var addrs []netip.Addr
	internalDNS := false
	for i, r := range e.endpoints(c) {
		if r.br == nil {
			continue
		}
		if err := e.allocateEndpoint(c, r); err != nil {
			return err
		}
		if i == 0 {
			addrs = append(addrs, netip.MustParseAddr(r.ep.IPAddress))
			internalDNS = r.nw.ID != e.nets.bridgeID && e.dnsEnabled()
		}
	}
	if e.nets != nil {
		if err := e.publishPorts(c, e.endpoints(c)); err != nil {
			return err
		}
	}
	links, err := e.legacyLinks(c)
	if err != nil {
		return err
	}
	return writeEtcFiles(c, addrs, internalDNS, linkHosts(links)...)
}

// rewriteHosts regenerates the /etc/hosts of c (locked, running) after
// its links changed; links that no longer resolve are left out.
func (e *Engine) rewriteHosts(c *container.Container) error {
	var addrs []netip.Addr
	if refs := e.endpoints(c); len(refs) > 0 && refs[0].br != nil {
		if a, err := netip.ParseAddr(refs[0].ep.IPAddress); err == nil {
			addrs = append(addrs, a)
		}
	}
	links, _ := e.legacyLinks(c)
	b, err := etcHosts(c, addrs, linkHosts(links))
	if err != nil {
		return err
	}
	// In place: the running container has the file bind-mounted, and a
	// renamed-over file would not be seen.
	return os.WriteFile(c.HostsPath, b, 0o644)
}

// allocateEndpoint gives endpoint r of c its address, MAC and IDs.
func (e *Engine) allocateEndpoint(c *container.Container, r epRef) error {
	n, ep := e.nets, r.ep
	var want netip.Addr
	if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address != "" {
		a, err := netip.ParseAddr(ep.IPAMConfig.IPv4Address)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid IPv4 address: %s", ep.IPAMConfig.IPv4Address))
		}
		want = a
	}
	p, err := n.ipam.Request(r.nw.ID, c.ID, 4, want)
	if err != nil {
		return err
	}
	if ep.MacAddress == "" {
		ep.MacAddress = ipam.MACFromIP(p.Addr()).String()
	}
	if ep.EndpointID == "" {
		var b [32]byte
		rand.Read(b[:])
		ep.EndpointID = hex.EncodeToString(b[:])
	}
	ep.NetworkID = r.nw.ID
	ep.Gateway = r.br.gateway.String()
	ep.IPAddress = p.Addr().String()
	ep.IPPrefixLen = p.Bits()
	if r.nw.ID != n.bridgeID {
		names := []string{strings.TrimPrefix(c.Name, "/")}
		for _, a := range ep.Aliases {
			if !slices.Contains(names, a) {
				names = append(names, a)
			}
		}
		if !slices.Contains(names, c.ID[:12]) {
			names = append(names, c.ID[:12])
		}
		ep.DNSNames = names
	}
	if r.nw.ID == n.bridgeID {
		ns := c.NetworkSettings
		ns.EndpointID, ns.Gateway, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.MacAddress
	}
	return nil
}

// writeEtcFiles writes the container's /etc/hosts and /etc/resolv.conf
// through etcfiles, as dockerd generates them, with the entries of its
// legacy links.
func writeEtcFiles(c *container.Container, addrs []netip.Addr, internalDNS bool, links ...etcfiles.Host) error {
	hosts, err := etcHosts(c, addrs, links)
	if err != nil {
		return err
	}
	if err := writeIfChanged(c.HostsPath, hosts); err != nil {
		return err
	}
	return writeResolvConf(c, internalDNS)
}

// etcHosts is the content of c's /etc/hosts.
func etcHosts(c *container.Container, addrs []netip.Addr, links []etcfiles.Host) ([]byte, error) {
	cfg, hc := c.Config, c.HostConfig
	var hosts []byte
	var extra []etcfiles.Host
	for _, h := range hc.ExtraHosts {
		hs, err := etcfiles.ParseExtraHost(h, nil)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		extra = append(extra, hs...)
	}
	if hc.NetworkMode == network.NameHost {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		hosts = b
		for _, x := range extra {
			hosts = fmt.Appendf(hosts, "%s\t%s\n", x.IP, x.Names)
		}
	} else {
		hosts = etcfiles.Hosts(etcfiles.HostsOptions{Hostname: cfg.Hostname, Domainname: cfg.Domainname, Addrs: addrs, Extra: extra, Links: links})
	}
	return hosts, nil
}

// writeResolvConf writes c's /etc/resolv.conf.
func writeResolvConf(c *container.Container, internalDNS bool) error {
	hc := c.HostConfig
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	o := etcfiles.ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: etcfiles.Legacy, Search: hc.DNSSearch, Options: hc.DNSOptions}
	switch {
	case hc.NetworkMode == network.NameHost:
		o.Mode = etcfiles.HostNetwork
	case internalDNS:
		o.Mode = etcfiles.Internal
	}
	for _, s := range hc.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("%s is not an ip address", s))
		}
		o.DNS = append(o.DNS, a)
	}
	return writeIfChanged(c.ResolvConfPath, etcfiles.ResolvConf(o).Content)
}

// writeIfChanged replaces the file at path with b unless it holds b
// already: every start regenerates the files, and most starts change
// nothing. Without fsyncs: the next start writes them again.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return atomicfile.Replace(path, b, 0o644)
}

// wireNetwork runs between the container's init being ready and its go:
// it brings up loopback and gives the container an interface on each of
// its bridge networks (eth0, eth1...), the default route through the
// first one that is not internal.
func (e *Engine) wireNetwork(c *container.Container, pid int) error {
	refs := e.endpoints(c)
	if len(refs) == 0 || refs[0].br == nil {
		if len(refs) == 0 || refs[0].nw.Driver != network.DriverBridge {
			return loopbackUp(pid)
		}
	}
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the container's network namespace: %w", err)
	}
	defer syscall.Close(nsfd)
	// One thread joins the namespace for both the netlink socket and the
	// DNS server's sockets.
	var ctr *netlink.Handle
	var dnsSocks *ctrDNS
	if err := netlink.Do(nsfd, func() (err error) {
		if ctr, err = netlink.Open(netlink.Self); err != nil {
			return err
		}
		// Loopback first: 127.0.0.11 is bound on it.
		lo, err := ctr.LinkByName("lo")
		if err == nil {
			err = ctr.SetUp(lo.Index)
		}
		if err != nil {
			ctr.Close()
			return err
		}
		if e.usesDNS(refs) {
			if dnsSocks, err = listenDNS(); err != nil {
				ctr.Close()
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	defer ctr.Close()
	served := false
	defer func() {
		if dnsSocks != nil && !served {
			dnsSocks.close()
		}
	}()
	routed := false
	i := 0
	for _, r := range refs {
		if r.br == nil {
			continue
		}
		route := !routed && !r.br.internal
		if err := e.attachEndpoint(nsfd, ctr, fmt.Sprintf("eth%d", i), r, route); err != nil {
			return err
		}
		routed = routed || route
		i++
	}
	if dnsSocks == nil {
		return nil
	}
	served = true // serveDNS closes them on error
	return e.serveDNS(c, refs, dnsSocks)
}

// attachEndpoint creates the veth pair of endpoint r with the peer named
// ifname in the container's namespace nsfd, and configures it.
func (e *Engine) attachEndpoint(nsfd int, ctr *netlink.Handle, ifname string, r epRef, route bool) error {
	n, ep := e.nets, r.ep
	addr, err := netip.ParseAddr(ep.IPAddress)
	if err != nil {
		return fmt.Errorf("endpoint on %s has no address", r.nw.Name)
	}
	mac, err := net.ParseMAC(ep.MacAddress)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", ep.MacAddress))
	}
	var b [6]byte
	rand.Read(b[:])
	name := "skv" + hex.EncodeToString(b[:])
	if _, err := n.host.AddVeth(netlink.Veth{Name: name, PeerName: ifname, PeerNS: nsfd, MTU: r.br.mtu,
		MasterIndex: r.br.index, Up: true, PeerHardwareAddr: mac}); err != nil {
		return fmt.Errorf("create the container's veth pair: %w", err)
	}
	err = func() error {
		l, err := ctr.LinkByName(ifname)
		if err != nil {
			return err
		}
		if err := ctr.AddAddr(l.Index, netip.PrefixFrom(addr, ep.IPPrefixLen)); err != nil {
			return err
		}
		if err := ctr.SetUp(l.Index); err != nil {
			return err
		}
		if route {
			return ctr.AddDefaultRoute(r.br.gateway, l.Index)
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("configure the container's %s: %w", ifname, err)
	}
	return nil
}

// clearEndpoint forgets an endpoint's run-time addresses, as dockerd shows
// a stopped container.
func clearEndpoint(ep *types.EndpointSettings, requestedMAC bool) {
	ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.DNSNames = "", "", "", 0, nil
	if !requestedMAC {
		ep.MacAddress = ""
	}
}

// releaseNetwork gives back the container's addresses when it stops (its
// veths went with its network namespace) and clears what inspect shows.
func (e *Engine) releaseNetwork(c *container.Container) {
	if e.nets == nil || c.NetworkSettings == nil {
		return
	}
	e.stopDNS(c.ID)
	e.unpublishPorts(c)
	for _, ep := range c.NetworkSettings.Networks {
		if ep == nil || ep.NetworkID == "" {
			continue
		}
		if err := e.nets.ipam.Release(ep.NetworkID, c.ID); err != nil {
			e.logger.Warn("releasing a container's address", "container", c.ID, "error", err)
		}
		clearEndpoint(ep, ep.MacAddress != "" && ep.IPAddress == "")
	}
	ns := c.NetworkSettings
	ns.EndpointID, ns.Gateway, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = "", "", "", 0, ""
}

// reconcileNetworks frees, after the restore, the addresses whose owner is
// no longer a running container: a daemon killed between a container's
// exit and the release left them allocated.
func (e *Engine) reconcileNetworks() {
	n := e.nets
	if n == nil {
		return
	}
	running := map[string]bool{}
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running || c.State.Restarting {
			running[c.ID] = true
		}
		c.Unlock()
	}
	for _, nw := range n.store.List() {
		for _, owner := range n.ipam.Owners(nw.ID) {
			if owner == "gateway" || owner == "aux" || running[owner] {
				continue
			}
			if err := n.ipam.Release(nw.ID, owner); err != nil {
				e.logger.Warn("releasing a stale address", "owner", owner, "error", err)
			}
		}
	}
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running {
			e.restorePorts(c, e.endpoints(c))
		}
		c.Unlock()
	}
	if err := n.rebuildRules(); err != nil {
		e.logger.Warn("rebuilding nf_tables rules", "error", err)
	}
	e.restoreDNS()
}

// networkWarnings are networking's /info warnings.
func (e *Engine) networkWarnings() []string {
	if e.nets == nil {
		return []string{"WARNING: bridge networking is off (--bridge=none): containers of the default network get a namespace with loopback only, ports cannot be published and the network endpoints find no network"}
	}
	return e.nets.warnings
}
