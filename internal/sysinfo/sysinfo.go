// Package sysinfo reads the host facts that GET /info and GET /version
// report: CPUs, memory, kernel, operating system and cgroup mode. Each value
// is read from the kernel when asked, never made up.
package sysinfo

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strings"
	"syscall"

	"skiffd/internal/sys"
)

// Host is a snapshot of host facts.
type Host struct {
	NCPU            int
	MemTotal        int64
	KernelVersion   string
	Architecture    string // uname machine, e.g. x86_64
	Hostname        string
	OperatingSystem string // PRETTY_NAME of os-release
	OSVersion       string // VERSION_ID of os-release
	CgroupVersion   string // "1" or "2"
}

// Read collects the host facts. A fact that cannot be read is left zero.
func Read() Host {
	h := Host{NCPU: runtime.NumCPU()}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		h.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	if u, err := sys.Uname(); err == nil {
		h.KernelVersion = u.Release
		h.Architecture = u.Machine
		h.Hostname = u.Nodename
	}
	h.OperatingSystem, h.OSVersion = osRelease()
	h.CgroupVersion = cgroupVersion()
	return h
}

// osRelease returns PRETTY_NAME and VERSION_ID, looking where systemd's
// os-release(5) says to.
func osRelease() (pretty, version string) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		data, err = os.ReadFile("/usr/lib/os-release")
		if err != nil {
			return "Linux", ""
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "PRETTY_NAME":
			pretty = v
		case "VERSION_ID":
			version = v
		}
	}
	if pretty == "" {
		pretty = "Linux"
	}
	return pretty, version
}

// cgroup2SuperMagic is CGROUP2_SUPER_MAGIC from linux/magic.h.
const cgroup2SuperMagic = 0x63677270

// cgroupVersion detects the cgroup mode the way runc does: /sys/fs/cgroup
// being a cgroup2 mount means the unified hierarchy; anything else is v1
// (hybrid hosts keep their controllers on v1). Which limits the host can
// enforce is the runtime's probe (cgroups.Probe), not this package's.
func cgroupVersion() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == cgroup2SuperMagic {
		return "2"
	}
	return "1"
}

// BackingFilesystem names the filesystem that holds path, as dockerd's
// overlay2 driver reports it in DriverStatus.
func BackingFilesystem(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "<unknown>"
	}
	switch st.Type {
	case 0xef53:
		return "extfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x2fc12fc1:
		return "zfs"
	case 0x65735546:
		return "fuse"
	}
	return "<unknown>"
}

// OpenFDs counts this process's open file descriptors (Info.NFd).
func OpenFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}
