package engine

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// loopbackUp brings up the loopback interface in the network namespace of
// process pid, as libnetwork does in every sandbox (the kernel then gives
// lo 127.0.0.1 and ::1). It runs on a thread of its own that enters the
// namespace and is never reused: the goroutine exits with the thread
// locked, so Go discards the thread.
func loopbackUp(pid int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: this thread's namespace is changed for good.
		errc <- func() error {
			fd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer syscall.Close(fd)
			if err := sys.Setns(fd, syscall.CLONE_NEWNET); err != nil {
				return fmt.Errorf("setns: %w", err)
			}
			s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer syscall.Close(s)
			flags, err := sys.IfFlags(s, "lo")
			if err != nil {
				return fmt.Errorf("get flags of lo: %w", err)
			}
			if err := sys.SetIfFlags(s, "lo", flags|syscall.IFF_UP); err != nil {
				return fmt.Errorf("bring lo up: %w", err)
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("set up the container's loopback interface: %w", err)
	}
	return nil
}

// joinNamespace returns the path of a running container's namespace for
// a "container:<name>" mode of container self, with dockerd's errors. It
// reads the joined container from the store's view, without its lock: the
// caller holds self's lock, and the joined container may be self (lock
// order, engine.go). A container naming itself is refused as dockerd
// does: its own network is "cannot join own network"; for IPC and PID,
// dockerd finds it not running, as it is only starting.
func (e *Engine) joinNamespace(self, mode, nsFile, what string) (string, error) {
	ref := strings.TrimPrefix(mode, "container:")
	other, err := e.get(ref)
	if err != nil {
		return "", err
	}
	id := other.ID // immutable: readable without the lock
	if id == self {
		if nsFile == "net" {
			return "", errdefs.InvalidParameter(errors.New("cannot join own network"))
		}
		return "", conflictf("cannot join %s of a non running container: %s", what, id)
	}
	v := e.containers.View(id)
	if v == nil || !v.State.Running || v.State.Restarting || v.State.Pid <= 0 {
		return "", conflictf("cannot join %s of a non running container: %s", what, id)
	}
	return fmt.Sprintf("/proc/%d/ns/%s", v.State.Pid, nsFile), nil
}
