// Package pidfile holds the daemon's pidfile and data-root lock. Both are
// flock(2)ed for the daemon's lifetime, so a second daemon on the same
// pidfile or data root refuses to start instead of corrupting state, and a
// daemon killed with -9 leaves no stale lock (the kernel drops it).
package pidfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Lock is a held, flocked file.
type Lock struct {
	f      *os.File
	path   string
	remove bool
}

// ErrLocked is returned (wrapped) when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Acquire locks the pidfile at path and writes our pid into it. The file is
// removed again by Release.
func Acquire(path string) (*Lock, error) {
	l, err := lock(path, "skiffd is already running (pid %s): pidfile %s is locked")
	if err != nil {
		return nil, err
	}
	l.remove = true
	if err := l.f.Truncate(0); err != nil {
		l.Release()
		return nil, fmt.Errorf("write pidfile %s: %w", path, err)
	}
	if _, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		l.Release()
		return nil, fmt.Errorf("write pidfile %s: %w", path, err)
	}
	if err := l.f.Sync(); err != nil {
		l.Release()
		return nil, fmt.Errorf("write pidfile %s: %w", path, err)
	}
	return l, nil
}

// LockDir takes the exclusive lock of a daemon directory (the data root),
// recording our pid in dir/skiffd.lock so the refusal can name the holder.
func LockDir(dir string) (*Lock, error) {
	path := filepath.Join(dir, "skiffd.lock")
	l, err := lock(path, "skiffd (pid %s) is already using %s")
	if err != nil {
		return nil, err
	}
	l.f.Truncate(0)
	l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return l, nil
}

func lock(path, busyFormat string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := flockWaitingForTheDead(f, path); err != nil {
		holder := "unknown"
		if b, rerr := os.ReadFile(path); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
			holder = string(bytes.TrimSpace(b))
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			shown := path
			if filepath.Base(path) == "skiffd.lock" {
				shown = filepath.Dir(path)
			}
			return nil, fmt.Errorf(busyFormat+": %w", holder, shown, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// deadHolderGrace bounds the wait for a lock whose recorded holder is dead.
const deadHolderGrace = 2 * time.Second

// flockWaitingForTheDead takes the exclusive lock of f. While the lock is
// busy but the pid recorded in the file is no longer alive, it retries for
// a while: a daemon killed with -9 while it was starting a process (a
// shim) leaves its lock, shared through the fork, with that child until
// the child's exec closes it a moment later. A second daemon started at
// once must not take that for a live daemon (issue 9, the kill -9 test).
func flockWaitingForTheDead(f *os.File, path string) error {
	deadline := time.Now().Add(deadHolderGrace)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || holderAlive(path) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holderAlive reports whether the pid recorded in path runs; a file
// without a pid counts as alive (nothing says otherwise).
func holderAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Release removes a pidfile and drops the lock. It is safe to call twice.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	if l.remove {
		os.Remove(l.path)
	}
	l.f.Close()
	l.f = nil
}
