package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/mountinfo"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// mountFlags maps mount(8) option names to flags to set (true) or clear.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, syscall.MS_RDONLY}, "rw": {true, syscall.MS_RDONLY},
	"nosuid": {false, syscall.MS_NOSUID}, "suid": {true, syscall.MS_NOSUID},
	"nodev": {false, syscall.MS_NODEV}, "dev": {true, syscall.MS_NODEV},
	"noexec": {false, syscall.MS_NOEXEC}, "exec": {true, syscall.MS_NOEXEC},
	"sync": {false, syscall.MS_SYNCHRONOUS}, "async": {true, syscall.MS_SYNCHRONOUS},
	"dirsync": {false, syscall.MS_DIRSYNC}, "remount": {false, syscall.MS_REMOUNT},
	"mand": {false, syscall.MS_MANDLOCK}, "nomand": {true, syscall.MS_MANDLOCK},
	"atime": {true, syscall.MS_NOATIME}, "noatime": {false, syscall.MS_NOATIME},
	"diratime": {true, syscall.MS_NODIRATIME}, "nodiratime": {false, syscall.MS_NODIRATIME},
	"relatime": {false, syscall.MS_RELATIME}, "norelatime": {true, syscall.MS_RELATIME},
	"strictatime": {false, syscall.MS_STRICTATIME}, "nostrictatime": {true, syscall.MS_STRICTATIME},
	"bind": {false, syscall.MS_BIND}, "rbind": {false, syscall.MS_BIND | syscall.MS_REC},
}

// propagationFlags are applied with a second mount(2) call.
var propagationFlags = map[string]uintptr{
	"private": syscall.MS_PRIVATE, "rprivate": syscall.MS_PRIVATE | syscall.MS_REC,
	"slave": syscall.MS_SLAVE, "rslave": syscall.MS_SLAVE | syscall.MS_REC,
	"shared": syscall.MS_SHARED, "rshared": syscall.MS_SHARED | syscall.MS_REC,
	"unbindable": syscall.MS_UNBINDABLE, "runbindable": syscall.MS_UNBINDABLE | syscall.MS_REC,
}

// parsedMount is a spec.Mount's options split into flags and data.
type parsedMount struct {
	flags       uintptr
	propagation []uintptr
	data        string
	// topOnly keeps a read-only bind's submounts as they are
	// (spec.ReadOnlyTopOnly).
	topOnly bool
}

// parseOptions splits mount options into flags, propagation changes and
// file-system data.
func parseOptions(opts []string) parsedMount {
	var p parsedMount
	var data []string
	for _, o := range opts {
		if o == spec.ReadOnlyTopOnly {
			p.flags |= syscall.MS_RDONLY
			p.topOnly = true
			continue
		}
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationFlags[o]; ok {
			p.propagation = append(p.propagation, f)
			continue
		}
		data = append(data, o)
	}
	p.data = strings.Join(data, ",")
	return p
}

