// Package features probes what the kernel offers the runtime, so that the
// daemon can refuse to start with a clear message when a mechanism the
// security baseline depends on is missing, instead of running containers
// with weaker isolation; the results also go into /info.
//
//	f := features.Probe()
//	if err := f.Check(); err != nil { return err }
package features

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/sys"
)

// Features are the probe results.
type Features struct {
	Kernel string `json:"kernel"`
	// Openat2 (5.6) resolves mount targets inside the container root.
	Openat2 bool `json:"openat2"`
	// Pidfd (5.3) and PidfdSetns (5.8) identify inits and let the exec
	// helper join all of a container's namespaces in one call.
	Pidfd      bool `json:"pidfd"`
	PidfdSetns bool `json:"pidfdSetns"`
	// CloneIntoCgroup (5.7) places init and exec'd processes atomically.
	CloneIntoCgroup bool `json:"cloneIntoCgroup"`
	// Fsopen (5.2) makes the overlay seal of the binary; without it the
	// seal is a memfd copy.
	Fsopen  bool `json:"fsopen"`
	Overlay bool `json:"overlay"`
	Seccomp bool `json:"seccomp"`
	BPF     bool `json:"bpf"`
	// CgroupMode is legacy, hybrid or unified.
	CgroupMode string `json:"cgroupMode"`
	// Cgroup tells which resource limits the host can enforce; create and
	// update discard the others with dockerd's warnings.
	Cgroup cgroups.Support `json:"cgroup"`
	// NetSysctls are the network sysctls this kernel has among those
	// dockerd sets by default in a container's own network namespace
	// (net.ipv4.ping_group_range, 2.6.39; ip_unprivileged_port_start, 4.11).
	NetSysctls []string `json:"netSysctls"`
}

// Probe checks the running kernel. It changes nothing.
func Probe() Features {
	f := Features{CgroupMode: cgroups.DetectMode().String(), Cgroup: cgroups.Probe()}
	if u, err := sys.Uname(); err == nil {
		f.Kernel = u.Release
	}
	if fd, err := sys.Openat2(-100, "/", &sys.OpenHow{Flags: sys.O_PATH | syscall.O_CLOEXEC}); err == nil {
		f.Openat2 = true
		syscall.Close(fd)
	}
	if fd, err := sys.PidfdOpen(os.Getpid()); err == nil {
		f.Pidfd = true
		syscall.Close(fd)
	}
	// An unreadable release counts as 0.0: nothing is assumed.
	major, minor, _ := sys.ParseKernelRelease(f.Kernel)
	atLeast := func(ma, mi int) bool { return major > ma || major == ma && minor >= mi }
	f.PidfdSetns = f.Pidfd && atLeast(5, 8)
	f.CloneIntoCgroup = atLeast(5, 7) && f.CgroupMode != cgroups.Legacy.String()
	if fd, err := sys.Fsopen("overlay", sys.FSOPEN_CLOEXEC); err == nil {
		f.Fsopen = true
		syscall.Close(fd)
	}
	if b, err := os.ReadFile("/proc/filesystems"); err == nil {
		f.Overlay = strings.Contains(string(b), "\toverlay\n")
	}
	// PR_GET_SECCOMP answers EINVAL when the kernel has no seccomp.
	if sys.Prctl(sys.PR_GET_SECCOMP, 0, 0, 0, 0) == nil {
		f.Seccomp = true
	}
	// An invalid bpf command gives EINVAL where bpf(2) exists.
	if _, err := sys.Bpf(-1, nil); err != syscall.ENOSYS {
		f.BPF = true
	}
	for _, k := range []string{"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"} {
		if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(k, ".", "/")); err == nil {
			f.NetSysctls = append(f.NetSysctls, k)
		}
	}
	return f
}

// Check returns an error naming every missing mechanism that skiffd's
// security baseline needs.
func (f Features) Check() error {
	var missing []string
	if !f.Openat2 {
		missing = append(missing, "openat2 (Linux 5.6), which keeps image symlinks from redirecting container mounts")
	}
	if !f.PidfdSetns {
		missing = append(missing, "setns with a pidfd (Linux 5.8), which docker exec uses to join a container")
	}
	if !f.Seccomp {
		missing = append(missing, "seccomp filters (CONFIG_SECCOMP_FILTER)")
	}
	if !f.Overlay {
		missing = append(missing, "the overlay file system")
	}
	if f.CgroupMode == cgroups.Unified.String() && !f.BPF {
		missing = append(missing, "bpf(2) (CONFIG_CGROUP_BPF), which enforces the device policy on cgroup v2")
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("this kernel lacks what skiffd needs to isolate containers: " + strings.Join(missing, "; "))
}

// String summarises the probe for logs.
func (f Features) String() string {
	return fmt.Sprintf("kernel %s, cgroups %s, openat2 %v, pidfd %v, pidfd-setns %v, clone-into-cgroup %v, fsopen %v, overlay %v, seccomp %v, bpf %v",
		f.Kernel, f.CgroupMode, f.Openat2, f.Pidfd, f.PidfdSetns, f.CloneIntoCgroup, f.Fsopen, f.Overlay, f.Seccomp, f.BPF)
}
