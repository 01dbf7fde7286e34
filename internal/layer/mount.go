package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"
)

// Names inside a container's directory.
const (
	upperDirName  = "upper"
	workDirName   = "work"
	rootfsDirName = "rootfs"
)

// The new mount API (Linux 5.2), with the same numbers on every
// architecture, and the constants of linux/mount.h that it uses.
const (
	sysMoveMount = 429
	sysFsopen    = 430
	sysFsconfig  = 431
	sysFsmount   = 432

	fsopenCloexec       = 0x1
	fsmountCloexec      = 0x1
	fsconfigSetString   = 1
	fsconfigCmdCreate   = 6
	moveMountFEmptyPath = 0x4
	atFdcwd             = -0x64
)

// indexOption is overlay's "index" setting. Like dockerd and containerd,
// skiffd turns the inodes index off: it would tie each lower directory to
// the first upper it was mounted with, and layers are shared.
const indexOption = "off"

// MountRootfs mounts the container root file system for the chain chainID
// at containerDir/rootfs and returns that path: an overlay whose lower
// directories are the chain's diff directories (top layer first) and whose
// upper and work directories are containerDir/upper and containerDir/work,
// created if needed. The mount is made in the caller's mount namespace (the
// host's, for the daemon), so it outlives the daemon and docker cp can see
// it. If containerDir/rootfs is already a mount point, MountRootfs assumes
// it is this overlay and returns it as it is.
//
// It uses the new mount API with one "lowerdir+" per layer (Linux 6.8),
// which has no limit on the number of layers, and falls back to mount(2),
// whose options must fit in a page.
func (s *Store) MountRootfs(chainID, containerDir string) (string, error) {
	lowers, err := s.DiffDirs(chainID)
	if err != nil {
		return "", err
	}
	upper := filepath.Join(containerDir, upperDirName)
	work := filepath.Join(containerDir, workDirName)
	target := filepath.Join(containerDir, rootfsDirName)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{upper, 0o755}, {work, 0o700}, {target, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return "", fmt.Errorf("mount rootfs: %w", err)
		}
	}
	mounted, err := isMountPoint(target)
	if err != nil {
		return "", fmt.Errorf("mount rootfs: %w", err)
	}
	if mounted {
		return target, nil
	}
	err = mountOverlayFs(lowers, upper, work, target)
	if errors.Is(err, errNoLowerdirPlus) {
		err = mountOverlayClassic(lowers, upper, work, target)
	}
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s at %s: %w", chainID, target, err)
	}
	return target, nil
}

