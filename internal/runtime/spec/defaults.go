package spec

// DefaultCapabilities is the capability set dockerd gives a container
// (moby daemon/pkg/oci/caps/defaults.go), mask 0xa80425fb.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// DefaultMaskedPaths are hidden from the container (moby
// daemon/pkg/oci/defaults.go): files get /dev/null mounted over them,
// directories an empty read-only tmpfs.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths are remounted read-only in the container.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// DefaultMounts are the file systems every container gets, with dockerd's
// options. /sys/fs/cgroup is added by init according to the host's cgroup
// mode.
func DefaultMounts() []Mount {
	return []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// DefaultDevices are the device nodes of every container's /dev.
func DefaultDevices() []Device {
	return []Device{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, Mode: 0o666},
		{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, Mode: 0o666},
		{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, Mode: 0o666},
		{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, Mode: 0o666},
		{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, Mode: 0o666},
		{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, Mode: 0o666},
	}
}

// DefaultNamespaces are the namespaces of a default (bridge-networked)
// container. The cgroup namespace is decided by init from the host's
// cgroup mode.
func DefaultNamespaces() []Namespace {
	return []Namespace{{Type: PIDNamespace}, {Type: NetworkNamespace}, {Type: IPCNamespace}, {Type: UTSNamespace}, {Type: MountNamespace}}
}

// Default returns the spec dockerd would build for a container with no
// options: default mounts, devices, masks, capabilities and namespaces. The
// caller sets Process.Args, Env, Hostname and the rest.
func Default(id, root string) *Spec {
	return &Spec{
		Version:       Version,
		ID:            id,
		Root:          root,
		Process:       Process{Cwd: "/", Capabilities: DefaultCapabilities()},
		Mounts:        DefaultMounts(),
		MaskedPaths:   DefaultMaskedPaths(),
		ReadonlyPaths: DefaultReadonlyPaths(),
		Devices:       DefaultDevices(),
		Namespaces:    DefaultNamespaces(),
	}
}
