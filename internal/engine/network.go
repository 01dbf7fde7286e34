package engine

import (
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
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/netlink"
	"skiffd/internal/network"
	"skiffd/internal/network/etcfiles"
	"skiffd/internal/network/ipam"
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
}

// networking is the engine's network state: the stores and the host's
// bridge and rules.
type networking struct {
	opts  NetworkOptions
	store *network.Store
	ipam  *ipam.Store
	host  *netlink.Handle
	nft   *netlink.NFT

	bridgeID string
	brIndex  int
	subnet   netip.Prefix
	gateway  netip.Addr
	mtu      int
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
	n := &networking{opts: o, store: store, ipam: ipams, host: host, mtu: o.MTU}
	if err := n.setupBridge(); err != nil {
		host.Close()
		return fmt.Errorf("default bridge network on %s: %w", o.Bridge, err)
	}
	if o.IPForward {
		if v, err := netlink.Sysctl(netlink.Self, "net/ipv4/ip_forward"); err == nil && v != "1" {
			if err := netlink.SetSysctl(netlink.Self, "net/ipv4/ip_forward", "1"); err != nil {
				e.logger.Warn("enabling IP forwarding", "error", err)
			}
		}
	}
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
		if addrs, err := n.host.Addrs(link.Index, 4); err == nil && len(addrs) > 0 {
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
		if subnet, err = ipam.PickSubnet(ipam.DefaultPools(), 4, used, reserved); err != nil {
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
	n.subnet, n.gateway = subnet, gw
	if link == nil {
		if link, err = n.host.AddBridge(o.Bridge, o.MTU); err != nil && !netlink.IsExist(err) {
			return err
		} else if err != nil {
			if link, err = n.host.LinkByName(o.Bridge); err != nil {
				return err
			}
		}
	}
	n.brIndex = link.Index
	addrs, err := n.host.Addrs(link.Index, 4)
	if err != nil {
		return err
	}
	want := netip.PrefixFrom(gw, subnet.Bits())
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.Prefix == want }) {
		if err := n.host.AddAddr(link.Index, want); err != nil && !netlink.IsExist(err) {
			return err
		}
	}
	return n.host.SetUp(link.Index)
}

// hostPrefixes are the host's routes (other than default routes), which
// a picked subnet must not overlap, as dockerd's reserved networks.
func (n *networking) hostPrefixes() ([]netip.Prefix, error) {
	routes, err := n.host.Routes(4)
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

// setupRules rebuilds skiffd's table from scratch in one atomic batch:
// outbound masquerade for the default bridge's subnet. Deleting the table
// first makes a restart after kill -9 idempotent.
func (n *networking) setupRules() error {
	nft, err := netlink.OpenNFT(netlink.Self, n.opts.NFTable)
	if err != nil {
		return err
	}
	b := nft.Batch()
	tables, err := nft.Tables(netlink.FamilyIP)
	if err != nil {
		nft.Close()
		return err
	}
	if slices.Contains(tables, n.opts.NFTable) {
		b.DelTable(netlink.FamilyIP)
	}
	b.AddTable(netlink.FamilyIP)
	b.AddChain(netlink.FamilyIP, "postrouting", &netlink.Hook{
		Num: netlink.HookPostrouting, Priority: netlink.PrioritySrcNAT, Type: "nat", Policy: netlink.PolicyAccept})
	b.AddRule(netlink.FamilyIP, "postrouting", []byte("net:"+n.bridgeID), netlink.R(
		netlink.SrcNet(n.subnet, netlink.CmpEq),
		netlink.Oifname(n.opts.Bridge, netlink.CmpNeq),
		[]netlink.Expr{netlink.Masquerade()})...)
	if err := nft.Commit(b); err != nil {
		nft.Close()
		return err
	}
	n.nft = nft
	return nil
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

// onDefaultBridge reports whether c's network is the default bridge
// network that this engine wires.
func (e *Engine) onDefaultBridge(c *container.Container) bool {
	switch c.HostConfig.NetworkMode {
	case "", "default", network.NameBridge:
		return e.nets != nil
	}
	return false
}

// requestedEndpoint is what the client asked for the default bridge
// (EndpointsConfig or the deprecated Config.MacAddress).
func requestedEndpoint(c *container.Container) *types.EndpointSettings {
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[network.NameBridge]; ep != nil {
			return ep
		}
	}
	return &types.EndpointSettings{}
}

// prepareNetwork runs before the container's process exists: it allocates
// the container's address on the default bridge (the same one again for
// an owner that holds one) and writes its /etc/hosts and resolv.conf.
func (e *Engine) prepareNetwork(c *container.Container) error {
	var addrs []netip.Addr
	if e.onDefaultBridge(c) {
		n := e.nets
		ep := requestedEndpoint(c)
		var want netip.Addr
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address != "" {
			a, err := netip.ParseAddr(ep.IPAMConfig.IPv4Address)
			if err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("invalid IPv4 address: %s", ep.IPAMConfig.IPv4Address))
			}
			want = a
		}
		p, err := n.ipam.Request(n.bridgeID, c.ID, 4, want)
		if err != nil {
			return err
		}
		mac := ep.MacAddress
		if mac == "" {
			mac = ipam.MACFromIP(p.Addr()).String()
		}
		if ep.EndpointID == "" {
			var b [32]byte
			rand.Read(b[:])
			ep.EndpointID = hex.EncodeToString(b[:])
		}
		ep.NetworkID = n.bridgeID
		ep.Gateway = n.gateway.String()
		ep.IPAddress = p.Addr().String()
		ep.IPPrefixLen = p.Bits()
		ep.MacAddress = mac
		ns := c.NetworkSettings
		if ns == nil {
			ns = newNetworkSettings(c.HostConfig.NetworkMode)
			c.NetworkSettings = ns
		}
		ns.Networks[network.NameBridge] = ep
		ns.Bridge = ""
		ns.EndpointID, ns.Gateway, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.MacAddress
		addrs = append(addrs, p.Addr())
	}
	return writeEtcFiles(c, addrs)
}

