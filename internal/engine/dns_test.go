package engine

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
)

// TestDNSLookupIPv6: the embedded DNS's lookups on a network find a
// container's IPv6 address beside its IPv4 one (the server answers AAAA
// from the former, A from the latter), by name, alias and compose service
// name, and PTR finds the container from either address; stopped
// containers and other networks answer nothing.
func TestDNSLookupIPv6(t *testing.T) {
	// A bare engine: the lookups need only the container store, and no
	// restore or monitor may change the records' states meanwhile.
	store, err := container.Open(filepath.Join(t.TempDir(), "containers"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{containers: store}
	add := func(id, name string, running bool, eps map[string]*types.EndpointSettings) {
		t.Helper()
		c := container.New(strings.Repeat(id, 64))
		c.Name = name
		c.Config = &types.Config{Labels: map[string]string{"com.docker.compose.service": name + "-svc"}}
		c.HostConfig = &types.HostConfig{}
		c.State.Running = running
		c.NetworkSettings = &types.NetworkSettings{Networks: eps}
		if err := e.containers.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	add("a", "web", true, map[string]*types.EndpointSettings{
		"net6": {NetworkID: "n6", IPAddress: "10.1.0.2", IPPrefixLen: 24, GlobalIPv6Address: "fd00:1::2", GlobalIPv6PrefixLen: 64, DNSNames: []string{"web", "alias", "aaaaaaaaaaaa"}},
		"net4": {NetworkID: "n4", IPAddress: "10.2.0.2", IPPrefixLen: 24, DNSNames: []string{"web"}},
	})
	add("b", "old", false, map[string]*types.EndpointSettings{
		"net6": {NetworkID: "n6", IPAddress: "10.1.0.3", GlobalIPv6Address: "fd00:1::3", DNSNames: []string{"old"}},
	})
	want := []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("fd00:1::2")}
	for _, tc := range []struct {
		net, name string
		want      []netip.Addr
	}{
		{"n6", "web", want},
		{"n6", "ALIAS", want},
		{"n6", "web-svc", want},
		{"n4", "web", []netip.Addr{netip.MustParseAddr("10.2.0.2")}},
		{"n6", "old", nil},
		{"n6", "nobody", nil},
	} {
		got, ok := e.lookupName(tc.net, tc.name)
		if !slices.Equal(got, tc.want) || ok != (tc.want != nil) {
			t.Errorf("lookupName(%q, %q) = %v, %v; want %v", tc.net, tc.name, got, ok, tc.want)
		}
	}
	for _, tc := range []struct{ net, addr, want string }{
		{"n6", "fd00:1::2", "web"},
		{"n6", "10.1.0.2", "web"},
		{"n4", "fd00:1::2", ""},
		{"n6", "fd00:1::3", ""},
	} {
		if got := e.lookupAddr(tc.net, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("lookupAddr(%q, %s) = %q, want %q", tc.net, tc.addr, got, tc.want)
		}
	}
}
