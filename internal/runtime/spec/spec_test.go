package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := func() *Spec {
		s := Default("c1", "/rootfs")
		s.Process.Args = []string{"sh"}
		return s
	}
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		err    string
	}{
		{"default", func(*Spec) {}, ""},
		{"no args", func(s *Spec) { s.Process.Args = nil }, "no command specified"},
		{"relative cwd", func(s *Spec) { s.Process.Cwd = "work" }, "the working directory 'work' is invalid, it needs to be an absolute path"},
		{"relative root", func(s *Spec) { s.Root = "rootfs" }, "is not an absolute path"},
		{"bad id", func(s *Spec) { s.ID = "../x" }, "invalid container id"},
		{"newer version", func(s *Spec) { s.Version = Version + 1 }, "newer than this runtime"},
		{"no mount ns", func(s *Spec) { s.Namespaces = []Namespace{{Type: PIDNamespace}} }, "mount namespace of its own"},
		{"joined mount ns", func(s *Spec) {
			s.Namespaces = append(s.Namespaces[:4], Namespace{Type: MountNamespace, Path: "/proc/1/ns/mnt"})
		}, "mount namespace of its own"},
		{"user ns", func(s *Spec) { s.Namespaces = append(s.Namespaces, Namespace{Type: "user"}) }, `unsupported namespace type "user"`},
		{"relative mount", func(s *Spec) { s.Mounts = append(s.Mounts, Mount{Destination: "data"}) }, "is not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.change(s)
			err := s.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate() = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	s := Default("c1", "/rootfs")
	s.Process.Args = []string{"sh", "-c", "echo hi"}
	s.Cgroup = &Cgroup{Parent: "p", Resources: Resources{Memory: 1 << 20, Devices: []DeviceRule{{Allow: true, Type: "c", Major: 1, Minor: -1, Access: "rw"}}}}
	s.Seccomp = SeccompFilter([]syscall.SockFilter{{Code: 6, K: 0x7fff0000}})
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Errorf("round trip changed the spec:\n%+v\n%+v", back, *s)
	}
	if SeccompFilter(nil) != nil {
		t.Error("SeccompFilter(nil) is not nil (unconfined)")
	}
}
