package sys

import (
	"syscall"
	"unsafe"
)

// sigIgn is SIG_IGN; SIG_DFL is 0.
const sigIgn = 1

// numSignals is the kernel's _NSIG on the architectures built here.
const numSignals = 64

// kernelSigaction is large enough for the kernel's struct sigaction on
// every architecture built here; the handler is its first word, and an
// all-zero one is SIG_DFL with no flags and an empty mask everywhere.
type kernelSigaction [4]uintptr

// DefaultIgnoredSignals sets every signal the process ignores back to its
// default action. An ignored signal stays ignored across fork and execve,
// so a process that starts a container's processes must not hand its own
// ignores down: the shim ignores SIGHUP and SIGPIPE, and whatever started
// the daemon (nohup, a shell trapping INT to nothing) may ignore more; dockerd's
// containers start with none ignored. Signals the process handles need
// nothing: execve resets them. Only the action changes; Go's runtime, which
// left an ignored signal alone, does not look at it again.
func DefaultIgnoredSignals() error {
	var dfl kernelSigaction
	for sig := 1; sig <= numSignals; sig++ {
		if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		ignored, err := SignalIgnored(syscall.Signal(sig))
		if err != nil {
			return err
		}
		if !ignored {
			continue
		}
		if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0); e != 0 {
			return e
		}
	}
	return nil
}

// SignalIgnored reports whether the process ignores sig.
func SignalIgnored(sig syscall.Signal) (bool, error) {
	var old kernelSigaction
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return false, e
	}
	return old[0] == sigIgn, nil
}
