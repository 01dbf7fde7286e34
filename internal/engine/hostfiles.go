package engine

import (
	"fmt"
	"net/netip"
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
	if err := atomicfile.WriteFile(c.HostnamePath, []byte(c.Config.Hostname+"\n"), 0o644); err != nil {
		return err
	}
	return writeEtcFiles(c, nil, false)
}
