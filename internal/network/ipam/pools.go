// Package ipam is skiffd's IP address management, the equivalent of
// dockerd's default IPAM driver: it picks subnets for new networks from the
// default address pools and hands out addresses inside a network's subnets.
//
// Subnet choice is a pure function of the pools, the subnets other networks
// already use and the prefixes the host already routes (the caller reads
// those from the kernel; this package never does):
//
//	pools := ipam.DefaultPools()                     // or --default-address-pools
//	pools = append(pools, ipam.ULAPool(hostID))      // IPv6 without a configured pool
//	subnet, err := ipam.PickSubnet(pools, 4, usedByNetworks, hostRoutes)
//
// Addresses live in a Store, one file per network, written atomically
// before any allocation is acknowledged, so that after a kill -9 an address
// is never handed out twice:
//
//	s, err := ipam.Open(filepath.Join(dataRoot, "network", "ipam"))
//	ranges, err := s.Create(netID, "app", []ipam.Range{{Subnet: subnet}}) // fills in the gateway
//	addr, err := s.Request(netID, endpointID, 4, netip.Addr{})            // 10.99.0.2/24
//	err = s.Release(netID, endpointID)                                     // on disconnect
//	err = s.Delete(netID)                                                  // on network rm
package ipam

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"skiffd/internal/errdefs"
)

// Pool is one entry of --default-address-pools: Base is split into
// subnets of prefix length Size.
type Pool struct {
	Base netip.Prefix `json:"base"`
	Size int          `json:"size"`
}

// DefaultPools returns dockerd's local-scope default address pools: the
// default bridge's 172.17.0.0/16, then 172.18.0.0/16 to 172.31.0.0/16, then
// 192.168.0.0/16 in /20s.
func DefaultPools() []Pool {
	return []Pool{
		{netip.MustParsePrefix("172.17.0.0/16"), 16},
		{netip.MustParsePrefix("172.18.0.0/16"), 16},
		{netip.MustParsePrefix("172.19.0.0/16"), 16},
		{netip.MustParsePrefix("172.20.0.0/14"), 16},
		{netip.MustParsePrefix("172.24.0.0/14"), 16},
		{netip.MustParsePrefix("172.28.0.0/14"), 16},
		{netip.MustParsePrefix("192.168.0.0/16"), 20},
	}
}

// ULAPool returns the IPv6 pool dockerd adds when no configured pool is
// IPv6: a /48 unique local prefix derived from the daemon's host ID (the
// first 40 bits of its SHA-256 as the RFC 4193 global ID), split in /64s.
// It is stable as long as hostID is.
func ULAPool(hostID string) Pool {
	sum := sha256.Sum256([]byte(hostID))
	gid := binary.BigEndian.Uint64(sum[:]) & (1<<40 - 1)
	var a [16]byte
	a[0] = 0xfd
	for i := range 5 {
		a[1+i] = byte(gid >> (8 * (4 - i)))
	}
	return Pool{Base: netip.PrefixFrom(netip.AddrFrom16(a), 48), Size: 64}
}

// ParsePool reads one --default-address-pools value, "base=10.10.0.0/16,size=24".
func ParsePool(s string) (Pool, error) {
	var p Pool
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(f, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "base":
			pr, err := netip.ParsePrefix(strings.TrimSpace(v))
			if err != nil {
				return p, fmt.Errorf("invalid base %q: %w", v, err)
			}
			p.Base = pr
		case "size":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return p, fmt.Errorf("invalid size %q: %w", v, err)
			}
			p.Size = n
		default:
			return p, fmt.Errorf("unexpected key '%s' in '%s'", k, s)
		}
	}
	return p, ValidatePools([]Pool{p})
}

// ValidatePools checks pools as dockerd does at start-up.
func ValidatePools(pools []Pool) error {
	for i, p := range pools {
		if !p.Base.IsValid() || p.Size == 0 {
			return fmt.Errorf("network at index %d (%v) is not in canonical form", i, p)
		}
		if p.Base.Bits() > p.Size || p.Size > p.Base.Addr().BitLen() {
			return fmt.Errorf("network at index %d (%v) has a smaller prefix (/%d) than the target size of that pool (/%d)", i, p, p.Base.Bits(), p.Size)
		}
	}
	return nil
}

// Errors of subnet choice, with dockerd's texts and kinds.
var (
	ErrNoMoreSubnets = errdefs.InvalidParameter(fmt.Errorf("all predefined address pools have been fully subnetted"))
	ErrPoolOverlap   = errdefs.Forbidden(fmt.Errorf("Pool overlaps with other one on this address space"))
)

// PickSubnet returns the first subnet, in pool order, of the given family
// (4 or 6) that overlaps neither a subnet in used (other networks) nor a
// prefix in reserved (the host's routes and nameservers, as dockerd's
// InferReservedNetworks finds them). It does not record the choice: the
// caller saves the network with its subnet before anything else picks.
func PickSubnet(pools []Pool, family int, used, reserved []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		base := p.Base.Masked()
		if base.Addr().Unmap().Is4() != (family == 4) || p.Size < base.Bits() || p.Size > base.Addr().BitLen() {
			continue
		}
		cand := netip.PrefixFrom(base.Addr(), p.Size)
		for cand.IsValid() && base.Contains(cand.Addr()) {
			clash := overlapping(cand, used)
			if !clash.IsValid() {
				clash = overlapping(cand, reserved)
			}
			if !clash.IsValid() {
				return cand, nil
			}
			// Skip past whatever clashed: a larger clash covers many
			// candidates at once.
			if clash.Bits() < cand.Bits() {
				cand = netip.PrefixFrom(lastAddr(clash), cand.Bits()).Masked()
			}
			cand = next(cand)
		}
	}
	return netip.Prefix{}, ErrNoMoreSubnets
}

// CheckOverlap returns ErrPoolOverlap when a configured subnet overlaps one
// of another network.
func CheckOverlap(subnet netip.Prefix, used []netip.Prefix) error {
	if overlapping(subnet, used).IsValid() {
		return ErrPoolOverlap
	}
	return nil
}

func overlapping(p netip.Prefix, set []netip.Prefix) netip.Prefix {
	for _, q := range set {
		if q.IsValid() && p.Overlaps(q) {
			return q
		}
	}
	return netip.Prefix{}
}

// next returns the prefix of the same length right after p, or an invalid
// prefix at the end of the address space.
func next(p netip.Prefix) netip.Prefix {
	last := lastAddr(p)
	n := last.Next()
	if !n.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(n, p.Bits())
}

// lastAddr returns the last address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	a := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := off + p.Bits(); i < 128; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	if p.Addr().Is4() {
		return netip.AddrFrom16(a).Unmap()
	}
	return netip.AddrFrom16(a)
}
