package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"skiffd/internal/sys"
	"strings"
	"syscall"
)

// Names inside a container's directory.
const (
	upperDirName  = "upper"
	workDirName   = "work"
	rootfsDirName = "rootfs"
)

// indexOption is overlay's "index" setting. Like dockerd and containerd,
// skiffd turns the inodes index off: it would tie each lower directory to
// the first upper it was mounted with, and layers are shared.
const indexOption = "off"

// MountRootfs mounts the container root file system for the chain chainID
// at containerDir/rootfs and returns that path: an overlay whose lower
// directories are the chain's init layer (see initDir) and its diff
// directories (top layer first) and whose
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
	initLayer, err := s.initDir(chainID, lowers)
	if err != nil {
		return "", err
	}
	return mountChain(chainID, append([]string{initLayer}, lowers...), containerDir)
}

// MountImage mounts the image content of chain chainID at dir/rootfs and
// returns that path, as MountRootfs does for a container but without the
// init layer: what an image mount (--mount type=image) shows is the
// image's files alone. The upper directory is dir/upper, as dockerd's
// read-write layer for such a mount; the container binds it read-only.
// UnmountRootfs(dir) unmounts it.
func (s *Store) MountImage(chainID, dir string) (string, error) {
	lowers, err := s.DiffDirs(chainID)
	if err != nil {
		return "", err
	}
	return mountChain(chainID, lowers, dir)
}

// mountChain mounts the overlay of lowers (top first) at
// containerDir/rootfs with its upper and work directories beside it,
// unless it is mounted already.
func mountChain(chainID string, lowers []string, containerDir string) (string, error) {
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
	if err := sys.RemoveMountPoint(target); err != nil {
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
	fsfd, err := sys.Fsopen("overlay", sys.FSOPEN_CLOEXEC)
	if err == syscall.ENOSYS {
		return errNoLowerdirPlus
	}
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer syscall.Close(fsfd)
	for i, dir := range lowers {
		if err := sys.FsconfigSetString(fsfd, "lowerdir+", dir); err != nil {
			msg := fsLog(fsfd)
			if i == 0 && err == syscall.EINVAL && strings.Contains(msg, "Unknown parameter") {
				return errNoLowerdirPlus
			}
			return withLog(fmt.Errorf("overlay lowerdir+ %s: %w", dir, err), msg)
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}, {"index", indexOption}} {
		if err := sys.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return fsError(fsfd, kv[0]+" "+kv[1], err)
		}
	}
	if err := sys.FsconfigCreate(fsfd); err != nil {
		return fsError(fsfd, "create", err)
	}
	mfd, err := sys.Fsmount(fsfd, sys.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fsError(fsfd, "fsmount", err)
	}
	defer syscall.Close(mfd)
	if err := sys.MoveMount(mfd, target); err != nil {
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
