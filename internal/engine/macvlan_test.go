package engine

import (
	"testing"

	"skiffd/internal/netlink"
)

func TestParseVLAN(t *testing.T) {
	for _, tc := range []struct {
		in, base, err string
		id            uint16
	}{
		{in: "eth0.10", base: "eth0", id: 10},
		{in: "bond0.4094", base: "bond0", id: 4094},
		{in: "eth0", err: "invalid subinterface vlan name eth0, example formatting is eth0.10"},
		{in: "eth0.x", err: "unable to parse a valid vlan id from: x (ex. eth0.10 for vlan 10)"},
		{in: "eth0.0", err: "vlan id must be between 1-4094, received: 0"},
		{in: "eth0.4095", err: "vlan id must be between 1-4094, received: 4095"},
	} {
		base, id, err := parseVLAN(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseVLAN(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || base != tc.base || id != tc.id {
			t.Errorf("parseVLAN(%q) = %q, %d, %v; want %q, %d", tc.in, base, id, err, tc.base, tc.id)
		}
	}
}

func TestMacvlanMode(t *testing.T) {
	for in, want := range map[string]uint32{"": netlink.MacvlanBridge, "bridge": netlink.MacvlanBridge, "private": netlink.MacvlanPrivate,
		"vepa": netlink.MacvlanVEPA, "passthru": netlink.MacvlanPassthru} {
		if got, ok := macvlanMode(in); !ok || got != want {
			t.Errorf("macvlanMode(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := macvlanMode("Bridge"); ok {
		t.Errorf("macvlanMode accepted Bridge")
	}
}
