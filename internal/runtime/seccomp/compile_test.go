package seccomp

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"
)

// dockerCaps is dockerd's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE"}

var kernel618 = kernelVersion{6, 18}

const (
	allow  = retAllow
	eperm  = retErrno | 1
	enosys = retErrno | 38
	kill   = retKillProcess
)

func retName(v uint32) string {
	switch {
	case v == retAllow:
		return "ALLOW"
	case v == retKillProcess:
		return "KILL_PROCESS"
	case v == retKillThread:
		return "KILL_THREAD"
	case v&0xffff0000 == retErrno:
		return fmt.Sprintf("ERRNO(%d)", v&0xffff)
	}
	return fmt.Sprintf("%#x", v)
}

type call struct {
	name string
	arch uint32
	nr   uint32
	args [6]uint64
	want uint32
}

func mustCompile(t *testing.T, p *Profile, caps []string, native *archInfo, kv kernelVersion) []syscall.SockFilter {
	t.Helper()
	prog, err := compile(p, caps, native, kv)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if err := checkProgram(prog); err != nil {
		t.Fatalf("compiled program is invalid: %v", err)
	}
	return prog
}

func checkCalls(t *testing.T, prog []syscall.SockFilter, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			got, err := run(prog, seccompData{nr: c.nr, arch: c.arch, args: c.args})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != c.want {
				t.Errorf("filter(arch %#x, nr %d, args %#x) = %s, want %s", c.arch, c.nr, c.args[:2], retName(got), retName(c.want))
			}
		})
	}
}

const (
	auditX86_64  = 0xc000003e
	auditI386    = 0x40000003
	auditAarch64 = 0xc00000b7
	cloneNewns   = 0x00020000
	cloneNewuser = 0x10000000
	sigchld      = 17
)

