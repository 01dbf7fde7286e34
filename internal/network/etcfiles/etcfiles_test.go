package etcfiles

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const hdr = header + "\n\n"

func TestResolvConf(t *testing.T) {
	host := []byte("# host comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver fdb6::1\nnameserver bogus\nsearch corp.example\noptions edns0 trust-ad\nsortlist 10.0.0.0\n")
	for _, tc := range []struct {
		name string
		o    ResolvOptions
		want string
		ext  []string
		nd   bool
	}{
		{
			"internal resolver",
			ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: Internal},
			hdr + "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 trust-ad ndots:0\nsortlist 10.0.0.0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(127.0.0.53) host(10.0.0.1) host(fdb6::1)]\n# Invalid nameservers: [bogus]\n# Overrides: []\n# Option ndots from: internal\n",
			[]string{"host(127.0.0.53)", "host(10.0.0.1)", "host(fdb6::1)"}, false,
		},
		{
			"internal with --dns and ndots option",
			ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: Internal, DNS: []netip.Addr{netip.MustParseAddr("1.1.1.1")}, Options: []string{"ndots:2"}},
			hdr + "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:2\nsortlist 10.0.0.0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [1.1.1.1]\n# Invalid nameservers: [bogus]\n# Overrides: [nameservers options]\n# Option ndots from: override\n",
			[]string{"1.1.1.1"}, true,
		},
		{
			"legacy, IPv6 off",
			ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: Legacy},
			hdr + "nameserver 10.0.0.1\nsearch corp.example\noptions edns0 trust-ad\nsortlist 10.0.0.0\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Invalid nameservers: [bogus]\n# Overrides: []\n",
			nil, false,
		},
		{
			"legacy, only loopback, IPv6 on",
			ResolvOptions{Host: []byte("nameserver 127.0.0.53\nnameserver ::1\n"), HostPath: "/etc/resolv.conf", Mode: Legacy, IPv6: true},
			hdr + "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Used default nameservers.\n# Overrides: []\n",
			nil, false,
		},
		{
			"legacy, --dns loopback kept, search .",
			ResolvOptions{Host: host, HostPath: "/etc/resolv.conf", Mode: Legacy, DNS: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Search: []string{"."}},
			hdr + "nameserver 127.0.0.1\noptions edns0 trust-ad\nsortlist 10.0.0.0\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Invalid nameservers: [bogus]\n# Overrides: [nameservers search]\n",
			nil, false,
		},
		{
			"host network",
			ResolvOptions{Host: []byte("nameserver 127.0.0.53\noptions ndots:3\n"), HostPath: "/etc/resolv.conf", Mode: HostNetwork},
			hdr + "nameserver 127.0.0.53\noptions ndots:3\n\n# Based on host file: '/etc/resolv.conf'\n# Overrides: []\n# Option ndots from: host\n",
			nil, false,
		},
		{
			"internal, no host file",
			ResolvOptions{HostPath: "/etc/resolv.conf", Mode: Internal},
			hdr + "nameserver 127.0.0.11\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# NO EXTERNAL NAMESERVERS DEFINED\n# Overrides: []\n# Option ndots from: internal\n",
			nil, false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ResolvConf(tc.o)
			if string(r.Content) != tc.want {
				t.Errorf("ResolvConf =\n%s\nwant\n%s", r.Content, tc.want)
			}
			var ext []string
			for _, e := range r.ExtServers {
				ext = append(ext, e.String())
			}
			if !slices.Equal(ext, tc.ext) || r.NdotsSet != tc.nd {
				t.Errorf("ExtServers = %v, NdotsSet = %v; want %v, %v", ext, r.NdotsSet, tc.ext, tc.nd)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	extra, err := ParseExtraHost("db.local:10.1.2.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := ParseExtraHost("host.docker.internal=host-gateway", []netip.Addr{netip.MustParseAddr("172.17.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	v6, err := ParseExtraHost("six:[fd00::9]", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := string(Hosts(HostsOptions{
		Hostname: "web", Domainname: "example.org",
		Addrs: []netip.Addr{netip.MustParseAddr("172.18.0.2")},
		Extra: slices.Concat(extra, gw, v6),
		Links: []Host{{netip.MustParseAddr("172.17.0.3"), "dbalias db"}},
	}))
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" +
		"10.1.2.3\tdb.local\n172.17.0.1\thost.docker.internal\nfd00::9\tsix\n172.17.0.3\tdbalias db\n172.18.0.2\tweb.example.org web\n"
	if got != want {
		t.Errorf("Hosts =\n%s\nwant\n%s", got, want)
	}
	noV6 := string(Hosts(HostsOptions{Hostname: "h", Extra: v6, NoIPv6: true}))
	if noV6 != "127.0.0.1\tlocalhost\n" {
		t.Errorf("Hosts without IPv6 = %q", noV6)
	}
	for _, bad := range []string{"nocolon", ":1.2.3.4", "x:notanip", "gw:host-gateway"} {
		if _, err := ParseExtraHost(bad, nil); err == nil {
			t.Errorf("ParseExtraHost(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "add-host") && !strings.Contains(err.Error(), "host-gateway") {
			t.Errorf("ParseExtraHost(%q) = %v", bad, fmt.Sprint(err))
		}
	}
}
