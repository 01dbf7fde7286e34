package engine

// This file: a container's endpoints, from its network settings at create
// to their release, its addresses, and the veths wired into its namespace.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/netlink"
	"skiffd/internal/network"
	"skiffd/internal/network/ipam"
	"skiffd/internal/network/portalloc"
)

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
	if e.nets == nil || (e.nets.bridgeID == "" && networkName(mode) == network.NameBridge) {
		if !predefined {
			return nil, network.NotFoundError(mode)
		}
		// As in dockerd, the host's network and none ignore them.
		if hasPortBindings(hc.PortBindings) && mode != network.NameHost && mode != network.NameNone {
			return nil, errdefs.InvalidParameter(errors.New("published ports (HostConfig.PortBindings) need bridge networking, which is off (--bridge=none)"))
		}
		// Without a default bridge, a container of the default network
		// has loopback only, whatever endpoints it asks for, as
		// dockerd's NetworkDisabled.
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
		ep.IPv6Gateway, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen = "", "", 0
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
		if nw.Driver == network.DriverBridge {
			if _, _, err := e.staticAddrs(nw.ID, ep.IPAMConfig); err != nil {
				return err
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
	t := time.Now()
	var addrs []netip.Addr
	internalDNS := false
	for i, r := range e.endpoints(c) {
		if r.br == nil && (r.nw.Driver == network.DriverBridge || r.nw.Driver == network.DriverMacvlan) {
			// Its host side could not be set up when the daemon
			// started (a macvlan parent that was missing): again,
			// and the start fails with the reason if it still
			// cannot be, rather than run without the network.
			br, err := e.nets.ensureBridge(r.nw)
			if err != nil {
				return err
			}
			r.br = br
		}
		if r.br == nil {
			continue
		}
		if err := e.allocateEndpoint(c, r); err != nil {
			return err
		}
		if i == 0 {
			addrs = endpointAddrs(r.ep)
			internalDNS = r.nw.ID != e.nets.bridgeID && e.dnsEnabled()
		}
	}
	t = e.span("net.allocate", t)
	if e.nets != nil {
		if err := e.publishPorts(c, e.endpoints(c)); err != nil {
			return err
		}
	}
	t = e.span("net.ports", t)
	links, err := e.legacyLinks(c)
	if err != nil {
		return err
	}
	defer e.span("net.etc-files", t)
	return e.writeEtcFiles(c, addrs, internalDNS, hostGateway{ips: e.hostGatewayIPs(), strict: true}, linkHosts(links)...)
}

// rewriteHosts regenerates the /etc/hosts of c (locked, running) after
// its links changed; links that no longer resolve are left out.
func (e *Engine) rewriteHosts(c *container.Container) error {
	var addrs []netip.Addr
	if refs := e.endpoints(c); len(refs) > 0 && refs[0].br != nil {
		addrs = endpointAddrs(refs[0].ep)
	}
	links, _ := e.legacyLinks(c)
	b, err := etcHosts(c, addrs, hostGateway{ips: e.hostGatewayIPs()}, linkHosts(links))
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
	want, want6, err := e.staticAddrs(r.nw.ID, ep.IPAMConfig)
	if err != nil {
		return err
	}
	p, err := n.ipam.Request(r.nw.ID, c.ID, 4, want)
	if err != nil {
		return err
	}
	var p6 netip.Prefix
	if r.br.subnet6.IsValid() {
		if p6, err = n.ipam.Request(r.nw.ID, c.ID, 6, want6); err != nil {
			return err
		}
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
	ep.Gateway = addrString(r.br.gateway)
	ep.IPAddress = p.Addr().String()
	ep.IPPrefixLen = p.Bits()
	ep.IPv6Gateway, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen = "", "", 0
	if p6.IsValid() {
		ep.IPv6Gateway = addrString(r.br.gateway6)
		ep.GlobalIPv6Address = p6.Addr().String()
		ep.GlobalIPv6PrefixLen = p6.Bits()
	}
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
		ns.IPv6Gateway, ns.GlobalIPv6Address, ns.GlobalIPv6PrefixLen = ep.IPv6Gateway, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen
	}
	return nil
}

// addrString is a as inspect shows it: "" when there is none (a macvlan
// network without a gateway).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// staticAddrs returns the addresses an endpoint's IPAMConfig asks for on
// network id (--ip, --ip6), checked as dockerd checks them at create and
// connect: of their family, and inside one of the network's subnets (an
// --ip6 on a network without IPv6 is in none).
func (e *Engine) staticAddrs(id string, cfg *types.EndpointIPAMConfig) (v4, v6 netip.Addr, err error) {
	if cfg == nil || (cfg.IPv4Address == "" && cfg.IPv6Address == "") {
		return v4, v6, nil
	}
	if cfg.IPv4Address != "" {
		if v4, err = netip.ParseAddr(cfg.IPv4Address); err != nil {
			return v4, v6, errdefs.InvalidParameter(fmt.Errorf("invalid IPv4 address: %s", cfg.IPv4Address))
		}
	}
	if cfg.IPv6Address != "" {
		if v6, err = netip.ParseAddr(cfg.IPv6Address); err != nil {
			return v4, v6, errdefs.InvalidParameter(fmt.Errorf("invalid IPv6 address: %s", cfg.IPv6Address))
		}
	}
	return v4.Unmap(), v6, ipam.ValidateStatic(e.nets.ipam.Ranges(id), v4, v6)
}

// endpointAddrs are the addresses of endpoint ep: IPv4, then IPv6 if it
// has one.
func endpointAddrs(ep *types.EndpointSettings) []netip.Addr {
	var out []netip.Addr
	for _, s := range []string{ep.IPAddress, ep.GlobalIPv6Address} {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
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
	t := time.Now()
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the container's network namespace: %w", err)
	}
	defer syscall.Close(nsfd)
	// One thread joins the namespace for the netlink socket, the DNS
	// server's sockets and the interfaces' IPv6 sysctls.
	var dnsSocks *ctrDNS
	if err := netlink.Do(nsfd, func() error {
		t = e.span("net.setns", t)
		ctr, err := netlink.Open(netlink.Self)
		if err != nil {
			return err
		}
		defer ctr.Close()
		// Loopback first: 127.0.0.11 is bound on it.
		if err := ctr.SetUp(netlink.LoopbackIndex); err != nil {
			return err
		}
		t = e.span("net.lo", t)
		if e.usesDNS(refs) {
			if dnsSocks, err = listenDNS(); err != nil {
				return err
			}
		}
		t = e.span("net.dns-listen", t)
		routed, routed6 := false, false
		i := 0
		for _, r := range refs {
			if r.br == nil {
				continue
			}
			route := !routed && !r.br.internal && r.br.gateway.IsValid()
			route6 := !routed6 && !r.br.internal && r.ep.GlobalIPv6Address != "" && r.br.gateway6.IsValid()
			if err := e.attachEndpoint(nsfd, ctr, fmt.Sprintf("eth%d", i), r, route, route6); err != nil {
				if dnsSocks != nil {
					dnsSocks.close()
				}
				return err
			}
			routed, routed6 = routed || route, routed6 || route6
			i++
		}
		t = e.span("net.endpoints", t)
		return nil
	}); err != nil {
		return err
	}
	if dnsSocks == nil {
		return nil
	}
	defer e.span("net.dns-serve", t)
	return e.serveDNS(c, refs, dnsSocks) // it closes them on error
}

// attachEndpoint creates the veth pair of endpoint r with the peer named
// ifname in the container's namespace nsfd, and configures it: its
// addresses, IPv6 on or off as the endpoint has an IPv6 address or not
// (as dockerd: an interface on an IPv4-only network joins no IPv6
// multicast group and gets no link-local address), and the default routes
// asked for. It runs on a thread that joined the namespace (netlink.Do),
// where the interface's sysctls are.
func (e *Engine) attachEndpoint(nsfd int, ctr *netlink.Handle, ifname string, r epRef, route, route6 bool) error {
	n, ep := e.nets, r.ep
	addr, err := netip.ParseAddr(ep.IPAddress)
	if err != nil {
		return fmt.Errorf("endpoint on %s has no address", r.nw.Name)
	}
	var addr6 netip.Addr
	if ep.GlobalIPv6Address != "" {
		if addr6, err = netip.ParseAddr(ep.GlobalIPv6Address); err != nil {
			return fmt.Errorf("endpoint on %s: %w", r.nw.Name, err)
		}
	}
	mac, err := net.ParseMAC(ep.MacAddress)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", ep.MacAddress))
	}
	t := time.Now()
	if r.br.macvlan {
		if err := n.host.CreateMacvlan(netlink.Macvlan{Name: ifname, ParentIndex: r.br.index, Mode: r.br.mode, NS: nsfd,
			MTU: r.br.mtu, HardwareAddr: mac}); err != nil {
			return fmt.Errorf("failed to create the macvlan port on %s: %w", r.br.name, err)
		}
	} else if err := e.createVeth(nsfd, ifname, r.br, mac); err != nil {
		return err
	}
	t = e.span("net.veth", t)
	defer e.span("net.configure", t)
	err = func() error {
		l, err := ctr.LinkByName(ifname)
		if err != nil {
			return err
		}
		if err := e.setIfaceIPv6(ifname, addr6.IsValid()); err != nil {
			return err
		}
		// One round trip for the rest; the kernel applies them in this
		// order (the routes need the address and the link up).
		b := ctr.RouteBatch()
		b.AddAddr(l.Index, netip.PrefixFrom(addr, ep.IPPrefixLen))
		if addr6.IsValid() {
			b.AddAddr(l.Index, netip.PrefixFrom(addr6, ep.GlobalIPv6PrefixLen))
		}
		b.SetUp(l.Index)
		if route {
			b.AddDefaultRoute(r.br.gateway, l.Index)
		}
		if route6 && r.br.gateway6.IsValid() {
			b.AddDefaultRoute(r.br.gateway6, l.Index)
		}
		return b.Send()
	}()
	if err != nil {
		return fmt.Errorf("configure the container's %s: %w", ifname, err)
	}
	return nil
}

// createVeth makes the veth pair of an endpoint on bridge br: the
// container's end ifname, with its MAC address, in namespace nsfd; the
// host's end, of a random name, up on the bridge (an isolated port on an
// enable_icc=false network).
func (e *Engine) createVeth(nsfd int, ifname string, br *bridgeNet, mac net.HardwareAddr) error {
	n := e.nets
	var b [6]byte
	rand.Read(b[:])
	name := vethPrefix + hex.EncodeToString(b[:])
	if err := n.host.CreateVeth(netlink.Veth{Name: name, PeerName: ifname, PeerNS: nsfd, MTU: br.mtu,
		MasterIndex: br.index, Up: true, PeerHardwareAddr: mac}); err != nil {
		return fmt.Errorf("create the container's veth pair: %w", err)
	}
	if br.isolate {
		l, err := n.host.LinkByName(name)
		if err == nil {
			err = n.host.SetPortIsolated(l.Index, true)
		}
		if err != nil {
			return fmt.Errorf("isolate the container's port on %s (enable_icc=false): %w", br.name, err)
		}
	}
	return nil
}

// vethPrefix starts the name of the host end of every container veth
// skiffd makes.
const vethPrefix = "skv"

// setIfaceIPv6 turns IPv6 on or off on interface ifname of the calling
// thread's network namespace. A kernel without IPv6 has no such sysctl:
// then turning it off is moot and turning it on is logged, as dockerd
// does.
func (e *Engine) setIfaceIPv6(ifname string, on bool) error {
	v := "1"
	if on {
		v = "0"
	}
	err := netlink.WriteSysctl("net/ipv6/conf/"+ifname+"/disable_ipv6", v)
	if errors.Is(err, os.ErrNotExist) {
		if on {
			e.logger.Warn("cannot enable IPv6 on a container interface: is IPv6 disabled in the kernel?", "interface", ifname)
		}
		return nil
	}
	return err
}

// recoverNetwork fills in the endpoints of c (locked), which the restore
// found running although its record says it is not: the daemon died after
// the start wired its network and began its process, before it recorded
// the run. Its interfaces are in its namespace already, with the
// addresses the allocation files hold for it, which allocateEndpoint
// finds again (an owner that asks again gets its own). Its ports are
// published by reconcileNetworks, after the recorded ones are restored.
// The caller saves the record.
func (e *Engine) recoverNetwork(c *container.Container) {
	n := e.nets
	if n == nil || c.NetworkSettings == nil {
		return
	}
	for _, r := range e.endpoints(c) {
		if r.br == nil {
			continue
		}
		if err := e.allocateEndpoint(c, r); err != nil {
			e.logger.Warn("recovering the endpoint of a container whose start was not recorded", "container", c.ID, "network", r.nw.Name, "error", err)
		}
	}
	n.mu.Lock()
	if n.unrecorded == nil {
		n.unrecorded = map[string]bool{}
	}
	n.unrecorded[c.ID] = true
	n.mu.Unlock()
}

// clearEndpoint forgets an endpoint's run-time addresses, as dockerd shows
// a stopped container.
func clearEndpoint(ep *types.EndpointSettings, requestedMAC bool) {
	ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.DNSNames = "", "", "", 0, nil
	ep.IPv6Gateway, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen = "", "", 0
	if !requestedMAC {
		ep.MacAddress = ""
	}
}

// releaseNetwork gives back the container's addresses when it stops (its
// veths went with its network namespace) and clears what inspect shows.
// logNetworkEvents logs action ("connect", "disconnect") for each network
// of eps, as dockerd does for every container it starts or stops on a
// network (none and host included), not only for docker network connect.
func (e *Engine) logNetworkEvents(c *container.Container, eps []epRef, action string) {
	for _, r := range eps {
		e.networkLog(r.nw, action, map[string]string{"container": c.ID})
	}
}

func (e *Engine) releaseNetwork(c *container.Container) {
	if e.nets == nil || c.NetworkSettings == nil {
		return
	}
	t := time.Now()
	e.stopDNS(c.ID)
	t = e.span("net.dns-stop", t)
	e.unpublishPorts(c)
	t = e.span("net.unpublish", t)
	defer e.span("net.release", t)
	for _, ep := range c.NetworkSettings.Networks {
		if ep == nil || ep.NetworkID == "" {
			continue
		}
		if err := e.nets.ipam.Release(ep.NetworkID, c.ID); err != nil {
			e.logger.Warn("releasing a container's address", "container", c.ID, "error", err)
		}
		clearEndpoint(ep, ep.MacAddress != "" && ep.IPAddress == "")
	}
	clearDefaultEndpoint(c.NetworkSettings)
}

// clearDefaultEndpoint clears the top-level NetworkSettings fields, which
// describe the endpoint on the default bridge.
func clearDefaultEndpoint(ns *types.NetworkSettings) {
	ns.EndpointID, ns.Gateway, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = "", "", "", 0, ""
	ns.IPv6Gateway, ns.GlobalIPv6Address, ns.GlobalIPv6PrefixLen = "", "", 0
}
