package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
