// Package exeseal makes a sealed image of an executable, so that no process
// that enters a container can be used to overwrite the host's skiffd binary
// through /proc/<pid>/exe (CVE-2019-5736).
//
// The preferred seal is a detached, read-only overlayfs mount of the
// binary's directory (fsopen/fsconfig/fsmount): it is zero-copy, shares the
// page cache with the binary on disk and never appears in any mount table.
// The fallback is a sealed memfd holding a copy. One seal is made per
// daemon and shared by every shim.
//
//	seal, err := exeseal.Seal("")       // this process's binary
//	defer seal.Close()
//	// child fd 3 = seal.File(); exec "/proc/self/fd/3"
package exeseal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"skiffd/internal/sys"
)

// Kinds of seal.
const (
	KindOverlay = "overlay"
	KindMemfd   = "memfd"
)

// Exe is a sealed executable.
type Exe struct {
	file *os.File
	kind string
}

// File returns the sealed executable: an O_PATH fd into a read-only
// overlay, or a sealed memfd. Pass it to a child and exec
// /proc/self/fd/<n> there, or exec it from the parent the same way.
func (e *Exe) File() *os.File { return e.file }

// Kind reports which mechanism sealed the executable.
func (e *Exe) Kind() string { return e.kind }

// Path is the path that executes the seal from this process.
func (e *Exe) Path() string { return fmt.Sprintf("/proc/self/fd/%d", e.file.Fd()) }

// Close releases the seal; processes started from it keep running.
func (e *Exe) Close() error { return e.file.Close() }

// Seal seals the executable at path, or this process's own binary when
// path is "". It tries the overlay seal, then the memfd.
func Seal(path string) (*Exe, error) {
	if path == "" {
		p, err := os.Readlink("/proc/self/exe")
		if err != nil {
			return nil, fmt.Errorf("seal executable: %w", err)
		}
		path = p
	}
	f, errOverlay := sealOverlay(path)
	if errOverlay == nil {
		return &Exe{file: f, kind: KindOverlay}, nil
	}
	src := path
	if strings.HasSuffix(path, " (deleted)") {
		src = "/proc/self/exe"
	}
	f, err := sealMemfd(src)
	if err != nil {
		return nil, fmt.Errorf("seal executable %s: overlay: %v; memfd: %w", path, errOverlay, err)
	}
	return &Exe{file: f, kind: KindMemfd}, nil
}

// sealOverlay mounts the binary's directory as a detached overlay with two
// lower layers and no upper one (hence read-only), with nosuid and nodev,
// and opens the binary in it with O_PATH. The second lower layer is an
// empty directory, which must not live inside the binary's directory
// (overlay then fails with ELOOP); it is removed again once mounted.
func sealOverlay(path string) (*os.File, error) {
	dir, name := filepath.Split(path)
	dir = filepath.Clean(dir)
	if strings.ContainsAny(dir, ":,\\") || name == "" || strings.HasSuffix(path, " (deleted)") {
		return nil, errors.New("path cannot be an overlay lower directory")
	}
	dummy, err := os.MkdirTemp(emptyDirParent(dir), ".skiffd-seal-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dummy)
	if strings.ContainsAny(dummy, ":,\\") {
		return nil, errors.New("temporary directory cannot be an overlay lower directory")
	}
	ctx, err := sys.Fsopen("overlay", sys.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer syscall.Close(ctx)
	for _, kv := range [][2]string{{"lowerdir", dir + ":" + dummy}, {"xino", "off"}} {
		if err := sys.FsconfigSetString(ctx, kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("fsconfig %s: %w", kv[0], err)
		}
	}
	if err := sys.FsconfigCreate(ctx); err != nil {
		return nil, fmt.Errorf("fsconfig create: %w", err)
	}
	mnt, err := sys.Fsmount(ctx, sys.FSMOUNT_CLOEXEC, sys.MOUNT_ATTR_RDONLY|sys.MOUNT_ATTR_NOSUID|sys.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("fsmount: %w", err)
	}
	defer syscall.Close(mnt)
	fd, err := syscall.Openat(mnt, name, sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s in the seal: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "skiffd-sealed"), nil
}

// emptyDirParent picks where the empty lower directory is made: the
// system temp dir, or the exec directory's grandparent when the temp dir
// would lie inside the binary's directory.
func emptyDirParent(binDir string) string {
	tmp := os.TempDir()
	if rel, err := filepath.Rel(binDir, tmp); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.Dir(binDir)
	}
	return tmp
}

// sealMemfd copies the binary into a memfd and seals it against writes,
// growth and shrinking (and exec-permission changes where the kernel has
// F_SEAL_EXEC).
func sealMemfd(src string) (*os.File, error) {
	fd, err := sys.MemfdCreate("skiffd-sealed", sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING|sys.MFD_EXEC)
	if err == syscall.EINVAL {
		fd, err = sys.MemfdCreate("skiffd-sealed", sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "skiffd-sealed")
	in, err := os.Open(src)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer in.Close()
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy: %w", err)
	}
	if err := f.Chmod(0o511); err != nil {
		f.Close()
		return nil, err
	}
	// F_SEAL_EXEC (Linux 6.3) is best effort.
	sys.AddSeals(fd, sys.F_SEAL_EXEC)
	if err := sys.AddSeals(fd, sys.F_SEAL_SEAL|sys.F_SEAL_SHRINK|sys.F_SEAL_GROW|sys.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}

// ForceMemfd seals with the memfd fallback only; for tests and for hosts
// where the overlay seal misbehaves.
func ForceMemfd(path string) (*Exe, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	f, err := sealMemfd(path)
	if err != nil {
		return nil, err
	}
	return &Exe{file: f, kind: KindMemfd}, nil
}
