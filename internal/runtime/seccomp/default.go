package seccomp

import "slices"

// DefaultProfile returns Docker's default seccomp policy: deny with EPERM
// unless allowed, a large allow list, argument filters on socket, personality
// and clone, and syscalls that become allowed with the capability that
// guards them in the kernel anyway. The policy follows moby's
// profiles/seccomp default as vendored by dockerd. Each call returns a fresh
// copy, so callers may change it.
func DefaultProfile() *Profile {
	enosys := uint32(38)
	eperm := uint32(1)
	allow := func(names ...string) Rule { return Rule{Names: names, Action: ActAllow} }
	withCap := func(c string, names ...string) Rule {
		r := allow(names...)
		r.Includes = &Filter{Caps: []string{c}}
		return r
	}
	onArches := func(arches []string, names ...string) Rule {
		r := allow(names...)
		r.Includes = &Filter{Arches: arches}
		return r
	}
	argEq := func(name string, index uint, v uint64) Rule {
		r := allow(name)
		r.Args = []Arg{{Index: index, Value: v, Op: OpEqualTo}}
		return r
	}

	rules := []Rule{
		allow(slices.Clone(defaultAllowed)...),
		{Names: []string{"process_vm_readv", "process_vm_writev", "ptrace"}, Action: ActAllow, Includes: &Filter{MinKernel: "4.8"}},
		// socket(2) for every address family except AF_ALG (38) and
		// AF_VSOCK (40).
		{Names: []string{"socket"}, Action: ActAllow, Args: []Arg{{Index: 0, Value: 38, Op: OpLessThan}}},
		argEq("socket", 0, 39),
		{Names: []string{"socket"}, Action: ActAllow, Args: []Arg{{Index: 0, Value: 40, Op: OpGreaterThan}}},
		// personality(2) only for PER_LINUX, PER_LINUX32, UNAME26 variants
		// and the 0xffffffff query.
		argEq("personality", 0, 0x0),
		argEq("personality", 0, 0x0008),
		argEq("personality", 0, 0x20000),
		argEq("personality", 0, 0x20008),
		argEq("personality", 0, 0xffffffff),
		onArches([]string{"ppc64le"}, "sync_file_range2", "swapcontext"),
		onArches([]string{"arm", "arm64"}, "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"),
		onArches([]string{"amd64", "x32"}, "arch_prctl"),
		onArches([]string{"amd64", "x32", "x86"}, "modify_ldt"),
		onArches([]string{"s390", "s390x"}, "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
		onArches([]string{"riscv64"}, "riscv_flush_icache"),
		withCap("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
		withCap("CAP_SYS_ADMIN", "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
			"lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr",
			"move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
			"setns", "syslog", "umount", "umount2", "unshare"),
		// Without CAP_SYS_ADMIN, clone(2) may not create namespaces:
		// the flags must have none of CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
		// NEWUSER|NEWPID|NEWNET (0x7e020000). s390 swaps clone's first
		// two arguments.
		{Names: []string{"clone"}, Action: ActAllow, Args: []Arg{{Index: 0, Value: 0x7e020000, Op: OpMaskedEqual}},
			Excludes: &Filter{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}}},
		{Names: []string{"clone"}, Action: ActAllow, Args: []Arg{{Index: 1, Value: 0x7e020000, Op: OpMaskedEqual}},
			Includes: &Filter{Arches: []string{"s390", "s390x"}}, Excludes: &Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
		// clone3(2) passes its flags in memory, out of the filter's
		// reach; ENOSYS makes libcs fall back to clone(2).
		{Names: []string{"clone3"}, Action: ActErrno, Errno: &enosys, Excludes: &Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
		withCap("CAP_SYS_BOOT", "reboot"),
		withCap("CAP_SYS_CHROOT", "chroot"),
		withCap("CAP_SYS_MODULE", "delete_module", "init_module", "finit_module"),
		withCap("CAP_SYS_PACCT", "acct"),
		withCap("CAP_SYS_PTRACE", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
		withCap("CAP_SYS_RAWIO", "iopl", "ioperm"),
		withCap("CAP_SYS_TIME", "settimeofday", "stime", "clock_settime", "clock_settime64"),
		withCap("CAP_SYS_TTY_CONFIG", "vhangup"),
		withCap("CAP_SYS_NICE", "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
		withCap("CAP_SYSLOG", "syslog"),
		withCap("CAP_BPF", "bpf"),
		withCap("CAP_PERFMON", "perf_event_open"),
	}
	return &Profile{
		DefaultAction: ActErrno,
		DefaultErrno:  &eperm,
		ArchMap: []ArchMapEntry{
			{Arch: "SCMP_ARCH_X86_64", SubArches: []string{"SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
			{Arch: "SCMP_ARCH_AARCH64", SubArches: []string{"SCMP_ARCH_ARM"}},
			{Arch: "SCMP_ARCH_MIPS64", SubArches: []string{"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"}},
			{Arch: "SCMP_ARCH_MIPS64N32", SubArches: []string{"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"}},
			{Arch: "SCMP_ARCH_MIPSEL64", SubArches: []string{"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"}},
			{Arch: "SCMP_ARCH_MIPSEL64N32", SubArches: []string{"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"}},
			{Arch: "SCMP_ARCH_S390X", SubArches: []string{"SCMP_ARCH_S390"}},
			{Arch: "SCMP_ARCH_RISCV64"},
			{Arch: "SCMP_ARCH_LOONGARCH64"},
		},
		Syscalls: rules,
	}
}

// defaultAllowed are the syscalls Docker's default profile allows to every
// container unconditionally. Names a given architecture lacks are skipped.
var defaultAllowed = []string{
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset",
	"chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
	"clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
	"close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
	"epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir",
	"fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
	"fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
	"fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
	"futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd",
	"getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
	"getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
	"get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
	"gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
	"inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
	"io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc",
	"kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
	"lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr", "listxattrat",
	"llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
	"map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat",
	"mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
	"mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd",
	"msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat",
	"_newselect", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
	"pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
	"pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
	"pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
	"recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
	"removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir",
	"rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
	"rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
	"sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
	"semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid",
	"setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
	"setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
	"setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
	"setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "setxattrat",
	"shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
	"sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
	"statfs64", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
	"sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
	"timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill",
	"truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
	"utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid",
	"write", "writev",
}
