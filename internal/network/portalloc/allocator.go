package portalloc

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"skiffd/internal/errdefs"
)

// The range dockerd falls back to when the kernel's cannot be read.
const (
	defaultBegin = 49153
	defaultEnd   = 60999
)

// Config configures an Allocator.
type Config struct {
	// ReadFile reads the two /proc/sys/net/ipv4 files; nil means os.ReadFile.
	// Tests pass a fake.
	ReadFile func(name string) ([]byte, error)
	// Probe, if set, is asked whether a host port is really free before it
	// is handed out (CheckFree binds it briefly): a port another program
	// holds is skipped in a range and refused when asked for exactly.
	Probe func(ip netip.Addr, proto string, port uint16) error
}

// Allocator is the table of published host ports. It is safe for
// concurrent use.
type Allocator struct {
	begin, end uint16
	kernelRes  map[uint16]bool // ip_local_reserved_ports within begin..end
	probe      func(netip.Addr, string, uint16) error

	mu sync.Mutex
	// used maps an address (0.0.0.0 and :: meaning every address of
	// their family) and protocol to the ports taken on it.
	used map[key]map[uint16]bool
	// last is the last port handed out per range, so that allocation
	// continues after it as dockerd's does.
	last map[[2]uint16]uint16
}

type key struct {
	ip    netip.Addr
	proto string
}

// New returns an Allocator whose ephemeral range is the kernel's
// ip_local_port_range without ip_local_reserved_ports.
func New(cfg Config) (*Allocator, error) {
	read := cfg.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	a := &Allocator{begin: defaultBegin, end: defaultEnd, probe: cfg.Probe, used: map[key]map[uint16]bool{}, last: map[[2]uint16]uint16{}}
	if b, err := read("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.ParseUint(f[0], 10, 16)
			hi, err2 := strconv.ParseUint(f[1], 10, 16)
			if err1 == nil && err2 == nil && lo > 0 && lo <= hi {
				a.begin, a.end = uint16(lo), uint16(hi)
			}
		}
	}
	if b, err := read("/proc/sys/net/ipv4/ip_local_reserved_ports"); err == nil {
		res, err := parseReserved(string(b), a.begin, a.end)
		if err != nil {
			return nil, fmt.Errorf("port allocator: ip_local_reserved_ports: %w", err)
		}
		a.kernelRes = res
	}
	return a, nil
}

// Range returns the ephemeral port range.
func (a *Allocator) Range() (begin, end uint16) { return a.begin, a.end }

// parseReserved reads the kernel's "8080,30000-32767" list, keeping only
// ports within begin..end.
func parseReserved(s string, begin, end uint16) (map[uint16]bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	res := map[uint16]bool{}
	for _, e := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(e, "-")
		first, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid port %q", e)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
				return nil, fmt.Errorf("invalid port range %q", e)
			}
		}
		for p := max(first, uint64(begin)); p <= min(last, uint64(end)); p++ {
			res[uint16(p)] = true
		}
	}
	return res, nil
}

// Reserve takes port on ip for proto so that no container can publish it:
// the daemon's own TCP API port (dockerd's allocateDaemonPort).
func (a *Allocator) Reserve(ip netip.Addr, proto string, port uint16) error {
	_, err := a.request([]netip.Addr{ip}, proto, port, port, false)
	return err
}

// Request allocates one host port for proto on every address of ips
// (together: the port is free on all of them or none is taken). start ==
// end > 0 asks for that port; start < end for any port in the range; 0, 0
// for an ephemeral port, skipping the kernel's reserved ports. Either way
// the search starts after the last port handed out from the same range.
// A port taken on 0.0.0.0 is taken on every IPv4 address, and the other
// way around. The error for a taken port is an *AllocatedError (Conflict).
func (a *Allocator) Request(ips []netip.Addr, proto string, start, end uint16) (uint16, error) {
	return a.request(ips, proto, start, end, a.probe != nil)
}