// The syscall numbers here are written out rather than taken from the
// tables, so a wrong table entry fails the test too.
func TestDefaultProfileAmd64(t *testing.T) {
	prog := mustCompile(t, DefaultProfile(), dockerCaps, archX86_64, kernel618)
	t.Logf("default profile, amd64 with i386: %d instructions", len(prog))
	if len(prog) > maxInsns {
		t.Fatalf("program has %d instructions, the kernel takes %d", len(prog), maxInsns)
	}
	a := uint32(auditX86_64)
	checkCalls(t, prog, []call{
		{"read", a, 0, [6]uint64{}, allow},
		{"write", a, 1, [6]uint64{}, allow},
		{"getpid", a, 39, [6]uint64{}, allow},
		{"execve", a, 59, [6]uint64{}, allow},
		{"arch_prctl", a, 158, [6]uint64{}, allow},
		{"chroot with CAP_SYS_CHROOT", a, 161, [6]uint64{}, allow},
		{"ptrace on kernel >= 4.8", a, 101, [6]uint64{}, allow},
		{"uretprobe", a, 335, [6]uint64{}, allow},
		{"removexattrat, newest in profile", a, 466, [6]uint64{}, allow},
		{"mount", a, 165, [6]uint64{}, eperm},
		{"umount2", a, 166, [6]uint64{}, eperm},
		{"unshare", a, 272, [6]uint64{cloneNewns}, eperm},
		{"setns", a, 308, [6]uint64{}, eperm},
		{"keyctl", a, 250, [6]uint64{}, eperm},
		{"add_key", a, 248, [6]uint64{}, eperm},
		{"request_key", a, 249, [6]uint64{}, eperm},
		{"reboot", a, 169, [6]uint64{}, eperm},
		{"kexec_load", a, 246, [6]uint64{}, eperm},
		{"init_module", a, 175, [6]uint64{}, eperm},
		{"bpf without CAP_SYS_ADMIN", a, 321, [6]uint64{}, eperm},
		{"perf_event_open", a, 298, [6]uint64{}, eperm},
		{"open_by_handle_at", a, 304, [6]uint64{}, eperm},
		{"swapon", a, 167, [6]uint64{}, eperm},
		{"uselib, unknown below the newest", a, 134, [6]uint64{}, eperm},
		{"personality(PER_LINUX)", a, 135, [6]uint64{0}, allow},
		{"personality(query)", a, 135, [6]uint64{0xffffffff}, allow},
		{"personality(UNAME26|PER_LINUX32)", a, 135, [6]uint64{0x20008}, allow},
		{"personality(0x1234)", a, 135, [6]uint64{0x1234}, eperm},
		{"personality(READ_IMPLIES_EXEC)", a, 135, [6]uint64{0x0400000}, eperm},
		{"personality with high word set", a, 135, [6]uint64{0x1_ffffffff}, eperm},
		{"clone(SIGCHLD)", a, 56, [6]uint64{sigchld}, allow},
		{"clone(thread flags)", a, 56, [6]uint64{0x3d0f00}, allow},
		{"clone(CLONE_NEWUSER)", a, 56, [6]uint64{cloneNewuser | sigchld}, eperm},
		{"clone(CLONE_NEWNS)", a, 56, [6]uint64{cloneNewns}, eperm},
		{"clone(CLONE_NEWNET)", a, 56, [6]uint64{0x40000000}, eperm},
		{"clone3", a, 435, [6]uint64{}, enosys},
		{"socket(AF_INET)", a, 41, [6]uint64{2}, allow},
		{"socket(AF_UNIX)", a, 41, [6]uint64{1}, allow},
		{"socket(AF_NETLINK)", a, 41, [6]uint64{16}, allow},
		{"socket(AF_ALG)", a, 41, [6]uint64{38}, eperm},
		{"socket(39)", a, 41, [6]uint64{39}, allow},
		{"socket(AF_VSOCK)", a, 41, [6]uint64{40}, eperm},
		{"socket(AF_KCM)", a, 41, [6]uint64{41}, allow},
		{"socket(AF_INET) with high word set", a, 41, [6]uint64{1<<32 | 2}, allow},
		{"open_tree_attr, newer than the profile", a, 467, [6]uint64{}, enosys},
		{"syscall 1000", a, 1000, [6]uint64{}, enosys},
		{"syscall 0x3fffffff", a, 0x3fffffff, [6]uint64{}, enosys},
		{"x32 read", a, x32SyscallBit | 0, [6]uint64{}, eperm},
		{"x32 execve", a, x32SyscallBit | 520, [6]uint64{}, eperm},
		{"x32 getpid", a, x32SyscallBit | 39, [6]uint64{}, eperm},
		{"nr -1", a, 0xffffffff, [6]uint64{}, eperm},
		{"aarch64 getpid", auditAarch64, 172, [6]uint64{}, kill},
		{"unknown arch", 0x12345678, 0, [6]uint64{}, kill},
		{"arm", 0x40000028, 20, [6]uint64{}, kill},
		{"i386 getpid", auditI386, 20, [6]uint64{}, allow},
		{"i386 mount", auditI386, 21, [6]uint64{}, eperm},
		{"i386 socketcall", auditI386, 102, [6]uint64{}, allow},
		{"i386 personality(0x1234)", auditI386, 136, [6]uint64{0x1234}, eperm},
		{"i386 personality(0)", auditI386, 136, [6]uint64{0}, allow},
		{"i386 socket(AF_VSOCK)", auditI386, 359, [6]uint64{40}, eperm},
		{"i386 socket(AF_INET)", auditI386, 359, [6]uint64{2}, allow},
		{"i386 clone(CLONE_NEWUSER)", auditI386, 120, [6]uint64{cloneNewuser}, eperm},
		{"i386 clone(SIGCHLD)", auditI386, 120, [6]uint64{sigchld}, allow},
		{"i386 modify_ldt", auditI386, 123, [6]uint64{}, allow},
		{"i386 syscall 1000", auditI386, 1000, [6]uint64{}, enosys},
	})
}

