package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

const (
	seccompSetModeFilter = 1  // SECCOMP_SET_MODE_FILTER
	prSetSeccomp         = 22 // PR_SET_SECCOMP
	seccompModeFilter    = 2  // SECCOMP_MODE_FILTER
)

// Load installs filter on the calling thread only (no TSYNC): the thread
// that goes on to execve or fork the container process is the one that
// matters, and the caller has locked it with runtime.LockOSThread.
//
// The kernel accepts the filter when the thread has no_new_privs set or
// holds CAP_SYS_ADMIN. Load does not set no_new_privs itself: Docker's
// default is to load the filter while still privileged and leave
// no_new_privs off unless the container asked for it.
func Load(filter []syscall.SockFilter) error {
	if len(filter) == 0 || len(filter) > maxInsns {
		return fmt.Errorf("seccomp: cannot load a filter of %d instructions", len(filter))
	}
	native, err := nativeArch()
	if err != nil {
		return err
	}
	prog := syscall.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := syscall.RawSyscall(uintptr(native.sysnum["seccomp"]), seccompSetModeFilter, 0, uintptr(unsafe.Pointer(&prog)))
	if errno == syscall.ENOSYS {
		// Kernels before 3.17 only have the prctl form.
		_, _, errno = syscall.RawSyscall(syscall.SYS_PRCTL, prSetSeccomp, seccompModeFilter, uintptr(unsafe.Pointer(&prog)))
	}
	runtime.KeepAlive(filter)
	if errno != 0 {
		err := fmt.Errorf("seccomp: loading filter: %w", errno)
		if errors.Is(errno, syscall.EACCES) {
			err = fmt.Errorf("seccomp: loading filter needs no_new_privs or CAP_SYS_ADMIN: %w", errno)
		}
		return err
	}
	return nil
}
