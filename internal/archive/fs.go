package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Constants missing from package syscall. openat2 (Linux 5.6) has the
// unified system call number, the same on every architecture.
const (
	sysOpenat2 = 437

	// oPath is O_PATH, which package syscall lacks (same value on x86 and arm).
	oPath = 0x200000

	resolveNoMagiclinks = 0x02
	resolveInRoot       = 0x10

	atSymlinkNofollow = 0x100
	atRemovedir       = 0x200
)

// openHow is the kernel's struct open_how.
type openHow struct {
	flags   uint64
	mode    uint64
	resolve uint64
}

// noOpenat2 is set once the kernel answers ENOSYS; tests set it to exercise
// the fallback walker.
var noOpenat2 atomic.Bool

func openat2(dirfd int, name string, flags int, resolve uint64) (int, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	how := openHow{flags: uint64(flags), resolve: resolve}
	// EAGAIN means a concurrent rename or mount raced the lookup; the
	// kernel asks us to retry, which is bounded here.
	for range 64 {
		fd, _, errno := syscall.Syscall6(sysOpenat2, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case syscall.EINTR, syscall.EAGAIN:
			continue
		default:
			return -1, errno
		}
	}
	return -1, syscall.EAGAIN
}

// tree is a directory that every operation stays inside.
type tree struct {
	fd int // O_PATH descriptor of the top directory
}

