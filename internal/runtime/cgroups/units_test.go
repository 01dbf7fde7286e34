package cgroups

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCompileDevicePolicy(t *testing.T) {
	tests := []struct {
		name        string
		rules       []DeviceRule
		allow       bool
		excFile     string
		exceptions  []string
		wantErrText string
	}{
		{
			name:       "empty list denies all",
			rules:      []DeviceRule{},
			excFile:    "devices.allow",
			exceptions: nil,
		},
		{
			name:    "docker default",
			rules:   DefaultDevices,
			excFile: "devices.allow",
			exceptions: []string{
				"c 1:5 rwm", "c 1:3 rwm", "c 1:9 rwm", "c 1:8 rwm", "c 5:0 rwm", "c 5:1 rwm",
				"c *:* m", "b *:* m", "c 1:7 rwm", "c 136:* rwm", "c 5:2 rwm",
			},
		},
		{
			name:    "privileged",
			rules:   []DeviceRule{{Type: 'a', Allow: true}},
			allow:   true,
			excFile: "devices.deny",
		},
		{
			name: "deny narrows an allow",
			rules: []DeviceRule{
				{Type: 'c', Major: 1, Minor: 3, Access: "rwm", Allow: true},
				{Type: 'c', Major: 1, Minor: 3, Access: "w", Allow: false},
			},
			excFile:    "devices.allow",
			exceptions: []string{"c 1:3 rm"},
		},
		{
			name: "deny removes an allow",
			rules: []DeviceRule{
				{Type: 'c', Major: 1, Minor: 3, Access: "r", Allow: true},
				{Type: 'c', Major: 1, Minor: 3, Access: "", Allow: false},
			},
			excFile: "devices.allow",
		},
		{
			name: "allows merge",
			rules: []DeviceRule{
				{Type: 'b', Major: 8, Minor: Wildcard, Access: "r", Allow: true},
				{Type: 'b', Major: 8, Minor: Wildcard, Access: "w", Allow: true},
			},
			excFile:    "devices.allow",
			exceptions: []string{"b 8:* rw"},
		},
		{
			name: "a later deny-all resets",
			rules: []DeviceRule{
				{Type: 'c', Major: 1, Minor: 3, Allow: true},
				{Type: 'a', Allow: false},
				{Type: 'c', Major: 1, Minor: 5, Access: "r", Allow: true},
			},
			excFile:    "devices.allow",
			exceptions: []string{"c 1:5 r"},
		},
		{
			name: "blacklist",
			rules: []DeviceRule{
				{Type: 'a', Allow: true},
				{Type: 'c', Major: 10, Minor: 200, Access: "rw", Allow: false},
			},
			allow:      true,
			excFile:    "devices.deny",
			exceptions: []string{"c 10:200 rw"},
		},
		{name: "bad type", rules: []DeviceRule{{Type: 'u', Allow: true}}, wantErrText: "type must be"},
		{name: "bad access", rules: []DeviceRule{{Type: 'c', Access: "x", Allow: true}}, wantErrText: "invalid device access"},
		{name: "bad major", rules: []DeviceRule{{Type: 'c', Major: -5, Allow: true}}, wantErrText: "bad device number"},
		{name: "huge minor", rules: []DeviceRule{{Type: 'c', Minor: 1 << 33, Allow: true}}, wantErrText: "bad device number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compileDevicePolicy(tt.rules)
			if tt.wantErrText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("compileDevicePolicy(%v) error = %v, want one containing %q", tt.rules, err, tt.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatalf("compileDevicePolicy(%v) = %v", tt.rules, err)
			}
			def, exc, lines := p.v1Writes()
			wantDef := "devices.deny"
			if tt.allow {
				wantDef = "devices.allow"
			}
			if def != wantDef || exc != tt.excFile || !slices.Equal(lines, tt.exceptions) {
				t.Errorf("v1Writes() = %q, %q, %q; want %q, %q, %q", def, exc, lines, wantDef, tt.excFile, tt.exceptions)
			}
		})
	}
}

