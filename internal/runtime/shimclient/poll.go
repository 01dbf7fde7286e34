package shimclient

import (
	"syscall"
	"unsafe"
)

// pollFd is struct pollfd.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// pollIn is POLLIN: a pidfd is readable once its process has exited.
const pollIn = 0x1

// ppoll waits up to timeout for an event on fds (ppoll exists on every
// architecture; poll does not).
func ppoll(fds []pollFd, timeout syscall.Timespec) (int, error) {
	n, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&timeout)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
