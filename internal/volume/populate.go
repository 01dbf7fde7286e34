package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"syscall"

	"skiffd/internal/archive"
	"skiffd/internal/sys"
)

// PopulateFrom copies what a container's root file system holds at target
// into the volume, if the volume is still empty: dockerd's "copy image
// content into a new volume" on first mount. Ownership, modes, times,
// xattrs and links are kept, and the volume's top directory takes the owner
// and mode of the source directory. Nothing is copied when target does not
// exist or is not a directory, or when the volume already has content.
//
// target is resolved inside rootfs as if rootfs were "/" (openat2
// RESOLVE_IN_ROOT): symbolic links in the image cannot make the daemon copy
// host files. The copy itself never follows a symbolic link either. Call it
// after Mount for option-backed volumes, so the content lands on the
// mounted file system.
func (s *Store) PopulateFrom(ctx context.Context, name, rootfs, target string) error {
	s.mu.Lock()
	e, ok := s.vols[name]
	s.mu.Unlock()
	if !ok {
		return noSuchVolume(name)
	}
	e.populate.Lock()
	defer e.populate.Unlock()
	v := e.Volume
	dst, err := os.Open(v.Mountpoint)
	if err != nil {
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	defer dst.Close()
	if _, err := dst.Readdirnames(1); err == nil {
		return nil // not empty
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	src, err := openInRoot(rootfs, target)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("populate volume %s from %s: %w", name, target, err)
	}
	defer src.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("populate volume %s from %s: %w", name, target, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil
	}
	// Pack reads the source through the descriptor resolved above; the
	// magic link only names it, so a rename inside the container cannot
	// swap the directory under the copy.
	srcPath := "/proc/self/fd/" + strconv.Itoa(int(src.Fd()))
	pr, pw := io.Pipe()
	packErr := make(chan error, 1)
	go func() {
		err := archive.Pack(ctx, pw, srcPath, archive.PackOptions{})
		pw.CloseWithError(err)
		packErr <- err
	}()
	_, applyErr := archive.Apply(ctx, v.Mountpoint, pr, archive.ApplyOptions{WhiteoutFormat: archive.LiteralWhiteouts})
	pr.CloseWithError(errors.New("apply stopped"))
	if err := <-packErr; err != nil {
		return fmt.Errorf("populate volume %s from %s: read: %w", name, target, err)
	}
	if applyErr != nil {
		return fmt.Errorf("populate volume %s from %s: write: %w", name, target, applyErr)
	}
	if err := dst.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	if err := dst.Chmod(sys.FileMode(st.Mode)); err != nil {
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	return nil
}

// openInRoot opens the directory p inside root, resolving every symbolic
// link as if root were "/". Kernels without openat2 (before 5.6) fall back
// to os.Root, which refuses links that leave root instead of clamping them.
func openInRoot(root, p string) (*os.File, error) {
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		rel = "."
	}
	rfd, err := syscall.Open(root, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer syscall.Close(rfd)
	how := &sys.OpenHow{Flags: syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_CLOEXEC, Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS}
	fd, err := sys.Openat2(rfd, rel, how)
	switch err {
	case nil:
		return os.NewFile(uintptr(fd), path.Join(root, rel)), nil
	case syscall.ENOSYS:
		r, err := os.OpenRoot(root)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return r.Open(rel)
	default:
		return nil, &os.PathError{Op: "openat2", Path: path.Join(root, rel), Err: err}
	}
}
