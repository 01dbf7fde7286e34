package sysinfo

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func TestReadMatchesKernel(t *testing.T) {
	h := Read()
	if h.NCPU != runtime.NumCPU() || h.NCPU < 1 {
		t.Errorf("NCPU = %d, want %d", h.NCPU, runtime.NumCPU())
	}
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var kb int64
	for _, line := range strings.Split(string(meminfo), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			for _, c := range f[1] {
				kb = kb*10 + int64(c-'0')
			}
		}
	}
	if h.MemTotal != kb*1024 {
		t.Errorf("MemTotal = %d, want %d from /proc/meminfo", h.MemTotal, kb*1024)
	}
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if want := strings.TrimSpace(string(release)); h.KernelVersion != want {
		t.Errorf("KernelVersion = %q, want %q", h.KernelVersion, want)
	}
	if h.Architecture == "" || h.OperatingSystem == "" {
		t.Errorf("Architecture = %q, OperatingSystem = %q; want both set", h.Architecture, h.OperatingSystem)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	want := "1"
	if st.Type == cgroup2SuperMagic {
		want = "2"
	}
	if h.CgroupVersion != want {
		t.Errorf("CgroupVersion = %q, want %q", h.CgroupVersion, want)
	}
}

func TestOpenFDs(t *testing.T) {
	before := OpenFDs()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := OpenFDs(); got != before+1 {
		t.Errorf("OpenFDs after open = %d, want %d", got, before+1)
	}
}
