// Package caps maps capability names to bits and applies a capability set
// to the calling thread: bounding set, permitted, effective, inheritable
// and ambient, in the order runc uses.
//
//	mask, err := caps.Mask(spec.DefaultCapabilities()) // 0xa80425fb
//	err = caps.DropBounding(mask)                      // needs CAP_SETPCAP
//	... change uid ...
//	err = caps.Set(mask)
package caps

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"skiffd/internal/sys"
)

// names is the kernel's capability list in bit order (linux/capability.h).
var names = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// All returns every capability name this package knows, in bit order.
func All() []string { return append([]string(nil), names...) }

// Bit returns the bit number of a capability. It accepts names with or
// without the CAP_ prefix, in any case, as Docker's --cap-add does.
func Bit(name string) (int, error) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range names {
		if c == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown capability: %q", name)
}

// Mask turns names into a bit mask.
func Mask(list []string) (uint64, error) {
	var m uint64
	for _, n := range list {
		b, err := Bit(n)
		if err != nil {
			return 0, err
		}
		m |= 1 << b
	}
	return m, nil
}

// Names turns a mask into names, in bit order.
func Names(mask uint64) []string {
	var out []string
	for i, n := range names {
		if mask&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// LastCap is the highest capability the running kernel knows.
func LastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(names) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return len(names) - 1
	}
	return n
}

// DropBounding removes every capability not in keep from the calling
// thread's bounding set. It needs CAP_SETPCAP, so it runs before the
// final capset.
func DropBounding(keep uint64) error {
	last := LastCap()
	for c := 0; c <= last && c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := sys.Prctl(sys.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// Set makes mask the calling thread's effective and permitted sets, empties
// the inheritable set (as moby has since CVE-2022-24769) and clears the
// ambient set.
func Set(mask uint64) error {
	if err := sys.Capset(mask, mask, 0); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := sys.Prctl(sys.PR_CAP_AMBIENT, sys.PR_CAP_AMBIENT_CLEARALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	return nil
}
