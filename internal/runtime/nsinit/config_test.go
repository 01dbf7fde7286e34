package nsinit

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"skiffd/internal/runtime/spec"
)

// TestInitConfigRawSpec checks that a config sent with the spec's JSON as
// read (RawSpec, the shim's way, issue 13) decodes in init to the same
// config as one whose spec is encoded again, and carries the spec once.
func TestInitConfigRawSpec(t *testing.T) {
	sp := spec.Default("c1", "/var/lib/skiffd/c1/rootfs")
	sp.Process.Args = []string{"sh", "-c", "echo <&>"}
	sp.Seccomp = &spec.Seccomp{Filter: []spec.SockFilter{{Code: 6, K: 0x7fff0000}}}
	raw, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	base := InitConfig{Spec: sp, CgroupMode: CgroupHybrid, CgroupMounts: map[string]string{"memory": "/sys/fs/cgroup/memory/c1"}}
	withRaw := base
	withRaw.RawSpec = append(raw, '\n') // as read from spec.json
	var got, want InitConfig
	for _, c := range []struct {
		cfg InitConfig
		dst *InitConfig
	}{{base, &want}, {withRaw, &got}} {
		b, err := json.Marshal(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), `"spec":`); n != 1 {
			t.Fatalf("%s has %d specs, want 1", b, n)
		}
		if err := json.Unmarshal(b, c.dst); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config with the raw spec decodes to\n%+v\nwant\n%+v", got, want)
	}
}
