package engine

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/netlink"
	"skiffd/internal/network"
	"skiffd/internal/network/ipam"
	"skiffd/internal/network/portalloc"
)

// NetworkOptions configures bridge networking (issue 14). The zero value
// (no Bridge) turns networking off: containers on the default network
// get a loopback interface only and there are no networks, which is what
// the engine's unit tests want.
type NetworkOptions struct {
	// Bridge is the host bridge of the default network, created if
	// missing; NoBridge (dockerd's --bridge=none) is a daemon without the
	// default network, whose user-defined networks work as ever.
	Bridge string
	// BIP is the bridge's address with its prefix length (--bip); empty
	// keeps the recorded subnet or picks a free one.
	BIP string
	// FixedCIDR is where containers' addresses come from (--fixed-cidr).
	FixedCIDR string
	// IPv6 gives the default network IPv6 too (--ipv6): the subnet
	// FixedCIDRv6 (--fixed-cidr-v6), or else one from the IPv6 pools.
	IPv6        bool
	FixedCIDRv6 string
	MTU         int
	// IPTables keeps NAT rules in skiffd's own nf_tables table NFTable;
	// no other table is ever changed.
	IPTables bool
	NFTable  string
	// IPForward turns on net.ipv4.ip_forward when it is off, and IPv6
	// forwarding once an IPv6 network exists.
	IPForward bool
	// NoICC and NoIPMasq are dockerd's --icc=false and --ip-masq=false
	// for the default network: its containers cannot reach each other,
	// its outbound traffic is not NATed.
	NoICC, NoIPMasq bool
	// DefaultBindingIP is dockerd's --ip: where ports published without
	// a host address go on networks without host_binding_ipv4; invalid
	// (the zero Addr) is every address.
	DefaultBindingIP netip.Addr
	// ReservedTCP are the daemon's own TCP API addresses, which no
	// container may publish on.
	ReservedTCP []netip.AddrPort
	// DefaultAddressPools (--default-address-pools, "base=CIDR,size=N"
	// each) replace dockerd's default pools for networks without a subnet.
	DefaultAddressPools []string
	// HostGatewayIPs are what "host-gateway" in ExtraHosts stands for
	// (--host-gateway-ip); empty means the default bridge's gateways.
	HostGatewayIPs []netip.Addr
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
	// unrecorded holds, from the restore to reconcileNetworks, the
	// running containers whose start was not recorded (recoverNetwork):
	// their ports are published anew, not replayed from the record.
	unrecorded map[string]bool
	mtu        int
	// pools are where networks without a subnet get one.
	pools []ipam.Pool
	// gateways are the default bridge's gateway addresses, IPv4 first.
	gateways []netip.Addr
	// warnings are shown by /info (a firewall dropping forwarded traffic).
	warnings []string
	// forward4 and forward6 are set once IPv4 and IPv6 forwarding were
	// checked (mu guards them).
	forward4, forward6 bool
	logger             *slog.Logger

	// rulesMu serialises the changes of the nf_tables table (rules.go)
	// and guards handles, the rules in the table by owner tag. Lock
	// order: rulesMu, then mu.
	rulesMu sync.Mutex
	handles map[string][]netlink.Rule
	// tableUp is whether the table exists (rulesMu guards it): not while
	// there is nothing to hold, which only a daemon without a default
	// bridge sees.
	tableUp bool
	// families are those of skiffd's table (one table per family).
	families []netlink.Family
}

// NoBridge as NetworkOptions.Bridge leaves the daemon without a default
// bridge network, as dockerd's --bridge=none.
const NoBridge = "none"