func openTree(dir string) (*tree, error) {
	fd, err := syscall.Open(dir, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &tree{fd: fd}, nil
}

func (t *tree) close() { syscall.Close(t.fd) }

// openDir returns an O_PATH descriptor of the directory rel (a clean
// relative path, "." for the top). Symbolic links on the way are resolved
// as if the top were "/", so they cannot lead out. Without openat2 every
// symbolic link on the way is refused instead.
func (t *tree) openDir(rel string) (int, error) {
	const flags = oPath | syscall.O_DIRECTORY | syscall.O_CLOEXEC
	if rel == "." {
		return syscall.Openat(t.fd, ".", flags, 0)
	}
	if !noOpenat2.Load() {
		fd, err := openat2(t.fd, rel, flags, resolveInRoot|resolveNoMagiclinks)
		if err != syscall.ENOSYS {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	return t.walkNoSymlinks(rel)
}

// walkNoSymlinks opens rel one component at a time with O_NOFOLLOW, so a
// symbolic link anywhere on the path fails with ENOTDIR or ELOOP.
func (t *tree) walkNoSymlinks(rel string) (int, error) {
	const flags = oPath | syscall.O_DIRECTORY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	cur, err := syscall.Openat(t.fd, ".", flags, 0)
	if err != nil {
		return -1, err
	}
	for comp := range strings.SplitSeq(rel, "/") {
		next, err := syscall.Openat(cur, comp, flags, 0)
		syscall.Close(cur)
		if err != nil {
			if err == syscall.ELOOP {
				err = syscall.ENOTDIR
			}
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// mkdirAll opens directory rel, creating it and any missing parents with
// ImpliedDirectoryMode. It returns an O_PATH descriptor.
func (t *tree) mkdirAll(rel string) (int, error) {
	fd, err := t.openDir(rel)
	if err == nil || err != syscall.ENOENT || rel == "." {
		return fd, err
	}
	pfd, err := t.mkdirAll(path.Dir(rel))
	if err != nil {
		return -1, err
	}
	defer syscall.Close(pfd)
	base := path.Base(rel)
	if err := syscall.Mkdirat(pfd, base, 0o700); err != nil && err != syscall.EEXIST {
		return -1, err
	} else if err == nil {
		// Mkdirat is subject to the umask; set the mode explicitly.
		if err := chmodAt(pfd, base, ImpliedDirectoryMode); err != nil {
			return -1, err
		}
	}
	return t.openDir(rel)
}

// lstatAt is the lstat of base in directory dirfd. It is done through an
// O_PATH|O_NOFOLLOW descriptor because fstatat's number differs between
// architectures.
func lstatAt(dirfd int, base string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	fd, err := syscall.Openat(dirfd, base, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return st, err
	}
	defer syscall.Close(fd)
	err = syscall.Fstat(fd, &st)
	return st, err
}

// removeAll removes base in directory dirfd and, for a directory, all it
// contains, without following any symbolic link. A missing entry is not an
// error.
func removeAll(dirfd int, base string) error {
	err := syscall.Unlinkat(dirfd, base)
	if err == nil || err == syscall.ENOENT {
		return nil
	}
	if err != syscall.EISDIR {
		return err
	}
	names, err := readDirNames(dirfd, base)
	if err != nil {
		return err
	}
	sub, err := syscall.Openat(dirfd, base, oPath|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := removeAll(sub, name); err != nil {
			syscall.Close(sub)
			return err
		}
	}
	syscall.Close(sub)
	return unlinkat(dirfd, base, atRemovedir)
}

// readDirNames lists directory base in dirfd ("." for dirfd itself),
// sorted, without following a symbolic link at base.
func readDirNames(dirfd int, base string) ([]string, error) {
	fd, err := syscall.Openat(dirfd, base, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func unlinkat(dirfd int, base string, flags int) error {
	p, err := syscall.BytePtrFromString(base)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall(syscall.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags))
	if errno != 0 {
		return errno
	}
	return nil
}

func symlinkat(target string, dirfd int, base string) error {
	pt, err := syscall.BytePtrFromString(target)
	if err != nil {
		return err
	}
	pb, err := syscall.BytePtrFromString(base)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall(syscall.SYS_SYMLINKAT, uintptr(unsafe.Pointer(pt)), uintptr(dirfd), uintptr(unsafe.Pointer(pb)))
	if errno != 0 {
		return errno
	}
	return nil
}

// linkat makes a hard link without following a symbolic link at oldBase:
// a hard link to a symlink links the symlink itself, as GNU tar does.
func linkat(oldDirfd int, oldBase string, newDirfd int, newBase string) error {
	po, err := syscall.BytePtrFromString(oldBase)
	if err != nil {
		return err
	}
	pn, err := syscall.BytePtrFromString(newBase)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(oldDirfd), uintptr(unsafe.Pointer(po)),
		uintptr(newDirfd), uintptr(unsafe.Pointer(pn)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// readlinkAt reads the target of symlink base in dirfd.
func readlinkAt(dirfd int, base string) (string, error) {
	pb, err := syscall.BytePtrFromString(base)
	if err != nil {
		return "", err
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, _, errno := syscall.Syscall6(syscall.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(pb)),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(size), 0, 0)
		if errno != 0 {
			return "", errno
		}
		if int(n) < size {
			return string(buf[:n]), nil
		}
	}
}

// chmodAt sets the mode of base in dirfd without following a symbolic link
// there. It uses fchmodat2 (Linux 6.6) and otherwise chmods through an
// O_PATH descriptor after checking it is not a link.
func chmodAt(dirfd int, base string, mode uint32) error {
	err := syscall.Fchmodat(dirfd, base, mode, atSymlinkNofollow)
	if err != syscall.EOPNOTSUPP && err != syscall.ENOSYS {
		return err
	}
	fd, err := syscall.Openat(dirfd, base, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return nil // symlinks have no mode of their own on Linux
	}
	return syscall.Chmod(procFdPath(fd, ""), mode)
}

// procFdPath names base inside the directory open as fd through
// /proc/self/fd. Used only for the xattr calls that have no *at form; the
// directory part is the descriptor, so nothing is resolved by name but
// base, and the l* calls do not follow base.
func procFdPath(fd int, base string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if base != "" {
		p += "/" + base
	}
	return p
}

// utimesAt sets atime and mtime of base in dirfd (or of dirfd itself when
// base is ""), never following a symbolic link.
func utimesAt(dirfd int, base string, atime, mtime time.Time) error {
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(atime.UnixNano()), syscall.NsecToTimespec(mtime.UnixNano())}
	var p *byte // nil: utimensat acts on dirfd itself, like futimens
	flags := 0
	if base != "" {
		var err error
		if p, err = syscall.BytePtrFromString(base); err != nil {
			return err
		}
		flags = atSymlinkNofollow
	}
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&ts[0])), uintptr(flags), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// fsetxattr sets an attribute on an open file or directory.
func fsetxattr(fd int, name string, value []byte) error {
	pn, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	var pv unsafe.Pointer
	if len(value) > 0 {
		pv = unsafe.Pointer(&value[0])
	}
	_, _, errno := syscall.Syscall6(syscall.SYS_FSETXATTR, uintptr(fd), uintptr(unsafe.Pointer(pn)),
		uintptr(pv), uintptr(len(value)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// lsetxattrAt sets an attribute on base in dirfd without following it.
func lsetxattrAt(dirfd int, base, name string, value []byte) error {
	pp, err := syscall.BytePtrFromString(procFdPath(dirfd, base))
	if err != nil {
		return err
	}
	pn, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	var pv unsafe.Pointer
	if len(value) > 0 {
		pv = unsafe.Pointer(&value[0])
	}
	_, _, errno := syscall.Syscall6(syscall.SYS_LSETXATTR, uintptr(unsafe.Pointer(pp)), uintptr(unsafe.Pointer(pn)),
		uintptr(pv), uintptr(len(value)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// listXattrsAt returns base's attributes (names and values) in dirfd
// without following it. File systems without xattrs give none.
func listXattrsAt(dirfd int, base string) (map[string][]byte, error) {
	p := procFdPath(dirfd, base)
	names, err := llistxattr(p)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	attrs := make(map[string][]byte, len(names))
	for _, name := range names {
		v, err := lgetxattr(p, name)
		if err == syscall.ENODATA {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		attrs[name] = v
	}
	return attrs, nil
}

func llistxattr(p string) ([]string, error) {
	pp, err := syscall.BytePtrFromString(p)
	if err != nil {
		return nil, err
	}
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_LLISTXATTR, uintptr(unsafe.Pointer(pp)), 0, 0)
		if errno == syscall.ENOTSUP {
			return nil, nil
		}
		if errno != 0 {
			return nil, errno
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, _, errno = syscall.Syscall(syscall.SYS_LLISTXATTR, uintptr(unsafe.Pointer(pp)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if errno == syscall.ERANGE {
			continue // grew in between
		}
		if errno != 0 {
			return nil, errno
		}
		var names []string
		for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

func lgetxattr(p, name string) ([]byte, error) {
	pp, err := syscall.BytePtrFromString(p)
	if err != nil {
		return nil, err
	}
	pn, err := syscall.BytePtrFromString(name)
	if err != nil {
		return nil, err
	}
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_LGETXATTR, uintptr(unsafe.Pointer(pp)), uintptr(unsafe.Pointer(pn)), 0, 0, 0, 0)
		if errno != 0 {
			return nil, errno
		}
		if n == 0 {
			return []byte{}, nil
		}
		buf := make([]byte, n)
		n, _, errno = syscall.Syscall6(syscall.SYS_LGETXATTR, uintptr(unsafe.Pointer(pp)), uintptr(unsafe.Pointer(pn)),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		if errno == syscall.ERANGE {
			continue
		}
		if errno != 0 {
			return nil, errno
		}
		return buf[:n], nil
	}
}

// mkdev encodes a device number the way glibc's makedev does.
func mkdev(major, minor int64) int {
	return int((minor & 0xff) | ((major & 0xfff) << 8) | ((minor &^ 0xff) << 12) | ((major &^ 0xfff) << 32))
}

func devMajor(dev uint64) int64 { return int64(((dev >> 8) & 0xfff) | ((dev >> 32) &^ 0xfff)) }
func devMinor(dev uint64) int64 { return int64((dev & 0xff) | ((dev >> 12) &^ 0xff)) }

// isErrno reports whether err is any of the errnos.
func isErrno(err error, errnos ...syscall.Errno) bool {
	var e syscall.Errno
	if !errors.As(err, &e) {
		return false
	}
	return slices.Contains(errnos, e)
}