// runDeviceProgram interprets the encoded device program for one access, so
// that the assembler is checked byte for byte without loading it. It
// supports exactly the instructions the assembler emits and fails on
// anything else, including backward or out-of-range jumps.
func runDeviceProgram(code []byte, typ uint32, major, minor uint32, acc uint32) (uint64, error) {
	var ctx [12]byte
	binary.NativeEndian.PutUint32(ctx[0:], acc<<16|typ)
	binary.NativeEndian.PutUint32(ctx[4:], major)
	binary.NativeEndian.PutUint32(ctx[8:], minor)
	var r [11]uint64
	const ctxMarker = 1 << 40 // r1 points at the context
	r[1] = ctxMarker
	if len(code)%bpfInsnBytes != 0 {
		return 0, fmt.Errorf("program length %d is not a multiple of 8", len(code))
	}
	n := len(code) / bpfInsnBytes
	bigEndian := binary.NativeEndian.Uint16([]byte{0, 1}) == 1
	for pc := 0; pc < n; pc++ {
		b := code[pc*bpfInsnBytes:]
		dst, src := b[1]&0xf, b[1]>>4
		if bigEndian {
			dst, src = b[1]>>4, b[1]&0xf
		}
		off := int16(binary.NativeEndian.Uint16(b[2:]))
		imm := int32(binary.NativeEndian.Uint32(b[4:]))
		if dst > 10 || src > 10 {
			return 0, fmt.Errorf("pc %d: bad register", pc)
		}
		jump := func(cond bool) error {
			if off < 0 || pc+1+int(off) > n {
				return fmt.Errorf("pc %d: jump offset %d out of range", pc, off)
			}
			if cond {
				pc += int(off)
			}
			return nil
		}
		var err error
		switch b[0] {
		case bpfLdxMemW:
			if r[src] != ctxMarker || off < 0 || int(off)+4 > len(ctx) {
				return 0, fmt.Errorf("pc %d: bad load", pc)
			}
			r[dst] = uint64(binary.NativeEndian.Uint32(ctx[off:]))
		case bpfMovImm64:
			r[dst] = uint64(int64(imm))
		case bpfMovReg64:
			r[dst] = r[src]
		case bpfAndImm64:
			r[dst] &= uint64(int64(imm))
		case bpfRshImm64:
			r[dst] >>= uint(imm)
		case bpfJeqImm:
			err = jump(r[dst] == uint64(int64(imm)))
		case bpfJneImm:
			err = jump(r[dst] != uint64(int64(imm)))
		case bpfExit:
			return r[0], nil
		default:
			return 0, fmt.Errorf("pc %d: unexpected opcode %#x", pc, b[0])
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("fell off the end of the program")
}

// checkProgramMatchesPolicy compares the program with p.allows over a grid
// of devices and every access combination.
func checkProgramMatchesPolicy(t *testing.T, p devicePolicy, majors, minors []uint32) {
	t.Helper()
	code := encodeProgram(p.deviceProgram())
	for _, typ := range []byte{'b', 'c'} {
		bt := uint32(devChar)
		if typ == 'b' {
			bt = devBlock
		}
		for _, maj := range majors {
			for _, min := range minors {
				for acc := uint8(1); acc <= accAll; acc++ {
					got, err := runDeviceProgram(code, bt, maj, min, uint32(acc))
					if err != nil {
						t.Fatalf("program for %+v: %v", p, err)
					}
					if want := p.allows(typ, maj, min, acc); (got == 1) != want {
						t.Fatalf("program(%c %d:%d %s) = %d, policy allows = %v (policy %+v)", typ, maj, min, accessString(acc), got, want, p)
					}
				}
			}
		}
	}
}

func TestDeviceProgramMatchesPolicy(t *testing.T) {
	majors := []uint32{0, 1, 5, 8, 10, 136, 4095}
	minors := []uint32{0, 1, 2, 3, 5, 7, 8, 9, 200, 229, 1 << 19}
	policies := map[string][]DeviceRule{
		"default":   DefaultDevices,
		"deny all":  {},
		"allow all": {{Type: 'a', Allow: true}},
		"blacklist": {
			{Type: 'a', Allow: true},
			{Type: 'c', Major: 10, Minor: 200, Access: "rw", Allow: false},
			{Type: 'b', Major: Wildcard, Minor: Wildcard, Access: "m", Allow: false},
		},
		"partial access": {
			{Type: 'c', Major: 1, Minor: 3, Access: "r", Allow: true},
			{Type: 'c', Major: 5, Minor: Wildcard, Access: "wm", Allow: true},
			{Type: 'b', Major: 8, Minor: 0, Access: "rw", Allow: true},
		},
	}
	for name, rules := range policies {
		t.Run(name, func(t *testing.T) {
			p, err := compileDevicePolicy(rules)
			if err != nil {
				t.Fatal(err)
			}
			checkProgramMatchesPolicy(t, p, majors, minors)
		})
	}
	// Spot checks of the default policy against Docker's behaviour.
	p, _ := compileDevicePolicy(DefaultDevices)
	for _, tt := range []struct {
		typ          byte
		major, minor uint32
		acc          uint8
		want         bool
	}{
		{'c', 1, 3, accRead | accWrite, true},   // /dev/null
		{'c', 136, 7, accRead | accWrite, true}, // a pty
		{'c', 10, 200, accRead, false},          // tun
		{'c', 10, 200, accMknod, true},          // mknod of anything
		{'c', 10, 229, accRead | accWrite, false},
		{'b', 8, 0, accRead, false},
		{'b', 8, 0, accMknod, true},
	} {
		if got := p.allows(tt.typ, tt.major, tt.minor, tt.acc); got != tt.want {
			t.Errorf("default policy allows(%c %d:%d %s) = %v, want %v", tt.typ, tt.major, tt.minor, accessString(tt.acc), got, tt.want)
		}
	}
}

// FuzzDeviceProgram builds rule lists from fuzz bytes and checks that the
// assembled program decides exactly like the policy it came from.
func FuzzDeviceProgram(f *testing.F) {
	f.Add([]byte{0, 1, 3, 7, 1, 1, 5, 2, 0})
	f.Add([]byte{2, 0, 0, 7, 1, 1, 10, 200, 3, 0})
	f.Add([]byte{1, 255, 255, 1, 1, 1, 136, 255, 7, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var rules []DeviceRule
		for len(data) >= 5 && len(rules) < 32 {
			r := DeviceRule{
				Type:  "abc"[int(data[0])%3],
				Major: int64(data[1]),
				Minor: int64(data[2]),
				Allow: data[4]&1 == 1,
			}
			if data[1] == 255 {
				r.Major = Wildcard
			}
			if data[2] == 255 {
				r.Minor = Wildcard
			}
			r.Access = accessString(data[3] & accAll)
			rules = append(rules, r)
			data = data[5:]
		}
		p, err := compileDevicePolicy(rules)
		if err != nil {
			t.Fatalf("compileDevicePolicy(%v) = %v", rules, err)
		}
		checkProgramMatchesPolicy(t, p, []uint32{0, 1, 10, 254}, []uint32{0, 3, 200, 254})
	})
}

func TestEncodeProgram(t *testing.T) {
	got := encodeProgram([]insn{{code: bpfLdxMemW, dst: 2, src: 1, off: 4, imm: 0}, {code: bpfJneImm, dst: 4, off: 3, imm: -2}})
	want := []byte{0x61, 0x12, 4, 0, 0, 0, 0, 0, 0x55, 0x04, 3, 0, 0xfe, 0xff, 0xff, 0xff}
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		t.Skip("expected bytes are written for little-endian hosts")
	}
	if !slices.Equal(got, want) {
		t.Errorf("encodeProgram() = % x, want % x", got, want)
	}
}

func TestSwapV2(t *testing.T) {
	tests := []struct {
		memSwap, mem int64
		want         string
		wantErr      bool
	}{
		{0, 0, "", false},
		{0, 100, "", false},
		{0, -1, "max", false},
		{-1, 100, "max", false},
		{-1, -1, "max", false},
		{300, 100, "200", false},
		{100, 100, "0", false},
		{50, 100, "", true},
		{300, 0, "", true},
		{300, -1, "", true},
	}
	for _, tt := range tests {
		got, err := swapV2(tt.memSwap, tt.mem)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("swapV2(%d, %d) = %q, %v; want %q, error %v", tt.memSwap, tt.mem, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConversions(t *testing.T) {
	for _, tt := range []struct{ shares, want int64 }{{0, 0}, {2, 1}, {1024, 39}, {512, 20}, {262144, 10000}} {
		if got := cpuWeight(tt.shares); got != tt.want {
			t.Errorf("cpuWeight(%d) = %d, want %d", tt.shares, got, tt.want)
		}
	}
	for _, tt := range []struct {
		quota, period int64
		want          string
	}{{50000, 100000, "50000 100000"}, {-1, 100000, "max 100000"}, {0, 100000, "max 100000"}, {25000, 0, "25000"}} {
		if got := cpuMax(tt.quota, tt.period); got != tt.want {
			t.Errorf("cpuMax(%d, %d) = %q, want %q", tt.quota, tt.period, got, tt.want)
		}
	}
	for _, tt := range []struct {
		w    uint16
		want uint64
	}{{10, 1}, {500, 4950}, {1000, 10000}} {
		if got := ioWeight(tt.w); got != tt.want {
			t.Errorf("ioWeight(%d) = %d, want %d", tt.w, got, tt.want)
		}
	}
	for _, tt := range []struct {
		v    int64
		want string
	}{{0, ""}, {-1, "max"}, {42, "42"}} {
		if got := v2Limit(tt.v); got != tt.want {
			t.Errorf("v2Limit(%d) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	const mi = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:5 - cgroup cgroup rw,memory
34 31 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
35 31 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
36 31 0:33 / /sys/fs/cgroup/my\040dir rw - cgroup cgroup rw,pids
37 99 0:34 / /elsewhere/memory rw - cgroup cgroup rw,blkio
38 31 0:30 / /sys/fs/cgroup/memory2 rw - cgroup cgroup rw,memory
39 31 0:35 / /sys/fs/cgroup/nothing rw - cgroup cgroup rw,noprefix
garbage line
`
	got, err := parseMountinfo(strings.NewReader(mi), "/sys/fs/cgroup/")
	if err != nil {
		t.Fatal(err)
	}
	want := []hierarchy{
		{"/sys/fs/cgroup/cpu,cpuacct", []string{"cpu", "cpuacct"}},
		{"/sys/fs/cgroup/memory", []string{"memory"}},
		{"/sys/fs/cgroup/systemd", []string{"name=systemd"}},
		{"/sys/fs/cgroup/my dir", []string{"pids"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountinfo() = %+v, want %+v", got, want)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")
	f.Add("1 2 3 / /sys/fs/cgroup/a\\134b rw - cgroup c rw,name=x,memory\n")
	f.Add(" - \n - cgroup\n")
	f.Fuzz(func(t *testing.T, s string) {
		hs, err := parseMountinfo(strings.NewReader(s), "/sys/fs/cgroup")
		if err != nil {
			return
		}
		for _, h := range hs {
			if len(h.controllers) == 0 || !strings.HasPrefix(h.mountpoint, "/sys/fs/cgroup/") {
				t.Fatalf("parseMountinfo(%q) gave %+v", s, h)
			}
		}
	})
}

func TestParsers(t *testing.T) {
	kv := parseKeyValues("cache 4096\nrss 8192\n\nbad\nhuge 18446744073709551615\nneg -1\n oom_kill 3 \n")
	wantKV := map[string]uint64{"cache": 4096, "rss": 8192, "huge": math.MaxUint64, "oom_kill": 3}
	if !reflect.DeepEqual(kv, wantKV) {
		t.Errorf("parseKeyValues() = %v, want %v", kv, wantKV)
	}

	if got, err := parsePids("12\n345\n"); err != nil || !slices.Equal(got, []int{12, 345}) {
		t.Errorf("parsePids() = %v, %v; want [12 345]", got, err)
	}
	if _, err := parsePids("12\nx\n"); err == nil {
		t.Error("parsePids(garbage) = nil error")
	}

	v1, err := parseBlkioV1("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n")
	wantV1 := []BlkioStatEntry{{8, 0, "Read", 4096}, {8, 0, "Write", 512}, {8, 0, "Total", 4608}}
	if err != nil || !reflect.DeepEqual(v1, wantV1) {
		t.Errorf("parseBlkioV1() = %v, %v; want %v", v1, err, wantV1)
	}
	if _, err := parseBlkioV1("8:0 Read\n"); err == nil {
		t.Error("parseBlkioV1(short line) = nil error")
	}

	v2, err := parseIoStat("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=5 wbytes=6 rios=0 wios=0\n")
	wantV2 := []BlkioStatEntry{{8, 0, "read", 100}, {8, 0, "write", 200}, {253, 1, "read", 5}, {253, 1, "write", 6}}
	if err != nil || !reflect.DeepEqual(v2, wantV2) {
		t.Errorf("parseIoStat() = %v, %v; want %v", v2, err, wantV2)
	}

	if got, err := parseUintList("1 2 3 \n"); err != nil || !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("parseUintList() = %v, %v", got, err)
	}
	for _, tt := range []struct {
		s          string
		frozen, ok bool
	}{{"populated 1\nfrozen 1\n", true, true}, {"populated 0\nfrozen 0\n", false, true}, {"populated 1\n", false, false}} {
		if f, ok := isFrozenEvents(tt.s); f != tt.frozen || ok != tt.ok {
			t.Errorf("isFrozenEvents(%q) = %v, %v; want %v, %v", tt.s, f, ok, tt.frozen, tt.ok)
		}
	}
	for _, tt := range []struct {
		s    string
		want uint64
		err  bool
	}{{"max", 7, false}, {"42", 42, false}, {"-1", 0, false}, {"x", 0, true}} {
		got, err := parseUint(tt.s, 7)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("parseUint(%q) = %d, %v; want %d, error %v", tt.s, got, err, tt.want, tt.err)
		}
	}
}

// FuzzParseCgroupFiles feeds the same bytes to every parser of kernel
// cgroup files; none may panic, and what they return must be consistent.
func FuzzParseCgroupFiles(f *testing.F) {
	f.Add("8:0 Read 4096\nTotal 1\n")
	f.Add("8:0 rbytes=1 wbytes=2\n")
	f.Add("usage_usec 100\nfrozen 1\n")
	f.Add("1\n2\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = parseKeyValues(s)
		if pids, err := parsePids(s); err == nil {
			for _, p := range pids {
				if p <= 0 {
					t.Fatalf("parsePids(%q) gave pid %d", s, p)
				}
			}
		}
		_, _ = parseBlkioV1(s)
		if e, err := parseIoStat(s); err == nil && len(e)%2 != 0 {
			t.Fatalf("parseIoStat(%q) gave %d entries, want read/write pairs", s, len(e))
		}
		_, _ = parseUintList(s)
		_, _ = isFrozenEvents(s)
	})
}

// TestParseMountinfoAllocations checks that the mounts other than cgroup
// ones (a host's overlays, one or more per running container) cost the
// parser no allocation: a shim resolves its cgroups with it, and with no
// garbage collection in a sleeping shim what it allocates stays (issue
// 13).
func TestParseMountinfoAllocations(t *testing.T) {
	const cg = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n" +
		"35 31 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
	allocs := func(others int) float64 {
		var b strings.Builder
		b.WriteString(cg)
		for i := range others {
			fmt.Fprintf(&b, "%d 23 0:%d / /var/lib/skiffd/overlay2/%064d/merged rw,relatime shared:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n", 100+i, 100+i, i)
		}
		s := b.String()
		return testing.AllocsPerRun(10, func() {
			if hs, err := parseMountinfo(strings.NewReader(s), "/sys/fs/cgroup"); err != nil || len(hs) != 1 {
				t.Fatalf("parseMountinfo = %+v, %v", hs, err)
			}
		})
	}
	if few, many := allocs(2), allocs(200); many != few {
		t.Errorf("parseMountinfo allocates %v times with 2 other mounts, %v with 200; want the same", few, many)
	}
}

// TestParentSpellings: a cgroup parent with or without its leading slash
// names the same place, as dockerd's cgroupfs driver has it (kubelet
// passes "/kubepods/..."); "/" is the hierarchies' root; what could leave
// the hierarchy is refused.
func TestParentSpellings(t *testing.T) {
	v2 := func(parent string) string {
		m := NewAt("/sys/fs/cgroup", Unified, "abc", WithParent(parent))
		return m.Paths()[""]
	}
	for parent, want := range map[string]string{
		"/kubepods/pod1":  "/sys/fs/cgroup/kubepods/pod1/abc",
		"kubepods/pod1":   "/sys/fs/cgroup/kubepods/pod1/abc",
		"kubepods/pod1/":  "/sys/fs/cgroup/kubepods/pod1/abc",
		"/":               "/sys/fs/cgroup/abc",
		"/../escape":      "",
		"a//b":            "",
		"/kubepods/../..": "",
	} {
		if got := v2(parent); got != want {
			t.Errorf("parent %q: %q, want %q", parent, got, want)
		}
	}
}
