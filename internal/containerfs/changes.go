package containerfs

import (
	"context"
	"fmt"
	"os"
	"path"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/sys"
)

// initLayerPaths are what dockerd's init layer holds under every
// container: mount points for the files and file systems the runtime puts
// in place, with their parents. skiffd has no init layer; its runtime
// creates the missing ones in the container's upper directory instead, and
// diff leaves them out as dockerd never shows them.
var initLayerPaths = map[string]bool{
	"/dev": true, "/dev/pts": true, "/dev/shm": true, "/dev/console": true,
	"/proc": true, "/sys": true, "/.dockerenv": true,
	"/etc": true, "/etc/resolv.conf": true, "/etc/hosts": true, "/etc/hostname": true, "/etc/mtab": true,
}

// Changes computes the changes an overlay upper directory records
// over its lower directories (top first), with moby's rules for overlay
// (archive.OverlayChanges): a 0:0 character device or an opaque directory
// is a deletion; anything else is a modification when a lower layer has
// the path and an addition otherwise, except a directory whose size, mode
// and mtime equal the lower one's, which is left out; the parent of an
// added or deleted path is reported modified before it, once. Entries come
// in walk order (names sorted within each directory, depth first).
// Symbolic links are never followed, in upper or lower directories.
func Changes(ctx context.Context, upper string, lowers []string) ([]types.Change, error) {
	ufd, err := syscall.Open(upper, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return nil, nil // never mounted: nothing changed
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: upper, Err: err}
	}
	defer syscall.Close(ufd)
	w := &changeWalker{ctx: ctx, changed: map[string]bool{}}
	if err := w.openLowers(lowers); err != nil {
		return nil, err
	}
	defer w.closeLowers()
	if err := w.walk(ufd, "/"); err != nil {
		return nil, err
	}
	return w.out, nil
}

type changeWalker struct {
	ctx     context.Context
	lowers  []int
	out     []types.Change
	changed map[string]bool // directories already reported
}

// openLowers opens the lower directories, top first, for lower.
func (w *changeWalker) openLowers(lowers []string) error {
	for _, l := range lowers {
		fd, err := syscall.Open(l, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			w.closeLowers()
			return &os.PathError{Op: "open", Path: l, Err: err}
		}
		w.lowers = append(w.lowers, fd)
	}
	return nil
}

func (w *changeWalker) closeLowers() {
	for _, fd := range w.lowers {
		syscall.Close(fd)
	}
	w.lowers = nil
}

