package nsinit

import (
	"reflect"
	"syscall"
	"testing"

	"skiffd/internal/runtime/spec"
)

func TestCloneFlags(t *testing.T) {
	s := spec.Default("c", "/r")
	s.Namespaces = append(s.Namespaces, spec.Namespace{Type: spec.CgroupNamespace})
	base := uintptr(syscall.CLONE_NEWPID | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWNS)
	for _, tc := range []struct {
		mode string
		want uintptr
	}{
		// Only on pure v2 does the cgroup namespace come with the clone
		// (CLONE_INTO_CGROUP places init first); elsewhere init unshares
		// it after the shim has placed it.
		{CgroupV2, base | syscall.CLONE_NEWCGROUP},
		{CgroupHybrid, base},
		{CgroupV1, base},
	} {
		if got := CloneFlags(s, tc.mode); got != tc.want {
			t.Errorf("CloneFlags(%s) = %#x, want %#x", tc.mode, got, tc.want)
		}
	}
	s.Namespaces[1].Path = "/proc/7/ns/net" // joined, not created
	if got := CloneFlags(s, CgroupHybrid); got&syscall.CLONE_NEWNET != 0 {
		t.Errorf("CloneFlags with a joined network namespace = %#x, includes CLONE_NEWNET", got)
	}
}

func TestAdjustMount(t *testing.T) {
	cg := spec.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}}
	sysfs := spec.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
	for _, tc := range []struct {
		name string
		m    spec.Mount
		mode string
		want spec.Mount
	}{
		{"cgroup v2", cg, CgroupV2, spec.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: cg.Options}},
		{"cgroup hybrid", cg, CgroupHybrid, spec.Mount{Destination: "/sys/fs/cgroup", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "nodev", "mode=755"}}},
		// A fresh sysfs whatever the network namespace: never a bind
		// of the host's /sys with its writable submounts.
		{"sysfs", sysfs, CgroupV2, sysfs},
	} {
		if got := adjustMount(tc.m, tc.mode); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: adjustMount = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
