package sys

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestParseKernelRelease(t *testing.T) {
	for _, tc := range []struct {
		release      string
		major, minor int
		ok           bool
	}{
		{"6.18.44-fc-v769", 6, 18, true},
		{"5.4.0-150-generic", 5, 4, true},
		{"3.12-1-amd64", 3, 12, true},
		{"4.19", 4, 19, true},
		{"6.1rc2", 6, 1, true},
		{"10.0.0", 10, 0, true},
		{"junk", 0, 0, false},
		{"linux", 0, 0, false},
		{"6", 0, 0, false},
		{"6.", 0, 0, false},
		{".6", 0, 0, false},
		{"", 0, 0, false},
	} {
		major, minor, err := ParseKernelRelease(tc.release)
		if (err == nil) != tc.ok || major != tc.major || minor != tc.minor {
			t.Errorf("ParseKernelRelease(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.release, major, minor, err, tc.major, tc.minor, tc.ok)
		}
	}
}

func TestUname(t *testing.T) {
	u, err := Uname()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, file string }{
		{u.Release, "/proc/sys/kernel/osrelease"},
		{u.Nodename, "/proc/sys/kernel/hostname"},
		{u.Sysname, "/proc/sys/kernel/ostype"},
	} {
		want, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if c.got != strings.TrimSpace(string(want)) {
			t.Errorf("Uname field = %q, want %q from %s", c.got, want, c.file)
		}
	}
	if u.Machine == "" {
		t.Error("Uname().Machine is empty")
	}
	if _, _, err := ParseKernelRelease(u.Release); err != nil {
		t.Errorf("this kernel's release: %v", err)
	}
}

func TestCstring(t *testing.T) {
	if got := cstring([]int8{'a', 'b', 0, 'c'}); got != "ab" {
		t.Errorf("cstring(int8 ab\\0c) = %q", got)
	}
	if got := cstring([]uint8{'x', 'y'}); got != "xy" {
		t.Errorf("cstring(uint8 xy) = %q", got)
	}
}

func TestMajorMinor(t *testing.T) {
	for _, c := range []struct{ major, minor uint32 }{{1, 3}, {8, 0}, {259, 1 << 19}, {4095, 255}, {4096, 256}} {
		dev := Makedev(c.major, c.minor)
		if Major(dev) != c.major || Minor(dev) != c.minor {
			t.Errorf("Major, Minor(Makedev(%d, %d)) = %d, %d", c.major, c.minor, Major(dev), Minor(dev))
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/null", &st); err != nil {
		t.Fatal(err)
	}
	if Major(st.Rdev) != 1 || Minor(st.Rdev) != 3 {
		t.Errorf("/dev/null is %d:%d, want 1:3", Major(st.Rdev), Minor(st.Rdev))
	}
}
