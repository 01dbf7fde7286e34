package sys

import (
	"os"
	"slices"
	"syscall"
	"unsafe"
)

// Flags of the *at calls that package syscall keeps unexported.
const (
	AT_SYMLINK_NOFOLLOW = 0x100
	AT_REMOVEDIR        = 0x200
)

// Unlinkat removes path relative to dirfd: a directory with AT_REMOVEDIR,
// anything else without. Unlike syscall.Unlinkat it takes the flags, so
// that the caller says which kind it expects instead of trying both.
func Unlinkat(dirfd int, path string, flags int) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall(syscall.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags))
	if e != 0 {
		return e
	}
	return nil
}

// Symlinkat creates a symbolic link newpath (relative to dirfd) to target.
func Symlinkat(target string, dirfd int, newpath string) error {
	t, err := syscall.BytePtrFromString(target)
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(newpath)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall(syscall.SYS_SYMLINKAT, uintptr(unsafe.Pointer(t)), uintptr(dirfd), uintptr(unsafe.Pointer(n)))
	if e != 0 {
		return e
	}
	return nil
}

// Linkat makes newpath (relative to newDirfd) a hard link to oldpath
// (relative to oldDirfd). Without AT_SYMLINK_FOLLOW in flags a symbolic
// link at oldpath is linked itself, not its target.
func Linkat(oldDirfd int, oldpath string, newDirfd int, newpath string, flags int) error {
	o, err := syscall.BytePtrFromString(oldpath)
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(newpath)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(oldDirfd), uintptr(unsafe.Pointer(o)),
		uintptr(newDirfd), uintptr(unsafe.Pointer(n)), uintptr(flags), 0)
	if e != 0 {
		return e
	}
	return nil
}

// Readlinkat returns the target of the symbolic link path relative to
// dirfd; path itself is never followed. The buffer grows until the whole
// target fits.
func Readlinkat(dirfd int, path string) (string, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return "", err
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, _, e := syscall.Syscall6(syscall.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(size), 0, 0)
		if e != 0 {
			return "", e
		}
		if int(n) < size {
			return string(buf[:n]), nil
		}
	}
}

// Utimensat sets the access and modification times of path relative to
// dirfd (ts[0] and ts[1]). An empty path passes NULL, so the call acts on
// dirfd itself like futimens(2); dirfd must then be a real open file, not
// an O_PATH descriptor (EBADF). It does not mean AT_EMPTY_PATH.
func Utimensat(dirfd int, path string, ts *[2]syscall.Timespec, flags int) error {
	var p *byte
	if path != "" {
		var err error
		if p, err = syscall.BytePtrFromString(path); err != nil {
			return err
		}
	}
	_, _, e := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&ts[0])), uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Syncfs flushes the whole file system that holds the open file fd.
func Syncfs(fd int) error {
	_, _, e := syscall.Syscall(sysSyncfs, uintptr(fd), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ReadDirNames lists directory base in dirfd ("." for dirfd itself),
// sorted, without following a symbolic link at base.
func ReadDirNames(dirfd int, base string) ([]string, error) {
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