// openNetworking sets up the default bridge network: its record and
// address allocations, the host bridge with the gateway address and, with
// IPTables, skiffd's nf_tables table rebuilt from the records; and the
// bridges of the user-defined networks.
func (e *Engine) openNetworking() error {
	o := e.opts.Network
	if o.Bridge == "" {
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
	// As dockerd: without a configured IPv6 pool, IPv6 subnets come from
	// a /48 unique local prefix derived from the engine ID.
	if !slices.ContainsFunc(pools, func(p ipam.Pool) bool { return p.Base.Addr().Is6() && !p.Base.Addr().Is4In6() }) {
		pools = append(pools, ipam.ULAPool(e.id))
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
	n := &networking{opts: o, store: store, ipam: ipams, host: host, mtu: o.MTU, pools: pools, bridges: map[string]*bridgeNet{}, dns: map[string]*ctrDNS{}, published: map[string][]published{},
		handles: map[string][]netlink.Rule{}, families: []netlink.Family{netlink.FamilyIP}, logger: e.logger}
	if n.ports, err = portalloc.New(portalloc.Config{Probe: portalloc.CheckFree}); err != nil {
		host.Close()
		return err
	}
	for _, ap := range o.ReservedTCP {
		n.ports.Reserve(ap.Addr(), "tcp", ap.Port())
	}
	if o.Bridge == NoBridge {
		err = n.dropDefaultBridge()
	} else {
		err = n.setupBridge()
	}
	if err != nil {
		host.Close()
		return fmt.Errorf("default bridge network on %s: %w", o.Bridge, err)
	}
	for _, nw := range store.List() {
		if nw.Driver != network.DriverBridge && nw.Driver != network.DriverMacvlan || nw.ID == n.bridgeID {
			continue
		}
		if _, err := n.ensureBridge(nw); err != nil {
			e.logger.Warn("setting up a network's bridge", "network", nw.Name, "error", err)
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
			on, of := "bridge "+o.Bridge, o.Bridge
			if o.Bridge == NoBridge {
				on, of = "user-defined networks", "their bridges"
			}
			for _, c := range drops {
				w := fmt.Sprintf("WARNING: the %s chain %q of nf_tables table %q drops forwarded packets by policy: containers on %s cannot reach other networks. Accept traffic of %s in that chain, or set its policy to accept", c.Family, c.Name, c.Table, on, of)
				n.warnings = append(n.warnings, w)
				e.logger.Warn(w)
			}
		}
	}
	e.nets = n
	return nil
}

// hostGatewayIPs are what "host-gateway" in a container's ExtraHosts
// stands for: the configured addresses, else the default bridge's
// gateways, as in dockerd; none with bridge networking off and nothing
// configured.
func (e *Engine) hostGatewayIPs() []netip.Addr {
	if gw := e.opts.Network.HostGatewayIPs; len(gw) > 0 {
		return gw
	}
	if e.nets == nil {
		return nil
	}
	return e.nets.gateways
}

// dropDefaultBridge records the networks host and none only, and removes
// the record and addresses of a default network from a daemon started
// with one before, as dockerd does: its containers get loopback only
// (dockerd's NetworkDisabled). The host bridge stays, since skiffd may
// have adopted it rather than made it.
func (n *networking) dropDefaultBridge() error {
	if _, err := n.store.EnsureHostAndNone(); err != nil {
		return err
	}
	old, ok, err := n.store.DropDefaultBridge()
	if err != nil || !ok {
		return err
	}
	n.logger.Info("removed the default bridge network (--bridge=none)", "network", old.ID, "bridge", old.Options[network.OptBridgeName])
	return n.ipam.Delete(old.ID)
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
		if subnet, err = n.pickSubnet(4, network.NameBridge); err != nil {
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
	ranges := []ipam.Range{r}
	n.gateways = []netip.Addr{gw}
	if o.IPv6 {
		r6, err := n.defaultBridgeIPv6()
		if err != nil {
			return err
		}
		ranges = append(ranges, r6)
		n.gateways = append(n.gateways, r6.Gateway)
	}
	rec := network.Network{
		EnableIPv4: true,
		EnableIPv6: o.IPv6,
		Options: map[string]string{
			network.OptDefaultBridge:   "true",
			network.OptEnableICC:       strconv.FormatBool(!o.NoICC),
			network.OptEnableIPMasq:    strconv.FormatBool(!o.NoIPMasq),
			network.OptHostBindingIPv4: defaultBinding(o.DefaultBindingIP),
			network.OptBridgeName:      o.Bridge,
			network.OptMTU:             strconv.Itoa(o.MTU),
		},
	}
	rec.IPAM.SetRanges(ranges)
	nets, err := n.store.EnsurePredefined(rec)
	if err != nil {
		return err
	}
	n.bridgeID = nets[network.NameBridge].ID
	got, err := n.ipam.Create(n.bridgeID, network.NameBridge, ranges)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(got, ranges, func(a, b ipam.Range) bool {
		return a.Subnet == b.Subnet && a.Gateway == b.Gateway && a.IPRange == b.IPRange
	}) {
		// --bip, --fixed-cidr, --ipv6 or --fixed-cidr-v6 changed: the
		// old allocations are void (the containers that held them get
		// new ones at their start).
		if err := n.ipam.Delete(n.bridgeID); err != nil {
			return err
		}
		if _, err := n.ipam.Create(n.bridgeID, network.NameBridge, ranges); err != nil {
			return err
		}
	}
	_, err = n.ensureBridge(nets[network.NameBridge])
	return err
}

// defaultBridgeIPv6 is the IPv6 range of the default network with
// --ipv6: --fixed-cidr-v6, else the subnet it had, else a free one of the
// IPv6 pools (dockerd 27+ no longer requires --fixed-cidr-v6). The
// gateway is the subnet's first address.
func (n *networking) defaultBridgeIPv6() (ipam.Range, error) {
	if v := n.opts.FixedCIDRv6; v != "" {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
			return ipam.Range{}, errdefs.InvalidParameter(fmt.Errorf("invalid fixed-cidr-v6 %q", v))
		}
		p = p.Masked()
		return ipam.Range{Subnet: p, Gateway: p.Addr().Next()}, nil
	}
	if cur, err := n.store.Find(network.NameBridge); err == nil {
		for _, c := range cur.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is6() {
				gw, err := netip.ParseAddr(c.Gateway)
				if err != nil {
					gw = p.Addr().Next()
				}
				return ipam.Range{Subnet: p, Gateway: gw}, nil
			}
		}
	}
	p, err := n.pickSubnet(6, network.NameBridge)
	if err != nil {
		return ipam.Range{}, err
	}
	return ipam.Range{Subnet: p, Gateway: p.Addr().Next()}, nil
}

// pickSubnet picks a free subnet of family (4 or 6) from the pools: one
// that no network but skip (a name) uses and no host route covers.
func (n *networking) pickSubnet(family int, skip string) (netip.Prefix, error) {
	var used []netip.Prefix
	for _, nw := range n.store.List() {
		if nw.Name == skip {
			continue
		}
		for _, c := range nw.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, p)
			}
		}
	}
	reserved, err := n.hostPrefixes(family)
	if err != nil {
		return netip.Prefix{}, err
	}
	return ipam.PickSubnet(n.pools, family, used, reserved)
}