func (a *Allocator) request(ips []netip.Addr, proto string, start, end uint16, probe bool) (uint16, error) {
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return 0, errdefs.InvalidParameter(fmt.Errorf("unknown protocol"))
	}
	if len(ips) == 0 {
		return 0, errdefs.InvalidParameter(fmt.Errorf("no IP addresses specified"))
	}
	if (start == 0) != (end == 0) || end < start {
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid port range: %d-%d", start, end))
	}
	ips = slices.Clone(ips)
	for i, ip := range ips {
		ips[i] = ip.Unmap()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if start != 0 && start == end {
		if err := a.free(ips, proto, start); err != nil {
			return 0, err
		}
		if probe {
			for _, ip := range ips {
				if err := a.probe(ip, proto, start); err != nil {
					return 0, errdefs.Conflict(err)
				}
			}
		}
		a.take(ips, proto, start)
		return start, nil
	}
	ephemeral := start == 0
	if ephemeral {
		start, end = a.begin, a.end
	}
	rk := [2]uint16{start, end}
	p, ok := a.last[rk]
	if !ok || p < start || p > end {
		p = end
	}
	for range int(end-start) + 1 {
		if p == end {
			p = start
		} else {
			p++
		}
		if ephemeral && a.kernelRes[p] {
			continue
		}
		if a.free(ips, proto, p) != nil {
			continue
		}
		if probe && !a.probeAll(ips, proto, p) {
			continue
		}
		a.take(ips, proto, p)
		a.last[rk] = p
		return p, nil
	}
	return 0, errdefs.Conflict(ErrAllPortsAllocated)
}

func (a *Allocator) probeAll(ips []netip.Addr, proto string, port uint16) bool {
	for _, ip := range ips {
		if a.probe(ip, proto, port) != nil {
			return false
		}
	}
	return true
}

// free reports whether port is free on every address of ips; it must be
// free on the address itself, on the unspecified address of its family,
// and, for an unspecified address, on every address of its family.
func (a *Allocator) free(ips []netip.Addr, proto string, port uint16) error {
	for _, ip := range ips {
		unspec := netip.IPv4Unspecified()
		if ip.Is6() {
			unspec = netip.IPv6Unspecified()
		}
		for k, ports := range a.used {
			if k.proto != proto || !ports[port] || k.ip.Is4() != ip.Is4() {
				continue
			}
			if k.ip == ip || k.ip == unspec || ip == unspec {
				return errdefs.Conflict(&AllocatedError{IP: k.ip, Port: port})
			}
		}
	}
	return nil
}

func (a *Allocator) take(ips []netip.Addr, proto string, port uint16) {
	for _, ip := range ips {
		k := key{ip, proto}
		if a.used[k] == nil {
			a.used[k] = map[uint16]bool{}
		}
		a.used[k][port] = true
	}
}

// Release frees port for proto on every address of ips. Releasing a port
// that is not allocated is not an error.
func (a *Allocator) Release(ips []netip.Addr, proto string, port uint16) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ip := range ips {
		k := key{ip.Unmap(), proto}
		delete(a.used[k], port)
		if len(a.used[k]) == 0 {
			delete(a.used, k)
		}
	}
}

// CheckFree reports whether port can be bound on ip for proto right now, by
// binding it and closing at once (TCP listen, UDP bind; SCTP is not
// checked). The error is dockerd's "failed to bind host port" text.
func CheckFree(ip netip.Addr, proto string, port uint16) error {
	addr := netip.AddrPortFrom(ip, port).String()
	var err error
	switch proto {
	case "tcp":
		var ln net.Listener
		if ln, err = net.Listen(tcpNet(ip), addr); err == nil {
			ln.Close()
		}
	case "udp":
		var pc net.PacketConn
		if pc, err = net.ListenPacket(udpNet(ip), addr); err == nil {
			pc.Close()
		}
	default:
		return nil
	}
	if err != nil {
		var se *os.SyscallError
		if oe, ok := err.(*net.OpError); ok {
			if s, ok := oe.Err.(*os.SyscallError); ok {
				se = s
			}
		}
		if se != nil {
			return fmt.Errorf("failed to bind host port %s/%s: %w", addr, proto, se.Err)
		}
		return fmt.Errorf("failed to bind host port %s/%s: %w", addr, proto, err)
	}
	return nil
}

// tcpNet and udpNet pin the family, so that [::] binds IPv6 only as
// dockerd's proxy does (it sets IPV6_V6ONLY) and 0.0.0.0 IPv4 only.
func tcpNet(ip netip.Addr) string {
	if ip.Is4() {
		return "tcp4"
	}
	return "tcp6"
}

func udpNet(ip netip.Addr) string {
	if ip.Is4() {
		return "udp4"
	}
	return "udp6"
}
