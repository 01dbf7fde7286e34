package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/runtime/pty"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// SyncFD is the sync socket's fd number in init and the exec helper;
// PidFD is the exec helper's fd of the container init's pidfd.
const (
	SyncFD = 3
	PidFD  = 4
)

// Init is the `init` role: it sets the container up as its config says,
// reports ready, waits for go and execs the entrypoint. It returns only on
// failure (after reporting the error to the shim), with the exit status to
// use.
func Init() int {
	t0 := time.Now()
	conn := NewConn(os.NewFile(SyncFD, "sync"))
	var cfg InitConfig
	if _, err := conn.Recv(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "skiffd init: %v\n", err)
		return 1
	}
	spans := map[string]int64{"init.config": int64(time.Since(t0))}
	err := runInit(conn, &cfg, spans)
	conn.Send(Message{Type: MsgError, Error: err.Error()}, nil)
	return 1
}

func runInit(conn *Conn, cfg *InitConfig, spans map[string]int64) error {
	t0 := time.Now()
	s := cfg.Spec
	if s == nil {
		return errors.New("no spec")
	}
	selfExe := -1
	if s.Process.Init {
		fd, err := syscall.Open("/proc/self/exe", sys.O_PATH|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the sealed binary: %w", err)
		}
		selfExe = fd
	}
	if err := prepareRoot(s, cfg); err != nil {
		return err
	}
	spans["init.rootfs"] = int64(time.Since(t0))
	t0 = time.Now()
	if _, ok := s.HasNamespace(spec.UTSNamespace); ok {
		if s.Hostname != "" {
			if err := syscall.Sethostname([]byte(s.Hostname)); err != nil {
				return fmt.Errorf("sethostname: %w", err)
			}
		}
		if s.Domainname != "" {
			if err := syscall.Setdomainname([]byte(s.Domainname)); err != nil {
				return fmt.Errorf("setdomainname: %w", err)
			}
		}
	}
	p := &s.Process
	if p.Terminal {
		if err := setupTerminal(conn, p, !devIsBound(s.Mounts)); err != nil {
			return err
		}
	}
	u, err := resolveUser(p.User, p.AdditionalGroups, readDB("/etc/passwd"), readDB("/etc/group"))
	if err != nil {
		return err
	}
	env := withHome(p.Env, u.Home)
	if p.CreateCwd && p.Cwd != "" {
		if err := os.MkdirAll(p.Cwd, 0o755); err != nil {
			// dockerd's own error (it makes the directory itself).
			if st, serr := os.Stat(p.Cwd); serr == nil && !st.IsDir() {
				return fmt.Errorf("Cannot mkdir: %s is not a directory", p.Cwd)
			}
			return fmt.Errorf("create working directory %s: %w", p.Cwd, err)
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := setOOMScoreAdj(p.OOMScoreAdj); err != nil {
		return err
	}
	spans["init.process"] = int64(time.Since(t0))
	if err := conn.Send(Message{Type: MsgReady, Spans: spans}, nil); err != nil {
		return err
	}
	var g Message
	if _, err := conn.Recv(&g); err != nil || g.Type != MsgGo {
		if err == nil {
			err = fmt.Errorf("unexpected message %q", g.Type)
		}
		return fmt.Errorf("waiting for go: %w", err)
	}
	// On cgroup v1 and hybrid hosts the shim placed init in its cgroups
	// only now; a cgroup namespace made at clone time would be rooted at
	// the shim's cgroup.
	if cfg.CgroupMode != CgroupV2 {
		if _, ok := s.HasNamespace(spec.CgroupNamespace); ok {
			if err := syscall.Unshare(syscall.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("unshare cgroup namespace: %w", err)
			}
		}
	}
	// The shim's ignored signals (and any the daemon inherited) would
	// stay ignored in the container's process; dockerd's start with none.
	if err := sys.DefaultIgnoredSignals(); err != nil {
		return fmt.Errorf("reset ignored signals: %w", err)
	}
	if err := finalize(p, u, s.Seccomp, cwdOf(p)); err != nil {
		return err
	}
	// From the working directory, as the user: a relative command
	// (./run.sh under a WORKDIR) is the working directory's. Under
	// --init the reaper looks it up, as docker-init does: a command that
	// is not there is the container's exit (127), not a failed start.
	exe := p.Args[0]
	if !p.Init {
		if exe, err = lookPath(p.Args[0], env); err != nil {
			return err
		}
	}
	if err := finalizeSeccomp(p, s.Seccomp); err != nil {
		return err
	}
	if p.Init {
		// Our own sealed binary as the reaper, through the fd taken
		// before pivot_root: the seal's mount is not in this namespace,
		// so no path reaches it from here. The sync socket stays open
		// across the exec: the reaper closes it once it forwards signals,
		// and only then is the container started (see Reaper).
		if err := sys.CloseExecFrom(SyncFD + 1); err != nil {
			return err
		}
		err = sys.Execveat(selfExe, append([]string{"skiffd", ReaperRole, exe}, p.Args...), env)
		return fmt.Errorf("exec the container init: %w", err)
	}
	if err := sys.CloseExecFrom(3); err != nil {
		return err
	}
	err = syscall.Exec(exe, p.Args, env)
	return execError(p.Args[0], err)
}

func cwdOf(p *spec.Process) string {
	if p.Cwd == "" {
		return "/"
	}
	return p.Cwd
}

// withHome adds HOME from the user's passwd entry when the environment
// has none, as runc does.
func withHome(env []string, home string) []string {
	if _, ok := getenv(env, "HOME"); ok {
		return env
	}
	return append(append([]string(nil), env...), "HOME="+home)
}

// prepareRoot builds the container's mount namespace and pivots into it.
func prepareRoot(s *spec.Spec, cfg *InitConfig) error {
	cgroupMode := cfg.CgroupMode
	// Go makes / private only for Unshareflags, not for Cloneflags; nothing
	// done here may propagate back to the host.
	if err := syscall.Mount("", "/", "", syscall.MS_SLAVE|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	if err := syscall.Mount(s.Root, s.Root, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind the root onto itself: %w", err)
	}
	rootfd, err := syscall.Open(s.Root, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the root: %w", err)
	}
	defer syscall.Close(rootfd)
	hasDev := false
	for _, m := range s.Mounts {
		m = adjustMount(m, cgroupMode)
		if m.Type == "" && m.Source == "" {
			continue
		}
		if path.Clean(m.Destination) == "/dev" && !isBind(m) {
			hasDev = true
		}
		if err := mountInRoot(rootfd, m); err != nil {
			return err
		}
		if path.Clean(m.Destination) == "/sys/fs/cgroup" && m.Type == "tmpfs" {
			if err := mountCgroupDirs(rootfd, m, cfg); err != nil {
				return err
			}
		}
	}
	// A bind on /dev (-v /dev:/dev) makes the source the container's
	// /dev, whatever was mounted there before: it gets no device nodes,
	// links, owners or modes from us (runc's needsSetupDev), or init
	// would re-create and chown the host's own nodes.
	if hasDev && !devIsBound(s.Mounts) {
		if err := makeDevices(rootfd, s.Devices); err != nil {
			return err
		}
	}
	if err := pivotRoot(rootfd); err != nil {
		return err
	}
	for k, v := range s.Sysctl {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	for _, p := range s.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if len(s.MaskedPaths) > 0 {
		null, err := openDevNull()
		if err != nil {
			return err
		}
		defer syscall.Close(null)
		for _, p := range s.MaskedPaths {
			if err := maskPath(p, null); err != nil {
				return err
			}
		}
	}
	if s.ReadonlyRoot {
		if err := syscall.Mount("", "/", "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount / read-only: %w", err)
		}
	}
	return nil
}

// adjustMount fits the default mounts to the host: /sys/fs/cgroup is a
// read-only cgroup2 mount on a pure v2 host and an empty read-only tmpfs
// otherwise.
//
// sysfs is always a fresh mount, in the host's network namespace too (as
// root in the initial user namespace that is allowed; runc does the
// same). A bind of the host's /sys would bring tracefs, debugfs,
// securityfs, configfs, pstore, bpffs and the host's cgroup mounts along,
// writable for the container's root whatever the top mount's flags
// (issue 9).
func adjustMount(m spec.Mount, cgroupMode string) spec.Mount {
	switch {
	case path.Clean(m.Destination) == "/sys/fs/cgroup" && (m.Type == "cgroup" || m.Type == "cgroup2"):
		if cgroupMode == CgroupV2 {
			m.Type, m.Source = "cgroup2", "cgroup2"
		} else {
			// Writable until the cgroup directories are bound in; then
			// mountCgroupDirs makes it read-only.
			m.Type, m.Source = "tmpfs", "tmpfs"
			var opts []string
			for _, o := range m.Options {
				if o != "ro" {
					opts = append(opts, o)
				}
			}
			m.Options = append(opts, "mode=755")
		}
	}
	return m
}

// mountCgroupDirs binds the container's own cgroup directories (read-only)
// into the tmpfs at /sys/fs/cgroup, adds the links of co-mounted
// controllers, and remounts the tmpfs read-only.
func mountCgroupDirs(rootfd int, tmpfs spec.Mount, cfg *InitConfig) error {
	dir, err := sys.Openat2(rootfd, "sys/fs/cgroup", &sys.OpenHow{Flags: syscall.O_DIRECTORY | syscall.O_CLOEXEC, Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("open /sys/fs/cgroup in the container root: %w", err)
	}
	defer syscall.Close(dir)
	for name, src := range cfg.CgroupMounts {
		if strings.Contains(name, "/") || name == "" || name == "." || name == ".." {
			return fmt.Errorf("bad cgroup mount name %q", name)
		}
		if err := bindCgroupDir(rootfd, dir, name, src); err != nil {
			return err
		}
	}
	for link, target := range cfg.CgroupLinks {
		if strings.Contains(link, "/") || strings.Contains(target, "/") {
			return fmt.Errorf("bad cgroup link %q -> %q", link, target)
		}
		if err := sys.Symlinkat(target, dir, link); err != nil && err != syscall.EEXIST {
			return fmt.Errorf("cgroup link %s: %w", link, err)
		}
	}
	flags := parseOptions(tmpfs.Options).flags | syscall.MS_RDONLY | syscall.MS_REMOUNT
	if err := syscall.Mount("", fdPath(dir), "", flags, "mode=755"); err != nil {
		return fmt.Errorf("remount /sys/fs/cgroup read-only: %w", err)
	}
	return nil
}

// cgroupDirAttrs are the flags of a container's cgroup directory mount.
const cgroupDirAttrs = sys.MOUNT_ATTR_RDONLY | sys.MOUNT_ATTR_NOSUID | sys.MOUNT_ATTR_NODEV | sys.MOUNT_ATTR_NOEXEC

// bindCgroupDir binds the host's cgroup directory src, read-only, nosuid,
// nodev and noexec, on name in dir (the container's fresh /sys/fs/cgroup
// tmpfs, which nothing else can reach yet): a detached copy of src made
// by open_tree(2), its flags set by mount_setattr(2) and attached by
// move_mount(2), five calls. A bind and a remount through mountInRoot
// took about seventeen, resolving the target in the root twice, for each
// of the ten hierarchies of a v1 host (issue 13: 0.6 ms of every start).
// The mount is the same: a non-recursive bind, whose propagation follows
// src, with the same flags. Kernels without mount_setattr (before 5.12)
// take the mount(2) way.
func bindCgroupDir(rootfd, dir int, name, src string) error {
	if err := syscall.Mkdirat(dir, name, 0o755); err != nil && err != syscall.EEXIST {
		return fmt.Errorf("create /sys/fs/cgroup/%s in the container root: %w", name, err)
	}
	tree, err := sys.OpenTree(src, sys.OPEN_TREE_CLONE|sys.OPEN_TREE_CLOEXEC)
	if err == nil {
		defer syscall.Close(tree)
		err = sys.MountSetattr(tree, 0, &sys.MountAttr{AttrSet: cgroupDirAttrs})
	}
	if err == syscall.ENOSYS {
		m := spec.Mount{Destination: "/sys/fs/cgroup/" + name, Type: "bind", Source: src, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}}
		return mountInRoot(rootfd, m)
	}
	if err == nil {
		err = sys.MoveMountTo(tree, dir, name)
	}
	if err != nil {
		return fmt.Errorf("mount %s (bind) on /sys/fs/cgroup/%s: %w", src, name, err)
	}
	return nil
}

// setupTerminal opens a pty in the container's devpts, sends the master to
// the shim and makes the slave the process's stdio and controlling
// terminal, and binds it over /dev/console, which is created when
// ownDev says /dev is the container's own tmpfs (not a bind of the
// host's).
func setupTerminal(conn *Conn, p *spec.Process, ownDev bool) error {
	master, slave, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	if p.ConsoleHeight > 0 && p.ConsoleWidth > 0 {
		if err := pty.Resize(master, p.ConsoleHeight, p.ConsoleWidth); err != nil {
			return fmt.Errorf("set the terminal size: %w", err)
		}
	}
	if err := conn.Send(Message{Type: MsgPty}, master); err != nil {
		return err
	}
	if err := bindConsole(slave.Name(), ownDev); err != nil {
		return err
	}
	for fd := 0; fd < 3; fd++ {
		if err := syscall.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup the terminal: %w", err)
		}
	}
	if _, err := syscall.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := sys.Ioctl(0, sys.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set the controlling terminal: %w", err)
	}
	return nil
}

// bindConsole bind-mounts the pty slave over /dev/console, as runc does.
// In a /dev that is not the container's own, a missing /dev/console is
// not created and the console is left unbound.
func bindConsole(slave string, create bool) error {
	flags := os.O_RDONLY | syscall.O_NOFOLLOW
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile("/dev/console", flags, 0o600)
	if !create && errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	f.Close()
	if err := syscall.Mount(slave, "/dev/console", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the terminal over /dev/console: %w", err)
	}
	return nil
}

// nsFlags maps namespace types to clone flags.
var nsFlags = map[string]uintptr{
	spec.PIDNamespace: syscall.CLONE_NEWPID, spec.NetworkNamespace: syscall.CLONE_NEWNET,
	spec.MountNamespace: syscall.CLONE_NEWNS, spec.IPCNamespace: syscall.CLONE_NEWIPC,
	spec.UTSNamespace: syscall.CLONE_NEWUTS, spec.CgroupNamespace: syscall.CLONE_NEWCGROUP,
}

// CloneFlags returns the clone flags for the namespaces of s that init
// creates at clone time. The cgroup namespace is included only on pure
// cgroup v2 hosts (see InitConfig.CgroupMode). Namespaces to join (with a
// Path) are not included.
func CloneFlags(s *spec.Spec, cgroupMode string) uintptr {
	var f uintptr
	for _, n := range s.Namespaces {
		if n.Path != "" {
			continue
		}
		if n.Type == spec.CgroupNamespace && cgroupMode != CgroupV2 {
			continue
		}
		f |= nsFlags[n.Type]
	}
	return f
}

// ExecHelper is the `exec-helper` role: join the container's namespaces
// through its init's pidfd on this thread, apply the process's security
// settings to this thread, fork the target with CLONE_PARENT (so the shim
// is its parent and reaps it), report its pid and exit.
func ExecHelper() int {
	conn := NewConn(os.NewFile(SyncFD, "sync"))
	var cfg ExecConfig
	if _, err := conn.Recv(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "skiffd exec-helper: %v\n", err)
		return 1
	}
	pid, err := runExec(conn, &cfg)
	if err != nil {
		conn.Send(Message{Type: MsgError, Error: err.Error()}, nil)
		return 1
	}
	conn.Send(Message{Type: MsgPid, Pid: pid}, nil)
	return 0
}

func runExec(conn *Conn, cfg *ExecConfig) (int, error) {
	p := &cfg.Process
	// The container's rlimits and OOM score, as init has them: both are
	// per process and inherited by the fork below. Set while still root
	// (raising a hard limit or lowering the score needs
	// CAP_SYS_RESOURCE) and in the host's pid namespace, whose /proc
	// knows this process.
	if err := setRlimits(p.Rlimits); err != nil {
		return 0, err
	}
	if err := setOOMScoreAdj(p.OOMScoreAdj); err != nil {
		return 0, err
	}
	// A thread sharing its fs_struct cannot join a mount namespace.
	if err := syscall.Unshare(syscall.CLONE_FS); err != nil {
		return 0, fmt.Errorf("unshare fs: %w", err)
	}
	var flags uintptr
	for _, t := range cfg.Namespaces {
		flags |= nsFlags[t]
	}
	if err := sys.Setns(PidFD, int(flags)); err != nil {
		return 0, fmt.Errorf("join the container's namespaces: %w", err)
	}
	syscall.Close(PidFD)
	files := []uintptr{0, 1, 2}
	if p.Terminal {
		master, slave, err := pty.Open()
		if err != nil {
			return 0, err
		}
		defer master.Close()
		defer slave.Close()
		if p.ConsoleHeight > 0 && p.ConsoleWidth > 0 {
			pty.Resize(master, p.ConsoleHeight, p.ConsoleWidth)
		}
		if err := conn.Send(Message{Type: MsgPty}, master); err != nil {
			return 0, err
		}
		s := slave.Fd()
		files = []uintptr{s, s, s}
	}
	u, err := resolveUser(p.User, p.AdditionalGroups, readDB("/etc/passwd"), readDB("/etc/group"))
	if err != nil {
		return 0, err
	}
	env := withHome(p.Env, u.Home)
	cwd := cwdOf(p)
	// The target inherits this process's ignored signals (see Init).
	if err := sys.DefaultIgnoredSignals(); err != nil {
		return 0, fmt.Errorf("reset ignored signals: %w", err)
	}
	if err := finalize(p, u, cfg.Seccomp, cwd); err != nil {
		return 0, err
	}
	// As init does: from the working directory, as the user.
	exe, err := lookPath(p.Args[0], env)
	if err != nil {
		return 0, err
	}
	if err := finalizeSeccomp(p, cfg.Seccomp); err != nil {
		return 0, err
	}
	if err := sys.CloseExecFrom(3); err != nil {
		return 0, err
	}
	// syscall.ForkExec, not os.StartProcess: os asks for a pidfd, and
	// Docker's seccomp profile answers the clone3 that needs with ENOSYS.
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Cloneflags: syscall.CLONE_PARENT, Setsid: true, Setctty: p.Terminal, Ctty: 0},
	}
	pid, err := syscall.ForkExec(exe, p.Args, attr)
	if err != nil {
		return 0, execError(p.Args[0], err)
	}
	return pid, nil
}

// execError words an execve failure the way runc does.
func execError(name string, err error) error {
	if errors.Is(err, syscall.ENOENT) && !strings.Contains(name, "/") {
		return fmt.Errorf("exec: %q: executable file not found in $PATH", name)
	}
	return fmt.Errorf("exec: %q: %w", name, err)
}
