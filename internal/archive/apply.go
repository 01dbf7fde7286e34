package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// maxPathLen is PATH_MAX less the terminating NUL; longer names could not
// be created by any path-based tool and are refused up front.
const maxPathLen = 4095

// Apply extracts the uncompressed tar stream r into dir and returns the sum
// of the entries' sizes, as dockerd's ApplyLayer does. dir must exist.
//
// Entries replace what is at their path, except that a directory entry over
// an existing directory only updates its metadata. Directory times are set
// after all content is written. Names are cleaned; a name that leaves dir
// ("../x") is refused with an error, while an absolute one ("/etc/x") is
// taken relative to dir. Symbolic links already in dir, including ones the
// archive created, are followed only as if dir were the root, and a symlink
// whose relative target climbs above dir is refused, as dockerd does.
//
// Apply does not decompress (see DecompressStream). After the end of the
// archive it reads r to EOF, so that a digest computed over r sees the tar
// padding too. On error dir is left partly extracted.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (size int64, err error) {
	ap, err := NewApplier(ctx, dir, opts)
	if err != nil {
		return 0, err
	}
	defer ap.a.t.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return size, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return size, fmt.Errorf("read tar header: %w", err)
		}
		size += hdr.Size
		if err := ap.a.entry(hdr, tr); err != nil {
			return size, err
		}
	}
	if err := ap.a.setDirTimes(); err != nil {
		return size, err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return size, fmt.Errorf("read tar padding: %w", err)
	}
	return size, nil
}

type applier struct {
	ctx     context.Context
	t       *tree
	opts    ApplyOptions
	chown   bool
	devices bool
	// unpacked holds every path this archive created (and their parents),
	// which an opaque whiteout in NoWhiteouts mode must keep.
	unpacked map[string]struct{}
	dirs     []dirTimes
	// beforeRemove, when set, hears of every existing file or directory
	// the applier is about to remove (see Applier.BeforeRemove).
	beforeRemove func(path string, dir bool) error
	// resolve says whether paths may contain symbolic links, so that the
	// paths given to beforeRemove must be resolved through the kernel.
	resolve bool
	// top is the real path of the target, read once when first needed.
	top string
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

// breakout reports a hostile path. The message is dockerd's as seen inside
// its chroot, where the destination is "/".
func breakout(format string, args ...any) error {
	return errdefs.InvalidParameter(fmt.Errorf(format, args...))
}

// cleanName turns a tar name into a clean path relative to the target, "."
// for the target itself, refusing names that leave it.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", breakout("invalid tar entry name %q: contains NUL", name)
	}
	if len(name) > maxPathLen {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid tar entry name %.64q...: %w", name, syscall.ENAMETOOLONG))
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", breakout("%q is outside of %q", name, "/")
	}
	c = strings.TrimLeft(c, "/")
	if c == "" {
		c = "."
	}
	return c, nil
}

func (a *applier) entry(hdr *tar.Header, tr io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	literal := a.opts.WhiteoutFormat == LiteralWhiteouts
	// AUFS keeps its own metadata at the top ("/.wh..wh.plnk" and the
	// like); dockerd never extracts it into a layer.
	if !literal && strings.HasPrefix(name, WhiteoutMetaPrefix) && name != WhiteoutOpaqueDir {
		return nil
	}
	base := path.Base(name)
	if !literal && strings.HasPrefix(base, WhiteoutPrefix) {
		if err := a.whiteout(name, hdr); err != nil {
			return fmt.Errorf("apply whiteout %q: %w", hdr.Name, err)
		}
		return nil
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the target itself; dockerd leaves it alone
		}
		return breakout("cannot replace %q with a non-directory", "/")
	}
	pfd, err := a.t.mkdirAll(path.Dir(name))
	if err != nil {
		return fmt.Errorf("create parent of %q: %w", hdr.Name, err)
	}
	defer syscall.Close(pfd)
	if err := a.replace(pfd, base, name, hdr); err != nil {
		return err
	}
	created, err := a.create(pfd, base, name, hdr, tr)
	if err != nil {
		return fmt.Errorf("extract %q: %w", hdr.Name, err)
	}
	if created {
		for p := name; p != "."; p = path.Dir(p) {
			if _, ok := a.unpacked[p]; ok {
				break
			}
			a.unpacked[p] = struct{}{}
		}
	}
	return nil
}

