// Package sys is skiffd's one system call layer: every raw system call
// (syscall.Syscall, RawSyscall) and every system call number the rest of
// the tree needs lives here, as golang.org/x/sys/unix does for the
// ecosystem, so no other package declares one. It wraps what package
// syscall lacks: setns, pidfds, memfd and seals, the new mount API,
// openat2, the *at and l*/f*xattr calls, capabilities, per-thread
// credentials, seccomp, bpf, close_range, ppoll, terminal and interface
// ioctls, uname as strings. It is mechanism only, with no policy; errors
// are syscall.Errno values.
//
//	fd, err := sys.Openat2(rootfd, "etc/passwd", &sys.OpenHow{
//		Flags:   syscall.O_RDONLY | syscall.O_CLOEXEC,
//		Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS,
//	})
//
// Per-thread calls (Setresuid, Setresgid, Setgroups, Capset, Prctl) act on
// the calling OS thread only, unlike syscall.Setuid, which changes every
// thread of the process; callers must hold runtime.LockOSThread.
//
// Only amd64 (sysnum_linux_amd64.go) and arm64 and riscv64
// (sysnum_generic.go) have syscall numbers here, and only they build;
// .ci/run builds and vets all three.
//
// The seccomp package keeps its own syscall name tables (zsysnum_*.go):
// they are data for the filters it compiles for several audit
// architectures, not calls.
package sys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// Syscall numbers shared by every architecture (the unified table).
const (
	sysPidfdSendSignal = 424
	sysPidfdOpen       = 434
	sysCloseRange      = 436
	sysOpenat2         = 437
	sysFsopen          = 430
	sysFsconfig        = 431
	sysFsmount         = 432
	sysMoveMount       = 429
	sysMountSetattr    = 442
)

// Flags and constants of the calls above, from the kernel's uapi headers.
const (
	FSOPEN_CLOEXEC          = 0x1
	FSMOUNT_CLOEXEC         = 0x1
	FSCONFIG_SET_STRING     = 1
	FSCONFIG_CMD_CREATE     = 6
	MOVE_MOUNT_F_EMPTY_PATH = 0x4
	MOUNT_ATTR_RDONLY       = 0x1
	MOUNT_ATTR_NOSUID       = 0x2
	MOUNT_ATTR_NODEV        = 0x4
	MOUNT_ATTR_NOEXEC       = 0x8
	AT_RECURSIVE            = 0x8000
	MFD_CLOEXEC             = 0x1
	MFD_ALLOW_SEALING       = 0x2
	MFD_EXEC                = 0x10
	F_ADD_SEALS             = 1033
	F_SETPIPE_SZ            = 1031
	F_GETPIPE_SZ            = 1032
	F_SEAL_SEAL             = 0x1
	F_SEAL_SHRINK           = 0x2
	F_SEAL_GROW             = 0x4
	F_SEAL_WRITE            = 0x8
	F_SEAL_EXEC             = 0x20
	RESOLVE_NO_XDEV         = 0x1
	RESOLVE_NO_MAGICLINKS   = 0x2
	RESOLVE_NO_SYMLINKS     = 0x4
	RESOLVE_BENEATH         = 0x8
	RESOLVE_IN_ROOT         = 0x10
	CLOSE_RANGE_CLOEXEC     = 0x4
	PR_SET_PDEATHSIG        = 1
	PR_GET_SECCOMP          = 21
	PR_SET_SECCOMP          = 22
	SECCOMP_MODE_FILTER     = 2
	PR_SET_DUMPABLE         = 4
	PR_SET_NAME             = 15
	PR_SET_KEEPCAPS         = 8
	PR_CAPBSET_READ         = 23
	PR_CAPBSET_DROP         = 24
	PR_SET_CHILD_SUBREAPER  = 36
	PR_SET_NO_NEW_PRIVS     = 38
	PR_CAP_AMBIENT          = 47
	PR_CAP_AMBIENT_CLEARALL = 4
	TIOCGPTN                = 0x80045430
	TIOCSPTLCK              = 0x40045431
	TIOCGPTPEER             = 0x5441
	TIOCSWINSZ              = 0x5414
	TIOCGWINSZ              = 0x5413
	TIOCSCTTY               = 0x540e
	SIOCGIFFLAGS            = 0x8913
	SIOCSIFFLAGS            = 0x8914
)

