package container

import (
	"context"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
)

// TestMigrateMACAddress follows dockerd's handleMACAddressBC: the
// container-wide MAC address goes to the endpoint of the network mode,
// before 1.44 silently (an endpoint's own one dropped), from 1.44 with the
// deprecation warning and only when it agrees with the endpoint's.
func TestMigrateMACAddress(t *testing.T) {
	const mac = "02:42:ac:11:00:0a"
	ep := func(m string) *types.EndpointSettings { return &types.EndpointSettings{MacAddress: m} }
	for _, c := range []struct {
		name, version, mode, mac string
		eps                      map[string]*types.EndpointSettings
		want                     map[string]string // endpoint MAC by network
		warn                     bool
		err                      string
	}{
		{name: "none given", version: "1.50", mode: "default", want: map[string]string{}},
		{name: "default network", version: "1.50", mode: "default", mac: mac, want: map[string]string{"default": mac}, warn: true},
		{name: "user network", version: "1.50", mode: "net1", mac: mac, eps: map[string]*types.EndpointSettings{"net1": ep("")}, want: map[string]string{"net1": mac}, warn: true},
		{name: "agrees", version: "1.50", mode: "net1", mac: mac, eps: map[string]*types.EndpointSettings{"net1": ep(strings.ToUpper(mac))}, want: map[string]string{"net1": strings.ToUpper(mac)}, warn: true},
		{name: "disagrees", version: "1.50", mode: "net1", mac: mac, eps: map[string]*types.EndpointSettings{"net1": ep("02:42:ac:11:00:0b")}, err: "must match the endpoint-specific MAC address"},
		{name: "no entry for the mode", version: "1.50", mode: "net1", mac: mac, eps: map[string]*types.EndpointSettings{"net2": ep("")}, err: "HostConfig.NetworkMode must match"},
		{name: "host network", version: "1.50", mode: "host", mac: mac, want: map[string]string{}, warn: true},
		{name: "old API", version: "1.41", mode: "bridge", mac: mac, want: map[string]string{"bridge": mac}},
		{name: "old API, other key", version: "1.41", mode: "net1", mac: mac, eps: map[string]*types.EndpointSettings{"abc123": ep("02:42:ac:11:00:0b")}, want: map[string]string{"abc123": mac}},
		{name: "old API drops the endpoint's", version: "1.43", mode: "net1", eps: map[string]*types.EndpointSettings{"net1": ep(mac)}, want: map[string]string{"net1": ""}},
		{name: "old API, host network", version: "1.43", mode: "host", mac: mac, err: "conflicting options: mac-address and the network mode"},
	} {
		req := &types.CreateRequest{Config: &types.Config{MacAddress: c.mac}, HostConfig: &types.HostConfig{NetworkMode: c.mode}}
		if c.eps != nil {
			req.NetworkingConfig = &types.NetworkingConfig{EndpointsConfig: c.eps}
		}
		warn, err := migrateMACAddress(wire.WithVersion(context.Background(), c.version), req)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (warn == macAddressDeprecated) != c.warn || (warn != "" && warn != macAddressDeprecated) {
			t.Errorf("%s: warning %q, want one: %v", c.name, warn, c.warn)
		}
		if req.Config.MacAddress != "" {
			t.Errorf("%s: Config.MacAddress kept", c.name)
		}
		got := map[string]string{}
		if req.NetworkingConfig != nil {
			for k, v := range req.NetworkingConfig.EndpointsConfig {
				got[k] = v.MacAddress
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: endpoints %v, want %v", c.name, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: endpoint %s MAC %q, want %q", c.name, k, got[k], v)
			}
		}
	}
}
