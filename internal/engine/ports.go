package engine

import (
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/netlink"
	"skiffd/internal/network/portalloc"
	"skiffd/internal/network/portproxy"
)

// published is one published port of a running container: host address
// and port DNATed to the container's address and port.
type published struct {
	// hostIP is the host address published on: invalid for every local
	// IPv4 address, :: for every local IPv6 one. The container's
	// address ctr is of the same family.
	hostIP   netip.Addr
	hostPort uint16
	proto    string
	ctr      netip.AddrPort
	bridge   string
	// proxy serves [::1] for a TCP port published on ::1 or :: (see
	// startProxies); nil otherwise.
	proxy *portproxy.TCP
}

// publishPorts allocates the host ports of c's published ports (its
// first network must be a bridge network with an address), records them
// in NetworkSettings.Ports and adds its DNAT rules to the table. A port that is
// taken fails the start with dockerd's error, before any process exists.
func (e *Engine) publishPorts(c *container.Container, refs []epRef) error {
	n := e.nets
	hc := c.HostConfig
	ns := c.NetworkSettings
	ns.Ports = types.PortMap{}
	for p := range c.Config.ExposedPorts {
		ns.Ports[p] = nil
	}
	bs, err := portalloc.ParseBindings(hc.PortBindings, c.Config.ExposedPorts, hc.PublishAllPorts)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	if len(bs) == 0 {
		return nil
	}
	if len(refs) == 0 || refs[0].br == nil || refs[0].br.macvlan || refs[0].ep.IPAddress == "" {
		// Nothing to publish to (a macvlan network's containers are
		// on the LAN themselves: dockerd ignores their ports too).
		return nil
	}
	ctrIP := netip.MustParseAddr(refs[0].ep.IPAddress)
	// With an IPv6 address, a port published without a host address is
	// published on :: too, as dockerd 28 does; without one the IPv6 side
	// is left out: dockerd's userland proxy would forward IPv6 to the
	// container's IPv4 address, and nf_tables NAT cannot change families.
	ctrIP6, _ := netip.ParseAddr(refs[0].ep.GlobalIPv6Address)
	var pubs []published
	fail := func(err error) error {
		for _, p := range pubs {
			n.ports.Release(ipsOf(p.hostIP), p.proto, p.hostPort)
		}
		ns.Ports = types.PortMap{}
		return errdefs.System(fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", c.Name[1:], refs[0].ep.EndpointID, err))
	}
	for _, b := range bs {
		// A binding without a host address takes the network's
		// (host_binding_ipv4, or the daemon's --ip), as dockerd's bridge
		// driver does; a specific one publishes on that address alone.
		if !b.HostIP.IsValid() && refs[0].br.hostBinding.IsValid() && !refs[0].br.hostBinding.IsUnspecified() {
			b.HostIP = refs[0].br.hostBinding
		}
		if b.HostIP.Is6() && !ctrIP6.IsValid() {
			return fail(fmt.Errorf("cannot publish on IPv6 host address %s: the container has no IPv6 address on network %s", b.HostIP, refs[0].nw.Name))
		}
		if b.HostIP.Is6() && b.HostIP.IsLoopback() && b.Proto != "tcp" {
			return fail(fmt.Errorf("skiffd publishes only TCP ports on the IPv6 loopback address, not %s", b.Proto))
		}
		ips := b.HostIPs(ctrIP6.IsValid())
		port, err := n.ports.Request(ips, b.Proto, b.HostPortStart, b.HostPortEnd)
		if err != nil {
			return fail(err)
		}
		key := fmt.Sprintf("%d/%s", b.ContainerPort, b.Proto)
		for _, ip := range ips {
			p := published{hostIP: ip, hostPort: port, proto: b.Proto,
				ctr: netip.AddrPortFrom(ctrIP, b.ContainerPort), bridge: refs[0].br.name}
			if ip.Is6() {
				p.ctr = netip.AddrPortFrom(ctrIP6, b.ContainerPort)
			} else if ip.IsUnspecified() {
				p.hostIP = netip.Addr{}
			}
			pubs = append(pubs, p)
			ns.Ports[key] = append(ns.Ports[key], types.PortBinding{HostIP: ip.String(), HostPort: strconv.Itoa(int(port))})
		}
	}
	for _, p := range pubs {
		if (!p.hostIP.IsValid() || p.hostIP.IsLoopback()) && !p.hostIP.Is6() {
			if err := netlink.SetSysctl(netlink.Self, "net/ipv4/conf/"+p.bridge+"/route_localnet", "1"); err != nil {
				e.logger.Warn("route_localnet on the bridge", "bridge", p.bridge, "error", err)
			}
		}
	}
	if err := startProxies(pubs); err != nil {
		return fail(err)
	}
	n.mu.Lock()
	n.published[c.ID] = pubs
	n.mu.Unlock()
	t0 := time.Now()
	defer e.span("ports.rules", t0)
	if err := n.setContainerRules(c.ID, pubs); err != nil {
		n.mu.Lock()
		delete(n.published, c.ID)
		n.mu.Unlock()
		stopProxies(pubs)
		if err := n.setContainerRules(c.ID, nil); err != nil {
			e.logger.Warn("removing a container's port rules", "container", c.ID, "error", err)
		}
		return fail(err)
	}
	return nil
}

// startProxies starts the user-space proxy of each TCP port of pubs
// published on the IPv6 loopback address or on every IPv6 address: ::1
// is not routable, so nf_tables cannot DNAT a connection from it to a
// container (dockerd leaves these to docker-proxy too). On error the
// proxies started are closed.
func startProxies(pubs []published) error {
	for i := range pubs {
		p := &pubs[i]
		if p.proxy != nil || p.proto != "tcp" || !p.hostIP.Is6() || !(p.hostIP.IsLoopback() || p.hostIP.IsUnspecified()) {
			continue
		}
		px, err := portproxy.ListenTCP(netip.AddrPortFrom(netip.IPv6Loopback(), p.hostPort), p.ctr)
		if err != nil {
			stopProxies(pubs)
			return err
		}
		p.proxy = px
	}
	return nil
}

// stopProxies closes the proxies of pubs.
func stopProxies(pubs []published) {
	for i := range pubs {
		if pubs[i].proxy != nil {
			pubs[i].proxy.Close()
			pubs[i].proxy = nil
		}
	}
}

func ipsOf(a netip.Addr) []netip.Addr {
	if a.IsValid() {
		return []netip.Addr{a}
	}
	return []netip.Addr{netip.IPv4Unspecified()}
}

// unpublishPorts releases c's host ports and removes its rules, leaving
// those of the other containers as they are.
func (e *Engine) unpublishPorts(c *container.Container) {
	n := e.nets
	n.mu.Lock()
	pubs, ok := n.published[c.ID]
	delete(n.published, c.ID)
	n.mu.Unlock()
	if !ok {
		return
	}
	stopProxies(pubs)
	for _, p := range pubs {
		n.ports.Release(ipsOf(p.hostIP), p.proto, p.hostPort)
	}
	if err := n.setContainerRules(c.ID, nil); err != nil {
		e.logger.Warn("removing a container's port rules", "container", c.ID, "error", err)
	}
}

// restorePorts replays the published ports of a running container after a
// daemon restart: the allocator's table and the rules come from the
// record.
func (e *Engine) restorePorts(c *container.Container, refs []epRef) {
	n := e.nets
	if c.NetworkSettings == nil || len(refs) == 0 || refs[0].br == nil || refs[0].br.macvlan || refs[0].ep.IPAddress == "" {
		return
	}
	ctrIP, err := netip.ParseAddr(refs[0].ep.IPAddress)
	if err != nil {
		return
	}
	n.mu.Lock()
	_, done := n.published[c.ID]
	n.mu.Unlock()
	if done {
		return // restored already (start-up replays, then the restore does)
	}
	ctrIP6, _ := netip.ParseAddr(refs[0].ep.GlobalIPv6Address)
	var pubs []published
	for key, bs := range c.NetworkSettings.Ports {
		cport, proto, err := portalloc.ParsePort(key)
		if err != nil {
			continue
		}
		for _, b := range bs {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			var hip netip.Addr
			if a, err := netip.ParseAddr(b.HostIP); err == nil && (a.Is6() || !a.IsUnspecified()) {
				hip = a
			}
			ctr := netip.AddrPortFrom(ctrIP, cport)
			if hip.Is6() {
				if !ctrIP6.IsValid() {
					continue
				}
				ctr = netip.AddrPortFrom(ctrIP6, cport)
			}
			n.ports.Reserve(ipsOf(hip)[0], proto, uint16(hp))
			pubs = append(pubs, published{hostIP: hip, hostPort: uint16(hp), proto: proto, ctr: ctr, bridge: refs[0].br.name})
		}
	}
	if len(pubs) > 0 {
		if err := startProxies(pubs); err != nil {
			e.logger.Warn("restoring a container's IPv6 loopback port", "container", c.ID, "error", err)
		}
		n.mu.Lock()
		n.published[c.ID] = pubs
		n.mu.Unlock()
	}
}

// networkStats reads the interface counters inside the network namespace
// of process pid (docker stats' "networks", per interface but lo); nil
// when it has none or bridge networking is off.
func (e *Engine) networkStats(pid int) map[string]types.NetworkStats {
	if e.nets == nil || pid <= 0 {
		return nil
	}
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(nsfd)
	h, err := netlink.Open(nsfd)
	if err != nil {
		return nil
	}
	defer h.Close()
	links, err := h.Links()
	if err != nil {
		return nil
	}
	var out map[string]types.NetworkStats
	for _, l := range links {
		if l.Name == "lo" {
			continue
		}
		if out == nil {
			out = map[string]types.NetworkStats{}
		}
		s := l.Stats
		out[l.Name] = types.NetworkStats{RxBytes: s.RxBytes, RxPackets: s.RxPackets, RxErrors: s.RxErrors, RxDropped: s.RxDropped,
			TxBytes: s.TxBytes, TxPackets: s.TxPackets, TxErrors: s.TxErrors, TxDropped: s.TxDropped}
	}
	return out
}
