// Package portalloc parses published-port requests and allocates host
// ports for them, as dockerd's port allocator does.
//
// ParseBindings turns a container's HostConfig.PortBindings (and, for -P,
// its ExposedPorts) into Bindings; an Allocator then hands out host ports,
// ephemeral ones from the kernel's ip_local_port_range minus
// ip_local_reserved_ports, and refuses a port already published (or
// reserved, like the daemon's own TCP API port) with dockerd's error:
//
//	a, err := portalloc.New(portalloc.Config{Probe: portalloc.CheckFree})
//	a.Reserve(netip.IPv4Unspecified(), "tcp", 2375)   // the daemon's -H tcp://:2375
//	bs, err := portalloc.ParseBindings(hc.PortBindings, cfg.ExposedPorts, hc.PublishAllPorts)
//	for _, b := range bs {
//		port, err := a.Request(b.HostIPs(ipv6), b.Proto, b.HostPortStart, b.HostPortEnd)
//		// "Bind for 0.0.0.0:8080 failed: port is already allocated"
//	}
//	a.Release(ips, "tcp", port)                       // on container stop
//
// The allocator's table lives in memory: after a daemon restart the engine
// replays the ports of its running containers with Request.
package portalloc

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

// Binding is one host address and port range a container port is
// published on.
type Binding struct {
	Proto         string // "tcp", "udp" or "sctp"
	ContainerPort uint16
	// HostIP is the address to bind; the zero Addr means every address
	// (0.0.0.0, and [::] when the network has IPv6), as an empty HostIp
	// does in the API.
	HostIP netip.Addr
	// HostPortStart..HostPortEnd is where the host port comes from; 0..0
	// asks for an ephemeral port, start == end for exactly that port.
	HostPortStart, HostPortEnd uint16
}

// HostIPs returns the addresses the binding is allocated on: HostIP, or
// 0.0.0.0 (and :: with ipv6) when it is unset.
func (b Binding) HostIPs(ipv6 bool) []netip.Addr {
	if b.HostIP.IsValid() {
		return []netip.Addr{b.HostIP}
	}
	if ipv6 {
		return []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	return []netip.Addr{netip.IPv4Unspecified()}
}

// ParsePort reads a PortBindings or ExposedPorts key, "80/tcp", "53/UDP"
// or "80" (tcp). A range is not a valid key.
func ParsePort(key string) (port uint16, proto string, err error) {
	num, proto, _ := strings.Cut(key, "/")
	p, err := strconv.ParseUint(num, 10, 16)
	if err != nil || p == 0 {
		return 0, "", errdefs.InvalidParameter(fmt.Errorf("invalid port specification: %q", key))
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return 0, "", errdefs.InvalidParameter(fmt.Errorf("invalid port specification: %q", key))
	}
	return uint16(p), proto, nil
}

// parseHostPort reads a HostPort: "" (ephemeral), "8080", "8000-8010",
// optionally with a "/proto" suffix that dockerd ignores.
func parseHostPort(s string) (start, end uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	bad := errdefs.InvalidParameter(fmt.Errorf("invalid port specification: %q", s))
	r, _, _ := strings.Cut(s, "/")
	lo, hi, isRange := strings.Cut(r, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, bad
	}
	b := a
	if isRange && hi != lo {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return 0, 0, bad
		}
	}
	if a == 0 && b != 0 {
		return 0, 0, bad
	}
	return uint16(a), uint16(b), nil
}

// ParseBindings validates and flattens a container's port bindings, as
// dockerd's validatePortBindings and its port mapping setup read them. With
// publishAll (-P), every exposed port without a binding gets an ephemeral
// one. Bindings are sorted by container port, protocol and host IP; a key
// with an empty binding list publishes nothing. Errors are
// InvalidParameter with dockerd's "invalid port specification" text.
func ParseBindings(pm types.PortMap, exposed map[string]struct{}, publishAll bool) ([]Binding, error) {
	var out []Binding
	seen := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(pm)) {
		port, proto, err := ParsePort(key)
		if err != nil {
			return nil, err
		}
		norm := strconv.Itoa(int(port)) + "/" + proto
		for _, pb := range pm[key] {
			start, end, err := parseHostPort(pb.HostPort)
			if err != nil {
				return nil, err
			}
			b := Binding{Proto: proto, ContainerPort: port, HostPortStart: start, HostPortEnd: end}
			if ip := strings.TrimSuffix(strings.TrimPrefix(pb.HostIP, "["), "]"); ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil || a.Zone() != "" {
					return nil, errdefs.InvalidParameter(fmt.Errorf("invalid host IP address: %q", pb.HostIP))
				}
				b.HostIP = a.Unmap()
			}
			out = append(out, b)
			seen[norm] = true
		}
	}
	if publishAll {
		for _, key := range slices.Sorted(maps.Keys(exposed)) {
			port, proto, err := ParsePort(key)
			if err != nil {
				return nil, err
			}
			if norm := strconv.Itoa(int(port)) + "/" + proto; !seen[norm] {
				seen[norm] = true
				out = append(out, Binding{Proto: proto, ContainerPort: port})
			}
		}
	}
	slices.SortStableFunc(out, func(x, y Binding) int {
		return cmp.Or(cmp.Compare(x.ContainerPort, y.ContainerPort), strings.Compare(x.Proto, y.Proto), x.HostIP.Compare(y.HostIP))
	})
	return out, nil
}

// AllocatedError is dockerd's "port is already allocated" error.
type AllocatedError struct {
	IP   netip.Addr
	Port uint16
}

func (e *AllocatedError) Error() string {
	return fmt.Sprintf("Bind for %s:%d failed: port is already allocated", e.IP.String(), e.Port)
}

// ErrAllPortsAllocated is returned when a range has no free port left.
var ErrAllPortsAllocated = errors.New("all ports are allocated")
