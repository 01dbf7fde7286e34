package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"skiffd/internal/atomicfile"
	"skiffd/internal/container"
)

// parseExtraHost splits an ExtraHosts entry, "name:ip" or "name=ip".
func parseExtraHost(s string) (string, string, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	if !ok || name == "" {
		return "", "", fmt.Errorf("invalid extra host: %s", s)
	}
	if ip == "host-gateway" {
		return "", "", fmt.Errorf("skiffd does not support host-gateway in extra hosts yet (HostConfig.ExtraHosts %q)", s)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if _, err := netip.ParseAddr(ip); err != nil {
		return "", "", fmt.Errorf("invalid IP address in add-host: %q", ip)
	}
	return name, ip, nil
}

// writeNetworkFiles writes the container's hostname, hosts and
// resolv.conf, which start binds over the image's.
func writeNetworkFiles(c *container.Container) error {
	cfg, hc := c.Config, c.HostConfig
	if err := atomicfile.WriteFile(c.HostnamePath, []byte(cfg.Hostname+"\n"), 0o644); err != nil {
		return err
	}
	var hosts bytes.Buffer
	if hc.NetworkMode == "host" {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil && !isNotExist(err) {
			return err
		}
		hosts.Write(b)
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	for _, h := range hc.ExtraHosts {
		name, ip, _ := parseExtraHost(h)
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	if hc.NetworkMode != "host" {
		// Without an address of its own the name resolves to loopback.
		fqdn := cfg.Hostname
		if cfg.Domainname != "" {
			fqdn = cfg.Hostname + "." + cfg.Domainname + " " + cfg.Hostname
		}
		fmt.Fprintf(&hosts, "127.0.1.1\t%s\n", fqdn)
	}
	if err := atomicfile.WriteFile(c.HostsPath, hosts.Bytes(), 0o644); err != nil {
		return err
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !isNotExist(err) {
		return err
	}
	return atomicfile.WriteFile(c.ResolvConfPath, resolvConf(host, hc.DNS, hc.DNSSearch, hc.DNSOptions, hc.NetworkMode == "host"), 0o644)
}

// resolvConf builds a container's resolv.conf from the host's as dockerd
// does: the client's servers, search domains and options replace the
// host's; off the host's network, loopback servers (which the container
// cannot reach) are dropped, and Google's public servers stand in when none
// is left.
func resolvConf(host []byte, dns, search, options []string, hostNet bool) []byte {
	var servers, searches, opts, other []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			if !hostNet {
				if a, err := netip.ParseAddr(f[1]); err == nil && a.IsLoopback() {
					continue
				}
			}
			servers = append(servers, f[1])
		case "search", "domain":
			searches = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		default:
			other = append(other, line)
		}
	}
	if len(dns) > 0 {
		servers = dns
	}
	if len(servers) == 0 {
		servers = []string{"8.8.8.8", "8.8.4.4"}
	}
	if len(search) > 0 {
		searches = search
		if len(search) == 1 && search[0] == "." {
			searches = nil
		}
	}
	if len(options) > 0 {
		opts = options
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	for _, l := range other {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}
