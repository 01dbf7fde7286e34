package pty

import (
	"os"
	"syscall"
	"testing"

	"skiffd/internal/sys"
)

func TestOpenResizeSend(t *testing.T) {
	master, slave, err := Open()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	if err := Resize(master, 40, 132); err != nil {
		t.Fatal(err)
	}
	ws, err := sys.GetWinsize(int(slave.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if ws.Row != 40 || ws.Col != 132 {
		t.Errorf("slave size = %dx%d, want 40x132", ws.Row, ws.Col)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	if err := Send(a, "pty", master); err != nil {
		t.Fatal(err)
	}
	got, tag, err := Receive(b, "master")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if tag != "pty" {
		t.Errorf("tag = %q, want pty", tag)
	}
	if _, err := slave.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, err := got.Read(buf)
	if err != nil || string(buf[:n]) != "x" {
		t.Errorf("read from the passed master = %q, %v, want \"x\"", buf[:n], err)
	}
}
