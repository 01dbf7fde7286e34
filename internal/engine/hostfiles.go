package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/network"
	"skiffd/internal/network/etcfiles"
)

// checkExtraHost validates an ExtraHosts entry at create. What
// "host-gateway" stands for is found at start, as in dockerd.
func checkExtraHost(s string) error {
	_, err := etcfiles.ParseExtraHost(s, nil)
	if errors.Is(err, etcfiles.ErrNoHostGateway) {
		return nil
	}
	return err
}

// writeNetworkFiles writes the container's hostname, hosts and
// resolv.conf at its create, which start binds over the image's (and
// rewrites first). A "host-gateway" with no address to stand for is
// left out: as in dockerd, it fails the start, not the create.
func (e *Engine) writeNetworkFiles(c *container.Container) error {
	return e.writeEtcFiles(c, nil, false, hostGateway{ips: e.hostGatewayIPs()})
}

// hostGateway is what "host-gateway" in ExtraHosts stands for. With no
// address, such an entry fails the file when strict (at start) and is
// left out otherwise.
type hostGateway struct {
	ips    []netip.Addr
	strict bool
}

// writeEtcFiles writes the container's /etc/hosts and /etc/resolv.conf
// through etcfiles, as dockerd generates them, with the entries of its
// legacy links.
func (e *Engine) writeEtcFiles(c *container.Container, addrs []netip.Addr, internalDNS bool, gw hostGateway, links ...etcfiles.Host) error {
	// The hostname too: written without fsync, it must be rebuilt by
	// every start like the others.
	if err := writeIfChanged(c.HostnamePath, []byte(c.Config.Hostname+"\n")); err != nil {
		return err
	}
	hosts, err := etcHosts(c, addrs, gw, links)
	if err != nil {
		return err
	}
	if err := writeIfChanged(c.HostsPath, hosts); err != nil {
		return err
	}
	return e.writeResolvConf(c, internalDNS)
}

// etcHosts is the content of c's /etc/hosts.
func etcHosts(c *container.Container, addrs []netip.Addr, gw hostGateway, links []etcfiles.Host) ([]byte, error) {
	cfg, hc := c.Config, c.HostConfig
	var hosts []byte
	var extra []etcfiles.Host
	for _, h := range hc.ExtraHosts {
		hs, err := etcfiles.ParseExtraHost(h, gw.ips)
		if errors.Is(err, etcfiles.ErrNoHostGateway) {
			if gw.strict {
				return nil, errdefs.System(err)
			}
			continue
		}
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

// resolvSettings are the DNS servers, search domains and options of c's
// resolv.conf: each the container's own when it sets any, else the
// daemon's (--dns, --dns-search, --dns-opt), as dockerd picks them.
func (e *Engine) resolvSettings(hc *types.HostConfig) (servers, search, options []string) {
	pick := func(own, daemon []string) []string {
		if len(own) > 0 {
			return own
		}
		return daemon
	}
	return pick(hc.DNS, e.opts.DNS), pick(hc.DNSSearch, e.opts.DNSSearch), pick(hc.DNSOptions, e.opts.DNSOptions)
}

// writeResolvConf writes c's /etc/resolv.conf.
func (e *Engine) writeResolvConf(c *container.Container, internalDNS bool) error {
	hc := c.HostConfig
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	servers, search, options := e.resolvSettings(hc)
	o := etcfiles.ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: etcfiles.Legacy, Search: search, Options: options}
	switch {
	case hc.NetworkMode == network.NameHost:
		o.Mode = etcfiles.HostNetwork
	case internalDNS:
		o.Mode = etcfiles.Internal
	}
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("%s is not an ip address", s))
		}
		o.DNS = append(o.DNS, a)
	}
	return writeIfChanged(c.ResolvConfPath, etcfiles.ResolvConf(o).Content)
}

// writeIfChanged writes b to the file at path unless it holds b already:
// every start regenerates the files, and most starts change nothing (but
// those on a bridge network: the address is new). It writes in place, not
// by renaming a new file over the old: it runs at create and at start,
// before the container's process exists, so no reader can see a partial
// file, and a daemon killed in the middle leaves a file the next start
// rewrites (as it does one a power loss emptied: no fsyncs either). On
// ext4 a rename over an existing file flushes the new one's data
// (auto_da_alloc), which cost a quarter of a millisecond per file, per
// networked `docker run` (issue 14). A running container's hosts file is
// rewritten in place too (rewriteHosts), for it to see the change.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}
