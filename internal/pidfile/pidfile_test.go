package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAcquireWritesPidAndRefusesSecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "skiffd.pid")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	b, _ := os.ReadFile(path)
	if got, want := strings.TrimSpace(string(b)), strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("pidfile content = %q, want %q", got, want)
	}
	_, err = Acquire(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire error = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "already running (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Errorf("second Acquire error = %q, want it to name the holder pid", err)
	}
	l.Release()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("pidfile still exists after Release: %v", err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
	l2.Release()
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is already using "+dir) {
		t.Fatalf("second LockDir error = %v, want ErrLocked naming %s", err, dir)
	}
	l.Release()
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Release: %v", err)
	}
	l2.Release()
}

// TestLockDirWaitsForADeadHolder: the lock is still held, but by a file
// description a dead daemon's half-started child keeps open for a moment
// (here: this test); the pid in the file is dead. LockDir waits for the
// release instead of refusing.
func TestLockDirWaitsForADeadHolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "skiffd.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// pid_max is never a pid: the recorded holder is dead.
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.TrimSpace(string(b)) + "\n"); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() {
		f.Close()
		close(released)
	})
	l, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir while a dead daemon's lock is being released: %v", err)
	}
	l.Release()
	<-released
}