func TestDefaultProfileCapabilities(t *testing.T) {
	a := uint32(auditX86_64)
	tests := []struct {
		name  string
		caps  []string
		calls []call
	}{
		{"CAP_SYS_ADMIN", append([]string{"CAP_SYS_ADMIN"}, dockerCaps...), []call{
			{"mount", a, 165, [6]uint64{}, allow},
			{"unshare", a, 272, [6]uint64{}, allow},
			{"setns", a, 308, [6]uint64{}, allow},
			{"bpf", a, 321, [6]uint64{}, allow},
			{"clone(CLONE_NEWUSER)", a, 56, [6]uint64{cloneNewuser}, allow},
			{"clone3", a, 435, [6]uint64{}, allow},
			{"keyctl stays denied", a, 250, [6]uint64{}, eperm},
			{"reboot stays denied", a, 169, [6]uint64{}, eperm},
		}},
		{"SYS_BOOT without prefix", []string{"sys_boot"}, []call{
			{"reboot", a, 169, [6]uint64{}, allow},
			{"mount", a, 165, [6]uint64{}, eperm},
			{"chroot without CAP_SYS_CHROOT", a, 161, [6]uint64{}, eperm},
		}},
		{"CAP_BPF", []string{"CAP_BPF", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"}, []call{
			{"bpf", a, 321, [6]uint64{}, allow},
			{"kcmp", a, 312, [6]uint64{}, allow},
			{"init_module", a, 175, [6]uint64{}, allow},
			{"clone(CLONE_NEWNS)", a, 56, [6]uint64{cloneNewns}, eperm},
		}},
		{"no caps", nil, []call{
			{"chroot", a, 161, [6]uint64{}, eperm},
			{"getpid", a, 39, [6]uint64{}, allow},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCalls(t, mustCompile(t, DefaultProfile(), tt.caps, archX86_64, kernel618), tt.calls)
		})
	}
}

func TestDefaultProfileOldKernel(t *testing.T) {
	// ptrace is only in the base allow list from 4.8 on, where seccomp
	// checks run again after a tracer changes the syscall.
	prog := mustCompile(t, DefaultProfile(), dockerCaps, archX86_64, kernelVersion{4, 4})
	checkCalls(t, prog, []call{
		{"ptrace", auditX86_64, 101, [6]uint64{}, eperm},
		{"process_vm_readv", auditX86_64, 310, [6]uint64{}, eperm},
		{"read", auditX86_64, 0, [6]uint64{}, allow},
	})
}

func TestDefaultProfileArm64(t *testing.T) {
	prog := mustCompile(t, DefaultProfile(), dockerCaps, archAarch64, kernel618)
	t.Logf("default profile, arm64: %d instructions", len(prog))
	a := uint32(auditAarch64)
	checkCalls(t, prog, []call{
		{"getpid", a, 172, [6]uint64{}, allow},
		{"openat", a, 56, [6]uint64{}, allow},
		{"mount", a, 40, [6]uint64{}, eperm},
		{"unshare", a, 97, [6]uint64{}, eperm},
		{"keyctl", a, 219, [6]uint64{}, eperm},
		{"clone(CLONE_NEWUSER)", a, 220, [6]uint64{cloneNewuser}, eperm},
		{"clone(SIGCHLD)", a, 220, [6]uint64{sigchld}, allow},
		{"syscall 1000", a, 1000, [6]uint64{}, enosys},
		{"bit 30 is no x32 on arm64", a, x32SyscallBit, [6]uint64{}, enosys},
		{"x86_64 read", auditX86_64, 0, [6]uint64{}, kill},
		// arm is in the archMap but there is no table for it here.
		{"arm", 0x40000028, 20, [6]uint64{}, kill},
	})
}

func u32(v uint32) *uint32 { return &v }

