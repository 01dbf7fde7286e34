package shim

import (
	"os/signal"
	"syscall"

	"skiffd/internal/sys"
)

// A shim reaps its children in one of two ways, chosen once it has read
// the spec, before init is forked (startReaper):
//
//   - A container with a pid namespace of its own: every child of ours is
//     one the shim started or was told of (init, the exec helpers, the
//     exec'd processes), and each is watched through a pidfd in the
//     runtime's poller and reaped by pid (watchChild). Nothing else can
//     become our child: a process orphaned in the container's namespace
//     goes to the container's init, not to a subreaper outside it.
//   - A container sharing a pid namespace (--pid host, --pid container:x):
//     orphans of its processes are re-parented to us, the subreaper, and
//     must be reaped too; one wait4(-1) loop on SIGCHLD (reap) collects
//     every child.
//
// The first needs no os/signal: signal.Notify costs a process, for its
// lifetime, a goroutine locked to an OS thread of its own (to keep the
// signal mask) and the runtime's template thread, which the lock starts
// (issue 13: each thread holds a 16 KiB g0 and a 32 KiB signal stack of
// the shim, and kernel memory).
//
// A supervisor with other containers cannot take one of the second kind
// (see supervisor.admit); the daemon never asks it to.
func (s *shim) startReaper() error {
	perChild := s.ownPidNamespace() && s.sup.pidfds
	if err := s.sup.admit(perChild); err != nil {
		return err
	}
	if perChild {
		s.perChild = true
		return nil
	}
	signal.Notify(s.sigchld, syscall.SIGCHLD)
	go s.reap()
	return nil
}

// reap is the one place that waits for children when the container shares
// a pid namespace: on every SIGCHLD it collects all exited children,
// including orphans re-parented to the subreaper, which must be reaped or
// pid namespace teardown blocks.
func (s *shim) reap() {
	for range s.sigchld {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			s.reaped(pid, ws)
		}
	}
}

// watchChild reaps pid, a child of ours already registered, once it exits
// (perChild), through its pidfd (sys.WaitChild).
func (s *shim) watchChild(pid int) {
	go func() {
		if ws, err := sys.WaitChild(pid); err == nil {
			s.reaped(pid, ws)
		}
	}()
}

// reaped hands a collected exit to its process; an unknown pid's is kept
// while a start is under way (see beginStart), else dropped.
func (s *shim) reaped(pid int, ws syscall.WaitStatus) {
	s.mu.Lock()
	p, known := s.pids[pid]
	if known {
		delete(s.pids, pid)
	} else if s.inflight > 0 {
		s.early[pid] = ws
	}
	s.mu.Unlock()
	if p != nil {
		s.exited(p, ws)
	}
}
