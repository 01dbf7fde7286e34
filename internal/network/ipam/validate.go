package ipam

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"skiffd/internal/errdefs"
)

// ValidateConfig checks a network create's IPAM config as dockerd's
// validateIpamConfig does; IPv6 ranges are skipped unless enableIPv6. The
// error is InvalidParameter, "invalid network config:" followed by every
// problem found (one line, or "* "-prefixed lines when several).
func ValidateConfig(ranges []Range, enableIPv6 bool) error {
	var errs []error
	for _, r := range ranges {
		fam := 4
		if r.Subnet.Addr().Is6() {
			fam = 6
		}
		if fam == 6 && !enableIPv6 {
			continue
		}
		if r.Subnet != r.Subnet.Masked() {
			errs = append(errs, fmt.Errorf("invalid subnet %s: it should be %s", r.Subnet, r.Subnet.Masked()))
		}
		if ipr := r.IPRange; ipr.IsValid() {
			rfam := 4
			if ipr.Addr().Is6() {
				rfam = 6
			}
			if rfam != fam {
				errs = append(errs, fmt.Errorf("invalid ip-range %s: parent subnet is an IPv%d block", ipr, fam))
			} else {
				if ipr.Bits() < r.Subnet.Bits() {
					errs = append(errs, fmt.Errorf("invalid ip-range %s: CIDR block is bigger than its parent subnet %s", ipr, r.Subnet))
				}
				if ipr != ipr.Masked() {
					errs = append(errs, fmt.Errorf("invalid ip-range %s: it should be %s", ipr, ipr.Masked()))
				}
				if !r.Subnet.Overlaps(ipr) {
					errs = append(errs, fmt.Errorf("invalid ip-range %s: parent subnet %s doesn't contain ip-range", ipr, r.Subnet))
				}
			}
		}
		if err := validateAddr(r.Gateway, r.Subnet, fam); err != nil {
			errs = append(errs, fmt.Errorf("invalid gateway %s: %w", r.Gateway, err))
		}
		names := make([]string, 0, len(r.Aux))
		for n := range r.Aux {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if err := validateAddr(r.Aux[n], r.Subnet, fam); err != nil {
				errs = append(errs, fmt.Errorf("invalid auxiliary address %s: %w", n, err))
			}
		}
	}
	return joinErrs("invalid network config", errs)
}

// joinErrs formats errs as dockerd's multierror does, under a heading:
// one error on its own line, several as "* " lines.
func joinErrs(heading string, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errdefs.InvalidParameter(fmt.Errorf("%s:\n%s", heading, errs[0]))
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = strings.ReplaceAll(e.Error(), "\n", "\n\t")
	}
	return errdefs.InvalidParameter(fmt.Errorf("%s:\n* %s", heading, strings.Join(lines, "\n* ")))
}

func validateAddr(a netip.Addr, subnet netip.Prefix, fam int) error {
	if !a.IsValid() {
		return nil
	}
	if a.Is6() != (fam == 6) {
		return fmt.Errorf("parent subnet is an IPv%d block", fam)
	}
	if !subnet.Contains(a) {
		return fmt.Errorf("parent subnet %s doesn't contain this address", subnet)
	}
	return nil
}

// ValidateStatic checks the addresses an endpoint asks for (--ip, --ip6)
// against a network's ranges, as dockerd does before connecting: each must
// be of its family, not unspecified, and inside one of the subnets.
func ValidateStatic(ranges []Range, v4, v6 netip.Addr) error {
	var errs []error
	if v4.IsValid() && (!v4.Unmap().Is4() || v4.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("invalid IPv4 address: %s", v4))
	}
	if v6.IsValid() && (!v6.Is6() || v6.Is4In6() || v6.IsUnspecified() || v6.Zone() != "") {
		errs = append(errs, fmt.Errorf("invalid IPv6 address: %s", v6))
	}
	for _, a := range []netip.Addr{v4.Unmap(), v6} {
		if !a.IsValid() || len(errs) > 0 {
			continue
		}
		if !slices.ContainsFunc(ranges, func(r Range) bool { return r.Subnet.Contains(a) }) {
			errs = append(errs, fmt.Errorf("no configured subnet contains IP address %s", a))
		}
	}
	return joinErrs("invalid endpoint settings", errs)
}

// MACFromIP returns the MAC address dockerd's bridge driver gave
// containers before it switched to random ones: 02:42 followed by the four
// bytes of the IPv4 address.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	a := ip.Unmap().As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// RandomMAC returns a random unicast, locally administered MAC address,
// which is what dockerd's bridge driver generates today (moby b985e23
// bridge_linux.go; it depends on no API version) when no --mac-address
// is given.
func RandomMAC() net.HardwareAddr {
	hw := make(net.HardwareAddr, 6)
	rand.Read(hw)
	hw[0] = hw[0]&^0x01 | 0x02
	return hw
}
