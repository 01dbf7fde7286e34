package sys

import (
	"syscall"
	"unsafe"
)

// sysOpenTree is open_tree(2)'s number, shared by every architecture.
const sysOpenTree = 428

// Flags of open_tree(2) and move_mount(2), from the kernel's uapi headers.
const (
	OPEN_TREE_CLONE   = 0x1
	OPEN_TREE_CLOEXEC = syscall.O_CLOEXEC
)

// OpenTree returns an fd of the mount at path (relative to the working
// directory); with
// OPEN_TREE_CLONE, of a detached copy of it (and of the mounts below it
// with AT_RECURSIVE), like a bind mount not yet attached anywhere (Linux
// 5.2). Attach it with MoveMountTo.
func OpenTree(path string, flags int) (int, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	cwd := atFDCWD
	fd, _, e := syscall.Syscall(sysOpenTree, uintptr(cwd), uintptr(unsafe.Pointer(p)), uintptr(flags))
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// MoveMountTo attaches the detached mount mfd (from OpenTree or Fsmount)
// at name relative to the directory dirfd, without following a symlink
// in name's last component.
func MoveMountTo(mfd, dirfd int, name string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	t, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(sysMoveMount, uintptr(mfd), uintptr(unsafe.Pointer(empty)),
		uintptr(dirfd), uintptr(unsafe.Pointer(t)), MOVE_MOUNT_F_EMPTY_PATH, 0)
	if e != 0 {
		return e
	}
	return nil
}