// openInRoot opens container path p (absolute) below rootfd with chroot
// semantics (openat2 RESOLVE_IN_ROOT), so that a symlink in the image
// cannot send a mount outside the root. Missing components are created:
// directories, or an empty file for the last one when file is true. The
// returned fd is O_PATH; mount onto /proc/self/fd/<fd>.
func openInRoot(rootfd int, p string, file bool) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return syscall.Dup(rootfd)
	}
	how := &sys.OpenHow{Flags: sys.O_PATH | syscall.O_CLOEXEC, Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS}
	if fd, err := sys.Openat2(rootfd, rel, how); err == nil {
		return fd, nil
	} else if err != syscall.ENOENT {
		return -1, fmt.Errorf("open %s in the container root: %w", p, err)
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := sys.Openat2(rootfd, prefix, how)
		if err == nil {
			if i == len(parts)-1 {
				return fd, nil
			}
			syscall.Close(fd)
			continue
		}
		if err != syscall.ENOENT {
			return -1, fmt.Errorf("open %s in the container root: %w", "/"+prefix, err)
		}
		parent := rootfd
		if i > 0 {
			pfd, err := sys.Openat2(rootfd, strings.Join(parts[:i], "/"), &sys.OpenHow{Flags: syscall.O_DIRECTORY | syscall.O_CLOEXEC, Resolve: how.Resolve})
			if err != nil {
				return -1, fmt.Errorf("open %s in the container root: %w", "/"+strings.Join(parts[:i], "/"), err)
			}
			parent = pfd
		}
		if file && i == len(parts)-1 {
			var nfd int
			nfd, err = syscall.Openat(parent, parts[i], syscall.O_CREAT|syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
			if err == nil {
				syscall.Close(nfd)
			}
		} else {
			err = syscall.Mkdirat(parent, parts[i], 0o755)
		}
		if parent != rootfd {
			syscall.Close(parent)
		}
		if err != nil && err != syscall.EEXIST {
			return -1, fmt.Errorf("create %s in the container root: %w", "/"+prefix, err)
		}
		fd, err = sys.Openat2(rootfd, prefix, how)
		if err != nil {
			return -1, fmt.Errorf("open %s in the container root: %w", "/"+prefix, err)
		}
		if i == len(parts)-1 {
			return fd, nil
		}
		syscall.Close(fd)
	}
	return -1, fmt.Errorf("open %s in the container root: unreachable", p)
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mountInRoot makes one spec mount below rootfd.
func mountInRoot(rootfd int, m spec.Mount) error {
	p := parseOptions(m.Options)
	bind := p.flags&syscall.MS_BIND != 0 || m.Type == "bind"
	file := false
	if bind {
		p.flags |= syscall.MS_BIND
		st, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		file = !st.IsDir()
	}
	fd, err := openInRoot(rootfd, m.Destination, file)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	target := fdPath(fd)
	typ := m.Type
	if bind {
		typ = ""
	}
	// A bind mount ignores every flag but MS_REC on creation; the rest
	// needs a remount.
	if err := syscall.Mount(m.Source, target, typ, p.flags&^(syscall.MS_REMOUNT), p.data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
	}
	if bind && p.flags&^(syscall.MS_BIND|syscall.MS_REC) != 0 {
		// Reopen: the fd still names the mount point under the new mount.
		fd2, err := openInRoot(rootfd, m.Destination, file)
		if err != nil {
			return err
		}
		defer syscall.Close(fd2)
		if err := syscall.Mount("", fdPath(fd2), "", p.flags|syscall.MS_REMOUNT|syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("remount %s: %w", m.Destination, err)
		}
		// The remount changed the top mount only; a recursive bind
		// brought the source's submounts along, writable.
		if p.flags&syscall.MS_RDONLY != 0 && !p.topOnly {
			if err := readonlyRecursive(fd2); err != nil {
				return fmt.Errorf("make %s read-only: %w", m.Destination, err)
			}
		}
	}
	for _, pf := range p.propagation {
		fd3, err := openInRoot(rootfd, m.Destination, file)
		if err != nil {
			return err
		}
		err = syscall.Mount("", fdPath(fd3), "", pf, "")
		syscall.Close(fd3)
		if err != nil {
			return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
		}
	}
	return nil
}

// devSymlinks are the /dev links every container has (runc setupDevSymlinks).
var devSymlinks = [][2]string{
	{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
	{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
}

// makeDevices creates the device nodes and links in the container's /dev.
// Nodes may sit in subdirectories (/dev/net/tun, /dev/snd/controlC0),
// which are created as needed.
func makeDevices(rootfd int, devices []spec.Device) error {
	dev, err := sys.Openat2(rootfd, "dev", &sys.OpenHow{Flags: syscall.O_DIRECTORY | syscall.O_CLOEXEC, Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("open /dev: %w", err)
	}
	defer syscall.Close(dev)
	for _, d := range devices {
		p := path.Clean("/" + d.Path)
		if !strings.HasPrefix(p, "/dev/") {
			return fmt.Errorf("device %s: not in /dev", d.Path)
		}
		mode := d.Mode & 0o7777
		switch d.Type {
		case "c", "u":
			mode |= syscall.S_IFCHR
		case "b":
			mode |= syscall.S_IFBLK
		default:
			return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		dir := dev
		if parent := path.Dir(p); parent != "/dev" {
			pfd, err := openInRoot(rootfd, parent, false)
			if err != nil {
				return fmt.Errorf("device %s: %w", d.Path, err)
			}
			defer syscall.Close(pfd)
			dir = pfd
		}
		name := path.Base(p)
		syscall.Unlinkat(dir, name)
		if err := syscall.Mknodat(dir, name, mode, int(sys.Makedev(d.Major, d.Minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
		if err := syscall.Fchownat(dir, name, int(d.UID), int(d.GID), 0); err != nil {
			return fmt.Errorf("chown %s: %w", d.Path, err)
		}
		// The umask applied to mknod; set the mode exactly.
		if err := syscall.Fchmodat(dir, name, d.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", d.Path, err)
		}
	}
	for _, l := range devSymlinks {
		if err := sys.Symlinkat(l[0], dev, l[1]); err != nil && err != syscall.EEXIST {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		sys.Symlinkat("/proc/kcore", dev, "core")
	}
	return nil
}

// pivotRoot makes rootfd the root with runc's pivot_root(".", ".") trick,
// which needs no directory for the old root: the old root ends up stacked
// on the new one and is lazily unmounted from there.
func pivotRoot(rootfd int) error {
	if err := syscall.Fchdir(rootfd); err != nil {
		return fmt.Errorf("chdir to the root: %w", err)
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// Keep the unmount from propagating to the host.
	if err := syscall.Mount("", ".", "", syscall.MS_SLAVE|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("make the old root rslave: %w", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the old root: %w", err)
	}
	return syscall.Chdir("/")
}

// maskPath hides p: the null device (null, an fd from openDevNull) over a
// file, an empty read-only tmpfs over a directory (runc maskPaths).
// Missing paths are skipped.
func maskPath(p string, null int) error {
	err := syscall.Mount(fdPath(null), p, "", syscall.MS_BIND, "")
	if err == syscall.ENOTDIR || err == syscall.EISDIR {
		err = syscall.Mount("tmpfs", p, "tmpfs", syscall.MS_RDONLY, "nr_blocks=1,nr_inodes=1")
	}
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// openDevNull opens the container's /dev/null for masking and checks that
// it is the null device, char 1:3. In a /dev bound from elsewhere, or one
// the container's image or a racing process prepared, it may be any file:
// binding that over a masked path would show its content there, or, as
// a link to a /proc file, make that file writable (CVE-2025-31133). The
// masks bind the checked fd itself, so nothing can be swapped in between.
func openDevNull() (int, error) {
	fd, err := syscall.Open("/dev/null", sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("mask paths: open /dev/null: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("mask paths: stat /dev/null: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || uint64(st.Rdev) != sys.Makedev(1, 3) {
		syscall.Close(fd)
		return -1, fmt.Errorf("mask paths: /dev/null is not the null device (char 1:3) but %s; refusing to bind it over masked paths", describeFile(&st))
	}
	return fd, nil
}

// describeFile names a file's type (and device number) for errors.
func describeFile(st *syscall.Stat_t) string {
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFCHR:
		return fmt.Sprintf("char device %d:%d", sys.Major(uint64(st.Rdev)), sys.Minor(uint64(st.Rdev)))
	case syscall.S_IFBLK:
		return fmt.Sprintf("block device %d:%d", sys.Major(uint64(st.Rdev)), sys.Minor(uint64(st.Rdev)))
	case syscall.S_IFREG:
		return "a regular file"
	case syscall.S_IFDIR:
		return "a directory"
	case syscall.S_IFLNK:
		return "a symbolic link"
	case syscall.S_IFIFO:
		return "a fifo"
	case syscall.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("a file of mode %#o", st.Mode)
}

// isBind reports whether m is a bind mount.
func isBind(m spec.Mount) bool {
	return m.Type == "bind" || parseOptions(m.Options).flags&syscall.MS_BIND != 0
}

// devIsBound reports whether a bind mount covers /dev (-v /dev:/dev), as
// runc's needsSetupDev decides.
func devIsBound(mounts []spec.Mount) bool {
	for _, m := range mounts {
		if path.Clean(m.Destination) == "/dev" && isBind(m) {
			return true
		}
	}
	return false
}

// readonlyPath remounts p read-only with nosuid, nodev and noexec (runc
// readonlyPath), the mounts below it included. Missing paths are skipped.
func readonlyPath(p string) error {
	if err := syscall.Mount(p, p, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind %s read-only: %w", p, err)
	}
	flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
	if err := syscall.Mount("", p, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", p, err)
	}
	fd, err := syscall.Open(p, sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("remount %s read-only: %w", p, err)
	}
	defer syscall.Close(fd)
	if err := readonlyRecursive(fd); err != nil {
		return fmt.Errorf("remount %s read-only: %w", p, err)
	}
	return nil
}

// readonlyRecursive makes the mount fd refers to and every mount below it
// read-only, as Docker >= 25 does for read-only binds: mount_setattr(2)
// with AT_RECURSIVE, or, on kernels before 5.12, a read-only remount of
// each submount found in mountinfo.
func readonlyRecursive(fd int) error {
	err := sys.MountSetattr(fd, sys.AT_RECURSIVE, &sys.MountAttr{AttrSet: sys.MOUNT_ATTR_RDONLY})
	if err != syscall.ENOSYS {
		return err
	}
	top, err := os.Readlink(fdPath(fd))
	if err != nil {
		return err
	}
	return remountReadonlyBelow(top)
}

// remountReadonlyBelow remounts every mount below the mount point top
// read-only, keeping each one's other flags: the fallback of
// readonlyRecursive for kernels without mount_setattr.
func remountReadonlyBelow(top string) error {
	// thread-self: the mount namespace is the calling thread's.
	info, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(info), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		mp := mountinfo.Unescape(f[4])
		if !strings.HasPrefix(mp, top+"/") {
			continue
		}
		flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
		for _, o := range strings.Split(f[5], ",") {
			if mf, ok := mountFlags[o]; ok && !mf.clear && o != "ro" {
				flags |= mf.flag
			}
		}
		if err := syscall.Mount("", mp, "", flags, ""); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("remount %s: %w", mp, err)
		}
	}
	return nil
}

// writeSysctl sets one namespaced sysctl through the container's /proc.
func writeSysctl(key, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	return nil
}

// rlimits maps the OCI names to resource numbers.
var rlimits = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
	"RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
	"RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

func setRlimits(list []spec.Rlimit) error {
	for _, r := range list {
		res, ok := rlimits[r.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", r.Type)
		}
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", r.Type, err)
		}
	}
	return nil
}
