package seccomp

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
)

// dockerStyle is a profile in the shape users pass with
// --security-opt seccomp=file.json.
const dockerStyle = `{
	"defaultAction": "SCMP_ACT_ERRNO",
	"defaultErrnoRet": 1,
	"archMap": [
		{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
		{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
	],
	"syscalls": [
		{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
		{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
		{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
		{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
		 "comment": "no namespaces", "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
		{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
		{"name": "getpid", "action": "SCMP_ACT_LOG"}
	]
}`

func TestParseProfileDockerFormat(t *testing.T) {
	p, err := ParseProfile([]byte(dockerStyle))
	if err != nil {
		t.Fatalf("ParseProfile: %v", err)
	}
	if p.DefaultAction != ActErrno || p.DefaultErrno == nil || *p.DefaultErrno != 1 {
		t.Errorf("default = %s/%v, want SCMP_ACT_ERRNO/1", p.DefaultAction, p.DefaultErrno)
	}
	if len(p.Syscalls) != 6 || p.Syscalls[5].Name != "getpid" || p.Syscalls[3].Args[0].Op != OpMaskedEqual {
		t.Fatalf("syscalls decoded wrongly: %+v", p.Syscalls)
	}
	prog := mustCompile(t, p, dockerCaps, archX86_64, kernel618)
	a := uint32(auditX86_64)
	checkCalls(t, prog, []call{
		{"read", a, 0, [6]uint64{}, allow},
		{"ptrace", a, 101, [6]uint64{}, allow},
		{"socket(AF_INET)", a, 41, [6]uint64{2}, allow},
		{"socket(AF_VSOCK)", a, 41, [6]uint64{40}, eperm},
		{"clone(SIGCHLD)", a, 56, [6]uint64{sigchld}, allow},
		{"clone(CLONE_NEWUSER)", a, 56, [6]uint64{cloneNewuser}, eperm},
		{"clone3", a, 435, [6]uint64{}, enosys},
		{"getpid", a, 39, [6]uint64{}, retLog},
		{"mount", a, 165, [6]uint64{}, eperm},
		{"i386 read", auditI386, 3, [6]uint64{}, allow},
	})
}

func TestDefaultProfileJSONRoundTrip(t *testing.T) {
	data, err := json.Marshal(DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		t.Fatalf("ParseProfile(json of DefaultProfile): %v", err)
	}
	if !reflect.DeepEqual(p, DefaultProfile()) {
		t.Errorf("DefaultProfile does not survive a JSON round trip")
	}
	a := mustCompile(t, p, dockerCaps, archX86_64, kernel618)
	b := mustCompile(t, DefaultProfile(), dockerCaps, archX86_64, kernel618)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("parsed default profile compiles differently")
	}
}

func TestDefaultProfileIsFresh(t *testing.T) {
	p := DefaultProfile()
	p.Syscalls[0].Names[0] = "changed"
	*p.DefaultErrno = 99
	q := DefaultProfile()
	if q.Syscalls[0].Names[0] != "accept" || *q.DefaultErrno != 1 {
		t.Errorf("changing one DefaultProfile changed the next")
	}
}

func TestParseProfileEmptyMeansUnconfined(t *testing.T) {
	for _, in := range []string{`{}`, `{"syscalls": []}`, `{"archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`} {
		p, err := ParseProfile([]byte(in))
		if err != nil || p != nil {
			t.Errorf("ParseProfile(%s) = %v, %v, want nil, nil", in, p, err)
		}
	}
}

func TestParseProfileErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`not json`, "Decoding seccomp profile failed: "},
		{`{"defaultAction": 5}`, "Decoding seccomp profile failed: "},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`,
			"both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}`,
			"both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"},
		{`{"defaultAction": "SCMP_ACT_NOPE"}`, `unknown action "SCMP_ACT_NOPE"`},
		{`{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`, "no action given"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}`, "not supported"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}`, "errnoRet is only valid"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}`, "out of range"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "argument index 6 out of range"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}`, "unknown operator"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}`, `invalid kernel version: "4", expected "<kernel>.<major>"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "0.0"}}]}`, "version cannot be 0.0"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.999"}}]}`, "invalid kernel version"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_VAX"]}`, `unknown architecture "SCMP_ARCH_VAX"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}`, `unknown flag`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/notify.sock"}`, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseProfile([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseProfile(%s) error = %v, want one containing %q", tt.in, err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("ParseProfile(%s) error %v is not an invalid parameter", tt.in, err)
			}
		})
	}
}

func TestKernelVersions(t *testing.T) {
	tests := []struct {
		release string
		want    kernelVersion
	}{
		{"6.18.44-fc-v769", kernelVersion{6, 18}},
		{"3.12-1-amd64", kernelVersion{3, 12}},
		{"4.8.0", kernelVersion{4, 8}},
	}
	for _, tt := range tests {
		got, err := parseRelease(tt.release)
		if err != nil || got != tt.want {
			t.Errorf("parseRelease(%q) = %v, %v, want %v", tt.release, got, err, tt.want)
		}
	}
	if _, err := parseRelease("linux"); err == nil {
		t.Errorf("parseRelease(%q) succeeded, want an error", "linux")
	}
	order := []struct {
		k, min kernelVersion
		want   bool
	}{
		{kernelVersion{4, 8}, kernelVersion{4, 8}, true},
		{kernelVersion{4, 7}, kernelVersion{4, 8}, false},
		{kernelVersion{5, 0}, kernelVersion{4, 8}, true},
		{kernelVersion{3, 19}, kernelVersion{4, 8}, false},
	}
	for _, o := range order {
		if got := o.k.atLeast(o.min); got != o.want {
			t.Errorf("%v.atLeast(%v) = %v, want %v", o.k, o.min, got, o.want)
		}
	}
}

func TestSyscallTables(t *testing.T) {
	// Spot checks against the kernel's syscall tables, including numbers
	// newer than the headers the tables were generated from.
	tests := []struct {
		table map[string]uint32
		name  string
		want  uint32
	}{
		{sysnumX86_64(), "read", 0}, {sysnumX86_64(), "seccomp", 317}, {sysnumX86_64(), "setns", 308},
		{sysnumX86_64(), "clone3", 435}, {sysnumX86_64(), "uretprobe", 335}, {sysnumX86_64(), "mseal", 462},
		{sysnumX86_64(), "removexattrat", 466}, {sysnumX86_64(), "file_setattr", 469},
		{sysnumI386(), "socketcall", 102}, {sysnumI386(), "_llseek", 140}, {sysnumI386(), "socket", 359},
		{sysnumI386(), "clone3", 435}, {sysnumI386(), "mseal", 462},
		{sysnumAarch64(), "io_setup", 0}, {sysnumAarch64(), "fcntl", 25}, {sysnumAarch64(), "newfstatat", 79},
		{sysnumAarch64(), "mmap", 222}, {sysnumAarch64(), "seccomp", 277}, {sysnumAarch64(), "clone3", 435},
	}
	for _, tt := range tests {
		if got, ok := tt.table[tt.name]; !ok || got != tt.want {
			t.Errorf("table[%q] = %d, %v, want %d", tt.name, got, ok, tt.want)
		}
	}
	for _, absent := range []string{"open", "fork", "fcntl64", "clock_gettime64"} {
		if _, ok := sysnumAarch64()[absent]; ok {
			t.Errorf("arm64 table has %q, which arm64 lacks", absent)
		}
	}
}

func FuzzParseProfile(f *testing.F) {
	def, err := json.Marshal(DefaultProfile())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	f.Add([]byte(dockerStyle))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_KILL", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"], "syscalls": [{"name": "ioctl", "action": "SCMP_ACT_TRAP", "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 21600, "op": "SCMP_CMP_LE"}]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "5.4"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil || p == nil {
			return
		}
		for _, native := range []*archInfo{archX86_64, archAarch64} {
			prog, err := compile(p, dockerCaps, native, kernel618)
			if err != nil {
				continue // too large
			}
			if err := checkProgram(prog); err != nil {
				t.Fatalf("invalid program for %s: %v", native.goName, err)
			}
			want := reference(p, dockerCaps, native, kernel618)
			for _, d := range []seccompData{
				{nr: 0, arch: native.audit}, {nr: 16, arch: native.audit, args: [6]uint64{1, 21505}},
				{nr: 56, arch: native.audit, args: [6]uint64{0x10000000}}, {nr: 1000, arch: native.audit},
				{nr: 20, arch: auditI386}, {nr: 0xffffffff, arch: native.audit},
			} {
				got, err := run(prog, d)
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if w := want(d); got != w {
					t.Fatalf("filter(%+v) = %s, want %s", d, retName(got), retName(w))
				}
			}
		}
	})
}
