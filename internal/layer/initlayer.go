package layer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"skiffd/internal/atomicfile"
	"skiffd/internal/sys"
)

// The init layer of an image chain is the topmost lower directory of the
// overlay of every container made from it, made as dockerd makes its
// init layer (initlayer.Setup): the mount points the runtime puts file
// systems and files on (/proc, /sys, /dev with /dev/pts, /dev/shm and
// /dev/console, /etc/hosts, /etc/hostname, /etc/resolv.conf), /.dockerenv,
// by which programs tell they run in a container, and /etc/mtab, a link
// to /proc/mounts that tools older than /proc read. Images seldom have the
// mount points all, and init made the missing ones in the container's
// upper directory at every start: each an overlay create, with a copy-up
// of /etc, about 1.1 ms of every start of an image without them (issue 13:
// API start 11.0-11.3 ms for an image with only /bin, 9.9-10.1 ms for the
// same image with the mount points, same daemon, interleaved). The
// container's upper directory now holds only what its processes change.
//
// As in dockerd, a directory the image has stays the image's (with its
// owner, mode and times: the layer's copy of a parent has them, as a
// directory's attributes come from the topmost layer that has it), and
// anything else the image has at one of these paths is replaced: a file by
// an empty one, a symbolic link (an /etc/hosts or /etc/resolv.conf
// pointing elsewhere, which a bind mount must not follow) by the file, a
// stale /etc/mtab by the link, an /etc that is a link by a directory. The
// layer is made once per chain, on the first mount, in the chain's
// directory, and goes with it. A layer that a power loss left incomplete
// only makes init create what it lacks, as it did before there was one.
//
// The name carries the layer's form: a chain whose layer has an older one
// (init, init2) gets one of this form beside it on its next mount; the old
// one goes with the chain (a container mounted before may still have it
// as a lower directory).
const initDirName = "init3"

var (
	// initLayerDirs are the directories, parents first; initLayerParents
	// those that hold entries of the layer.
	initLayerDirs    = []string{"dev", "dev/pts", "dev/shm", "proc", "sys", "etc"}
	initLayerParents = map[string]bool{"dev": true, "etc": true}
	// initLayerFiles are made empty, mode 0755 (dockerd's).
	initLayerFiles = []initFile{{name: ".dockerenv", mode: 0o755}, {name: "dev/console", mode: 0o755},
		{name: "etc/hostname", mode: 0o755}, {name: "etc/hosts", mode: 0o755}, {name: "etc/resolv.conf", mode: 0o755}}
	// initLayerLinks are symbolic links and their targets.
	initLayerLinks = []initFile{{name: "etc/mtab", target: "/proc/mounts"}}
)

// initFile is a file or link of the init layer.
type initFile struct {
	name   string
	mode   os.FileMode
	target string
}

// initDir returns the init layer of chainID, whose diff directories are
// lowers (top first), making it if it does not exist yet.
func (s *Store) initDir(chainID string, lowers []string) (string, error) {
	dir := filepath.Join(s.dir(chainID), initDirName)
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return dir, err
	}
	defer s.locks.lock(chainID)()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil // made meanwhile
	}
	// Made aside (Open removes what a crash leaves there) and renamed in.
	tmp, err := os.MkdirTemp(s.root, atomicfile.TempPrefix+"init-")
	if err != nil {
		return "", fmt.Errorf("make the init layer: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := fillInitLayer(tmp, lowers); err != nil {
		return "", fmt.Errorf("make the init layer: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("make the init layer: %w", err)
	}
	return dir, nil
}

// fillInitLayer makes in dir what the image in lowers lacks or has in
// another form. Modes are set outright: containers see them, whatever the
// daemon's umask.
func fillInitLayer(dir string, lowers []string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	isDir := func(st *syscall.Stat_t) bool { return st != nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR }
	for _, d := range initLayerDirs {
		p := filepath.Join(dir, d)
		st := imageEntry(lowers, d)
		switch {
		case !isDir(st):
			if err := mkdirMode(p, 0o755); err != nil {
				return err
			}
		case initLayerParents[d]:
			// The image's directory as it is, with its attributes (the
			// times last, once its entries are made).
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			// The mode after the owner: a chown may clear setgid.
			if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			if err := os.Chmod(p, sys.FileMode(st.Mode)); err != nil {
				return err
			}
			defer func() {
				ts := []syscall.Timespec{st.Atim, st.Mtim}
				syscall.UtimesNano(p, ts)
			}()
		}
	}
	for _, f := range initLayerFiles {
		if isDir(imageEntry(lowers, f.name)) {
			continue
		}
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, nil, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	for _, l := range initLayerLinks {
		if isDir(imageEntry(lowers, l.name)) {
			continue
		}
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			return err
		}
	}
	return nil
}

func mkdirMode(p string, mode os.FileMode) error {
	if err := os.Mkdir(p, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// imageEntry returns what the image's merged view has at rel (one or two
// path components), resolved through its layers (top first) by overlay's
// rules: the topmost layer with an entry decides, a whiteout (a 0:0
// character device) means none, and a parent that is not a directory or
// is opaque in a layer hides what the layers below have. nil: none.
func imageEntry(lowers []string, rel string) *syscall.Stat_t {
	parent := path.Dir(rel)
	for _, l := range lowers {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(l, rel), &st); err == nil {
			if st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0 {
				return nil
			}
			return &st
		}
		if parent == "." {
			continue
		}
		var pst syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(l, parent), &pst); err == nil {
			if pst.Mode&syscall.S_IFMT != syscall.S_IFDIR {
				return nil
			}
			if v, err := sys.Lgetxattr(filepath.Join(l, parent), "trusted.overlay.opaque"); err == nil && string(v) == "y" {
				return nil
			}
		}
	}
	return nil
}
