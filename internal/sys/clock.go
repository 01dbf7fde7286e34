package sys

import (
	"syscall"
	"unsafe"
)

// clockMonotonic is CLOCK_MONOTONIC from <linux/time.h>.
const clockMonotonic = 1

// MonotonicMicros returns CLOCK_MONOTONIC in microseconds, the clock
// systemd's MONOTONIC_USEC is read from (sd_notify(3)). time.Now carries a
// monotonic reading but never exposes its absolute value.
func MonotonicMicros() (int64, error) {
	var ts syscall.Timespec
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, e
	}
	return ts.Sec*1e6 + ts.Nsec/1e3, nil
}