// UnmountRootfs unmounts containerDir/rootfs, lazily (MNT_DETACH) if it is
// busy, and removes the empty mount point, which also drops copies of the
// mount in other mount namespaces. It leaves containerDir/upper for diff
// and commit. Unmounting what is not mounted is not an error.
func UnmountRootfs(containerDir string) error {
	target := filepath.Join(containerDir, rootfsDirName)
	// A mount point may carry more than one mount if something mounted
	// over it; take them all off.
	for range 16 {
		err := syscall.Unmount(target, 0)
		if err == syscall.EBUSY {
			err = syscall.Unmount(target, syscall.MNT_DETACH)
		}
		if err == syscall.EINVAL || err == syscall.ENOENT {
			break // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount rootfs %s: %w", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmount rootfs %s: %w", target, err)
	}
	return nil
}

// isMountPoint reports whether dir is on another device than its parent,
// which an overlay mounted on it always is.
func isMountPoint(dir string) (bool, error) {
	var st, pst syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return false, &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	parent := filepath.Dir(dir)
	if err := syscall.Lstat(parent, &pst); err != nil {
		return false, &os.PathError{Op: "lstat", Path: parent, Err: err}
	}
	return st.Dev != pst.Dev, nil
}

// errNoLowerdirPlus means the kernel lacks the new mount API or overlay's
// "lowerdir+" parameter, and mount(2) must do.
var errNoLowerdirPlus = errors.New(`overlay "lowerdir+" is not supported`)

// mountOverlayFs mounts the overlay at target with fsopen, fsconfig,
// fsmount and move_mount.
func mountOverlayFs(lowers []string, upper, work, target string) error {
	fsfd, err := fsopen("overlay")
	if err == syscall.ENOSYS {
		return errNoLowerdirPlus
	}
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer syscall.Close(fsfd)
	for i, dir := range lowers {
		if err := fsconfigString(fsfd, "lowerdir+", dir); err != nil {
			msg := fsLog(fsfd)
			if i == 0 && err == syscall.EINVAL && strings.Contains(msg, "Unknown parameter") {
				return errNoLowerdirPlus
			}
			return withLog(fmt.Errorf("overlay lowerdir+ %s: %w", dir, err), msg)
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}, {"index", indexOption}} {
		if err := fsconfigString(fsfd, kv[0], kv[1]); err != nil {
			return fsError(fsfd, kv[0]+" "+kv[1], err)
		}
	}
	if err := fsconfigCreate(fsfd); err != nil {
		return fsError(fsfd, "create", err)
	}
	mfd, err := fsmount(fsfd)
	if err != nil {
		return fsError(fsfd, "fsmount", err)
	}
	defer syscall.Close(mfd)
	if err := moveMount(mfd, target); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}

// mountOverlayClassic mounts the overlay with mount(2), whose option
// string is limited to one page.
func mountOverlayClassic(lowers []string, upper, work, target string) error {
	for _, p := range append([]string{upper, work}, lowers...) {
		if strings.ContainsAny(p, ":,") {
			return fmt.Errorf("overlay directory %q contains ':' or ','", p)
		}
	}
	data := "index=" + indexOption + ",lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if limit := os.Getpagesize() - 1; len(data) > limit {
		return fmt.Errorf("%d layers need %d bytes of overlay mount options, more than the %d bytes mount(2) takes, "+
			"and this kernel has no overlay \"lowerdir+\" (Linux 6.8)", len(lowers), len(data), limit)
	}
	if err := syscall.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return nil
}

func fsopen(fstype string) (int, error) {
	p, err := syscall.BytePtrFromString(fstype)
	if err != nil {
		return -1, err
	}
	fd, _, errno := syscall.Syscall(sysFsopen, uintptr(unsafe.Pointer(p)), fsopenCloexec, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func fsconfigString(fsfd int, key, value string) error {
	k, err := syscall.BytePtrFromString(key)
	if err != nil {
		return err
	}
	v, err := syscall.BytePtrFromString(value)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall6(sysFsconfig, uintptr(fsfd), fsconfigSetString,
		uintptr(unsafe.Pointer(k)), uintptr(unsafe.Pointer(v)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func fsconfigCreate(fsfd int) error {
	_, _, errno := syscall.Syscall6(sysFsconfig, uintptr(fsfd), fsconfigCmdCreate, 0, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func fsmount(fsfd int) (int, error) {
	fd, _, errno := syscall.Syscall(sysFsmount, uintptr(fsfd), fsmountCloexec, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func moveMount(mfd int, target string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	t, err := syscall.BytePtrFromString(target)
	if err != nil {
		return err
	}
	fdcwd := atFdcwd
	_, _, errno := syscall.Syscall6(sysMoveMount, uintptr(mfd), uintptr(unsafe.Pointer(empty)),
		uintptr(fdcwd), uintptr(unsafe.Pointer(t)), moveMountFEmptyPath, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// fsLog drains the messages the kernel queued on a file system context;
// they say which option it refused and why.
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 32 {
		n, err := syscall.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

// fsError describes a failed step of the new mount API with what the
// kernel logged about it.
func fsError(fsfd int, op string, err error) error {
	return withLog(fmt.Errorf("overlay %s: %w", op, err), fsLog(fsfd))
}

func withLog(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}
