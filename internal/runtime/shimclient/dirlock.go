package shimclient

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// A shim holds an exclusive flock on its container's directory for as long
// as it serves the container (shim.State.DirLock). The daemon takes the
// lock before the hand-over and passes its open directory along with the
// container (the lock belongs to the open file, not to a process), so it
// is held from before the shim hears of the container until the shim lets
// go of it, or dies. Whether a shim still serves a container is then one
// non-blocking flock, and waiting for it to let go one blocking flock,
// whatever else the shim process serves.

// lockDir opens dir and locks it for the hand-over.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: dir, Err: err}
	}
	return f, nil
}

// dirLocked reports whether a shim serves the container in dir.
func dirLocked(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// waitDirUnlocked waits until no shim serves the container in dir, or ctx
// ends.
func waitDirUnlocked(ctx context.Context, dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return
	}
	// A blocking flock holds a thread until the shim lets go: in a
	// goroutine that closes the file then, even after ctx has ended.
	done := make(chan struct{})
	go func() {
		for syscall.Flock(fd, syscall.LOCK_SH) == syscall.EINTR {
		}
		f.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