// bridgeNet is the host side of a bridge network: its IPv4 subnet and
// gateway, and for an IPv6 network its IPv6 ones.
type bridgeNet struct {
	id, name string // network ID, host bridge interface
	index    int
	subnet   netip.Prefix
	gateway  netip.Addr
	subnet6  netip.Prefix
	gateway6 netip.Addr
	internal bool
	mtu      int
	// isolate keeps its containers from reaching each other
	// (enable_icc=false: isolated bridge ports); noMasquerade leaves
	// their outbound traffic un-NATed (enable_ip_masquerade=false).
	isolate, noMasquerade bool
	// hostBinding is where ports published without a host address go
	// (host_binding_ipv4, else the daemon's --ip); unset or 0.0.0.0 is
	// every address.
	hostBinding netip.Addr
	// macvlan marks a macvlan network (macvlan.go): name and index are
	// then its parent interface's, mode its macvlan mode, and it has no
	// bridge, rules or published ports.
	macvlan bool
	mode    uint32
}

// defaultBinding is the default network's host_binding_ipv4: the
// daemon's --ip, 0.0.0.0 without one.
func defaultBinding(a netip.Addr) string {
	if !a.IsValid() {
		return "0.0.0.0"
	}
	return a.String()
}

// optionFalse reports whether a network's boolean driver option is set
// to false (unset means true, as dockerd's defaults are).
func optionFalse(opts map[string]string, key string) bool {
	v, ok := opts[key]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && !b
}

