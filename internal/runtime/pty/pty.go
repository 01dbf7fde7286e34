// Package pty opens pseudo-terminals and passes their master side between
// processes. The container's init (or the exec helper, after joining the
// container's mount namespace) opens the pty in the container's own devpts
// instance, so `tty` and `ps` inside see /dev/pts/N; the master then goes
// to the shim over a unix socket (SCM_RIGHTS).
package pty

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"skiffd/internal/sys"
)

// Open opens a new pty through /dev/ptmx of the calling thread's mount
// namespace and returns its master and slave (the slave without becoming
// the controlling terminal). Both are close-on-exec.
func Open() (master, slave *os.File, err error) {
	fd, err := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	var n uint32
	if err := sys.Ioctl(fd, sys.TIOCGPTN, uintptr(unsafe.Pointer(&n))); err != nil {
		syscall.Close(fd)
		return nil, nil, fmt.Errorf("get pty number: %w", err)
	}
	var unlock int32
	if err := sys.Ioctl(fd, sys.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); err != nil {
		syscall.Close(fd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	name := "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	// TIOCGPTPEER (Linux 4.13) opens the slave without a path lookup, so a
	// symlink planted in /dev/pts cannot swap it.
	if sfd, err := sys.PtyPeer(fd, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC); err == nil {
		return master, os.NewFile(uintptr(sfd), name), nil
	}
	s, err := os.OpenFile(name, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, s, nil
}

// Resize sets a terminal's window size.
func Resize(f *os.File, height, width uint16) error {
	return sys.SetWinsize(int(f.Fd()), sys.Winsize{Row: height, Col: width})
}

// Send passes f over the unix socket sock with a short tag as payload.
func Send(sock *os.File, tag string, f *os.File) error {
	rights := syscall.UnixRights(int(f.Fd()))
	return syscall.Sendmsg(int(sock.Fd()), []byte(tag), rights, nil, 0)
}

// Receive takes one fd passed with Send from the socket and returns it
// with its tag. It reads the whole tag in one message, which Send wrote
// with one sendmsg.
func Receive(sock *os.File, name string) (*os.File, string, error) {
	buf := make([]byte, 64)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, _, _, err := syscall.Recvmsg(int(sock.Fd()), buf, oob, syscall.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, "", err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, "", err
	}
	var fds []int
	for _, m := range msgs {
		r, err := syscall.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, r...)
		}
	}
	if len(fds) == 0 {
		return nil, string(buf[:n]), errors.New("no file descriptor received")
	}
	for _, extra := range fds[1:] {
		syscall.Close(extra)
	}
	return os.NewFile(uintptr(fds[0]), name), string(buf[:n]), nil
}
