package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
	"skiffd/internal/sys"
)

// shmDirName is, in a container's directory, where the /dev/shm of a
// container with IPC mode shareable is mounted on the host, as dockerd's
// ShmPath: a tmpfs of the container's size that containers joining its
// IPC namespace (--ipc container:<name>, cri-dockerd's pod containers)
// bind as their /dev/shm, so that POSIX shared memory is shared with the
// SysV objects. It is mounted at each start and unmounted when the
// container stops.
const shmDirName = "shm"

// mountShm mounts the tmpfs of a shareable container in dir (its
// directory), unless a start before left it mounted.
func mountShm(dir string, size int64) (string, error) {
	p := filepath.Join(dir, shmDirName)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create the shm directory: %w", err)
	}
	if mounted, _ := isMountPoint(p); mounted {
		return p, nil
	}
	flags := uintptr(syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
	if err := syscall.Mount("shm", p, "tmpfs", flags, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
		return "", fmt.Errorf("mount the shm of a shareable IPC namespace: %w", err)
	}
	return p, nil
}

// unmountShm takes a shareable container's tmpfs off, if mounted; the
// binds joined containers hold of it stay theirs.
func unmountShm(dir string) error {
	p := filepath.Join(dir, shmDirName)
	if err := sys.RemoveMountPoint(p); err != nil {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	return nil
}

// unmountContainerFS unmounts what a run of the container in dir mounted
// on the host: its root file system, its image mounts and a shareable IPC
// namespace's shm.
func unmountContainerFS(dir string) error {
	return errors.Join(layer.UnmountRootfs(dir), unmountImageMounts(dir), unmountShm(dir))
}

// shmSource is the host directory bound as c's /dev/shm, as dockerd's
// ShmPath: its own tmpfs with IPC mode shareable (mounted here), the
// host's with host, the donor's with container:<name> (which must be
// shareable or the host's, as dockerd requires); "" for a tmpfs of its
// own (private) or none.
func (e *Engine) shmSource(c *container.Container) (string, error) {
	hc := c.HostConfig
	switch {
	case hc.IpcMode == "shareable":
		return mountShm(e.containerDir(c.ID), hc.ShmSize)
	case hc.IpcMode == "host":
		if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
			return "", errors.New("/dev/shm is not mounted, but must be for --ipc=host")
		}
		return "/dev/shm", nil
	case strings.HasPrefix(hc.IpcMode, "container:"):
		ref := strings.TrimPrefix(hc.IpcMode, "container:")
		// Along a chain of joins, as dockerd copies the donor's ShmPath.
		for range 8 {
			donor, err := e.get(ref)
			if err != nil {
				return "", errdefs.InvalidParameter(fmt.Errorf("failed to join IPC namespace: %w", err))
			}
			v := e.containers.View(donor.ID)
			if v == nil {
				return "", errdefs.InvalidParameter(fmt.Errorf("failed to join IPC namespace: No such container: %s", ref))
			}
			mode := v.HostConfig.IpcMode
			switch {
			case mode == "shareable":
				p := filepath.Join(e.containerDir(donor.ID), shmDirName)
				if mounted, _ := isMountPoint(p); mounted {
					return p, nil
				}
			case mode == "host":
				return "/dev/shm", nil
			case strings.HasPrefix(mode, "container:") && donor.ID != c.ID:
				ref = strings.TrimPrefix(mode, "container:")
				continue
			}
			return "", errdefs.InvalidParameter(fmt.Errorf("failed to join IPC namespace: container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", ref))
		}
		return "", errdefs.InvalidParameter(fmt.Errorf("failed to join IPC namespace: container %s: too many joins", ref))
	}
	return "", nil
}
