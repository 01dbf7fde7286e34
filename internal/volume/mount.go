package volume

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/mountinfo"
)

// Mount makes a volume's content available and returns the host path to
// bind into a container. Plain volumes are just their _data directory. A
// volume with driver options (type, device, o) is mounted on _data by the
// first Mount and stays mounted until the matching last Unmount, like
// dockerd's local driver; ref names the user (a container ID) for logs.
func (s *Store) Mount(name, ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return "", noSuchVolume(name)
	}
	if !e.NeedsMount() {
		return e.Mountpoint, nil
	}
	if !e.mounted {
		if err := mountOptions(e.Options, e.Mountpoint); err != nil {
			return "", errdefs.System(fmt.Errorf("error while mounting volume '%s': failed to mount local volume: %w", name, err))
		}
		e.mounted = true
		s.logger.Debug("mounted volume", "volume", name, "container", ref)
	}
	e.mounts++
	return e.Mountpoint, nil
}

// Unmount undoes one Mount; the last one unmounts an option-backed volume.
// An Unmount without a Mount is ignored (and logged), so that cleanup paths
// may call it unconditionally.
func (s *Store) Unmount(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return noSuchVolume(name)
	}
	if !e.NeedsMount() {
		return nil
	}
	if e.mounts == 0 {
		s.logger.Warn("unmount of a volume with no active mounts", "volume", name, "container", ref)
	} else {
		e.mounts--
	}
	if e.mounts > 0 || !e.mounted {
		return nil
	}
	if err := unmount(e.Mountpoint); err != nil {
		return errdefs.System(fmt.Errorf("error unmounting volume %s: %w", name, err))
	}
	e.mounted = false
	return nil
}

// mountOptions mounts device (type, o) on target the way mount(8) would:
// flags from o go to mount(2), the rest of o is the file system's data,
// propagation is set in a second call, and a read-only bind mount is
// remounted read-only since the kernel ignores MS_RDONLY on the bind itself.
func mountOptions(opts map[string]string, target string) error {
	device := opts["device"]
	if device == "" {
		return errors.New("missing device in volume options")
	}
	flags, propagation, data := ParseMountOptions(opts["o"])
	fstype := opts["type"]
	if flags&syscall.MS_REMOUNT == 0 || data != "" {
		if err := syscall.Mount(device, target, fstype, flags, data); err != nil {
			return fmt.Errorf("mount %s on %s (type %s): %w", device, target, fstype, err)
		}
	}
	if propagation != 0 {
		if err := syscall.Mount("", target, "", propagation, ""); err != nil {
			unmount(target)
			return fmt.Errorf("set propagation of %s: %w", target, err)
		}
	}
	const roBind = syscall.MS_BIND | syscall.MS_RDONLY
	if flags&roBind == roBind {
		if err := syscall.Mount("", target, "", flags|syscall.MS_REMOUNT, ""); err != nil {
			unmount(target)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// unmount detaches whatever is mounted on target; nothing mounted is fine.
func unmount(target string) error {
	for {
		err := syscall.Unmount(target, syscall.MNT_DETACH)
		switch {
		case err == nil:
			// A path can be mounted over more than once; peel every layer.
			continue
		case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOENT):
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// mountPoints returns the mount points of the daemon's mount namespace.
func mountPoints() (map[string]bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	points := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		points[mountinfo.Unescape(fields[4])] = true
	}
	return points, sc.Err()
}

// hasMountsBelow reports whether dir or anything below it is a mount point.
func hasMountsBelow(dir string) (bool, error) {
	points, err := mountPoints()
	if err != nil {
		return false, err
	}
	for p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true, nil
		}
	}
	return false, nil
}
