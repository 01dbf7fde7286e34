package sys

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Scheduling policies (linux/sched.h).
const (
	SCHED_OTHER = 0
	SCHED_IDLE  = 5
)

// SchedGetscheduler returns the scheduling policy of thread tid (0: the
// calling thread).
func SchedGetscheduler(tid int) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// SchedSetscheduler sets the scheduling policy of thread tid (0: the
// calling thread) to policy, which must be one without a static priority
// (SCHED_OTHER, SCHED_IDLE). A new thread or process inherits its
// creator's.
func SchedSetscheduler(tid, policy int) error {
	var param struct{ priority int32 }
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}

// SchedSetschedulerAll sets the scheduling policy of every thread of
// process pid (0: this process), as SchedSetscheduler does for one. A
// thread started while it runs has its creator's policy, which may be the
// old one: call it again if that matters.
func SchedSetschedulerAll(pid, policy int) error {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task"
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var first error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := SchedSetscheduler(tid, policy); err != nil && err != syscall.ESRCH && first == nil {
			first = err
		}
	}
	return first
}