// walk reports the entries of the upper directory dirfd, whose path is dir.
func (w *changeWalker) walk(dirfd int, dir string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	names, err := sys.ReadDirNames(dirfd, ".")
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, n := range names {
		p := path.Join(dir, n)
		st, err := lstatAt(dirfd, n)
		if err == syscall.ENOENT {
			continue
		}
		if err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		isDir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
		report, kind, err := w.classify(dirfd, n, p, &st)
		if err != nil {
			return err
		}
		if report {
			if kind != types.ChangeModify {
				if parent := path.Dir(p); parent != "/" && !w.changed[parent] {
					w.out = append(w.out, types.Change{Path: parent, Kind: types.ChangeModify})
					w.changed[parent] = true
				}
			}
			if isDir {
				w.changed[p] = true
			}
			w.out = append(w.out, types.Change{Path: p, Kind: kind})
		}
		if isDir {
			sub, err := syscall.Openat(dirfd, n, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
			if err == syscall.ENOENT || err == syscall.ENOTDIR {
				continue // removed or replaced by the running container meanwhile
			}
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			err = w.walk(sub, p)
			syscall.Close(sub)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// classify decides whether the upper entry n (path p, in dirfd) is a
// change, and which.
func (w *changeWalker) classify(dirfd int, n, p string, st *syscall.Stat_t) (bool, types.ChangeKind, error) {
	isDir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
	if isWhiteout(st) {
		return true, types.ChangeDelete, nil
	}
	if isDir {
		opaque, err := isOpaque(dirfd, n)
		if err != nil {
			return false, 0, fmt.Errorf("xattrs of %s: %w", p, err)
		}
		if opaque {
			return true, types.ChangeDelete, nil
		}
	}
	lst, found := w.lower(p)
	if !found {
		if initLayerPaths[p] && (isDir || (st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Size == 0) || (p == "/etc/mtab" && st.Mode&syscall.S_IFMT == syscall.S_IFLNK)) {
			// A mount point the runtime made, in dockerd's init layer.
			return false, 0, nil
		}
		return true, types.ChangeAdd, nil
	}
	if isDir && lst.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		if st.Size == lst.Size && st.Mode == lst.Mode && sameFsTime(st.Mtim, lst.Mtim) {
			return false, 0, nil
		}
		if st.Mode == lst.Mode && initLayerPaths[p] {
			only, err := onlyInitArtifacts(dirfd, n, p)
			if err != nil {
				return false, 0, err
			}
			if only {
				// Copied up only to hold the runtime's mount points.
				return false, 0, nil
			}
		}
	}
	return true, types.ChangeModify, nil
}

// lower finds p in the lower directories, top first, without following
// symbolic links. A whiteout hides the path in the layers below it.
func (w *changeWalker) lower(p string) (syscall.Stat_t, bool) {
	rel := p[1:]
	for _, l := range w.lowers {
		fd, st, err := openBeneath(l, rel)
		if err != nil {
			continue
		}
		syscall.Close(fd)
		if isWhiteout(&st) {
			return st, false
		}
		return st, true
	}
	return syscall.Stat_t{}, false
}

// onlyInitArtifacts reports whether everything below the upper directory
// n (path p) is a mount point the runtime created.
func onlyInitArtifacts(dirfd int, n, p string) (bool, error) {
	sub, err := syscall.Openat(dirfd, n, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", p, err)
	}
	defer syscall.Close(sub)
	names, err := sys.ReadDirNames(sub, ".")
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	for _, c := range names {
		cp := path.Join(p, c)
		if !initLayerPaths[cp] {
			return false, nil
		}
		st, err := lstatAt(sub, c)
		if err != nil {
			return false, fmt.Errorf("lstat %s: %w", cp, err)
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if ok, err := onlyInitArtifacts(sub, c, cp); err != nil || !ok {
				return false, err
			}
		case syscall.S_IFREG:
			if st.Size != 0 {
				return false, nil
			}
		case syscall.S_IFLNK:
		default:
			return false, nil
		}
	}
	return true, nil
}

// isWhiteout reports an overlay whiteout: a 0:0 character device.
func isWhiteout(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
}

// isOpaque reports whether directory n in dirfd carries overlay's opaque
// mark.
func isOpaque(dirfd int, n string) (bool, error) {
	fd, err := syscall.Openat(dirfd, n, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer syscall.Close(fd)
	var v [1]byte
	sz, err := sys.Fgetxattr(fd, "trusted.overlay.opaque", v[:])
	switch err {
	case nil:
		return sz == 1 && v[0] == 'y', nil
	case syscall.ENODATA, syscall.ENOTSUP, syscall.ERANGE:
		return false, nil
	}
	return false, err
}

// sameFsTime compares modification times as moby does: equal seconds, and
// equal nanoseconds unless one side has none.
func sameFsTime(a, b syscall.Timespec) bool {
	return a.Sec == b.Sec && (a.Nsec == b.Nsec || a.Nsec == 0 || b.Nsec == 0)
}

// openBeneath opens rel below dirfd as an O_PATH descriptor, following no
// symbolic link on the way, and stats it. The caller closes the fd.
func openBeneath(dirfd int, rel string) (int, syscall.Stat_t, error) {
	var st syscall.Stat_t
	fd, err := sys.Openat2(dirfd, rel, &sys.OpenHow{
		Flags:   uint64(sys.O_PATH | syscall.O_NOFOLLOW | syscall.O_CLOEXEC),
		Resolve: sys.RESOLVE_NO_SYMLINKS | sys.RESOLVE_BENEATH,
	})
	if err != nil {
		return -1, st, err
	}
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}
