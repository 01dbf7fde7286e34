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
)

// published is one published port of a running container: host address
// and port DNATed to the container's address and port.
type published struct {
	hostIP   netip.Addr // invalid: every local address
	hostPort uint16
	proto    string
	ctr      netip.AddrPort
	bridge   string
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
	if len(refs) == 0 || refs[0].br == nil || refs[0].ep.IPAddress == "" {
		return nil
	}
	ctrIP := netip.MustParseAddr(refs[0].ep.IPAddress)
	var pubs []published
	fail := func(err error) error {
		for _, p := range pubs {
			n.ports.Release(ipsOf(p.hostIP), p.proto, p.hostPort)
		}
		ns.Ports = types.PortMap{}
		return errdefs.System(fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", c.Name[1:], refs[0].ep.EndpointID, err))
	}
	for _, b := range bs {
		port, err := n.ports.Request(b.HostIPs(false), b.Proto, b.HostPortStart, b.HostPortEnd)
		if err != nil {
			return fail(err)
		}
		pubs = append(pubs, published{hostIP: b.HostIP, hostPort: port, proto: b.Proto,
			ctr: netip.AddrPortFrom(ctrIP, b.ContainerPort), bridge: refs[0].br.name})
		key := fmt.Sprintf("%d/%s", b.ContainerPort, b.Proto)
		hip := "0.0.0.0"
		if b.HostIP.IsValid() {
			hip = b.HostIP.String()
		}
		ns.Ports[key] = append(ns.Ports[key], types.PortBinding{HostIP: hip, HostPort: strconv.Itoa(int(port))})
	}
	for _, p := range pubs {
		if !p.hostIP.IsValid() || p.hostIP.IsLoopback() {
			if err := netlink.SetSysctl(netlink.Self, "net/ipv4/conf/"+p.bridge+"/route_localnet", "1"); err != nil {
				e.logger.Warn("route_localnet on the bridge", "bridge", p.bridge, "error", err)
			}
		}
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
		if err := n.setContainerRules(c.ID, nil); err != nil {
			e.logger.Warn("removing a container's port rules", "container", c.ID, "error", err)
		}
		return fail(err)
	}
	return nil
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
	if c.NetworkSettings == nil || len(refs) == 0 || refs[0].br == nil || refs[0].ep.IPAddress == "" {
		return
	}
	ctrIP, err := netip.ParseAddr(refs[0].ep.IPAddress)
	if err != nil {
		return
	}
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
			if a, err := netip.ParseAddr(b.HostIP); err == nil && !a.IsUnspecified() {
				hip = a
			}
			n.ports.Reserve(ipsOf(hip)[0], proto, uint16(hp))
			pubs = append(pubs, published{hostIP: hip, hostPort: uint16(hp), proto: proto, ctr: netip.AddrPortFrom(ctrIP, cport), bridge: refs[0].br.name})
		}
	}
	if len(pubs) > 0 {
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
