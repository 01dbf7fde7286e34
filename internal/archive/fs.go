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

	"skiffd/internal/sys"
)

// noOpenat2 is set once the kernel answers ENOSYS; tests set it to exercise
// the fallback walker.
var noOpenat2 atomic.Bool

// tree is a directory that every operation stays inside.
type tree struct {
	fd int // O_PATH descriptor of the top directory
}

func openTree(dir string) (*tree, error) {
	fd, err := syscall.Open(dir, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
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
	const flags = sys.O_PATH | syscall.O_DIRECTORY | syscall.O_CLOEXEC
	if rel == "." {
		return syscall.Openat(t.fd, ".", flags, 0)
	}
	if !noOpenat2.Load() {
		fd, err := sys.Openat2(t.fd, rel, &sys.OpenHow{Flags: flags, Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS})
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
	const flags = sys.O_PATH | syscall.O_DIRECTORY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
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
	fd, err := syscall.Openat(dirfd, base, sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
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
	names, err := sys.ReadDirNames(dirfd, base)
	if err != nil {
		return err
	}
	sub, err := syscall.Openat(dirfd, base, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
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
	return sys.Unlinkat(dirfd, base, sys.AT_REMOVEDIR)
}

// chmodAt sets the mode of base in dirfd without following a symbolic link
// there. It uses fchmodat2 (Linux 6.6) and otherwise chmods through an
// O_PATH descriptor after checking it is not a link.
func chmodAt(dirfd int, base string, mode uint32) error {
	err := syscall.Fchmodat(dirfd, base, mode, sys.AT_SYMLINK_NOFOLLOW)
	if err != syscall.EOPNOTSUPP && err != syscall.ENOSYS {
		return err
	}
	fd, err := syscall.Openat(dirfd, base, sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
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
	flags := 0
	if base != "" {
		flags = sys.AT_SYMLINK_NOFOLLOW
	}
	return sys.Utimensat(dirfd, base, &ts, flags)
}

// lsetxattrAt sets an attribute on base in dirfd without following it.
func lsetxattrAt(dirfd int, base, name string, value []byte) error {
	return sys.Lsetxattr(procFdPath(dirfd, base), name, value)
}

// listXattrsAt returns base's attributes (names and values) in dirfd
// without following it. File systems without xattrs give none.
func listXattrsAt(dirfd int, base string) (map[string][]byte, error) {
	p := procFdPath(dirfd, base)
	names, err := sys.Llistxattr(p)
	if err == syscall.ENOTSUP {
		return nil, nil
	}
	if err != nil || len(names) == 0 {
		return nil, err
	}
	attrs := make(map[string][]byte, len(names))
	for _, name := range names {
		v, err := sys.Lgetxattr(p, name)
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

// isErrno reports whether err is any of the errnos.
func isErrno(err error, errnos ...syscall.Errno) bool {
	var e syscall.Errno
	if !errors.As(err, &e) {
		return false
	}
	return slices.Contains(errnos, e)
}