func TestCustomProfiles(t *testing.T) {
	a := uint32(auditX86_64)
	const getpid, getppid, mount, personality = 39, 110, 165, 135
	tests := []struct {
		name  string
		p     *Profile
		calls []call
	}{
		{"errno default allows only what is listed", &Profile{
			DefaultAction: ActErrno,
			Syscalls:      []Rule{{Names: []string{"write", "exit_group"}, Action: ActAllow}},
		}, []call{
			{"getpid", a, getpid, [6]uint64{}, eperm},
			{"write", a, 1, [6]uint64{}, allow},
			{"exit_group", a, 231, [6]uint64{}, allow},
			{"above the newest listed", a, 232, [6]uint64{}, enosys},
		}},
		{"allow default with a deny list gets no ENOSYS and kills x32", &Profile{
			DefaultAction: ActAllow,
			Syscalls:      []Rule{{Names: []string{"getpid"}, Action: ActErrno, Errno: u32(13)}},
		}, []call{
			{"getpid", a, getpid, [6]uint64{}, retErrno | 13},
			{"getppid", a, getppid, [6]uint64{}, allow},
			{"syscall 1000", a, 1000, [6]uint64{}, allow},
			{"x32 getpid", a, x32SyscallBit | getpid, [6]uint64{}, kill},
			{"nr -1", a, 0xffffffff, [6]uint64{}, allow},
		}},
		{"defaultErrnoRet", &Profile{
			DefaultAction: ActErrno, DefaultErrno: u32(38),
			Syscalls: []Rule{{Names: []string{"getpid"}, Action: ActAllow}},
		}, []call{
			{"getppid", a, getppid, [6]uint64{}, enosys},
			{"syscall 1000", a, 1000, [6]uint64{}, enosys},
		}},
		{"unconditional rule wins over conditional ones", &Profile{
			DefaultAction: ActErrno,
			Syscalls: []Rule{
				{Names: []string{"personality"}, Action: ActTrap, Args: []Arg{{Index: 0, Value: 5, Op: OpEqualTo}}},
				{Names: []string{"personality"}, Action: ActAllow},
				{Names: []string{"personality"}, Action: ActKillProcess},
			},
		}, []call{
			{"personality(5)", a, personality, [6]uint64{5}, allow},
			{"personality(6)", a, personality, [6]uint64{6}, allow},
		}},
		{"rule equal to the default is dropped", &Profile{
			DefaultAction: ActErrno,
			Syscalls: []Rule{
				{Names: []string{"personality"}, Action: ActErrno},
				{Names: []string{"personality"}, Action: ActAllow, Args: []Arg{{Index: 0, Value: 5, Op: OpEqualTo}}},
			},
		}, []call{
			{"personality(5)", a, personality, [6]uint64{5}, allow},
			{"personality(6)", a, personality, [6]uint64{6}, eperm},
		}},
		{"repeated index is OR, distinct indexes AND", &Profile{
			DefaultAction: ActErrno,
			Syscalls: []Rule{{Names: []string{"mount"}, Action: ActAllow, Args: []Arg{
				{Index: 0, Value: 1, Op: OpEqualTo},
				{Index: 0, Value: 2, Op: OpEqualTo},
				{Index: 1, Value: 7, Op: OpEqualTo},
				{Index: 2, Value: 8, Op: OpEqualTo},
			}}},
		}, []call{
			{"arg0=1", a, mount, [6]uint64{1}, allow},
			{"arg0=2", a, mount, [6]uint64{2}, allow},
			{"arg1=7 arg2=8", a, mount, [6]uint64{0, 7, 8}, allow},
			{"arg1=7 only", a, mount, [6]uint64{0, 7, 0}, eperm},
			{"none", a, mount, [6]uint64{3}, eperm},
		}},
		{"unknown names are skipped", &Profile{
			DefaultAction: ActErrno,
			Syscalls:      []Rule{{Names: []string{"no_such_syscall", "getpid", "socketcall"}, Action: ActAllow}},
		}, []call{
			{"getpid", a, getpid, [6]uint64{}, allow},
		}},
		{"legacy name field and architectures list", &Profile{
			DefaultAction: ActKillProcess,
			Architectures: []string{"SCMP_ARCH_X86_64"},
			Syscalls:      []Rule{{Name: "getpid", Action: ActAllow}},
		}, []call{
			{"getpid", a, getpid, [6]uint64{}, allow},
			{"read, not listed", a, 0, [6]uint64{}, kill},
			{"getppid, above the newest listed", a, getppid, [6]uint64{}, enosys},
			{"i386 is not listed", auditI386, 20, [6]uint64{}, kill},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCalls(t, mustCompile(t, tt.p, nil, archX86_64, kernel618), tt.calls)
		})
	}
}

