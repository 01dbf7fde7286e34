package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"syscall"
	"time"

	"skiffd/internal/sys"
)

// Pack writes the content of dir to w as a tar stream: names relative to
// dir, directories with a trailing "/", ownership, modes, whole-second
// mtimes, symlinks, devices, fifos and xattrs (as SCHILY.xattr PAX
// records). A file with several links is written once, and later names of
// the same inode become hard links to the first. Sockets are left out, as
// dockerd does. Entries are written in lexical order of the walk, so a tree
// packs to the same bytes while nothing in it changes.
//
// Pack reads through descriptors resolved inside dir and never follows a
// symbolic link it finds, so a running container cannot redirect it. An
// entry that vanishes during the walk is skipped; any other error stops it.
// Pack does not close w.
func Pack(ctx context.Context, w io.Writer, dir string, opts PackOptions) error {
	t, err := openTree(dir)
	if err != nil {
		return err
	}
	defer t.close()
	p := &packer{
		ctx:   ctx,
		tw:    tar.NewWriter(w),
		opts:  opts,
		links: make(map[devIno]string),
		seen:  make(map[string]bool),
	}
	includes := opts.IncludeFiles
	if len(includes) == 0 {
		includes = []string{"."}
	}
	for _, inc := range includes {
		if err := p.include(t, inc); err != nil {
			return err
		}
	}
	return p.tw.Close()
}

type devIno struct{ dev, ino uint64 }

type packer struct {
	ctx   context.Context
	tw    *tar.Writer
	opts  PackOptions
	links map[devIno]string // first archive name of each multiply-linked inode
	seen  map[string]bool   // archive names written, as includes may overlap
}

func (p *packer) include(t *tree, inc string) error {
	rel, err := cleanName(inc)
	if err != nil {
		return err
	}
	rebase, renamed := p.opts.RebaseNames[inc]
	if rel != "." {
		name := rel
		if renamed {
			name = rebase
		}
		pfd, err := t.openDir(path.Dir(rel))
		if err == syscall.ENOENT {
			return nil // like a missing include itself: nothing to pack
		}
		if err != nil {
			return fmt.Errorf("pack %q: %w", inc, err)
		}
		defer syscall.Close(pfd)
		return p.add(pfd, path.Base(rel), name)
	}
	// The whole tree: its children, without an entry for the top.
	fd, err := t.openDir(".")
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	names, err := sys.ReadDirNames(fd, ".")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	for _, n := range names {
		name := n
		if renamed {
			name = path.Join(rebase, n)
		}
		if err := p.add(fd, n, name); err != nil {
			return err
		}
	}
	return nil
}

// add writes base (in directory pfd) as name, and for a directory all it
// contains.
func (p *packer) add(pfd int, base, name string) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	st, err := lstatAt(pfd, base)
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pack %q: lstat: %w", name, err)
	}
	if p.seen[name] {
		return nil
	}
	p.seen[name] = true

	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	overlay := p.opts.WhiteoutFormat == OverlayWhiteouts
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case syscall.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case syscall.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = sys.Readlinkat(pfd, base); err != nil {
			return fmt.Errorf("pack %q: readlink: %w", name, err)
		}
	case syscall.S_IFCHR:
		if overlay && st.Rdev == 0 {
			// An overlay whiteout. Since Linux 5.8 overlayfs hard-links
			// whiteouts to one shared inode, so this must come before
			// hard-link detection.
			hdr.Name = path.Join(path.Dir(name), WhiteoutPrefix+path.Base(name))
			hdr.Typeflag = tar.TypeReg
			hdr.Mode = 0o600
			return p.writeHeader(hdr)
		}
		hdr.Typeflag = tar.TypeChar
	case syscall.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case syscall.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets cannot be archived
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor = int64(sys.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(sys.Minor(uint64(st.Rdev)))
	}
	if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
		key := devIno{uint64(st.Dev), st.Ino}
		if first, ok := p.links[key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
		} else {
			p.links[key] = hdr.Name
		}
	}

	attrs, err := listXattrsAt(pfd, base)
	if err != nil {
		return fmt.Errorf("pack %q: xattrs: %w", name, err)
	}
	opaque := false
	for k, v := range attrs {
		switch {
		case k == overlayOpaqueXattr:
			opaque = overlay && hdr.Typeflag == tar.TypeDir && string(v) == "y"
			continue
		case isOverlayXattr(k), k == "security.selinux":
			// Overlay bookkeeping and host labels do not travel.
			continue
		case k == "security.capability":
			v = capabilityV2(v)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattrPrefix+k] = string(v)
	}

	if err := p.writeHeader(hdr); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if hdr.Size > 0 {
			return p.copyFile(pfd, base, hdr, &st)
		}
	case tar.TypeDir:
		if opaque {
			opq := &tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(name, WhiteoutOpaqueDir),
				Mode:     hdr.Mode & 0o777,
				Uid:      hdr.Uid,
				Gid:      hdr.Gid,
				ModTime:  hdr.ModTime,
				Format:   tar.FormatPAX,
			}
			if err := p.writeHeader(opq); err != nil {
				return err
			}
		}
		return p.addChildren(pfd, base, name)
	}
	return nil
}

