package ipam

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func TestPickSubnet(t *testing.T) {
	ula := ULAPool("host-id")
	for _, tc := range []struct {
		name     string
		pools    []Pool
		family   int
		used     []netip.Prefix
		reserved []netip.Prefix
		want     string
		err      error
	}{
		{"default bridge", DefaultPools(), 4, nil, nil, "172.17.0.0/16", nil},
		{"second network", DefaultPools(), 4, []netip.Prefix{pfx("172.17.0.0/16")}, nil, "172.18.0.0/16", nil},
		{"host route in the way", DefaultPools(), 4, []netip.Prefix{pfx("172.17.0.0/16")}, []netip.Prefix{pfx("172.18.5.0/24")}, "172.19.0.0/16", nil},
		{"wide host route skips many", DefaultPools(), 4, nil, []netip.Prefix{pfx("172.16.0.0/12")}, "192.168.0.0/20", nil},
		{"inside a /14 pool", DefaultPools(), 4, []netip.Prefix{pfx("172.17.0.0/16"), pfx("172.18.0.0/16"), pfx("172.19.0.0/16"), pfx("172.20.0.0/16")}, nil, "172.21.0.0/16", nil},
		{"192.168 in /20s", DefaultPools(), 4, nil, []netip.Prefix{pfx("172.16.0.0/12"), pfx("192.168.0.0/20")}, "192.168.16.0/20", nil},
		{"all taken", DefaultPools(), 4, nil, []netip.Prefix{pfx("172.16.0.0/12"), pfx("192.168.0.0/16")}, "", ErrNoMoreSubnets},
		{"--default-address-pools", []Pool{{pfx("10.10.0.0/16"), 24}}, 4, []netip.Prefix{pfx("10.10.0.0/24")}, nil, "10.10.1.0/24", nil},
		{"IPv6 from ULA", append(DefaultPools(), ula), 6, nil, nil, netip.PrefixFrom(ula.Base.Addr(), 64).String(), nil},
		{"no IPv6 pool", DefaultPools(), 6, nil, nil, "", ErrNoMoreSubnets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PickSubnet(tc.pools, tc.family, tc.used, tc.reserved)
			if !errors.Is(err, tc.err) || (err == nil && got.String() != tc.want) {
				t.Errorf("PickSubnet = %v, %v; want %s, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if err := CheckOverlap(pfx("172.18.1.0/24"), []netip.Prefix{pfx("172.18.0.0/16")}); err == nil || err.Error() != "Pool overlaps with other one on this address space" || !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("CheckOverlap = %v", err)
	}
}

func TestULAPool(t *testing.T) {
	p := ULAPool("abc")
	if p != ULAPool("abc") || p == ULAPool("abd") || p.Size != 64 || p.Base.Bits() != 48 || p.Base.Addr().As16()[0] != 0xfd {
		t.Errorf("ULAPool = %v", p)
	}
}

func TestParsePool(t *testing.T) {
	p, err := ParsePool("base=10.10.0.0/16,size=24")
	if err != nil || p.Base != pfx("10.10.0.0/16") || p.Size != 24 {
		t.Errorf("ParsePool = %v, %v", p, err)
	}
	if _, err := ParsePool("base=10.10.0.0/16,size=8"); err == nil {
		t.Errorf("size smaller than base accepted")
	}
}

func TestValidateConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Range
		want string
	}{
		{"ok", Range{Subnet: pfx("10.0.0.0/24"), IPRange: pfx("10.0.0.128/25"), Gateway: addr("10.0.0.1")}, ""},
		{"host bits", Range{Subnet: pfx("10.0.0.1/24")}, "invalid network config:\ninvalid subnet 10.0.0.1/24: it should be 10.0.0.0/24"},
		{"gateway outside", Range{Subnet: pfx("10.0.0.0/24"), Gateway: addr("10.0.1.1")}, "invalid network config:\ninvalid gateway 10.0.1.1: parent subnet 10.0.0.0/24 doesn't contain this address"},
		{"two problems", Range{Subnet: pfx("10.0.0.0/24"), IPRange: pfx("10.0.0.0/16"), Gateway: addr("fd00::1")},
			"invalid network config:\n* invalid ip-range 10.0.0.0/16: CIDR block is bigger than its parent subnet 10.0.0.0/24\n* invalid gateway fd00::1: parent subnet is an IPv4 block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateConfig([]Range{tc.r}, false)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("kind = %v", errdefs.KindOf(err))
				}
			}
			if got != tc.want {
				t.Errorf("ValidateConfig = %q, want %q", got, tc.want)
			}
		})
	}
	rs := []Range{{Subnet: pfx("10.0.0.0/24")}}
	if err := ValidateStatic(rs, addr("10.0.1.5"), netip.Addr{}); err == nil || err.Error() != "invalid endpoint settings:\nno configured subnet contains IP address 10.0.1.5" {
		t.Errorf("ValidateStatic = %v", err)
	}
	if err := ValidateStatic(rs, addr("10.0.0.5"), netip.Addr{}); err != nil {
		t.Errorf("ValidateStatic in subnet = %v", err)
	}
}