// replace removes what is at base unless both it and the entry are
// directories, which merge.
func (a *applier) replace(pfd int, base, name string, hdr *tar.Header) error {
	st, err := lstatAt(pfd, base)
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lstat %q: %w", hdr.Name, err)
	}
	isDir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
	wantDir := hdr.Typeflag == tar.TypeDir
	if a.opts.NoOverwriteDirNonDir && isDir && !wantDir {
		return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite directory %q with non-directory %q", "/"+name, "/"))
	}
	if a.opts.NoOverwriteDirNonDir && !isDir && wantDir {
		return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite non-directory %q with directory %q", "/"+name, "/"))
	}
	if isDir && wantDir {
		return nil
	}
	if err := a.notifyRemove(pfd, path.Dir(name), base, isDir); err != nil {
		return err
	}
	if err := removeAll(pfd, base); err != nil {
		return fmt.Errorf("remove %q: %w", hdr.Name, err)
	}
	return nil
}

// create makes the entry and sets its metadata. It reports false for an
// entry it deliberately skipped (a device it may not create).
func (a *applier) create(pfd int, base, name string, hdr *tar.Header, tr io.Reader) (bool, error) {
	perm := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		err := syscall.Mkdirat(pfd, base, 0o700)
		if err != nil && err != syscall.EEXIST {
			return false, err
		}
		fd, err := syscall.Openat(pfd, base, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err != nil {
			return false, err
		}
		defer syscall.Close(fd)
		if err := a.setMetaFd(fd, hdr, perm); err != nil {
			return false, err
		}
		a.dirs = append(a.dirs, dirTimes{name: name, atime: accessTime(hdr), mtime: boundTime(hdr.ModTime)})
		return true, nil

	case tar.TypeReg, tar.TypeGNUSparse:
		if isSparse(hdr) && hdr.Size > maxSparseSize {
			return false, errdefs.InvalidParameter(fmt.Errorf("sparse file of %d bytes is too large", hdr.Size))
		}
		fd, err := syscall.Openat(pfd, base, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return false, err
		}
		f := os.NewFile(uintptr(fd), name)
		if err := a.writeFile(f, hdr, tr, perm); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()

	case tar.TypeSymlink:
		if climbsOut(path.Dir(name), hdr.Linkname) {
			return false, breakout("invalid symlink %q -> %q", "/"+name, hdr.Linkname)
		}
		if err := sys.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return false, err
		}
		a.resolve = true

	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "." {
			return false, breakout("invalid hardlink %q -> %q", "/"+name, hdr.Linkname)
		}
		ofd, err := a.t.openDir(path.Dir(target))
		if err != nil {
			return false, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		// No AT_SYMLINK_FOLLOW: a hard link to a symlink links the
		// symlink itself, as GNU tar does.
		err = sys.Linkat(ofd, path.Base(target), pfd, base, 0)
		syscall.Close(ofd)
		if err != nil {
			return false, fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
		}

	case tar.TypeChar, tar.TypeBlock:
		if !a.devices {
			return false, nil
		}
		mode := uint32(syscall.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			mode = syscall.S_IFBLK
		}
		if err := syscall.Mknodat(pfd, base, mode|0o600, int(sys.Makedev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return false, err
		}

	case tar.TypeFifo:
		if err := syscall.Mknodat(pfd, base, syscall.S_IFIFO|0o600, 0); err != nil {
			return false, err
		}

	default:
		return false, errdefs.InvalidParameter(fmt.Errorf("unhandled tar header type %d", hdr.Typeflag))
	}
	return true, a.setMetaAt(pfd, base, hdr, perm)
}

// writeFile streams the entry's data into f and sets its metadata through
// the descriptor. Runs of zero chunks become holes, so a sparse entry
// claiming a huge size costs no disk.
func (a *applier) writeFile(f *os.File, hdr *tar.Header, tr io.Reader, perm uint32) error {
	bufp := bufferPool.Get().(*[]byte)
	defer bufferPool.Put(bufp)
	buf := *bufp
	var off int64
	holes := false
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := tr.Read(buf)
		if n > 0 {
			if isZero(buf[:n]) {
				holes = true
			} else if _, werr := f.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read data: %w", err)
		}
	}
	if holes {
		if err := f.Truncate(off); err != nil {
			return err
		}
	}
	fd := int(f.Fd())
	if err := a.setMetaFd(fd, hdr, perm); err != nil {
		return err
	}
	return utimesAt(fd, "", accessTime(hdr), boundTime(hdr.ModTime))
}

