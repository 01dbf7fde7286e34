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

// TestSeccompJSON: the program travels as base64 of its 8-byte
// instructions (a dozen bytes of JSON an instruction, not thirty, and one
// string to decode instead of an object per instruction), and the older
// form, an array of objects, still reads.
func TestSeccompJSON(t *testing.T) {
	prog := make([]syscall.SockFilter, 1000)
	for i := range prog {
		prog[i] = syscall.SockFilter{Code: uint16(i), Jt: uint8(i), Jf: uint8(i >> 8), K: uint32(i) * 0x01010101}
	}
	s := SeccompFilter(prog)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 12*len(prog) {
		t.Errorf("a %d-instruction program is %d bytes of JSON, want at most %d", len(prog), len(b), 12*len(prog))
	}
	var back Seccomp
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Error("round trip changed the program")
	}
	old := `{"filter":[{"c":32,"t":0,"f":0,"k":4},{"c":6,"t":1,"f":2,"k":2147418112}]}`
	var o Seccomp
	if err := json.Unmarshal([]byte(old), &o); err != nil {
		t.Fatalf("Unmarshal(%s) = %v", old, err)
	}
	if want := []SockFilter{{Code: 32, K: 4}, {Code: 6, Jt: 1, Jf: 2, K: 0x7fff0000}}; !reflect.DeepEqual(o.Filter, want) {
		t.Errorf("Unmarshal(%s) = %+v, want %+v", old, o.Filter, want)
	}
	if err := json.Unmarshal([]byte(`{"bpf":"AAAA"}`), &o); err == nil {
		t.Error("Unmarshal of a 3-byte program = nil, want an error")
	}
}
