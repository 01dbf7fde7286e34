package portalloc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

func TestParseBindings(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pm         types.PortMap
		exposed    []string
		publishAll bool
		want       string
		err        string
	}{
		{"single", types.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}, nil, false, "80/tcp 127.0.0.1 8080-8080", ""},
		{"no proto, upper case", types.PortMap{"53/UDP": {{HostPort: "53"}}, "80": {{}}}, nil, false, "53/udp invalid IP 53-53; 80/tcp invalid IP 0-0", ""},
		{"host range", types.PortMap{"80/tcp": {{HostPort: "8000-8010"}}}, nil, false, "80/tcp invalid IP 8000-8010", ""},
		{"same start and end", types.PortMap{"80/tcp": {{HostPort: "8000-8000"}}}, nil, false, "80/tcp invalid IP 8000-8000", ""},
		{"IPv6 host IP in brackets", types.PortMap{"80/tcp": {{HostIP: "[::1]", HostPort: "80"}}}, nil, false, "80/tcp ::1 80-80", ""},
		{"two bindings", types.PortMap{"80/tcp": {{HostIP: "::", HostPort: "80"}, {HostIP: "0.0.0.0", HostPort: "80"}}}, nil, false, "80/tcp 0.0.0.0 80-80; 80/tcp :: 80-80", ""},
		{"-P", types.PortMap{"80/tcp": {{HostPort: "81"}}}, []string{"80/tcp", "443/tcp", "53/udp"}, true, "53/udp invalid IP 0-0; 80/tcp invalid IP 81-81; 443/tcp invalid IP 0-0", ""},
		{"exposed without -P", nil, []string{"80/tcp"}, false, "", ""},
		{"empty list", types.PortMap{"80/tcp": {}}, nil, false, "", ""},
		{"bad key", types.PortMap{"http/tcp": {{}}}, nil, false, "", `invalid port specification: "http/tcp"`},
		{"key range", types.PortMap{"80-81/tcp": {{}}}, nil, false, "", `invalid port specification: "80-81/tcp"`},
		{"port 0", types.PortMap{"0/tcp": {{}}}, nil, false, "", `invalid port specification: "0/tcp"`},
		{"bad proto", types.PortMap{"80/icmp": {{}}}, nil, false, "", `invalid port specification: "80/icmp"`},
		{"bad host port", types.PortMap{"80/tcp": {{HostPort: "x"}}}, nil, false, "", `invalid port specification: "x"`},
		{"reversed range", types.PortMap{"80/tcp": {{HostPort: "90-80"}}}, nil, false, "", `invalid port specification: "90-80"`},
		{"too big", types.PortMap{"80/tcp": {{HostPort: "65536"}}}, nil, false, "", `invalid port specification: "65536"`},
		{"bad host IP", types.PortMap{"80/tcp": {{HostIP: "localhost"}}}, nil, false, "", `invalid host IP address: "localhost"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := map[string]struct{}{}
			for _, e := range tc.exposed {
				exp[e] = struct{}{}
			}
			bs, err := ParseBindings(tc.pm, exp, tc.publishAll)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("ParseBindings(%v) error = %v, want %q (invalid parameter)", tc.pm, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bs {
				got = append(got, fmt.Sprintf("%d/%s %v %d-%d", b.ContainerPort, b.Proto, b.HostIP, b.HostPortStart, b.HostPortEnd))
			}
			if s := strings.Join(got, "; "); s != tc.want {
				t.Errorf("ParseBindings(%v) = %s, want %s", tc.pm, s, tc.want)
			}
		})
	}
}

func FuzzParseBindings(f *testing.F) {
	f.Add("80/tcp", "127.0.0.1", "8080")
	f.Add("53/udp", "", "8000-8010/udp")
	f.Add("1", "[::1]", "")
	f.Fuzz(func(t *testing.T, key, hostIP, hostPort string) {
		bs, err := ParseBindings(types.PortMap{key: {{HostIP: hostIP, HostPort: hostPort}}}, map[string]struct{}{key: {}}, true)
		if err != nil {
			return
		}
		for _, b := range bs {
			if b.ContainerPort == 0 || b.HostPortEnd < b.HostPortStart || (b.HostPortStart == 0) != (b.HostPortEnd == 0) {
				t.Fatalf("ParseBindings(%q, %q, %q) = %+v", key, hostIP, hostPort, b)
			}
			if b.Proto != "tcp" && b.Proto != "udp" && b.Proto != "sctp" {
				t.Fatalf("proto %q", b.Proto)
			}
		}
	})
}

func fakeProc(portRange, reserved string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		switch name {
		case "/proc/sys/net/ipv4/ip_local_port_range":
			return []byte(portRange), nil
		case "/proc/sys/net/ipv4/ip_local_reserved_ports":
			return []byte(reserved), nil
		}
		return nil, os.ErrNotExist
	}
}

var (
	any4  = []netip.Addr{netip.IPv4Unspecified()}
	local = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	dual  = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
)

func TestAllocatorEphemeral(t *testing.T) {
	a, err := New(Config{ReadFile: fakeProc("40000\t40005\n", "40001,40003-40004\n")})
	if err != nil {
		t.Fatal(err)
	}
	if b, e := a.Range(); b != 40000 || e != 40005 {
		t.Errorf("Range = %d-%d", b, e)
	}
	var got []uint16
	for range 3 {
		p, err := a.Request(any4, "tcp", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if fmt.Sprint(got) != "[40000 40002 40005]" {
		t.Errorf("ephemeral ports %v, want the range without the reserved ones", got)
	}
	if _, err := a.Request(any4, "tcp", 0, 0); !errors.Is(err, ErrAllPortsAllocated) {
		t.Errorf("exhausted: %v", err)
	}
	// UDP has its own table.
	if p, err := a.Request(any4, "udp", 0, 0); err != nil || p != 40000 {
		t.Errorf("udp: %d, %v", p, err)
	}
	// Asked explicitly, a kernel-reserved port is honoured.
	if p, err := a.Request(any4, "tcp", 40001, 40001); err != nil || p != 40001 {
		t.Errorf("explicit reserved port: %d, %v", p, err)
	}
	a.Release(any4, "tcp", 40002)
	if p, err := a.Request(any4, "tcp", 0, 0); err != nil || p != 40002 {
		t.Errorf("after release: %d, %v", p, err)
	}
}

func TestAllocatorFallbackRange(t *testing.T) {
	a, err := New(Config{ReadFile: fakeProc("garbage", "")})
	if err != nil {
		t.Fatal(err)
	}
	if b, e := a.Range(); b != defaultBegin || e != defaultEnd {
		t.Errorf("Range = %d-%d, want dockerd's fallback", b, e)
	}
	if _, err := New(Config{ReadFile: fakeProc("1 2", "x")}); err == nil {
		t.Errorf("bad reserved list accepted")
	}
}

func TestAllocatorConflicts(t *testing.T) {
	a, _ := New(Config{ReadFile: fakeProc("40000 40100", "")})
	if err := a.Reserve(netip.IPv4Unspecified(), "tcp", 2375); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ips  []netip.Addr
		port uint16
		want string
	}{
		{"daemon port", any4, 2375, "Bind for 0.0.0.0:2375 failed: port is already allocated"},
		{"daemon port on loopback", local, 2375, "Bind for 0.0.0.0:2375 failed: port is already allocated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Request(tc.ips, "tcp", tc.port, tc.port)
			if err == nil || err.Error() != tc.want || !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("Request(%v, %d) = %v, want %q", tc.ips, tc.port, err, tc.want)
			}
		})
	}
	if _, err := a.Request(local, "tcp", 8080, 8080); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Request([]netip.Addr{netip.MustParseAddr("127.0.0.2")}, "tcp", 8080, 8080); err != nil {
		t.Errorf("another address: %v", err)
	}
	_, err := a.Request(dual, "tcp", 8080, 8080)
	var ae *AllocatedError
	if !errors.As(err, &ae) || !ae.IP.Is4() || ae.IP.IsUnspecified() {
		t.Errorf("0.0.0.0 over a taken 127.0.0.x port: %v", err)
	}
	// Nothing of a refused request stays taken.
	if _, err := a.Request([]netip.Addr{netip.IPv6Unspecified()}, "tcp", 8080, 8080); err != nil {
		t.Errorf("[::]:8080 after the refused dual request: %v", err)
	}
	if _, err := a.Request(local, "udp", 8080, 8080); err != nil {
		t.Errorf("udp 8080: %v", err)
	}
	if p, err := a.Request(local, "tcp", 8080, 8082); err != nil || p != 8081 {
		t.Errorf("range 8080-8082: %d, %v", p, err)
	}
	if _, err := a.Request(local, "tcp", 9000, 8000); !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Errorf("reversed range: %v", err)
	}
}

func TestCheckFree(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	lo := netip.MustParseAddr("127.0.0.1")
	err = CheckFree(lo, "tcp", port)
	want := fmt.Sprintf("failed to bind host port 127.0.0.1:%d/tcp: address already in use", port)
	if err == nil || err.Error() != want {
		t.Errorf("CheckFree(busy) = %v, want %q", err, want)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uport := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	if err := CheckFree(lo, "udp", uport); err == nil {
		t.Errorf("CheckFree(busy udp) = nil")
	}
	pc.Close()
	if err := CheckFree(lo, "udp", uport); err != nil {
		t.Errorf("CheckFree(freed udp) = %v", err)
	}

	// With the probe, an allocator skips a port a host program holds.
	a, _ := New(Config{ReadFile: fakeProc(fmt.Sprintf("%d %d", port, port+1), ""), Probe: CheckFree})
	if _, err := a.Request([]netip.Addr{lo}, "tcp", port, port); err == nil || !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("explicit busy port: %v", err)
	}
	if p, err := a.Request([]netip.Addr{lo}, "tcp", 0, 0); err == nil && p == port {
		t.Errorf("ephemeral allocation handed out the busy port %d", p)
	}
}