// maxSparseSize bounds the expanded size of a sparse entry. archive/tar
// expands holes into zeros that must be read one by one, so a few bytes of
// sparse map could otherwise keep Apply busy for hours. Nothing that builds
// images writes sparse entries.
const maxSparseSize = 1 << 30

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

var zeroChunk [copyBufferSize]byte

func isZero(b []byte) bool { return bytes.Equal(b, zeroChunk[:len(b)]) }

func (a *applier) owner(hdr *tar.Header) (int, int) {
	if a.opts.ChownOpts != nil {
		return a.opts.ChownOpts.UID, a.opts.ChownOpts.GID
	}
	return hdr.Uid, hdr.Gid
}

// setMetaFd sets owner, xattrs and mode, in that order (chown clears setuid
// bits and file capabilities), on an open file or directory.
func (a *applier) setMetaFd(fd int, hdr *tar.Header, perm uint32) error {
	if a.chown {
		uid, gid := a.owner(hdr)
		if err := syscall.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("failed to Lchown %q for UID %d, GID %d: %w", hdr.Name, uid, gid, err)
		}
	}
	if err := a.setXattrs(hdr, func(k string, v []byte) error { return sys.Fsetxattr(fd, k, v) }); err != nil {
		return err
	}
	return syscall.Fchmod(fd, perm)
}

// setMetaAt is setMetaFd for entries that cannot be opened safely
// (symlinks, devices, fifos, hard links), addressed as base in pfd.
func (a *applier) setMetaAt(pfd int, base string, hdr *tar.Header, perm uint32) error {
	if a.chown {
		uid, gid := a.owner(hdr)
		if err := syscall.Fchownat(pfd, base, uid, gid, sys.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("failed to Lchown %q for UID %d, GID %d: %w", hdr.Name, uid, gid, err)
		}
	}
	if err := a.setXattrs(hdr, func(k string, v []byte) error { return lsetxattrAt(pfd, base, k, v) }); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := chmodAt(pfd, base, perm); err != nil {
			return err
		}
	}
	return utimesAt(pfd, base, accessTime(hdr), boundTime(hdr.ModTime))
}

// setXattrs applies the SCHILY.xattr records in name order. Like dockerd it
// ignores EPERM (an unprivileged namespace) and, with BestEffortXattrs,
// ENOTSUP. Overlay's own attributes are never taken from an archive: they
// would let a layer redirect lookups in the merged view.
func (a *applier) setXattrs(hdr *tar.Header, set func(string, []byte) error) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && !isOverlayXattr(name) {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	for _, name := range keys {
		err := set(name, []byte(hdr.PAXRecords[paxXattrPrefix+name]))
		if err == nil || err == syscall.EPERM || (a.opts.BestEffortXattrs && err == syscall.ENOTSUP) {
			continue
		}
		return fmt.Errorf("setxattr %q %s: %w", hdr.Name, name, err)
	}
	return nil
}