// ensureBridge creates (or adopts) the host bridge of network nw with its
// gateway address, up, and records it.
func (n *networking) ensureBridge(nw network.Network) (*bridgeNet, error) {
	if nw.Driver == network.DriverMacvlan {
		return n.ensureMacvlan(nw)
	}
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
	bn := &bridgeNet{id: nw.ID, name: name, index: link.Index, internal: nw.Internal, mtu: mtu,
		isolate: optionFalse(nw.Options, network.OptEnableICC), noMasquerade: optionFalse(nw.Options, network.OptEnableIPMasq),
		hostBinding: n.opts.DefaultBindingIP}
	if v := nw.Options[network.OptHostBindingIPv4]; v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("network %s: %s: %w", nw.Name, network.OptHostBindingIPv4, err)
		}
		bn.hostBinding = a
	}
	// The ports already there (a daemon restarted with another --icc,
	// containers that kept running) follow the network's setting.
	if links, err := n.host.Links(); err == nil {
		for _, l := range links {
			if l.MasterIndex == link.Index && l.Kind == "veth" && strings.HasPrefix(l.Name, vethPrefix) {
				// A port gone since the listing (its container exited
				// meanwhile) needs nothing.
				if err := n.host.SetPortIsolated(l.Index, bn.isolate); err != nil && !netlink.IsNotFound(err) {
					return nil, fmt.Errorf("set the isolation of %s on bridge %s: %w", l.Name, name, err)
				}
			}
		}
	}
	for _, r := range ranges {
		switch {
		case !r.Gateway.IsValid():
		case r.Subnet.Addr().Is4() && !bn.subnet.IsValid():
			bn.subnet, bn.gateway = r.Subnet, r.Gateway
		case r.Subnet.Addr().Is6() && nw.EnableIPv6 && !bn.subnet6.IsValid():
			bn.subnet6, bn.gateway6 = r.Subnet, r.Gateway
		}
	}
	if bn.subnet6.IsValid() {
		if err := n.enableIPv6(name); err != nil {
			return nil, err
		}
	}
	addrs, err := n.host.Addrs(link.Index, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		if !r.Gateway.IsValid() || (r.Subnet.Addr().Is6() && !nw.EnableIPv6) {
			continue
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
	forward := !n.forward4
	n.forward4 = true
	n.mu.Unlock()
	if forward && n.opts.IPForward {
		// With the first bridge: a daemon without one (--bridge=none,
		// no networks) leaves the host's forwarding as it is.
		if v, err := netlink.Sysctl(netlink.Self, "net/ipv4/ip_forward"); err == nil && v != "1" {
			if err := netlink.SetSysctl(netlink.Self, "net/ipv4/ip_forward", "1"); err != nil {
				n.logger.Warn("enabling IP forwarding", "error", err)
			}
		}
	}
	return bn, nil
}

// enableIPv6 turns IPv6 on for bridge name (the host may default to it
// off), and, with IPForward, IPv6 forwarding for the whole host once: as
// dockerd, only when an IPv6 network exists, since forwarding also makes
// the host ignore router advertisements.
func (n *networking) enableIPv6(name string) error {
	key := "net/ipv6/conf/" + name + "/disable_ipv6"
	if v, err := netlink.Sysctl(netlink.Self, key); err != nil {
		return fmt.Errorf("IPv6 on bridge %s: %w", name, err)
	} else if v != "0" {
		if err := netlink.SetSysctl(netlink.Self, key, "0"); err != nil {
			return fmt.Errorf("enable IPv6 on bridge %s: %w", name, err)
		}
	}
	n.mu.Lock()
	done := n.forward6
	n.forward6 = true
	n.mu.Unlock()
	if done || !n.opts.IPForward {
		return nil
	}
	for _, key := range []string{"net/ipv6/conf/default/forwarding", "net/ipv6/conf/all/forwarding"} {
		if v, err := netlink.Sysctl(netlink.Self, key); err == nil && v != "1" {
			if err := netlink.SetSysctl(netlink.Self, key, "1"); err != nil {
				n.logger.Warn("enabling IPv6 forwarding", "sysctl", key, "error", err)
				continue
			}
			n.logger.Info("enabled IPv6 forwarding for IPv6 networks", "sysctl", key)
		}
	}
	return nil
}

// bridge returns the host side of network id, nil if it has none.
func (n *networking) bridge(id string) *bridgeNet {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bridges[id]
}

// hostPrefixes are the host's routes of family 4 or 6 (other than
// default, link-local and multicast routes), which a picked subnet must
// not overlap, as dockerd's reserved networks.
func (n *networking) hostPrefixes(family int) ([]netip.Prefix, error) {
	fam := syscall.AF_INET
	if family == 6 {
		fam = syscall.AF_INET6
	}
	routes, err := n.host.Routes(fam)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst.IsValid() && !r.IsDefault() && !r.Dst.Addr().IsLoopback() && !r.Dst.Addr().IsMulticast() && !r.Dst.Addr().IsLinkLocalUnicast() {
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
	if n.need6() {
		n.families = append(n.families, netlink.FamilyIP6)
	}
	return n.rebuildRules()
}

// closeNetworking releases the netlink sockets; the bridge and rules stay
// for the running containers and the next daemon.
func (e *Engine) closeNetworking() {
	if n := e.nets; n != nil {
		n.mu.Lock()
		for _, pubs := range n.published {
			stopProxies(pubs)
		}
		n.mu.Unlock()
		n.host.Close()
		if n.nft != nil {
			n.nft.Close()
		}
	}
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
	n.mu.Lock()
	unrecorded := n.unrecorded
	n.unrecorded = nil
	n.mu.Unlock()
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running && !unrecorded[c.ID] {
			e.restorePorts(c, e.endpoints(c))
		}
		c.Unlock()
	}
	// Those of the starts that were not recorded after the recorded ones
	// (openNetworking reserved them already), so that their random ports
	// do not take them.
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running && unrecorded[c.ID] {
			if err := e.publishPorts(c, e.endpoints(c)); err != nil {
				e.logger.Warn("publishing the ports of a container whose start was not recorded", "container", c.ID, "error", err)
			}
			e.saveOrRetry(c)
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
		return []string{"WARNING: networking is off: containers get a namespace with loopback only, ports cannot be published and there are no networks"}
	}
	return e.nets.warnings
}
