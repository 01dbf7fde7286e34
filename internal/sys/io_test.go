package sys

import (
	"os"
	"syscall"
	"testing"
	"unsafe"
)

func TestPpoll(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fds := []PollFd{{Fd: int32(r.Fd()), Events: POLLIN}}
	if n, err := Ppoll(fds, syscall.NsecToTimespec(1e6)); n != 0 || err != nil {
		t.Errorf("Ppoll(empty pipe) = %d, %v; want a timeout (0, nil)", n, err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := Ppoll(fds, syscall.NsecToTimespec(10e9)); n != 1 || err != nil || fds[0].Revents&POLLIN == 0 {
		t.Errorf("Ppoll(readable pipe) = %d, %v, revents %#x; want 1, POLLIN", n, err, fds[0].Revents)
	}
}

func TestPtyPeer(t *testing.T) {
	fd, err := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	defer master.Close()
	var unlock int32
	if err := Ioctl(fd, TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); err != nil {
		t.Fatal(err)
	}
	sfd, err := PtyPeer(fd, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC)
	if err != nil {
		t.Fatalf("PtyPeer = %v", err)
	}
	slave := os.NewFile(uintptr(sfd), "pts")
	defer slave.Close()
	// The peer is the slave of this master: a size set on one is read on
	// the other.
	if err := SetWinsize(int(master.Fd()), Winsize{Row: 33, Col: 77}); err != nil {
		t.Fatal(err)
	}
	if ws, err := GetWinsize(int(slave.Fd())); err != nil || ws.Row != 33 || ws.Col != 77 {
		t.Errorf("GetWinsize(peer) = %+v, %v; want 33x77", ws, err)
	}
}

func TestAddSeals(t *testing.T) {
	fd, err := MemfdCreate("skiffd-test", MFD_CLOEXEC|MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	defer f.Close()
	if _, err := f.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := AddSeals(fd, F_SEAL_WRITE|F_SEAL_SEAL); err != nil {
		t.Fatalf("AddSeals = %v", err)
	}
	if _, err := f.Write([]byte("after")); !isErrno(err, syscall.EPERM) {
		t.Errorf("write after F_SEAL_WRITE = %v, want EPERM", err)
	}
	if err := AddSeals(fd, F_SEAL_GROW); err != syscall.EPERM {
		t.Errorf("AddSeals after F_SEAL_SEAL = %v, want EPERM", err)
	}
}

func TestFcntl(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// os.Pipe makes close-on-exec descriptors.
	if flags, err := Fcntl(int(r.Fd()), syscall.F_GETFD, 0); err != nil || flags&syscall.FD_CLOEXEC == 0 {
		t.Errorf("Fcntl(F_GETFD) = %#x, %v; want FD_CLOEXEC set", flags, err)
	}
	if _, err := Fcntl(-1, syscall.F_GETFD, 0); err != syscall.EBADF {
		t.Errorf("Fcntl(-1, F_GETFD) = %v, want EBADF", err)
	}
}

func isErrno(err error, e syscall.Errno) bool {
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	return err == e
}

func TestIfFlagsLoopback(t *testing.T) {
	s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(s)
	// Read only: the host's interfaces are not the test's to change.
	flags, err := IfFlags(s, "lo")
	if err != nil {
		t.Fatalf("IfFlags(lo) = %v", err)
	}
	if flags&syscall.IFF_LOOPBACK == 0 {
		t.Errorf("IfFlags(lo) = %#x, lacks IFF_LOOPBACK", flags)
	}
	if _, err := IfFlags(s, "no-such-if0"); err != syscall.ENODEV {
		t.Errorf("IfFlags(no-such-if0) = %v, want ENODEV", err)
	}
	if _, err := IfFlags(s, "a-name-too-long-for-ifnamsiz"); err != syscall.EINVAL {
		t.Errorf("IfFlags(long name) = %v, want EINVAL", err)
	}
}

func TestBpfInvalidCommand(t *testing.T) {
	// An invalid command is EINVAL where bpf(2) exists, ENOSYS where not;
	// either way the call reached the kernel with this arch's number
	// (a wrong number would give something else, such as EFAULT or EBADF).
	if _, err := Bpf(-1, nil); err != syscall.EINVAL && err != syscall.ENOSYS {
		t.Errorf("Bpf(-1) = %v, want EINVAL or ENOSYS", err)
	}
}
