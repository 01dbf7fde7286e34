// Package roles dispatches the hidden roles of the skiffd binary: `shim`,
// `init`, `exec-helper` and `reaper` (PID 1 of a container run with
// --init). main calls Dispatch first thing; a test binary
// that stands in for skiffd calls it from TestMain.
//
//	func main() {
//		roles.Dispatch() // does not return when os.Args[1] is a role
//		...
//	}
//
// Importing the package locks the main goroutine to the main thread when
// the process runs as init or exec-helper, before any other package's
// code can start threads of its own: everything those roles do
// (namespaces, root, credentials, seccomp) is per thread.
package roles

import (
	"fmt"
	"os"
	"runtime"

	"skiffd/internal/runtime/nsinit"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/sys"
)

// The role names, as os.Args[1].
const (
	Shim       = "shim"
	Init       = "init"
	ExecHelper = "exec-helper"
)

// names are what ps -e and top show for each role (the process's comm).
// Without them a shim shows as "3": exec of /proc/self/fd/3 names the
// process after the path's last element (issue 13).
var names = map[string]string{Shim: "skiffd-shim", Init: "skiffd-init", ExecHelper: "skiffd-exec"}

func init() {
	if len(os.Args) < 2 {
		return
	}
	// Package initialisation runs on the main thread, so this names the
	// process, not just one of its threads.
	if name, ok := names[os.Args[1]]; ok {
		sys.SetThreadName(name)
	}
	switch os.Args[1] {
	case nsinit.ReaperRole:
		sys.Prctl(sys.PR_SET_DUMPABLE, 0, 0, 0, 0)
	case Init, ExecHelper:
		runtime.LockOSThread()
		// Nothing in the container may ptrace us or open our
		// /proc/<pid>/{exe,cwd,root,environ}; this is per mm, so it also
		// covers the vfork child until its execve.
		sys.Prctl(sys.PR_SET_DUMPABLE, 0, 0, 0, 0)
	}
}

// Dispatch runs the role named by os.Args[1] and exits the process; it
// returns only when os.Args[1] names no role.
func Dispatch() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case Init:
		os.Exit(nsinit.Init())
	case ExecHelper:
		os.Exit(nsinit.ExecHelper())
	case nsinit.ReaperRole:
		os.Exit(nsinit.Reaper(os.Args[2:]))
	case Shim:
		if err := shim.Main(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "skiffd shim: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}
