package containerfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/archive"
	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// Extract unpacks content (a tar, plain or compressed) into the
// directory at the client's path p, which is followed in full inside the
// root and must be a directory, as dockerd's Untar does: ".wh." names are
// kept as ordinary files, and every name, link and hard-link target is
// resolved inside the container's root. A read-only root or mount
// refuses; CopyUIDGID gives the files the ids of the container's User.
func (fs *FS) Extract(ctx context.Context, p string, opts types.ExtractOptions, content io.Reader) error {
	t, dfd, err := fs.openDest(absContainerPath(p))
	if err != nil {
		return pathError(err, p, fs.name)
	}
	defer syscall.Close(dfd)
	var st syscall.Stat_t
	if err := syscall.Fstat(dfd, &st); err != nil {
		return pathError(err, p, fs.name)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return errdefs.InvalidParameter(errors.New("extraction point is not a directory"))
	}
	switch {
	case t.mount != nil && !t.mount.rw:
		return errdefs.InvalidParameter(errors.New("mounted volume is marked read-only"))
	case t.mount == nil && fs.readOnly:
		return errdefs.InvalidParameter(errors.New("container rootfs is marked read-only"))
	}
	destRel, err := relPath(t.canon, dfd)
	if err != nil {
		return errdefs.System(fmt.Errorf("extract to %s: %w", p, err))
	}
	aopts := archive.ApplyOptions{
		WhiteoutFormat:       archive.LiteralWhiteouts,
		NoOverwriteDirNonDir: opts.NoOverwriteDirNonDir,
		BestEffortXattrs:     true,
	}
	if opts.CopyUIDGID && fs.user != "" {
		uid, gid, err := containerUser(fs.fd, fs.user)
		if err != nil {
			return err
		}
		aopts.ChownOpts = &archive.ChownOpts{UID: uid, GID: gid}
	}
	rc, err := archive.DecompressStream(content)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	defer rc.Close()
	return extractInto(ctx, fdPath(t.fd), destRel, rc, aopts)
}

// openDest opens the directory that abs names, every symlink followed,
// in the tree it lands in: the root or a mount.
func (fs *FS) openDest(abs string) (*tree, int, error) {
	rel := cleanRel(abs)
	if m := fs.mountFor(rel); m != nil {
		return fs.openInMount(m, rel)
	}
	dfd, err := openIn(fs.fd, rel, 0)
	if err != nil {
		if m, in := fs.viaMount(rel); m != nil {
			return fs.openInMount(m, in)
		}
		return nil, -1, err
	}
	if len(fs.mounts) > 0 {
		r, err := relPath(fs.canon, dfd)
		if err != nil {
			syscall.Close(dfd)
			return nil, -1, err
		}
		if m := fs.mountFor(r); m != nil {
			syscall.Close(dfd)
			return fs.openInMount(m, r)
		}
	}
	return fs.rootTree(), dfd, nil
}

// openInMount is openDest for container path rel in mount m. A file
// mount gives its source, which the caller finds is no directory.
func (fs *FS) openInMount(m *mount, rel string) (*tree, int, error) {
	if m.file {
		fd, err := syscall.Open(m.source, sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		return &tree{fd: -1, mount: m}, fd, err
	}
	t, err := fs.mountTree(m)
	if err != nil {
		return nil, -1, err
	}
	dfd, err := openIn(t.fd, t.within(rel), 0)
	return t, dfd, err
}

// extractInto unpacks the tar r below destRel, a directory relative to
// root. Entry names are taken relative to the destination and checked as
// dockerd's Unpack checks them, with paths joined (and so ".." clamped at
// "/") inside the container: a name or a hard link whose target leaves the
// destination, or a relative symlink that leads out of it, is refused. The
// names are then made relative to root, so that the applier resolves
// symbolic links already in the tree as the container would, inside root.
func extractInto(ctx context.Context, root, destRel string, r io.Reader, opts archive.ApplyOptions) error {
	ap, err := archive.NewApplier(ctx, root, opts)
	if err != nil {
		return errdefs.System(err)
	}
	defer ap.Close()
	dest := "/" + destRel
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("read tar header: %w", err))
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid tar entry name %q: contains NUL", hdr.Name))
		}
		name := path.Join(dest, hdr.Name)
		if !underDest(name, dest) {
			return errdefs.InvalidParameter(fmt.Errorf("%q is outside of %q", hdr.Name, dest))
		}
		if name == dest {
			if hdr.Typeflag == tar.TypeDir {
				continue // the destination itself, which exists
			}
			return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite directory %q with non-directory %q", dest, hdr.Name))
		}
		switch hdr.Typeflag {
		case tar.TypeLink:
			target := path.Join(dest, hdr.Linkname)
			if !underDest(target, dest) || target == dest {
				return errdefs.InvalidParameter(fmt.Errorf("invalid hardlink %q -> %q", target, hdr.Linkname))
			}
			hdr.Linkname = target[1:]
		case tar.TypeSymlink:
			if !path.IsAbs(hdr.Linkname) {
				if target := path.Join(path.Dir(name), hdr.Linkname); !underDest(target, dest) {
					return errdefs.InvalidParameter(fmt.Errorf("invalid symlink %q -> %q", target, hdr.Linkname))
				}
			}
		}
		hdr.Name = name[1:]
		if err := ap.ApplyEntry(hdr, tr); err != nil {
			if errdefs.KindOf(err) == errdefs.ErrInvalidParameter {
				return errdefs.InvalidParameter(errors.New(withDest(err.Error(), dest)))
			}
			return errdefs.System(err)
		}
	}
	if err := ap.Finish(); err != nil {
		return errdefs.System(err)
	}
	// Drain the padding, so a client writing the whole body is not cut.
	io.Copy(io.Discard, r)
	return nil
}

// underDest reports whether the clean absolute path p is dest or below it.
func underDest(p, dest string) bool {
	return dest == "/" || p == dest || strings.HasPrefix(p, dest+"/")
}

// withDest puts the destination into the applier's overwrite errors,
// which name the top of its tree ("/") where dockerd names the directory
// the archive was extracted to.
func withDest(msg, dest string) string {
	for _, s := range []string{` with non-directory "/"`, ` with directory "/"`} {
		if strings.HasSuffix(msg, s) {
			return strings.TrimSuffix(msg, `"/"`) + strconv.Quote(dest)
		}
	}
	return msg
}
