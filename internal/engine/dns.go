package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/netlink"
	"skiffd/internal/network/dns"
	"skiffd/internal/network/etcfiles"
)

// ctrDNS is the embedded DNS server of one container: its sockets bound to
// 127.0.0.11:53 inside the container's network namespace, served by the
// daemon's goroutines.
type ctrDNS struct {
	srv *dns.Server
	udp net.PacketConn
	tcp net.Listener
}

func (d *ctrDNS) close() {
	d.udp.Close()
	d.tcp.Close()
}

// dnsEnabled reports whether containers on user-defined networks get the
// embedded DNS server.
func (e *Engine) dnsEnabled() bool { return e.nets != nil }

// usesDNS reports whether c's first network is a user-defined bridge
// network (whose resolv.conf names 127.0.0.11).
func (e *Engine) usesDNS(refs []epRef) bool {
	return e.nets != nil && len(refs) > 0 && refs[0].br != nil && refs[0].nw.ID != e.nets.bridgeID
}

// startDNS binds the container's DNS sockets in its namespace (on a locked
// thread that joined it) and serves them. c's lock is held.
func (e *Engine) startDNS(c *container.Container, pid int, refs []epRef) error {
	if !e.usesDNS(refs) {
		return nil
	}
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(nsfd)
	var d *ctrDNS
	if err := netlink.Do(nsfd, func() (err error) {
		d, err = listenDNS()
		return err
	}); err != nil {
		return err
	}
	return e.serveDNS(c, refs, d)
}

// listenDNS binds 127.0.0.11:53 (UDP and TCP) in the calling thread's
// network namespace.
func listenDNS() (*ctrDNS, error) {
	d := &ctrDNS{}
	var err error
	if d.udp, err = net.ListenPacket("udp4", "127.0.0.11:53"); err != nil {
		return nil, fmt.Errorf("embedded DNS server: %w", err)
	}
	if d.tcp, err = net.Listen("tcp4", "127.0.0.11:53"); err != nil {
		d.udp.Close()
		return nil, fmt.Errorf("embedded DNS server: %w", err)
	}
	return d, nil
}

// serveDNS serves c's DNS sockets d (c locked), replacing its previous
// server; d is closed on error.
func (e *Engine) serveDNS(c *container.Container, refs []epRef, d *ctrDNS) error {
	cfg := dns.Config{Logger: e.logger, Networks: e.dnsNetworks(refs)}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		d.close()
		return err
	}
	servers, _, options := e.resolvSettings(c.HostConfig)
	o := etcfiles.ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: etcfiles.Internal, Options: options}
	for _, s := range servers {
		if a, err := netip.ParseAddr(s); err == nil {
			o.DNS = append(o.DNS, a)
		}
	}
	rc := etcfiles.ResolvConf(o)
	cfg.Ndots = rc.NdotsSet
	if !refs[0].br.internal {
		for _, s := range rc.ExtServers {
			cfg.Upstreams = append(cfg.Upstreams, netip.AddrPortFrom(s.Addr, 53))
		}
	}
	d.srv = dns.NewServer(cfg)
	go d.srv.ServePacket(d.udp)
	go d.srv.ServeStream(d.tcp)
	n := e.nets
	n.mu.Lock()
	if old := n.dns[c.ID]; old != nil {
		old.close()
	}
	n.dns[c.ID] = d
	n.mu.Unlock()
	return nil
}

// dnsNetworks are the user-defined networks of endpoints refs, as the
// embedded DNS server looks names up in them.
func (e *Engine) dnsNetworks(refs []epRef) []dns.Network {
	var out []dns.Network
	for _, r := range refs {
		if r.br == nil || r.nw.ID == e.nets.bridgeID {
			continue
		}
		id := r.nw.ID
		aliases := linkAliases(r.ep)
		out = append(out, dns.Network{
			Name: r.nw.Name,
			LookupName: func(name string) ([]netip.Addr, bool) {
				// A network-scoped link's alias stands for its target,
				// for this container only, and hides a container of that
				// name (libnetwork's endpoint aliases).
				if target, ok := aliases[name]; ok {
					name = target
				}
				return e.lookupName(id, name)
			},
			LookupAddr: func(a netip.Addr) string { return e.lookupAddr(id, a) },
		})
	}
	return out
}