func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// whiteout applies a ".wh." entry named name.
func (a *applier) whiteout(name string, hdr *tar.Header) error {
	base := path.Base(name)
	parent := path.Dir(name)
	switch {
	case base == WhiteoutPrefix, base == WhiteoutPrefix+".", base == WhiteoutPrefix+"..":
		return errdefs.InvalidParameter(fmt.Errorf("invalid whiteout entry %q", hdr.Name))
	case base == WhiteoutOpaqueDir:
		pfd, err := a.t.mkdirAll(parent)
		if err != nil {
			return err
		}
		defer syscall.Close(pfd)
		if a.opts.WhiteoutFormat == OverlayWhiteouts {
			dfd, err := syscall.Openat(pfd, ".", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer syscall.Close(dfd)
			if err := sys.Fsetxattr(dfd, overlayOpaqueXattr, []byte{'y'}); err != nil {
				return fmt.Errorf("setxattr(%q, %s=y): %w", "/"+parent, overlayOpaqueXattr, err)
			}
			return nil
		}
		return a.prune(pfd, parent)
	case strings.HasPrefix(base, WhiteoutMetaPrefix):
		return errdefs.InvalidParameter(fmt.Errorf("invalid whiteout entry %q", hdr.Name))
	}
	target := strings.TrimPrefix(base, WhiteoutPrefix)
	if a.opts.WhiteoutFormat != OverlayWhiteouts {
		pfd, err := a.t.openDir(parent)
		if err == syscall.ENOENT {
			return nil // nothing there to delete
		}
		if err != nil {
			return err
		}
		defer syscall.Close(pfd)
		return a.removeAt(pfd, parent, target)
	}
	pfd, err := a.t.mkdirAll(parent)
	if err != nil {
		return err
	}
	defer syscall.Close(pfd)
	if err := a.removeAt(pfd, parent, target); err != nil {
		return err
	}
	if err := syscall.Mknodat(pfd, target, syscall.S_IFCHR, 0); err != nil {
		return fmt.Errorf("failed to mknod(%q, S_IFCHR, 0): %w", "/"+path.Join(parent, target), err)
	}
	if a.chown {
		if err := syscall.Fchownat(pfd, target, hdr.Uid, hdr.Gid, sys.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// prune removes everything below directory rel (open as dfd) that this
// archive did not create: an opaque whiteout applied as deletions.
func (a *applier) prune(dfd int, rel string) error {
	names, err := sys.ReadDirNames(dfd, ".")
	if err != nil {
		return err
	}
	for _, n := range names {
		child := path.Join(rel, n)
		if _, ok := a.unpacked[child]; !ok {
			if err := a.removeAt(dfd, rel, n); err != nil {
				return err
			}
			continue
		}
		sub, err := syscall.Openat(dfd, n, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err == syscall.ENOTDIR || err == syscall.ELOOP {
			continue
		}
		if err != nil {
			return err
		}
		err = a.prune(sub, child)
		syscall.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// setDirTimes sets directory times last, since creating their content
// changed them. A directory replaced or removed since is skipped.
func (a *applier) setDirTimes() error {
	for _, d := range a.dirs {
		pfd, err := a.t.openDir(path.Dir(d.name))
		if err != nil {
			if isErrno(err, syscall.ENOENT, syscall.ENOTDIR) {
				continue
			}
			return fmt.Errorf("set times of %q: %w", d.name, err)
		}
		err = utimesAt(pfd, path.Base(d.name), d.atime, d.mtime)
		syscall.Close(pfd)
		if err != nil && err != syscall.ENOENT {
			return fmt.Errorf("set times of %q: %w", d.name, err)
		}
	}
	return nil
}

// climbsOut reports whether a relative symlink target, taken from the
// directory parent, goes above the top. Absolute targets are resolved
// inside the tree anyway and are kept as they are.
func climbsOut(parent, target string) bool {
	if path.IsAbs(target) {
		return false
	}
	depth := 0
	if parent != "." {
		depth = strings.Count(parent, "/") + 1
	}
	for comp := range strings.SplitSeq(target, "/") {
		switch comp {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, 1<<63-1)
)

// boundTime keeps times in the range utimensat accepts, mapping others to
// the epoch as dockerd does.
func boundTime(t time.Time) time.Time {
	if t.Before(minTime) || t.After(maxTime) {
		return minTime
	}
	return t
}

// accessTime is the later of the entry's atime and mtime, as dockerd sets.
func accessTime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.After(hdr.ModTime) {
		return boundTime(hdr.AccessTime)
	}
	return boundTime(hdr.ModTime)
}
