package engine

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"skiffd/internal/sys"
)

// Interface ioctls of linux/sockios.h.
const (
	siocGIFFLAGS = 0x8913
	siocSIFFLAGS = 0x8914
)

// ifreq is struct ifreq with the flags member of its union.
type ifreq struct {
	name  [16]byte
	flags uint16
	_     [22]byte
}

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
			var req ifreq
			copy(req.name[:], "lo")
			if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(s), siocGIFFLAGS, uintptr(unsafe.Pointer(&req))); e != 0 {
				return fmt.Errorf("get flags of lo: %w", e)
			}
			req.flags |= syscall.IFF_UP
			if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(s), siocSIFFLAGS, uintptr(unsafe.Pointer(&req))); e != 0 {
				return fmt.Errorf("bring lo up: %w", e)
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("set up the container's loopback interface: %w", err)
	}
	return nil
}
