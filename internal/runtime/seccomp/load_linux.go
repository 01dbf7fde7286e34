package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"skiffd/internal/sys"
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
	// The filter is compiled for the native architecture's table; one
	// without a table has no filter to load.
	if _, err := nativeArch(); err != nil {
		return err
	}
	prog := syscall.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	err := sys.Seccomp(&prog)
	if err == syscall.ENOSYS {
		// Kernels before 3.17 only have the prctl form.
		err = sys.PrctlSeccomp(&prog)
	}
	runtime.KeepAlive(filter)
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("seccomp: loading filter needs no_new_privs or CAP_SYS_ADMIN: %w", err)
		}
		return fmt.Errorf("seccomp: loading filter: %w", err)
	}
	return nil
}