// writeEtcFiles writes the container's /etc/hosts and /etc/resolv.conf
// through etcfiles, as dockerd generates them.
func writeEtcFiles(c *container.Container, addrs []netip.Addr) error {
	cfg, hc := c.Config, c.HostConfig
	var hosts []byte
	if hc.NetworkMode == network.NameHost {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		hosts = b
		for _, h := range hc.ExtraHosts {
			hs, err := etcfiles.ParseExtraHost(h, nil)
			if err != nil {
				return errdefs.InvalidParameter(err)
			}
			for _, x := range hs {
				hosts = fmt.Appendf(hosts, "%s\t%s\n", x.IP, x.Names)
			}
		}
	} else {
		var extra []etcfiles.Host
		for _, h := range hc.ExtraHosts {
			hs, err := etcfiles.ParseExtraHost(h, nil)
			if err != nil {
				return errdefs.InvalidParameter(err)
			}
			extra = append(extra, hs...)
		}
		hosts = etcfiles.Hosts(etcfiles.HostsOptions{Hostname: cfg.Hostname, Domainname: cfg.Domainname, Addrs: addrs, Extra: extra})
	}
	if err := atomicfile.WriteFile(c.HostsPath, hosts, 0o644); err != nil {
		return err
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	o := etcfiles.ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: etcfiles.Legacy, Search: hc.DNSSearch, Options: hc.DNSOptions}
	if hc.NetworkMode == network.NameHost {
		o.Mode = etcfiles.HostNetwork
	}
	for _, s := range hc.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("%s is not an ip address", s))
		}
		o.DNS = append(o.DNS, a)
	}
	return atomicfile.WriteFile(c.ResolvConfPath, etcfiles.ResolvConf(o).Content, 0o644)
}

// wireNetwork runs between the container's init being ready and its go:
// it brings up loopback and, on the default bridge, creates the veth pair
// with eth0 (address, MAC, MTU) inside the container and the default
// route through the bridge's gateway.
func (e *Engine) wireNetwork(c *container.Container, pid int) error {
	if !e.onDefaultBridge(c) {
		return loopbackUp(pid)
	}
	n := e.nets
	ep := c.NetworkSettings.Networks[network.NameBridge]
	addr, err := netip.ParseAddr(ep.IPAddress)
	if err != nil {
		return fmt.Errorf("container %s has no address on the default bridge", c.ID)
	}
	mac, err := net.ParseMAC(ep.MacAddress)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", ep.MacAddress))
	}
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the container's network namespace: %w", err)
	}
	defer syscall.Close(nsfd)
	var b [6]byte
	rand.Read(b[:])
	name := "skv" + hex.EncodeToString(b[:])
	if _, err := n.host.AddVeth(netlink.Veth{Name: name, PeerName: "eth0", PeerNS: nsfd, MTU: n.mtu,
		MasterIndex: n.brIndex, Up: true, PeerHardwareAddr: mac}); err != nil {
		return fmt.Errorf("create the container's veth pair: %w", err)
	}
	ctr, err := netlink.Open(nsfd)
	if err != nil {
		return err
	}
	defer ctr.Close()
	err = func() error {
		lo, err := ctr.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := ctr.SetUp(lo.Index); err != nil {
			return err
		}
		eth0, err := ctr.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := ctr.AddAddr(eth0.Index, netip.PrefixFrom(addr, ep.IPPrefixLen)); err != nil {
			return err
		}
		if err := ctr.SetUp(eth0.Index); err != nil {
			return err
		}
		return ctr.AddDefaultRoute(n.gateway, eth0.Index)
	}()
	if err != nil {
		return fmt.Errorf("configure the container's eth0: %w", err)
	}
	return nil
}

// releaseNetwork gives back the container's address when it stops (its
// veth went with its network namespace) and clears the addresses that
// inspect shows, as dockerd does for a stopped container.
func (e *Engine) releaseNetwork(c *container.Container) {
	if e.nets == nil {
		return
	}
	if err := e.nets.ipam.Release(e.nets.bridgeID, c.ID); err != nil {
		e.logger.Warn("releasing a container's address", "container", c.ID, "error", err)
	}
	ns := c.NetworkSettings
	if ns == nil {
		return
	}
	if ep := ns.Networks[network.NameBridge]; ep != nil {
		ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen = "", "", "", 0
		if ep.IPAMConfig == nil {
			ep.MacAddress = ""
		}
	}
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
	for _, owner := range n.ipam.Owners(n.bridgeID) {
		if owner == "gateway" || owner == "aux" || running[owner] || strings.HasPrefix(owner, "aux:") {
			continue
		}
		if err := n.ipam.Release(n.bridgeID, owner); err != nil {
			e.logger.Warn("releasing a stale address", "owner", owner, "error", err)
		}
	}
}

// networkWarnings are networking's /info warnings.
func (e *Engine) networkWarnings() []string {
	if e.nets == nil {
		return nil
	}
	return e.nets.warnings
}