func TestMAC(t *testing.T) {
	if got := MACFromIP(addr("172.17.0.2")).String(); got != "02:42:ac:11:00:02" {
		t.Errorf("MACFromIP = %s", got)
	}
	for range 100 {
		m := RandomMAC()
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Fatalf("RandomMAC = %s: multicast or not locally administered", m)
		}
	}
}

func TestStoreAllocate(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Create("n1", "app", []Range{{Subnet: pfx("10.99.0.0/29"), Aux: map[string]netip.Addr{"router": addr("10.99.0.3")}}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Gateway != addr("10.99.0.1") {
		t.Fatalf("gateway = %v, want the first address", rs[0].Gateway)
	}
	var got []string
	for _, owner := range []string{"a", "b", "c"} {
		p, err := s.Request("n1", owner, 4, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.String())
	}
	// .0 network, .1 gateway, .3 aux, .7 broadcast.
	if strings.Join(got, " ") != "10.99.0.2/29 10.99.0.4/29 10.99.0.5/29" {
		t.Errorf("allocated %v", got)
	}
	if p, _ := s.Request("n1", "b", 4, netip.Addr{}); p.String() != "10.99.0.4/29" {
		t.Errorf("repeated request of b = %v, want its address again", p)
	}
	if _, err := s.Request("n1", "d", 4, addr("10.99.0.4")); !errors.Is(err, errdefs.ErrForbidden) || err.Error() != "Address already in use" {
		t.Errorf("static taken: %v", err)
	}
	if _, err := s.Request("n1", "d", 4, addr("10.99.0.7")); err == nil {
		t.Errorf("broadcast address handed out")
	}
	if _, err := s.Request("n1", "d", 4, addr("10.98.0.4")); !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Errorf("static outside: %v", err)
	}
	if p, err := s.Request("n1", "d", 4, addr("10.99.0.6")); err != nil || p.String() != "10.99.0.6/29" {
		t.Errorf("static free: %v, %v", p, err)
	}
	if _, err := s.Request("n1", "e", 4, netip.Addr{}); err == nil || err.Error() != "no available IPv4 addresses on this network's address pools: app (n1)" {
		t.Errorf("exhausted: %v", err)
	}
	if err := s.Release("n1", "a"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Request("n1", "e", 4, netip.Addr{}); err != nil || p.String() != "10.99.0.2/29" {
		t.Errorf("after release: %v, %v", p, err)
	}
}

// TestStoreNoGateway: a range that asks for no gateway gets none, and its
// first address goes to the first container, as on dockerd's macvlan
// networks.
func TestStoreNoGateway(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Create("n1", "lan", []Range{{Subnet: pfx("10.99.0.0/29"), NoGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Gateway.IsValid() {
		t.Fatalf("gateway = %v, want none", rs[0].Gateway)
	}
	if p, err := s.Request("n1", "a", 4, netip.Addr{}); err != nil || p.String() != "10.99.0.1/29" {
		t.Errorf("first address = %v, %v; want 10.99.0.1/29", p, err)
	}
	// A gateway given is reserved as ever.
	rs, err = s.Create("n2", "lan2", []Range{{Subnet: pfx("10.99.1.0/29"), Gateway: addr("10.99.1.6"), NoGateway: true}})
	if err != nil || rs[0].Gateway != addr("10.99.1.6") {
		t.Fatalf("with a gateway: %+v, %v", rs, err)
	}
	if owners := s.Owners("n2"); owners[addr("10.99.1.6")] != "gateway" {
		t.Errorf("owners = %v, want the gateway reserved", owners)
	}
}

func TestStoreSerialAndRange(t *testing.T) {
	s, _ := Open(t.TempDir())
	rs, err := s.Create("n", "n", []Range{{Subnet: pfx("10.0.0.0/24"), IPRange: pfx("10.0.0.128/25")}, {Subnet: pfx("fd00:1::/64")}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Gateway != addr("10.0.0.128") || rs[1].Gateway != addr("fd00:1::1") {
		t.Errorf("gateways %v %v", rs[0].Gateway, rs[1].Gateway)
	}
	a, _ := s.Request("n", "a", 4, netip.Addr{})
	s.Release("n", "a")
	b, _ := s.Request("n", "b", 4, netip.Addr{})
	if a.Addr() != addr("10.0.0.129") || b.Addr() != addr("10.0.0.130") {
		t.Errorf("serial: %v then %v; a released address must not be reused at once", a, b)
	}
	if p, err := s.Request("n", "a", 6, netip.Addr{}); err != nil || p.String() != "fd00:1::2/64" {
		t.Errorf("IPv6: %v, %v", p, err)
	}
	if p, err := s.Request("n", "c", 4, addr("10.0.0.5")); err != nil || p.String() != "10.0.0.5/24" {
		t.Errorf("static outside ip-range but in subnet: %v, %v", p, err)
	}
}

// TestStoreCrashSafety reopens the store after writes, as a restart after
// kill -9 does: what was acknowledged is there, a torn temporary file is
// ignored, and no address is handed out twice.
func TestStoreCrashSafety(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, err := s.Create("n", "app", []Range{{Subnet: pfx("10.1.0.0/24")}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := s.Request("n", string(rune('a'+i)), 4, netip.Addr{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	before := s.Owners("n")
	// A write interrupted before its rename: a torn temporary file.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-n.json-123"), []byte(`{"ID":"n","Addrs":{"10.1`), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	after := s2.Owners("n")
	if len(after) != len(before) || len(after) != 21 {
		t.Fatalf("reopened with %d allocations, want %d", len(after), len(before))
	}
	for a, o := range before {
		if after[a] != o {
			t.Errorf("%v: owner %q after reopen, %q before", a, after[a], o)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-n.json-123")); !os.IsNotExist(err) {
		t.Errorf("torn temp file left behind: %v", err)
	}
	p, err := s2.Request("n", "new", 4, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, dup := before[p.Addr()]; dup {
		t.Errorf("address %v handed out again after reopen", p)
	}
	if p.Addr() != addr("10.1.0.22") {
		t.Errorf("next address %v, want 10.1.0.22 (serial continues after reopen)", p)
	}
	if err := s2.Delete("n"); err != nil {
		t.Fatal(err)
	}
	s3, _ := Open(dir)
	if s3.Ranges("n") != nil {
		t.Errorf("deleted network back after reopen")
	}
}

// TestStoreSaveExchange: allocations are saved by swapping a new file
// with the old one (exchange); nothing is left behind, and a daemon killed
// between the swap and the removal of the old content (left under a
// temporary name) comes back with the new content.
func TestStoreSaveExchange(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, err := s.Create("n", "app", []Range{{Subnet: pfx("10.2.0.0/24")}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "n.json")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"a", "b", "c"} {
		if _, err := s.Request("n", o, 4, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release("n", "b"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files after the saves: %v, want n.json alone", entries)
	}
	// The crash: the old content under a temporary name.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-n.json-77"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := s2.Owners("n")
	want := map[netip.Addr]string{addr("10.2.0.1"): "gateway", addr("10.2.0.2"): "a", addr("10.2.0.4"): "c"}
	if len(got) != len(want) {
		t.Fatalf("owners after reopen = %v, want %v", got, want)
	}
	for a, o := range want {
		if got[a] != o {
			t.Errorf("%v: owner %q after reopen, want %q", a, got[a], o)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-n.json-77")); !os.IsNotExist(err) {
		t.Errorf("old content left behind: %v", err)
	}
}

// BenchmarkSave compares the two ways of saving an allocation file:
// renaming a new file over it (atomicfile.Replace) and swapping one with
// it (exchange), which the store uses.
func BenchmarkSave(b *testing.B) {
	data := make([]byte, 400)
	for _, v := range []struct {
		name string
		save func(string, []byte) error
	}{
		{"replace", func(p string, b []byte) error { return atomicfile.Replace(p, b, 0o600) }},
		{"exchange", exchange},
	} {
		b.Run(v.name, func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "n.json")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := v.save(p, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequestRelease is what a container's start and exit cost the
// IPAM store on one network.
func BenchmarkRequestRelease(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Create("n1", "app", []Range{{Subnet: pfx("10.99.0.0/16")}}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := s.Request("n1", "c", 4, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
		if err := s.Release("n1", "c"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStoreIPv6 covers an IPv6 network as docker network create --ipv6
// gives it (an IPv4 subnet and an IPv6 one): each owner gets one address
// of each family, a replay gets the same ones, an --ip-range of IPv6 is
// used up and then refused, --ip6 static addresses, release of both
// families at once, and all of it after a reopen (kill -9).
func TestStoreIPv6(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	rs, err := s.Create("n", "net6", []Range{{Subnet: pfx("10.5.0.0/24")}, {Subnet: pfx("fd00:5::/64"), IPRange: pfx("fd00:5::100/126")}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[1].Gateway != addr("fd00:5::100") {
		t.Errorf("IPv6 gateway %v, want the first address of the range", rs[1].Gateway)
	}
	a4, _ := s.Request("n", "a", 4, netip.Addr{})
	a6, err := s.Request("n", "a", 6, netip.Addr{})
	if err != nil || a4.String() != "10.5.0.2/24" || a6.String() != "fd00:5::101/64" {
		t.Fatalf("a: %v %v (%v)", a4, a6, err)
	}
	if again, _ := s.Request("n", "a", 6, netip.Addr{}); again != a6 {
		t.Errorf("a replayed IPv6 request gave %v, want %v", again, a6)
	}
	if p, err := s.Request("n", "st", 6, addr("fd00:5::42")); err != nil || p.String() != "fd00:5::42/64" {
		t.Errorf("--ip6 outside the range but in the subnet: %v, %v", p, err)
	}
	if _, err := s.Request("n", "other", 6, addr("fd00:5::42")); !errors.Is(err, ErrAddressInUse) {
		t.Errorf("the same --ip6 twice: %v", err)
	}
	if _, err := s.Request("n", "bad", 6, addr("fd00:6::1")); err == nil {
		t.Errorf("--ip6 outside every subnet was accepted")
	}
	b6, _ := s.Request("n", "b", 6, netip.Addr{})
	c6, _ := s.Request("n", "c", 6, netip.Addr{})
	if b6.String() != "fd00:5::102/64" || c6.String() != "fd00:5::103/64" {
		t.Errorf("b, c: %v %v", b6, c6)
	}
	if _, err := s.Request("n", "d", 6, netip.Addr{}); err == nil {
		t.Errorf("an address beyond the exhausted IPv6 range was handed out")
	}

	// Reopened, as after kill -9: the same owners, nothing given twice.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	owners := s2.Owners("n")
	for a, want := range map[string]string{"fd00:5::100": "gateway", "fd00:5::101": "a", "10.5.0.2": "a", "fd00:5::42": "st", "fd00:5::103": "c"} {
		if owners[addr(a)] != want {
			t.Errorf("after reopen %s is owned by %q, want %q", a, owners[addr(a)], want)
		}
	}
	if err := s2.Release("n", "a"); err != nil {
		t.Fatal(err)
	}
	owners = s2.Owners("n")
	if _, ok := owners[addr("fd00:5::101")]; ok {
		t.Errorf("a's IPv6 address survived its release")
	}
	if _, ok := owners[addr("10.5.0.2")]; ok {
		t.Errorf("a's IPv4 address survived its release")
	}
	// The range wraps around to the freed address.
	if p, err := s2.Request("n", "d", 6, netip.Addr{}); err != nil || p.String() != "fd00:5::101/64" {
		t.Errorf("after a release in a full range: %v, %v", p, err)
	}
}
