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

// TestSeccompUnmarshalDirect checks that the program in the form skiffd
// writes is decoded straight from its base64, not by a second
// json.Unmarshal that scans the text twice more and allocates a decoder
// (issue 13: 70 of the 126 µs of decoding init's config, in the shim and
// again in init on every start), and that the result is the one the
// general path gives, also for forms the direct path leaves to it.
func TestSeccompUnmarshalDirect(t *testing.T) {
	prog := make([]syscall.SockFilter, 1600)
	for i := range prog {
		prog[i] = syscall.SockFilter{Code: uint16(i), Jt: uint8(i), Jf: uint8(i >> 8), K: uint32(i) * 0x01010101}
	}
	b, err := json.Marshal(SeccompFilter(prog))
	if err != nil {
		t.Fatal(err)
	}
	general := func(data []byte) (*Seccomp, error) {
		var j seccompJSON
		if err := json.Unmarshal(data, &j); err != nil {
			return nil, err
		}
		s := &Seccomp{Filter: j.Filter}
		if j.BPF != nil {
			s.Filter = make([]SockFilter, len(j.BPF)/8)
			for i := range s.Filter {
				s.Filter[i] = SockFilter{Code: uint16(j.BPF[8*i]) | uint16(j.BPF[8*i+1])<<8, Jt: j.BPF[8*i+2], Jf: j.BPF[8*i+3],
					K: uint32(j.BPF[8*i+4]) | uint32(j.BPF[8*i+5])<<8 | uint32(j.BPF[8*i+6])<<16 | uint32(j.BPF[8*i+7])<<24}
			}
		}
		return s, nil
	}
	for _, in := range []string{
		string(b),
		" " + string(b) + "\n",
		`{ "bpf" : "` + string(b[len(`{"bpf":"`):len(b)-2]) + `" }`,
		`{"bpf":"AAAAAAAAAAA="}`,
		`{"bpf":"IAAAAAQAAAAGAQIAAAD/fw==","filter":[]}`,
		`{"bpf":"IAAAAAQAAAAG\u0041QIAAAD/fw=="}`,
	} {
		var got Seccomp
		if err := got.UnmarshalJSON([]byte(in)); err != nil {
			t.Errorf("UnmarshalJSON(%.40q...) = %v", in, err)
			continue
		}
		want, err := general([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("UnmarshalJSON(%.40q...) = %d instructions, want %d as json.Unmarshal reads them", in, len(got.Filter), len(want.Filter))
		}
	}
	// What JSON refuses, the direct path refuses too.
	for _, in := range []string{"{\"bpf\":\"IAAAAAQA\nAAAGAQIAAAD/fw==\"}", `{"bpf":"IAAAAAQAAAAGAQIAAAD/fw="}`, `{"bpf":"AAAA"}`} {
		var s Seccomp
		if err := s.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSON(%q) = nil, want an error", in)
		}
	}
	// The program's buffer and the instructions: nothing of a decoder.
	allocs := testing.AllocsPerRun(20, func() {
		var s Seccomp
		if err := s.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("UnmarshalJSON of a %d-instruction program allocates %v times, want at most 2 (decoded directly)", len(prog), allocs)
	}
}