// reference computes what a profile should answer by walking its rules
// directly, without BPF; the differential tests compare compiled programs
// against it.
func reference(p *Profile, caps []string, native *archInfo, kv kernelVersion) func(seccompData) uint32 {
	rules, err := resolve(p, caps, native, kv)
	if err != nil {
		panic(err)
	}
	return func(d seccompData) uint32 { return referenceResolved(p, rules, native, d) }
}

func referenceResolved(p *Profile, rules []Rule, native *archInfo, d seccompData) uint32 {
	var arch *archInfo
	for _, a := range filterArches(p, native) {
		if a.audit == d.arch {
			arch = a
		}
	}
	if arch == nil {
		return retKillProcess
	}
	def := actionValue(p.DefaultAction, p.DefaultErrno)
	permissive := p.DefaultAction == ActAllow || p.DefaultAction == ActLog || p.DefaultAction == ActTrace
	if arch.x32Guard && d.nr >= x32SyscallBit {
		if permissive && d.nr != 0xffffffff {
			return retKillProcess
		}
		return def
	}
	var newest uint32
	for _, r := range rules {
		for _, n := range r.names() {
			if nr, ok := arch.sysnum()[n]; ok && nr > newest {
				newest = nr
			}
		}
	}
	if !permissive && def != retErrno|38 && newest > 0 && d.nr > newest {
		return retErrno | 38
	}
	// The first unconditional rule naming the syscall decides.
	applies := func(r Rule) bool {
		if actionValue(r.Action, r.Errno) == def {
			return false
		}
		for _, n := range r.names() {
			if nr, ok := arch.sysnum()[n]; ok && nr == d.nr {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if applies(r) && len(r.Args) == 0 {
			return actionValue(r.Action, r.Errno)
		}
	}
	holds := func(c Arg) bool {
		arg, v := d.args[c.Index], c.Value
		if !arch.bits64 {
			arg, v = uint64(uint32(arg)), uint64(uint32(v))
		}
		switch c.Op {
		case OpEqualTo:
			return arg == v
		case OpNotEqual:
			return arg != v
		case OpLessThan:
			return arg < v
		case OpLessEqual:
			return arg <= v
		case OpGreaterThan:
			return arg > v
		case OpGreaterEqual:
			return arg >= v
		case OpMaskedEqual:
			m, datum := c.Value, c.ValueTwo
			if !arch.bits64 {
				m, datum = uint64(uint32(m)), uint64(uint32(datum))
			}
			return arg&m == datum&m
		}
		panic("bad op")
	}
	for _, r := range rules {
		if !applies(r) {
			continue
		}
		count := map[uint]int{}
		for _, c := range r.Args {
			count[c.Index]++
		}
		// Comparisons on a repeated index each stand alone...
		for _, c := range r.Args {
			if count[c.Index] > 1 && holds(c) {
				return actionValue(r.Action, r.Errno)
			}
		}
		// ...and the others must all hold together.
		all, any := true, false
		for _, c := range r.Args {
			if count[c.Index] == 1 {
				any = true
				all = all && holds(c)
			}
		}
		if any && all {
			return actionValue(r.Action, r.Errno)
		}
	}
	return def
}

// interesting returns argument values around the profile's constants, where
// off-by-one and word-order mistakes show.
func interesting(p *Profile) []uint64 {
	vals := []uint64{0, 1, 0xffffffff, 1 << 32, ^uint64(0), 0x7fffffff_ffffffff, 0x8000_0000}
	for _, r := range p.Syscalls {
		for _, c := range r.Args {
			for _, v := range []uint64{c.Value, c.ValueTwo, c.Value & c.ValueTwo, c.Value | 1<<40} {
				vals = append(vals, v-1, v, v+1, v^1<<32, v|1<<63)
			}
		}
	}
	return vals
}

func TestDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ops := []Operator{OpNotEqual, OpLessThan, OpLessEqual, OpEqualTo, OpGreaterEqual, OpGreaterThan, OpMaskedEqual}
	randValue := func() uint64 {
		switch rng.Intn(4) {
		case 0:
			return uint64(rng.Intn(64))
		case 1:
			return uint64(rng.Uint32())
		case 2:
			return rng.Uint64()
		}
		return uint64(rng.Intn(4))<<32 | uint64(rng.Intn(4))
	}
	names := []string{"read", "write", "getpid", "mount", "personality", "socket", "clone", "ioctl", "socketcall",
		"mmap", "open", "openat", "kill", "exit_group", "prctl", "no_such_call", "removexattrat", "bpf"}
	actions := []Action{ActAllow, ActErrno, ActKillProcess, ActTrap, ActLog, ActKill, ActTrace}
	randomProfile := func() *Profile {
		p := &Profile{DefaultAction: actions[rng.Intn(len(actions))]}
		if rng.Intn(2) == 0 {
			p.Architectures = []string{"SCMP_ARCH_X86", "SCMP_ARCH_X32"}
		}
		for i := rng.Intn(12); i > 0; i-- {
			r := Rule{Action: actions[rng.Intn(len(actions))]}
			for j := 1 + rng.Intn(3); j > 0; j-- {
				r.Names = append(r.Names, names[rng.Intn(len(names))])
			}
			if r.Action == ActErrno && rng.Intn(2) == 0 {
				r.Errno = u32(uint32(rng.Intn(100)))
			}
			for j := rng.Intn(4); j > 0; j-- {
				r.Args = append(r.Args, Arg{Index: uint(rng.Intn(3)), Value: randValue(), ValueTwo: randValue(), Op: ops[rng.Intn(len(ops))]})
			}
			p.Syscalls = append(p.Syscalls, r)
		}
		return p
	}

	type profileCase struct {
		name   string
		p      *Profile
		caps   []string
		native *archInfo
	}
	cases := []profileCase{
		{"default docker caps", DefaultProfile(), dockerCaps, archX86_64},
		{"default all caps", DefaultProfile(), append(dockerCaps, "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYSLOG"), archX86_64},
		{"default arm64", DefaultProfile(), dockerCaps, archAarch64},
	}
	n := 300
	if testing.Short() {
		n = 50
	}
	for i := 0; i < n; i++ {
		cases = append(cases, profileCase{fmt.Sprintf("random %d", i), randomProfile(), nil, archX86_64})
	}
	for _, pc := range cases {
		prog, err := compile(pc.p, pc.caps, pc.native, kernel618)
		if err != nil {
			t.Fatalf("%s: compile: %v", pc.name, err)
		}
		if err := checkProgram(prog); err != nil {
			t.Fatalf("%s: invalid program: %v", pc.name, err)
		}
		want := reference(pc.p, pc.caps, pc.native, kernel618)
		vals := interesting(pc.p)
		arches := []uint32{pc.native.audit, auditI386, auditAarch64, 0}
		nrs := []uint32{0xffffffff, x32SyscallBit, x32SyscallBit | 39, 0x3fffffff, 1000}
		for nr := uint32(0); nr < 480; nr++ {
			nrs = append(nrs, nr)
		}
		for _, arch := range arches {
			for _, nr := range nrs {
				d := seccompData{nr: nr, arch: arch}
				tries := 1
				if _, ok := argSyscalls(pc.p)[nr]; ok || nr < 400 && rng.Intn(8) == 0 {
					tries = 40
				}
				for i := 0; i < tries; i++ {
					if i > 0 {
						for j := range d.args {
							d.args[j] = vals[rng.Intn(len(vals))]
						}
					}
					got, err := run(prog, d)
					if err != nil {
						t.Fatalf("%s: run: %v", pc.name, err)
					}
					if want := want(d); got != want {
						t.Fatalf("%s: filter(arch %#x, nr %d, args %#x) = %s, want %s\nprofile: %+v",
							pc.name, arch, nr, d.args, retName(got), retName(want), pc.p.Syscalls)
					}
				}
			}
		}
	}
}

// argSyscalls lists the numbers (in any table) of syscalls with argument
// rules, which deserve many argument samples.
func argSyscalls(p *Profile) map[uint32]bool {
	out := map[uint32]bool{}
	for _, r := range p.Syscalls {
		if len(r.Args) == 0 {
			continue
		}
		for _, n := range r.names() {
			for _, tab := range []map[string]uint32{sysnumX86_64(), sysnumI386(), sysnumAarch64()} {
				if nr, ok := tab[n]; ok {
					out[nr] = true
				}
			}
		}
	}
	return out
}

func TestFarJumps(t *testing.T) {
	// Many argument rules on one syscall put the tree's targets more than
	// 255 instructions apart, which needs ja trampolines.
	p := &Profile{DefaultAction: ActErrno}
	for i := 0; i < 200; i++ {
		p.Syscalls = append(p.Syscalls, Rule{Names: []string{"ioctl"}, Action: ActAllow,
			Args: []Arg{{Index: 1, Value: uint64(0x5400 + i), Op: OpEqualTo}}})
	}
	p.Syscalls = append(p.Syscalls, Rule{Names: []string{"read", "write", "getpid"}, Action: ActAllow})
	prog := mustCompile(t, p, nil, archX86_64, kernel618)
	if len(prog) < 600 {
		t.Fatalf("program has %d instructions; the test needs far jumps", len(prog))
	}
	a := uint32(auditX86_64)
	checkCalls(t, prog, []call{
		{"ioctl first", a, 16, [6]uint64{0, 0x5400}, allow},
		{"ioctl last", a, 16, [6]uint64{0, 0x5400 + 199}, allow},
		{"ioctl other", a, 16, [6]uint64{0, 0x5400 + 200}, eperm},
		{"ioctl high word", a, 16, [6]uint64{0, 1<<32 | 0x5400}, eperm},
		{"read", a, 0, [6]uint64{}, allow},
		{"getpid", a, 39, [6]uint64{}, allow},
		{"close", a, 3, [6]uint64{}, eperm},
		{"mount, above the newest listed", a, 165, [6]uint64{}, enosys},
		{"i386 not listed", auditI386, 0, [6]uint64{}, kill},
	})
}

func TestTooLarge(t *testing.T) {
	p := &Profile{DefaultAction: ActErrno}
	for i := 0; i < 1500; i++ {
		p.Syscalls = append(p.Syscalls, Rule{Names: []string{"ioctl"}, Action: ActAllow,
			Args: []Arg{{Index: 1, Value: uint64(i), Op: OpEqualTo}}})
	}
	if _, err := compile(p, nil, archX86_64, kernel618); err == nil {
		t.Fatalf("compile of a %d-rule profile succeeded, want the instruction limit error", len(p.Syscalls))
	}
}
