package sys

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		line  string
		state byte
		start uint64
		ok    bool
	}{
		{"417 (sh) S 410 417 417 0 -1 4194560 210 0 0 0 0 0 0 0 20 0 1 0 512783 1740800 113", 'S', 512783, true},
		{"9 (a) b) (c) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0", 'Z', 77, true},
		{"9 (x) R 1 2", 0, 0, false},
		{"garbage", 0, 0, false},
	} {
		state, start, err := parseStat([]byte(tc.line))
		if (err == nil) != tc.ok || state != tc.state || start != tc.start {
			t.Errorf("parseStat(%q) = %c, %d, %v; want %c, %d, ok=%v", tc.line, state, start, err, tc.state, tc.start, tc.ok)
		}
	}
}

func TestStartTimeSelf(t *testing.T) {
	state, start, err := ProcStat(os.Getpid())
	if err != nil || start == 0 || (state != 'R' && state != 'S') {
		t.Errorf("ProcStat(self) = %c, %d, %v", state, start, err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("417 (sh) S 410 417 417 0 -1 4194560 210 0 0 0 0 0 0 0 20 0 1 0 512783 1740800 113"))
	f.Add([]byte("1 ()) ) Z"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStat(b)
	})
}

func TestMakedev(t *testing.T) {
	for _, tc := range []struct {
		major, minor uint32
		want         uint64
	}{{1, 3, 0x103}, {136, 300, 0x10882c}, {5, 0, 0x500}, {4095 + 4096, 0xfffff, 0x1000ffffffff}} {
		if got := Makedev(tc.major, tc.minor); got != tc.want {
			t.Errorf("Makedev(%d, %d) = %#x, want %#x", tc.major, tc.minor, got, tc.want)
		}
		if ma, mi := Major(tc.want), Minor(tc.want); ma != tc.major || mi != tc.minor {
			t.Errorf("Major, Minor(%#x) = %d, %d, want %d, %d", tc.want, ma, mi, tc.major, tc.minor)
		}
	}
}

// TestSetCmdline: /proc/self/cmdline reads the new arguments, longer or
// shorter than the originals, and os.Args is unchanged.
func TestSetCmdline(t *testing.T) {
	args := append([]string(nil), os.Args...)
	for _, want := range [][]string{
		{"skiffd-shim", "shim", "/run/skiffd/containers/" + strings.Repeat("0123456789abcdef", 4)},
		{"x"},
	} {
		if err := SetCmdline(want); err != nil {
			t.Fatalf("SetCmdline(%q) = %v", want, err)
		}
		b, err := os.ReadFile("/proc/self/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"); !slices.Equal(got, want) {
			t.Errorf("after SetCmdline(%q), /proc/self/cmdline = %q", want, got)
		}
	}
	if !slices.Equal(os.Args, args) {
		t.Errorf("os.Args = %q, was %q", os.Args, args)
	}
	if err := SetCmdline([]string{"a\x00b"}); err == nil {
		t.Error("SetCmdline with a NUL byte in an argument = nil, want an error")
	}
}

// TestArgAreaReuses: an ArgArea keeps its mapping while the arguments fit
// (a shim renames itself at every container it takes and lets go), and
// grows it when they do not; /proc/self/cmdline follows every change.
func TestArgAreaReuses(t *testing.T) {
	var a ArgArea
	long := []string{"skiffd-shim", "shim", strings.Repeat("d", 5000)}
	var first *byte
	for i, want := range [][]string{{"skiffd-shim", "shim", "/a/one", "/a/two"}, {"skiffd-shim", "shim", "/a/two"}, long, {"x"}} {
		if err := a.Set(want); err != nil {
			t.Fatalf("Set(%q) = %v", want, err)
		}
		b, err := os.ReadFile("/proc/self/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"); !slices.Equal(got, want) {
			t.Errorf("after Set(%.40q), /proc/self/cmdline = %.40q", want, got)
		}
		switch i {
		case 0:
			first = &a.b[0]
		case 1:
			if &a.b[0] != first {
				t.Error("shorter arguments got a new mapping")
			}
		case 2:
			if &a.b[0] == first || len(a.b) < 5000 {
				t.Errorf("arguments larger than the mapping did not get a larger one (%d bytes)", len(a.b))
			}
		}
	}
}
