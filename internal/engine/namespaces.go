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
// a "container:<name>" mode of container self, with dockerd's errors
// (getNetworkedContainer, getIPCContainer, getPIDContainer): for the
// network a 409 naming the other container's state, for IPC and PID one
// naming the reference "not running", each with dockerd's prefix; a
// container naming itself is refused as dockerd does: its own network is
// "cannot join own network namespace", its IPC and PID are not running
// yet. It reads the joined container from the store's view, without its
// lock: the caller holds self's lock, and the joined container may be
// self (lock order, engine.go).
func (e *Engine) joinNamespace(self, mode, nsFile, what string) (string, error) {
	ref := strings.TrimPrefix(mode, "container:")
	other, err := e.get(ref)
	if err != nil {
		if nsFile == "net" {
			return "", errdefs.System(fmt.Errorf("joining network namespace of container: %w", err))
		}
		return "", errdefs.InvalidParameter(fmt.Errorf("failed to join %s namespace: %w", what, err))
	}
	id := other.ID // immutable: readable without the lock
	if id == self && nsFile == "net" {
		return "", errdefs.InvalidParameter(errors.New("cannot join own network namespace"))
	}
	v := e.containers.View(id)
	switch {
	case v != nil && v.State.Restarting:
		msg := fmt.Sprintf("Container %s is restarting, wait until the container is running", ref)
		if nsFile == "net" {
			return "", conflictf("cannot join network namespace of container: %s", msg)
		}
		return "", conflictf("failed to join %s namespace: %s", what, msg)
	case id == self || v == nil || !v.State.Running || v.State.Pid <= 0:
		if nsFile == "net" {
			name, state := ref, "exited"
			if v != nil {
				name, state = strings.TrimPrefix(v.Name, "/"), v.State.Status()
			}
			return "", conflictf("cannot join network namespace of a non running container: container %s is %s", name, state)
		}
		return "", conflictf("failed to join %s namespace: container %s is not running", what, ref)
	}
	return fmt.Sprintf("/proc/%d/ns/%s", v.State.Pid, nsFile), nil
}
