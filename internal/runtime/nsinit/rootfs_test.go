package nsinit

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"skiffd/internal/sys"
)

// inPrivateMountNS runs f on a locked thread of its own in a private mount
// namespace. The thread is never unlocked: the runtime destroys it when
// f returns, and the namespace with its mounts goes with it, so nothing
// is mounted on the host.
func inPrivateMountNS(t *testing.T, f func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a mount namespace")
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
			done <- err
			return
		}
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// TestReadonlyRecursive binds a directory with a file system mounted below
// it recursively and makes the bind read-only: the submount must be
// read-only through the bind (and stay writable at its source), both with
// mount_setattr and with the remount fallback for older kernels.
func TestReadonlyRecursive(t *testing.T) {
	for _, tc := range []struct {
		name string
		ro   func(fd int) error
	}{
		{"mount_setattr", readonlyRecursive},
		{"remount fallback", func(fd int) error {
			if err := syscall.Mount("", fdPath(fd), "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
				return err
			}
			top, err := os.Readlink(fdPath(fd))
			if err != nil {
				return err
			}
			return remountReadonlyBelow(top)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := inPrivateMountNS(t, func() error {
				src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
				// Everything written lives in tmpfs mounts of this
				// namespace.
				if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
					return err
				}
				for _, d := range []string{src, dst} {
					if err := os.Mkdir(d, 0o755); err != nil {
						return err
					}
				}
				sub := filepath.Join(src, "sub")
				if err := os.Mkdir(sub, 0o755); err != nil {
					return err
				}
				if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=64k"); err != nil {
					return err
				}
				if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
					return err
				}
				fd, err := syscall.Open(dst, sys.O_PATH|syscall.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				defer syscall.Close(fd)
				if err := tc.ro(fd); err != nil {
					t.Errorf("make %s read-only: %v", dst, err)
					return nil
				}
				for _, p := range []string{filepath.Join(dst, "x"), filepath.Join(dst, "sub", "x")} {
					if err := os.WriteFile(p, nil, 0o644); !errors.Is(err, syscall.EROFS) {
						t.Errorf("write %s below the read-only bind: %v, want EROFS", p, err)
					}
				}
				if err := os.WriteFile(filepath.Join(sub, "x"), nil, 0o644); err != nil {
					t.Errorf("write at the source: %v, want it writable", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