// Setns moves the calling thread into the namespace fd refers to, or, when
// fd is a pidfd, into the namespaces of that process named by nstype.
func Setns(fd int, nstype int) error {
	_, _, e := syscall.RawSyscall(sysSetns, uintptr(fd), uintptr(nstype), 0)
	if e != 0 {
		return e
	}
	return nil
}

// PidfdOpen returns a pidfd for pid (Linux 5.3), close-on-exec.
func PidfdOpen(pid int) (int, error) {
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// PidfdsWork reports whether the kernel has pidfd_open (Linux 5.3).
func PidfdsWork() bool {
	fd, err := PidfdOpen(os.Getpid())
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

// PidfdSendSignal sends sig to the process pidfd refers to; unlike kill(2)
// it cannot hit a recycled pid.
func PidfdSendSignal(pidfd int, sig syscall.Signal) error {
	_, _, e := syscall.Syscall6(sysPidfdSendSignal, uintptr(pidfd), uintptr(sig), 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// MemfdCreate creates an anonymous memory file.
func MemfdCreate(name string, flags int) (int, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, _, e := syscall.Syscall(sysMemfdCreate, uintptr(unsafe.Pointer(p)), uintptr(flags), 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// Fsopen opens a file system context (new mount API, Linux 5.2).
func Fsopen(fsname string, flags int) (int, error) {
	p, err := syscall.BytePtrFromString(fsname)
	if err != nil {
		return -1, err
	}
	fd, _, e := syscall.Syscall(sysFsopen, uintptr(unsafe.Pointer(p)), uintptr(flags), 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// FsconfigSetString sets the string option key of a file system context.
func FsconfigSetString(fd int, key, value string) error {
	k, err := syscall.BytePtrFromString(key)
	if err != nil {
		return err
	}
	v, err := syscall.BytePtrFromString(value)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(sysFsconfig, uintptr(fd), FSCONFIG_SET_STRING, uintptr(unsafe.Pointer(k)), uintptr(unsafe.Pointer(v)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// FsconfigCreate creates the superblock of a configured context.
func FsconfigCreate(fd int) error {
	_, _, e := syscall.Syscall6(sysFsconfig, uintptr(fd), FSCONFIG_CMD_CREATE, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Fsmount turns a created context into a detached mount and returns its fd.
func Fsmount(fd int, flags, attrs int) (int, error) {
	m, _, e := syscall.Syscall(sysFsmount, uintptr(fd), uintptr(flags), uintptr(attrs))
	if e != 0 {
		return -1, e
	}
	return int(m), nil
}

// MoveMount attaches the detached mount mfd (from Fsmount) at target.
func MoveMount(mfd int, target string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	t, err := syscall.BytePtrFromString(target)
	if err != nil {
		return err
	}
	atFdcwd := -0x64
	_, _, e := syscall.Syscall6(sysMoveMount, uintptr(mfd), uintptr(unsafe.Pointer(empty)),
		uintptr(atFdcwd), uintptr(unsafe.Pointer(t)), MOVE_MOUNT_F_EMPTY_PATH, 0)
	if e != 0 {
		return e
	}
	return nil
}

// MountAttr is struct mount_attr of mount_setattr(2).
type MountAttr struct {
	AttrSet     uint64
	AttrClr     uint64
	Propagation uint64
	UsernsFd    uint64
}

// MountSetattr changes the attributes of the mount fd refers to (the fd
// itself: AT_EMPTY_PATH is implied), and of every mount below it when
// flags has AT_RECURSIVE (Linux 5.12). Unlike a MS_REMOUNT, a recursive
// change reaches the submounts a recursive bind brought along.
func MountSetattr(fd int, flags int, attr *MountAttr) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(sysMountSetattr, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(flags|AT_EMPTY_PATH), uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr), 0)
	if e != 0 {
		return e
	}
	return nil
}

// OpenHow is struct open_how of openat2(2).
type OpenHow struct {
	Flags   uint64
	Mode    uint64
	Resolve uint64
}

// openat2Attempts bounds how often Openat2 tries. openat2 fails with EAGAIN
// when a rename or mount anywhere on the system raced a RESOLVE_IN_ROOT or
// RESOLVE_BENEATH lookup, and the kernel asks the caller to try again; a
// container renaming in a loop must not hold a daemon goroutine forever, so
// after this many attempts (EINTR counts as one too) Openat2 gives up with
// EAGAIN. This is the one retry policy of every openat2 caller (issue 10).
const openat2Attempts = 128

// Openat2 is openat2(2) (Linux 5.6). It retries EINTR and EAGAIN, at most
// openat2Attempts times in all; ENOSYS on older kernels is returned as is,
// for the caller to fall back.
func Openat2(dirfd int, path string, how *OpenHow) (int, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	for range openat2Attempts {
		fd, _, e := syscall.Syscall6(sysOpenat2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(how)), unsafe.Sizeof(*how), 0, 0)
		switch e {
		case 0:
			return int(fd), nil
		case syscall.EINTR, syscall.EAGAIN:
			continue
		default:
			return -1, e
		}
	}
	return -1, syscall.EAGAIN
}

// Prctl is prctl(2) on the calling thread.
func Prctl(option int, arg2, arg3, arg4, arg5 uintptr) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, uintptr(option), arg2, arg3, arg4, arg5, 0)
	if e != 0 {
		return e
	}
	return nil
}

// SetThreadName sets the calling thread's name (its comm, what ps -e and
// top show; /proc/<pid>/comm for the main thread), cut to 15 bytes.
// Threads started afterwards inherit it.
func SetThreadName(name string) error {
	var b [16]byte
	copy(b[:15], name)
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0)
	if e != 0 {
		return e
	}
	return nil
}

// CapUserHeader and CapUserData are the capget/capset structures, version 3.
type CapUserHeader struct {
	Version uint32
	Pid     int32
}

// CapUserData holds one 32-bit half of the three capability sets.
type CapUserData struct {
	Effective   uint32
	Permitted   uint32
	Inheritable uint32
}

// LinuxCapabilityVersion3 is _LINUX_CAPABILITY_VERSION_3.
const LinuxCapabilityVersion3 = 0x20080522

// Capget reads the calling thread's capability sets.
func Capget() (effective, permitted, inheritable uint64, err error) {
	hdr := CapUserHeader{Version: LinuxCapabilityVersion3}
	var data [2]CapUserData
	_, _, e := syscall.RawSyscall(sysCapget, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if e != 0 {
		return 0, 0, 0, e
	}
	join := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	return join(data[0].Effective, data[1].Effective), join(data[0].Permitted, data[1].Permitted), join(data[0].Inheritable, data[1].Inheritable), nil
}

// Capset sets the calling thread's capability sets.
func Capset(effective, permitted, inheritable uint64) error {
	hdr := CapUserHeader{Version: LinuxCapabilityVersion3}
	data := [2]CapUserData{
		{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)},
		{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	_, _, e := syscall.RawSyscall(sysCapset, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if e != 0 {
		return e
	}
	return nil
}

// Setresuid sets the real, effective and saved uid of the calling thread only.
func Setresuid(r, e, s int) error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(r), uintptr(e), uintptr(s))
	if errno != 0 {
		return errno
	}
	return nil
}

// Setresgid sets the real, effective and saved gid of the calling thread only.
func Setresgid(r, e, s int) error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(r), uintptr(e), uintptr(s))
	if errno != 0 {
		return errno
	}
	return nil
}

// Setgroups sets the supplementary groups of the calling thread only.
func Setgroups(gids []uint32) error {
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	_, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(gids)), uintptr(p), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Seccomp loads a classic BPF filter on the calling thread
// (SECCOMP_SET_MODE_FILTER, no TSYNC).
func Seccomp(prog *syscall.SockFprog) error {
	_, _, e := syscall.RawSyscall(sysSeccomp, 1, 0, uintptr(unsafe.Pointer(prog)))
	if e != 0 {
		return e
	}
	return nil
}

// PrctlSeccomp loads a classic BPF filter on the calling thread through
// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER), the only form kernels before
// 3.17 have; Seccomp answers ENOSYS there.
func PrctlSeccomp(prog *syscall.SockFprog) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(prog)))
	if e != 0 {
		return e
	}
	return nil
}

// Bpf is bpf(2): command cmd with attr as its union bpf_attr (the first
// len(attr) bytes of it). It returns the call's result, an fd for the
// commands that make one. Pointers inside attr are the caller's to keep
// alive.
func Bpf(cmd int, attr []byte) (int, error) {
	r, _, e := syscall.Syscall(sysBpf, uintptr(cmd), uintptr(bytesPtr(attr)), uintptr(len(attr)))
	runtime.KeepAlive(attr)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Fcntl is fcntl(2) with an integer argument; it returns the call's
// result (the flags for F_GETFD, for example).
func Fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// AddSeals adds the F_SEAL_* seals to the memfd fd (fcntl F_ADD_SEALS).
func AddSeals(fd int, seals int) error {
	_, err := Fcntl(fd, F_ADD_SEALS, seals)
	return err
}

// CloseExecFrom marks every fd >= minfd close-on-exec, so that nothing the
// process holds leaks through the next execve. It uses close_range (Linux
// 5.11) and falls back to walking /proc/self/fd.
func CloseExecFrom(minfd int) error {
	_, _, e := syscall.RawSyscall(sysCloseRange, uintptr(minfd), ^uintptr(0), CLOSE_RANGE_CLOEXEC)
	if e == 0 {
		return nil
	}
	if e != syscall.ENOSYS && e != syscall.EINVAL {
		return fmt.Errorf("close_range: %w", e)
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	dirfd := int(d.Fd())
	if err != nil {
		d.Close()
		return err
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < minfd || fd == dirfd {
			continue
		}
		syscall.CloseOnExec(fd)
	}
	return d.Close()
}

// CloseFrom closes every fd >= minfd (close_range, Linux 5.9), falling back
// to walking /proc/self/fd. Only for processes that know every fd they
// own, like a freshly started shim.
func CloseFrom(minfd int) error {
	_, _, e := syscall.RawSyscall(sysCloseRange, uintptr(minfd), ^uintptr(0), 0)
	if e == 0 {
		return nil
	}
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, n := range names {
		if fd, err := strconv.Atoi(n.Name()); err == nil && fd >= minfd {
			syscall.Close(fd)
		}
	}
	return nil
}

// Winsize is struct winsize of the TIOC[GS]WINSZ ioctls.
type Winsize struct {
	Row, Col, Xpixel, Ypixel uint16
}

// Ioctl is ioctl(2) with a pointer or integer argument.
func Ioctl(fd int, req uint, arg uintptr) error {
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
	if e != 0 {
		return e
	}
	return nil
}

// SetWinsize sets the window size of a terminal.
func SetWinsize(fd int, ws Winsize) error {
	return Ioctl(fd, TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
}

// GetWinsize reads the window size of a terminal.
func GetWinsize(fd int) (Winsize, error) {
	var ws Winsize
	err := Ioctl(fd, TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
	return ws, err
}

// PtyPeer opens the slave side of the pty whose master is fd, with open
// flags (ioctl TIOCGPTPEER, Linux 4.13), and returns its descriptor. Unlike
// opening /dev/pts/N there is no path lookup, so nothing planted in the
// file system can swap the slave.
func PtyPeer(fd int, flags int) (int, error) {
	sfd, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), TIOCGPTPEER, uintptr(flags))
	if e != 0 {
		return -1, e
	}
	return int(sfd), nil
}

// ifreqFlags is struct ifreq with the flags member of its union.
type ifreqFlags struct {
	name  [16]byte // IFNAMSIZ
	flags uint16
	_     [22]byte
}

// IfFlags returns the IFF_* flags of network interface name (ioctl
// SIOCGIFFLAGS on sock, any socket of the network namespace that holds the
// interface).
func IfFlags(sock int, name string) (uint16, error) {
	var req ifreqFlags
	if len(name) >= len(req.name) {
		return 0, syscall.EINVAL
	}
	copy(req.name[:], name)
	if err := Ioctl(sock, SIOCGIFFLAGS, uintptr(unsafe.Pointer(&req))); err != nil {
		return 0, err
	}
	return req.flags, nil
}

// SetIfFlags sets the IFF_* flags of network interface name (ioctl
// SIOCSIFFLAGS on sock, as for IfFlags); syscall.IFF_UP brings it up.
func SetIfFlags(sock int, name string, flags uint16) error {
	var req ifreqFlags
	if len(name) >= len(req.name) {
		return syscall.EINVAL
	}
	copy(req.name[:], name)
	req.flags = flags
	return Ioctl(sock, SIOCSIFFLAGS, uintptr(unsafe.Pointer(&req)))
}

// PollFd is struct pollfd.
type PollFd struct {
	Fd      int32
	Events  int16
	Revents int16
}

// POLLIN asks Ppoll for readability; a pidfd is readable once its process
// has exited.
const POLLIN = 0x1

// Ppoll waits up to timeout for an event on fds and returns how many have
// one (ppoll exists on every architecture; poll does not). EINTR is
// returned, not retried: the caller knows how much of timeout is left.
func Ppoll(fds []PollFd, timeout syscall.Timespec) (int, error) {
	n, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&timeout)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// StartTime returns the start time of pid in clock ticks since boot
// (field 22 of /proc/<pid>/stat). With the pid it identifies a process
// across pid reuse.
func StartTime(pid int) (uint64, error) {
	_, start, err := ProcStat(pid)
	return start, err
}

// ProcStat returns the state letter (R, S, D, Z, ...) and the start time
// of pid.
func ProcStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat takes fields 3 and 22 from a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so counting
// starts after its last ')'.
func parseStat(stat []byte) (byte, uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat line")
	}
	fields := bytes.Fields(stat[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, errors.New("short /proc stat line")
	}
	start, err := strconv.ParseUint(string(fields[19]), 10, 64)
	return fields[0][0], start, err
}

// Makedev encodes a device number the way the kernel's new_encode_dev does.
func Makedev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// Major is the major number of a device number that Makedev encoded.
func Major(dev uint64) uint32 {
	return uint32((dev&0x00000000000fff00)>>8 | (dev&0xfffff00000000000)>>32)
}

// Minor is the minor number of a device number that Makedev encoded.
func Minor(dev uint64) uint32 {
	return uint32(dev&0xff | (dev&0x00000ffffff00000)>>12)
}

// O_PATH is open(2)'s O_PATH, which package syscall lacks on some arches.
const O_PATH = 0x200000

// AT_EMPTY_PATH makes *at calls act on the fd itself.
const AT_EMPTY_PATH = 0x1000

// Execveat executes the file fd refers to (execveat with AT_EMPTY_PATH),
// without a path lookup. It returns only on failure.
func Execveat(fd int, argv, envv []string) error {
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envvp, err := syscall.SlicePtrFromStrings(envv)
	if err != nil {
		return err
	}
	empty, _ := syscall.BytePtrFromString("")
	_, _, e := syscall.RawSyscall6(sysExecveat, uintptr(fd), uintptr(unsafe.Pointer(empty)), uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envvp[0])), AT_EMPTY_PATH, 0)
	return e
}

// RemoveMountPoint takes every mount off target (a mount point may carry
// more than one if something mounted over it), each normally or lazily
// (MNT_DETACH) when busy, then removes the empty directory, which also
// drops copies of the mount in other mount namespaces. A target that is
// not (or no longer) a mount point, or does not exist, is not an error.
func RemoveMountPoint(target string) error {
	for range 16 {
		err := syscall.Unmount(target, 0)
		if err == syscall.EBUSY {
			err = syscall.Unmount(target, syscall.MNT_DETACH)
		}
		if err == syscall.EINVAL || err == syscall.ENOENT {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
