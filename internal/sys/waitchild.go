package sys

import (
	"os"
	"syscall"
)

// WaitChild reaps pid, a child of the caller that nobody else reaps, once
// it exits, and returns its wait status. It waits on a pidfd through the
// runtime's poller, so a child that runs for weeks holds no OS thread of
// the caller (a blocking wait4 does, for as long: issue 13); where pidfds
// are missing or not pollable, it falls back to that blocking wait. Call
// it on a goroutine of its own. Until it reaps, pid cannot be reused, even
// if the child exited before the call.
func WaitChild(pid int) (syscall.WaitStatus, error) {
	wait := func(flags int) (bool, syscall.WaitStatus, error) {
		var ws syscall.WaitStatus
		for {
			wpid, err := syscall.Wait4(pid, &ws, flags, nil)
			if err == syscall.EINTR {
				continue
			}
			return wpid == pid, ws, err
		}
	}
	if f, rc, err := pollablePidfd(pid); err == nil {
		defer f.Close()
		var done bool
		var ws syscall.WaitStatus
		var werr error
		// A pidfd is readable once its process has exited; the poller
		// calls again until then.
		err := rc.Read(func(uintptr) bool {
			done, ws, werr = wait(syscall.WNOHANG)
			return done || werr != nil
		})
		if done || werr != nil {
			return ws, werr
		}
		_ = err // not pollable after all: the blocking wait below
	}
	_, ws, err := wait(0)
	return ws, err
}

// pollablePidfd opens a non-blocking pidfd of pid as a file the runtime's
// poller can wait on.
func pollablePidfd(pid int) (*os.File, syscall.RawConn, error) {
	fd, err := PidfdOpen(pid)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}