// linkAliases maps the aliases of an endpoint's network-scoped links
// (EndpointSettings.Links, which --link on a user-defined network and
// docker-py's links give, read as --link values: parseLink) to their
// targets, lower case as the server asks.
func linkAliases(ep *types.EndpointSettings) map[string]string {
	if ep == nil || len(ep.Links) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, l := range ep.Links {
		target, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		target = strings.TrimPrefix(target, "/")
		alias = strings.TrimPrefix(alias, "/")
		if target != "" && alias != "" {
			m[strings.ToLower(alias)] = strings.ToLower(target)
		}
	}
	return m
}

// updateDNS gives c's DNS server, if it has one, the networks of its
// endpoints now (after a connect or disconnect). c is locked.
func (e *Engine) updateDNS(c *container.Container) {
	n := e.nets
	n.mu.Lock()
	d := n.dns[c.ID]
	n.mu.Unlock()
	if d != nil {
		d.srv.SetNetworks(e.dnsNetworks(e.endpoints(c)))
	}
}

// stopDNS closes c's DNS server, if it has one.
func (e *Engine) stopDNS(id string) {
	n := e.nets
	if n == nil {
		return
	}
	n.mu.Lock()
	d := n.dns[id]
	delete(n.dns, id)
	n.mu.Unlock()
	if d != nil {
		d.close()
	}
}

// restoreDNS re-creates the DNS servers of running containers after a
// daemon restart: the sockets died with the previous daemon.
func (e *Engine) restoreDNS() {
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running && c.State.Pid > 0 {
			if err := e.startDNS(c, c.State.Pid, e.endpoints(c)); err != nil {
				e.logger.Warn("restoring a container's DNS server", "container", c.ID, "error", err)
			}
		}
		c.Unlock()
	}
}

// dnsNames are the names c's endpoint on network netID answers to (its
// DNSNames and the compose service name) and its addresses, IPv4 then
// IPv6 (AAAA answers, on an IPv6 network).
func dnsNames(c *container.Container, netID string) (names []string, addrs []netip.Addr) {
	for _, ep := range c.NetworkSettings.Networks {
		if ep == nil || ep.NetworkID != netID || ep.IPAddress == "" {
			continue
		}
		addrs = endpointAddrs(ep)
		if len(addrs) == 0 {
			continue
		}
		names = append(names, ep.DNSNames...)
		if s := c.Config.Labels["com.docker.compose.service"]; s != "" {
			names = append(names, s)
		}
		return names, addrs
	}
	return nil, nil
}

// lookupName answers the embedded DNS for name on network netID: every
// address of every running container with that name, both families (the
// server picks the asked one).
func (e *Engine) lookupName(netID, name string) ([]netip.Addr, bool) {
	var out []netip.Addr
	for _, c := range e.containers.List() {
		c.Lock()
		if c.State.Running && c.NetworkSettings != nil {
			names, addrs := dnsNames(c, netID)
			for _, n := range names {
				if strings.EqualFold(n, name) {
					out = append(out, addrs...)
					break
				}
			}
		}
		c.Unlock()
	}
	return out, len(out) > 0
}

// lookupAddr answers PTR queries: the container name holding a (IPv4 or
// IPv6).
func (e *Engine) lookupAddr(netID string, a netip.Addr) string {
	for _, c := range e.containers.List() {
		c.Lock()
		var name string
		if c.State.Running && c.NetworkSettings != nil {
			if _, got := dnsNames(c, netID); slices.Contains(got, a) {
				name = strings.TrimPrefix(c.Name, "/")
			}
		}
		c.Unlock()
		if name != "" {
			return name
		}
	}
	return ""
}
