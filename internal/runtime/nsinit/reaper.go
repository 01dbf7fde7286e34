package nsinit

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"skiffd/internal/sys"
)

// ReaperRole is the role name of the --init process.
const ReaperRole = "reaper"

// Reaper is the `reaper` role, docker-init's job: PID 1 of a container
// started with --init. args are the command and the argv of the real
// process; the command is looked up here, from the working directory and
// the PATH of the process's environment, and one that cannot run is the
// reaper's exit with tini's status (127 missing, 126 not executable). It runs inside the container with the container's
// credentials, capabilities and seccomp filter; it starts the process,
// forwards every signal it can catch to it, reaps every child (orphans are
// re-parented to PID 1), and exits with the process's status (128+n after
// signal n).
func Reaper(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "skiffd reaper: no command")
		return 127
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	// The shim reports the container started when init's end of the sync
	// socket closes, which init left open for us: a stop right after the
	// start must find the signals forwarded. Before Notify, the Go
	// runtime would take a SIGTERM for itself and exit 2, the process
	// never started.
	var st syscall.Stat_t
	if syscall.Fstat(SyncFD, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK {
		syscall.Close(SyncFD)
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{}}
	if _, err := sys.GetWinsize(0); err == nil {
		// On a terminal the process gets its own foreground process group,
		// so that ^C reaches it once, as with tini.
		attr.Sys.Setpgid, attr.Sys.Foreground, attr.Sys.Ctty = true, true, 0
	}
	// Not os.StartProcess: it asks for a pidfd through clone3, which
	// Docker's seccomp profile answers with ENOSYS.
	exe, err := lookPath(args[0], attr.Env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "skiffd reaper: %v\n", err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	pid, err := syscall.ForkExec(exe, args[1:], attr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "skiffd reaper: %v\n", execError(args[1], err))
		if errors.Is(err, syscall.EACCES) {
			return 126
		}
		return 127
	}
	for {
		sig := <-sigs
		s, ok := sig.(syscall.Signal)
		if !ok {
			continue
		}
		if s != syscall.SIGCHLD {
			// SIGTTOU/SIGTTIN/SIGURG and the like matter to us only.
			if s != syscall.SIGURG && s != syscall.SIGTTOU && s != syscall.SIGTTIN && s != syscall.SIGWINCH {
				syscall.Kill(pid, s)
			}
			continue
		}
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || got <= 0 {
				break
			}
			if got == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
}
