package shimclient

import (
	"os"
	"path/filepath"
	"testing"

	"skiffd/internal/runtime/spec"
)

// TestSpecOptions covers the spec fields dockerd's run options map to.
func TestSpecOptions(t *testing.T) {
	rt := newRuntime(t)
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "in"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n10.0.0.2\tc1\n"), 0o644)
	adj := 500
	for _, tc := range []struct {
		name  string
		cmd   string
		setup func(*spec.Spec)
		want  string
		check func(t *testing.T)
	}{
		{"volume rw", "cat /data/in; echo from container > /data/out", func(s *spec.Spec) {
			s.Mounts = append(s.Mounts, spec.Mount{Destination: "/data", Type: "bind", Source: vol, Options: []string{"rbind", "rprivate"}})
		}, "from host\n", func(t *testing.T) {
			if b, err := os.ReadFile(filepath.Join(vol, "out")); err != nil || string(b) != "from container\n" {
				t.Errorf("host sees %q, %v", b, err)
			}
		}},
		{"volume ro", "cat /ro/in; touch /ro/x 2>/dev/null && echo wrote || echo denied", func(s *spec.Spec) {
			s.Mounts = append(s.Mounts, spec.Mount{Destination: "/ro", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}})
		}, "from host\ndenied\n", nil},
		{"hosts file", "cat /etc/hosts", func(s *spec.Spec) {
			s.Mounts = append(s.Mounts, spec.Mount{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"rbind", "rprivate"}})
		}, "127.0.0.1\tlocalhost\n10.0.0.2\tc1\n", nil},
		{"tmpfs", "grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4", func(s *spec.Spec) {
			s.Mounts = append(s.Mounts, spec.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=1m"}})
		}, "tmpfs rw,nosuid,nodev,relatime,size=1024k\n", nil},
		{"read-only root", "touch /x 2>/dev/null && echo wrote || echo denied; touch /tmp/y 2>/dev/null && echo tmp-wrote || echo tmp-denied", func(s *spec.Spec) {
			s.ReadonlyRoot = true
		}, "denied\ntmp-denied\n", nil},
		{"rlimit", "ulimit -n; ulimit -Hn", func(s *spec.Spec) {
			s.Process.Rlimits = []spec.Rlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}}
		}, "1024\n2048\n", nil},
		{"sysctl", "cat /proc/sys/net/ipv4/ip_forward", func(s *spec.Spec) {
			s.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "1\n", nil},
		{"oom score", "cat /proc/self/oom_score_adj", func(s *spec.Spec) {
			s.Process.OOMScoreAdj = &adj
		}, "500\n", nil},
		{"groups", "id -G", func(s *spec.Spec) {
			s.Process.User, s.Process.AdditionalGroups = "user", []string{"77"}
		}, "1000 50 77\n", nil},
		{"domainname", "cat /proc/sys/kernel/domainname", func(s *spec.Spec) {
			s.Domainname = "example.org"
		}, "example.org\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t, "sh", "-c", tc.cmd)
			tc.setup(s)
			res := run(t, rt, s)
			if res.stdout != tc.want {
				t.Errorf("stdout %q (stderr %q, exit %d), want %q", res.stdout, res.stderr, res.exit.Code, tc.want)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}
