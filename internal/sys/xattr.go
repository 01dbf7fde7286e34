package sys

import (
	"strings"
	"syscall"
	"unsafe"
)

// Package syscall has Getxattr, Setxattr and Listxattr, which follow a
// symbolic link at the path, but no form that acts on a link itself (l*) or
// on an open file (f*). These are those forms.

// bytesPtr is the address of b's first byte, or nil for an empty b, which
// the xattr calls read as "no buffer".
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Fgetxattr reads attribute name of the open file fd into dest and returns
// the value's length. An empty dest asks only for the length. A value
// longer than dest fails with ERANGE; a missing one with ENODATA.
func Fgetxattr(fd int, name string, dest []byte) (int, error) {
	n, err := syscall.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	sz, _, e := syscall.Syscall6(syscall.SYS_FGETXATTR, uintptr(fd), uintptr(unsafe.Pointer(n)),
		uintptr(bytesPtr(dest)), uintptr(len(dest)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(sz), nil
}

// Fsetxattr sets attribute name of the open file fd to value.
func Fsetxattr(fd int, name string, value []byte) error {
	n, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_FSETXATTR, uintptr(fd), uintptr(unsafe.Pointer(n)),
		uintptr(bytesPtr(value)), uintptr(len(value)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Lsetxattr sets attribute name of path to value, on a symbolic link
// itself rather than its target.
func Lsetxattr(path, name string, value []byte) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_LSETXATTR, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(n)),
		uintptr(bytesPtr(value)), uintptr(len(value)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Llistxattr returns the names of path's attributes, of a symbolic link
// itself rather than its target; nil when there are none. It asks for the
// size first and tries again when the list grew in between. A file system
// without attributes fails with ENOTSUP.
func Llistxattr(path string) ([]string, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return nil, err
	}
	for {
		sz, _, e := syscall.Syscall(syscall.SYS_LLISTXATTR, uintptr(unsafe.Pointer(p)), 0, 0)
		if e != 0 {
			return nil, e
		}
		if sz == 0 {
			return nil, nil
		}
		buf := make([]byte, sz)
		sz, _, e = syscall.Syscall(syscall.SYS_LLISTXATTR, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if e == syscall.ERANGE {
			continue
		}
		if e != 0 {
			return nil, e
		}
		var names []string
		for name := range strings.SplitSeq(string(buf[:sz]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

// Lgetxattr returns the value of attribute name of path, of a symbolic
// link itself rather than its target; an empty value is a non-nil empty
// slice. It asks for the size first and tries again when the value grew
// in between. A missing attribute fails with ENODATA.
func Lgetxattr(path, name string) ([]byte, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return nil, err
	}
	n, err := syscall.BytePtrFromString(name)
	if err != nil {
		return nil, err
	}
	for {
		sz, _, e := syscall.Syscall6(syscall.SYS_LGETXATTR, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(n)), 0, 0, 0, 0)
		if e != 0 {
			return nil, e
		}
		if sz == 0 {
			return []byte{}, nil
		}
		buf := make([]byte, sz)
		sz, _, e = syscall.Syscall6(syscall.SYS_LGETXATTR, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(n)),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		if e == syscall.ERANGE {
			continue
		}
		if e != 0 {
			return nil, e
		}
		return buf[:sz], nil
	}
}