func (p *packer) addChildren(pfd int, base, name string) error {
	names, err := sys.ReadDirNames(pfd, base)
	if err != nil {
		return fmt.Errorf("pack %q: %w", name, err)
	}
	sub, err := syscall.Openat(pfd, base, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pack %q: %w", name, err)
	}
	defer syscall.Close(sub)
	for _, n := range names {
		if err := p.add(sub, n, path.Join(name, n)); err != nil {
			return err
		}
	}
	return nil
}

func (p *packer) writeHeader(hdr *tar.Header) error {
	if err := p.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("pack %q: %w", hdr.Name, err)
	}
	return nil
}

// copyFile streams exactly hdr.Size bytes of the regular file base. The
// file is opened without following links and must still be the inode that
// was stat'ed; a file that shrank meanwhile is an error, since the header
// already promised its size.
func (p *packer) copyFile(pfd int, base string, hdr *tar.Header, st *syscall.Stat_t) error {
	fd, err := syscall.Openat(pfd, base, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pack %q: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	var now syscall.Stat_t
	if err := syscall.Fstat(fd, &now); err != nil {
		return fmt.Errorf("pack %q: %w", hdr.Name, err)
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		return fmt.Errorf("pack %q: file was replaced while packing", hdr.Name)
	}
	bufp := bufferPool.Get().(*[]byte)
	defer bufferPool.Put(bufp)
	buf := *bufp
	remaining := hdr.Size
	for remaining > 0 {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		chunk := buf
		if int64(len(chunk)) > remaining {
			chunk = chunk[:remaining]
		}
		n, err := f.Read(chunk)
		if n > 0 {
			if _, werr := p.tw.Write(chunk[:n]); werr != nil {
				return fmt.Errorf("pack %q: %w", hdr.Name, werr)
			}
			remaining -= int64(n)
		}
		if err == io.EOF {
			return fmt.Errorf("pack %q: file shrank by %d bytes while packing", hdr.Name, remaining)
		}
		if err != nil {
			return fmt.Errorf("pack %q: %w", hdr.Name, err)
		}
	}
	return nil
}

// capabilityV2 rewrites a VFS_CAP_REVISION_3 file capability (which names
// the root uid of a user namespace) as revision 2, as dockerd does: that
// uid means nothing where the archive is unpacked.
func capabilityV2(v []byte) []byte {
	const (
		v2Size        = 20
		revisionIndex = 3
	)
	if len(v) > revisionIndex && v[revisionIndex] == 3 && len(v) >= v2Size {
		out := append([]byte(nil), v[:v2Size]...)
		out[revisionIndex] = 2
		return out
	}
	return v
}
