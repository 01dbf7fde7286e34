package engine

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	apicontainer "skiffd/internal/api/container"
	"skiffd/internal/archive"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
	"skiffd/internal/sys"
)

// docker cp resolves every container path inside the container's root
// with chroot semantics: openat2 with RESOLVE_IN_ROOT on a descriptor of
// the root, so an absolute symlink (/var/run -> /run) means the
// container's /run and ".." stops at the root. Everything after the
// resolution is relative to the descriptors it gave, and the archive
// package reopens them through /proc/self/fd, which names the very
// directory the descriptor holds rather than a path that a container
// could swap for a symlink in between (CVE-2018-15664).
//
// Volumes, bind mounts and the files the engine manages (/etc/hostname,
// /etc/hosts, /etc/resolv.conf) are mounted in the container's own mount
// namespace and do not show in the host-side rootfs, so a path that falls
// in one of them, by name or through a symlink, is resolved in the
// mount's source instead, that source serving as the root.

// resolveFlags resolve a path as if the root were "/" and refuse the
// /proc magic links, which could lead anywhere.
const resolveFlags = sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS

// containerFS is a container's root file system opened for a file
// operation: mounted for the duration when the container is not running.
type containerFS struct {
	dir  string // the container's directory
	root string // host path of the mounted root file system
	// canon is root as the kernel names it (symlinks in the data root
	// resolved), what relPath compares descriptors' names with.
	canon   string
	fd      int  // O_PATH descriptor of root
	mounted bool // mounted by openContainerFS, unmounted by close
	// mounts are what the container sees mounted over its root, longest
	// destination first; trees holds the ones opened so far.
	mounts []cpMount
	trees  map[string]*tree
}

// cpMount is a file or directory mounted in the container.
type cpMount struct {
	dest   string // clean container path without the leading "/"
	source string // host path
	rw     bool
	file   bool
}

// tree is a directory that container paths are resolved in: the root
// file system or a mounted directory.
type tree struct {
	fd     int    // O_PATH descriptor of the top
	canon  string // the top as the kernel names it
	prefix string // container path of the top, "" for the root
	mount  *cpMount
}

// containerMounts lists the mounts of c that docker cp reaches: the
// engine's network files and the volume and bind mounts whose source
// exists on the host. tmpfs mounts exist only inside the container.
func containerMounts(c *container.Container) []cpMount {
	var ms []cpMount
	rw := c.HostConfig == nil || !c.HostConfig.ReadonlyRootfs
	for _, f := range []struct{ src, dst string }{
		{c.ResolvConfPath, "etc/resolv.conf"},
		{c.HostnamePath, "etc/hostname"},
		{c.HostsPath, "etc/hosts"},
	} {
		if f.src != "" {
			if _, err := os.Lstat(f.src); err == nil {
				ms = append(ms, cpMount{dest: f.dst, source: f.src, rw: rw, file: true})
			}
		}
	}
	for _, mp := range c.MountPoints {
		dest := strings.Trim(path.Clean("/"+mp.Destination), "/")
		if mp.Source == "" || dest == "" {
			continue
		}
		st, err := os.Stat(mp.Source)
		if err != nil {
			continue
		}
		ms = append(ms, cpMount{dest: dest, source: mp.Source, rw: mp.RW, file: !st.IsDir()})
	}
	slices.SortStableFunc(ms, func(a, b cpMount) int { return len(b.dest) - len(a.dest) })
	return ms
}

// mountFor returns the mount that container path rel (clean, relative)
// is in, or nil.
func (fs *containerFS) mountFor(rel string) *cpMount {
	for i := range fs.mounts {
		m := &fs.mounts[i]
		if rel == m.dest || strings.HasPrefix(rel, m.dest+"/") {
			return m
		}
	}
	return nil
}

// viaMount handles a path rel (clean, relative) that does not resolve in
// the root because a symlink on it leads into a mount, whose content the
// root does not show: it finds the longest prefix of rel that resolves,
// and if that lands in a mount, returns the mount and rel rewritten to
// pass through the mount point by name.
func (fs *containerFS) viaMount(rel string) (*cpMount, string) {
	if len(fs.mounts) == 0 || rel == "" {
		return nil, ""
	}
	parts := strings.Split(rel, "/")
	for i := len(parts) - 1; i >= 1; i-- {
		fd, err := openIn(fs.fd, strings.Join(parts[:i], "/"), 0)
		if err != nil {
			continue
		}
		r, err := relPath(fs.canon, fd)
		syscall.Close(fd)
		if err != nil {
			return nil, ""
		}
		if m := fs.mountFor(r); m != nil {
			return m, path.Join(r, strings.Join(parts[i:], "/"))
		}
		return nil, ""
	}
	return nil, ""
}

// joinAbs puts a directory (clean, relative) and a last component from
// splitContainerPath back together as an absContainerPath.
func joinAbs(dir, base string) string {
	switch base {
	case "":
		return "/" + dir + "/"
	case ".":
		return "/" + dir + "/."
	}
	return "/" + path.Join(dir, base)
}

// mountTree opens the directory mount m as a tree.
func (fs *containerFS) mountTree(m *cpMount) (*tree, error) {
	if t := fs.trees[m.dest]; t != nil {
		return t, nil
	}
	fd, err := syscall.Open(m.source, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open mount source of /%s: %w", m.dest, err)
	}
	canon, err := os.Readlink(fdPath(fd))
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	t := &tree{fd: fd, canon: canon, prefix: m.dest, mount: m}
	if fs.trees == nil {
		fs.trees = map[string]*tree{}
	}
	fs.trees[m.dest] = t
	return t, nil
}

func (fs *containerFS) rootTree() *tree { return &tree{fd: fs.fd, canon: fs.canon} }

// within is container path rel (clean, relative) relative to t's top.
func (t *tree) within(rel string) string {
	if t.prefix == "" {
		return rel
	}
	return strings.TrimPrefix(strings.TrimPrefix(rel, t.prefix), "/")
}

// trailing is what follows the last name of an absContainerPath and
// changes its meaning: "/." or "/".
func trailing(abs string) string {
	switch {
	case abs == "/":
		return ""
	case strings.HasSuffix(abs, "/."):
		return "/."
	case strings.HasSuffix(abs, "/"):
		return "/"
	}
	return ""
}

// cleanRel is a container path made clean and relative ("" for "/").
func cleanRel(p string) string { return strings.Trim(path.Clean("/"+p), "/") }

// openContainerFS opens the root file system of c, which must be locked
// (so that no start or exit changes the mount under the operation),
// mounting it if it is not mounted.
func (e *Engine) openContainerFS(c *container.Container) (*containerFS, error) {
	dir := e.containerDir(c.ID)
	fs := &containerFS{dir: dir, root: filepath.Join(dir, "rootfs"), fd: -1}
	mounted, err := isMountPoint(fs.root)
	if err != nil {
		return nil, err
	}
	if !mounted {
		img, err := e.images.Get(c.ImageID)
		if err != nil {
			return nil, errdefs.System(fmt.Errorf("image of container %s: %w", c.ID, err))
		}
		if len(img.ChainIDs) == 0 {
			return nil, errdefs.System(fmt.Errorf("image %s of container %s has no layers", img.ID, c.ID))
		}
		if _, err := e.layers.MountRootfs(img.ChainIDs[len(img.ChainIDs)-1], dir); err != nil {
			return nil, errdefs.System(err)
		}
		fs.mounted = true
	}
	fs.fd, err = syscall.Open(fs.root, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fs.close()
		return nil, errdefs.System(fmt.Errorf("open rootfs of %s: %w", c.ID, err))
	}
	if fs.canon, err = os.Readlink(fdPath(fs.fd)); err != nil {
		fs.close()
		return nil, errdefs.System(fmt.Errorf("open rootfs of %s: %w", c.ID, err))
	}
	fs.mounts = containerMounts(c)
	return fs, nil
}

func (fs *containerFS) close() {
	for _, t := range fs.trees {
		syscall.Close(t.fd)
	}
	fs.trees = nil
	if fs.fd >= 0 {
		syscall.Close(fs.fd)
		fs.fd = -1
	}
	if fs.mounted {
		fs.mounted = false
		layer.UnmountRootfs(fs.dir)
	}
}

// isMountPoint reports whether dir exists and is on another device than
// its parent, as the container's overlay is.
func isMountPoint(dir string) (bool, error) {
	var st, pst syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		if err == syscall.ENOENT {
			return false, nil
		}
		return false, errdefs.System(&os.PathError{Op: "lstat", Path: dir, Err: err})
	}
	if err := syscall.Lstat(filepath.Dir(dir), &pst); err != nil {
		return false, errdefs.System(&os.PathError{Op: "lstat", Path: filepath.Dir(dir), Err: err})
	}
	return st.Dev != pst.Dev, nil
}

// fdPath names the file open as fd; opening it reopens that very file.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openIn resolves the clean relative path rel ("" for the root) inside
// the tree open as rootfd, following every symbolic link in it with
// chroot semantics, and returns an O_PATH descriptor of what it names.
func openIn(rootfd int, rel string, flags int) (int, error) {
	if rel == "" || rel == "." {
		return syscall.Openat(rootfd, ".", sys.O_PATH|syscall.O_CLOEXEC|flags, 0)
	}
	return sys.Openat2(rootfd, rel, &sys.OpenHow{Flags: uint64(sys.O_PATH | syscall.O_CLOEXEC | flags), Resolve: resolveFlags})
}

// lstatAt is the lstat of base in the directory dirfd ("" or "." for
// dirfd itself), through an O_PATH|O_NOFOLLOW descriptor.
func lstatAt(dirfd int, base string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	if base == "" || base == "." {
		return st, syscall.Fstat(dirfd, &st)
	}
	fd, err := syscall.Openat(dirfd, base, sys.O_PATH|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return st, err
	}
	defer syscall.Close(fd)
	return st, syscall.Fstat(fd, &st)
}

// relPath is the path, relative to the tree root (host path root), of
// the file open as fd, "" for the root itself. The kernel's name of the
// descriptor serves only to name the file; nothing is opened by it.
func relPath(root string, fd int) (string, error) {
	p, err := os.Readlink(fdPath(fd))
	if err != nil {
		return "", err
	}
	if p == root {
		return "", nil
	}
	rel, ok := strings.CutPrefix(p, root+"/")
	if !ok {
		return "", fmt.Errorf("%s is outside of the container root", p)
	}
	return rel, nil
}

// absContainerPath makes the client's path absolute and clean, keeping a
// trailing "/" or "/." that changes its meaning, as dockerd's
// PreserveTrailingDotOrSeparator does.
func absContainerPath(p string) string {
	abs := path.Clean("/" + p)
	if path.Base(p) == "." && path.Base(abs) != "." {
		if !strings.HasSuffix(abs, "/") {
			abs += "/"
		}
		abs += "."
	}
	if !strings.HasSuffix(abs, "/") && strings.HasSuffix(p, "/") {
		abs += "/"
	}
	return abs
}

// splitContainerPath splits an absContainerPath into the directory part
// (relative, resolved in full) and the last component, which is not
// followed: "" or "." when the path names its directory itself.
func splitContainerPath(abs string) (dir, base string) {
	i := strings.LastIndexByte(abs, '/')
	return strings.Trim(path.Clean(abs[:i+1]), "/"), abs[i+1:]
}

// fileNotFound is dockerd's 404 for a container path that does not exist.
func fileNotFound(p, name string) error {
	return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, name))
}

// pathError gives a failed lookup of container path p dockerd's kind:
// missing is NotFound, anything else a system error.
func pathError(err error, p, name string) error {
	if errors.Is(err, syscall.ENOENT) {
		return fileNotFound(p, name)
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return errdefs.System(fmt.Errorf("lstat %s: not a directory", p))
	}
	return errdefs.System(fmt.Errorf("%s: %w", p, err))
}

// resolvedPath is a container path found in an opened container file
// system: the directory holding it and its last component.
type resolvedPath struct {
	abs   string // absContainerPath of the client's path
	tree  *tree  // where it was found: the root or a mount
	dirfd int    // O_PATH descriptor of the directory part, links followed
	base  string // last component, "" or "." for the directory itself
	st    syscall.Stat_t
}

func (r *resolvedPath) close() { syscall.Close(r.dirfd) }

// resolve finds the client's path p in fs as dockerd's ResolvePath and
// StatPath do: the directory part with every symlink followed inside the
// root, the last component as it is.
func (fs *containerFS) resolve(p, name string) (*resolvedPath, error) {
	abs := absContainerPath(p)
	r, err := fs.locate(abs)
	if err != nil {
		return nil, pathError(err, p, name)
	}
	if r.st, err = lstatAt(r.dirfd, r.base); err != nil {
		r.close()
		return nil, pathError(err, p, name)
	}
	return r, nil
}

// locate opens the directory part of abs and names its last component,
// in the mount the path is in by name or, after symlinks in the root are
// followed, by where it leads.
func (fs *containerFS) locate(abs string) (*resolvedPath, error) {
	if m := fs.mountFor(cleanRel(abs)); m != nil {
		return fs.locateInMount(m, abs, abs)
	}
	dir, base := splitContainerPath(abs)
	dirfd, err := openIn(fs.fd, dir, syscall.O_DIRECTORY)
	if err != nil {
		if m, in := fs.viaMount(dir); m != nil {
			return fs.locateInMount(m, abs, joinAbs(in, base))
		}
		return nil, err
	}
	r := &resolvedPath{abs: abs, tree: fs.rootTree(), dirfd: dirfd, base: base}
	if len(fs.mounts) == 0 {
		return r, nil
	}
	drel, err := relPath(fs.canon, dirfd)
	if err != nil {
		r.close()
		return nil, err
	}
	target := drel
	if base != "" && base != "." {
		target = path.Join(drel, base)
	}
	if m := fs.mountFor(target); m != nil {
		r.close()
		return fs.locateInMount(m, abs, "/"+target+trailing(abs))
	}
	return r, nil
}

// locateInMount is locate for a path in mount m: in is the path as found
// in the root (abs, or where symlinks led), abs the client's for naming.
func (fs *containerFS) locateInMount(m *cpMount, abs, in string) (*resolvedPath, error) {
	rel := cleanRel(in)
	if m.file {
		if rel != m.dest || trailing(in) != "" {
			return nil, syscall.ENOTDIR
		}
		dirfd, err := syscall.Open(filepath.Dir(m.source), sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		t := &tree{fd: -1, prefix: path.Dir(m.dest), mount: m}
		return &resolvedPath{abs: abs, tree: t, dirfd: dirfd, base: filepath.Base(m.source)}, nil
	}
	t, err := fs.mountTree(m)
	if err != nil {
		return nil, err
	}
	rest := t.within(rel)
	if rest == "" {
		dirfd, err := openIn(t.fd, "", syscall.O_DIRECTORY)
		if err != nil {
			return nil, err
		}
		return &resolvedPath{abs: abs, tree: t, dirfd: dirfd, base: ""}, nil
	}
	dir, base := splitContainerPath("/" + rest + trailing(in))
	dirfd, err := openIn(t.fd, dir, syscall.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &resolvedPath{abs: abs, tree: t, dirfd: dirfd, base: base}, nil
}

// stat builds the X-Docker-Container-Path-Stat of r: for a symbolic link,
// LinkTarget is the container path it leads to once fully resolved.
func (fs *containerFS) stat(r *resolvedPath) *apicontainer.PathStat {
	st := &apicontainer.PathStat{
		Name:  path.Base(r.abs),
		Size:  r.st.Size,
		Mode:  fileMode(r.st.Mode),
		Mtime: time.Unix(r.st.Mtim.Sec, r.st.Mtim.Nsec),
	}
	if r.st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		st.LinkTarget = r.linkTarget()
	}
	return st
}

// linkTarget resolves the symlink r in its tree. A dangling link, which
// the kernel cannot resolve, is resolved by its text alone, as dockerd's
// FollowSymlinkInScope would leave it.
func (r *resolvedPath) linkTarget() string {
	t := r.tree
	if t.fd >= 0 {
		if dir, err := relPath(t.canon, r.dirfd); err == nil {
			if fd, err := openIn(t.fd, path.Join(dir, r.base), 0); err == nil {
				defer syscall.Close(fd)
				if p, err := relPath(t.canon, fd); err == nil {
					return "/" + path.Join(t.prefix, p)
				}
			}
		}
	}
	target, err := sys.Readlinkat(r.dirfd, r.base)
	if err != nil {
		return ""
	}
	if path.IsAbs(target) {
		return path.Clean(target)
	}
	return path.Join(path.Dir(path.Clean(r.abs)), target)
}

// fileMode converts a stat mode to Go's os.FileMode bits, which the
// path-stat header carries.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFDIR:
		mode |= os.ModeDir
	case syscall.S_IFLNK:
		mode |= os.ModeSymlink
	case syscall.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case syscall.S_IFBLK:
		mode |= os.ModeDevice
	case syscall.S_IFIFO:
		mode |= os.ModeNamedPipe
	case syscall.S_IFSOCK:
		mode |= os.ModeSocket
	}
	if m&syscall.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// ContainerStatPath answers HEAD /containers/{id}/archive.
func (e *Engine) ContainerStatPath(ctx context.Context, name, p string) (*apicontainer.PathStat, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	fs, err := e.openContainerFS(c)
	if err != nil {
		return nil, err
	}
	defer fs.close()
	r, err := fs.resolve(p, name)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return fs.stat(r), nil
}

// ContainerArchivePath answers GET /containers/{id}/archive: a tar of the
// path whose top entry takes the path's own last name (a symlink followed
// by a trailing "/" keeps the name the client used), and "dir/." packs
// the directory's content under ".". The container stays locked, and its
// file system mounted, until the stream is closed or packed in full.
func (e *Engine) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *apicontainer.PathStat, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, nil, err
	}
	c.Lock()
	fs, err := e.openContainerFS(c)
	if err != nil {
		c.Unlock()
		return nil, nil, err
	}
	r, err := fs.resolve(p, name)
	if err != nil {
		fs.close()
		c.Unlock()
		return nil, nil, err
	}
	st := fs.stat(r)
	pr, pw := io.Pipe()
	go func() {
		err := packPath(ctx, pw, fs, r)
		r.close()
		fs.close()
		c.Unlock()
		pw.CloseWithError(err)
	}()
	e.logEvent(c, "archive-path", nil)
	return pr, st, nil
}

// packPath writes the tar of r to w. Mounts below a directory it packs
// show their content in place of what the root file system holds there,
// as the container sees it.
func packPath(ctx context.Context, w io.Writer, fs *containerFS, r *resolvedPath) error {
	rebase := path.Base(r.abs)
	fix := &tarFix{ctx: ctx, top: rebase}
	if rebase == "." {
		// The CLI renames entries by their "./" prefix; Pack cleans
		// names, so the prefix is put back on the way out.
		fix.prefix = "./"
	}
	if fs != nil && r.st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		fix.fs = fs
		fix.target, fix.mounts = fs.mountsBelow(r)
	}
	pack := func(w io.Writer) error {
		if r.base != "" && r.base != "." {
			return archive.Pack(ctx, w, fdPath(r.dirfd), archive.PackOptions{
				IncludeFiles: []string{r.base},
				RebaseNames:  map[string]string{r.base: rebase},
			})
		}
		return packDir(ctx, w, r, rebase)
	}
	if fix.prefix == "" && len(fix.mounts) == 0 {
		return pack(w)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(pack(pw))
	}()
	err := fix.copy(pr, w)
	pr.CloseWithError(errors.New("stopped reading"))
	return err
}

// mountsBelow returns the container path of the directory r (found in
// the root) and the mounts strictly below it.
func (fs *containerFS) mountsBelow(r *resolvedPath) (string, []*cpMount) {
	if r.tree.prefix != "" || r.tree.mount != nil || len(fs.mounts) == 0 {
		return "", nil
	}
	target, err := relPath(fs.canon, r.dirfd)
	if err != nil {
		return "", nil
	}
	if r.base != "" && r.base != "." {
		target = path.Join(target, r.base)
	}
	var below []*cpMount
	for i := range fs.mounts {
		m := &fs.mounts[i]
		if target == "" || strings.HasPrefix(m.dest, target+"/") {
			below = append(below, m)
		}
	}
	return target, below
}

// packDir writes the directory r.dirfd as name: one directory entry for
// itself, then Pack's entries for its content.
func packDir(ctx context.Context, w io.Writer, r *resolvedPath, name string) error {
	tw := tar.NewWriter(w)
	hdr := &tar.Header{
		Typeflag: tar.TypeDir,
		Name:     strings.TrimSuffix(name, "/") + "/",
		Mode:     int64(r.st.Mode & 0o7777),
		Uid:      int(r.st.Uid),
		Gid:      int(r.st.Gid),
		ModTime:  time.Unix(r.st.Mtim.Sec, 0),
		Format:   tar.FormatPAX,
	}
	if name == "/" {
		hdr.Name = "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	// Flush, not Close: Pack's stream continues this one and ends it.
	if err := tw.Flush(); err != nil {
		return err
	}
	return archive.Pack(ctx, w, fdPath(r.dirfd), archive.PackOptions{RebaseNames: map[string]string{".": name}})
}

// tarFix rewrites the tar of a packed container path: it puts prefix
// before every name, and puts the content of the mounts below the packed
// directory in place of what the root file system has there.
type tarFix struct {
	ctx    context.Context
	prefix string // "./" for a "dir/." copy
	top    string // archive name of the packed path ("etc", ".", "/")
	target string // container path of the packed path, relative
	mounts []*cpMount
	fs     *containerFS
	shown  []string // directory mounts already put in place
}

// containerPath maps an archive name to the container path it packs.
func (f *tarFix) containerPath(name string) string {
	n := strings.TrimSuffix(name, "/")
	var sub string
	switch f.top {
	case ".":
		sub = strings.TrimPrefix(strings.TrimPrefix(n, "."), "/")
	case "/":
		sub = strings.TrimPrefix(n, "/")
	default:
		if n != f.top {
			sub = strings.TrimPrefix(n, f.top+"/")
		}
	}
	return path.Join(f.target, sub)
}

// name is an archive name with the prefix.
func (f *tarFix) name(n string) string {
	if f.prefix == "" || strings.HasPrefix(n, f.prefix) {
		return n
	}
	if n == "." || n == "./" {
		return f.prefix
	}
	return f.prefix + n
}

func (f *tarFix) copy(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if err := f.entry(tw, hdr, tr); err != nil {
			return err
		}
	}
}

func (f *tarFix) entry(tw *tar.Writer, hdr *tar.Header, body io.Reader) error {
	var m *cpMount
	if len(f.mounts) > 0 {
		cpath := f.containerPath(hdr.Name)
		for _, shown := range f.shown {
			if strings.HasPrefix(cpath, shown+"/") {
				return nil // hidden by a mount put in place
			}
		}
		for _, mm := range f.mounts {
			if mm.dest == cpath {
				m = mm
				break
			}
		}
	}
	switch {
	case m != nil && m.file && hdr.Typeflag == tar.TypeReg:
		return f.mountedFile(tw, hdr, m)
	case m != nil && !m.file && hdr.Typeflag == tar.TypeDir:
		f.shown = append(f.shown, m.dest)
		return f.mountedDir(tw, hdr, m)
	}
	return f.write(tw, hdr, body)
}

// write copies one entry with its name fixed.
func (f *tarFix) write(tw *tar.Writer, hdr *tar.Header, body io.Reader) error {
	hdr.Name = f.name(hdr.Name)
	if hdr.Typeflag == tar.TypeLink {
		hdr.Linkname = f.name(hdr.Linkname)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(tw, body)
	return err
}

// mountedFile writes the source of file mount m in place of the entry.
func (f *tarFix) mountedFile(tw *tar.Writer, hdr *tar.Header, m *cpMount) error {
	fd, err := syscall.Open(m.source, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open mount source of /%s: %w", m.dest, err)
	}
	file := os.NewFile(uintptr(fd), m.source)
	defer file.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fmt.Errorf("mount source of /%s is not a regular file", m.dest)
	}
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     f.name(hdr.Name),
		Size:     st.Size,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Sec, 0),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(file, st.Size))
	if err == nil && n != st.Size {
		err = fmt.Errorf("mount source of /%s shrank while copied", m.dest)
	}
	return err
}

// mountedDir writes the entry of directory mount m with the mount's own
// metadata, then the mount's content below it.
func (f *tarFix) mountedDir(tw *tar.Writer, hdr *tar.Header, m *cpMount) error {
	t, err := f.fs.mountTree(m)
	if err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(t.fd, &st); err == nil {
		hdr.Mode = int64(st.Mode & 0o7777)
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.ModTime = time.Unix(st.Mtim.Sec, 0)
	}
	name := strings.TrimSuffix(hdr.Name, "/")
	if err := f.write(tw, hdr, eofReader{}); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Pack(f.ctx, pw, fdPath(t.fd), archive.PackOptions{RebaseNames: map[string]string{".": name}}))
	}()
	defer pr.CloseWithError(errors.New("stopped reading"))
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f.write(tw, h, tr); err != nil {
			return err
		}
	}
}

// eofReader is an empty body.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// ContainerExtractToDir answers PUT /containers/{id}/archive: the path,
// followed in full inside the root, must be a directory; the archive
// (plain or compressed) is unpacked there as dockerd's Untar does, with
// ".wh." names kept as ordinary files and every name, link and hard-link
// target resolved inside the container's root.
func (e *Engine) ContainerExtractToDir(ctx context.Context, name, p string, opts apicontainer.ExtractOptions, content io.Reader) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	fs, err := e.openContainerFS(c)
	if err != nil {
		return err
	}
	defer fs.close()
	readOnly := c.HostConfig != nil && c.HostConfig.ReadonlyRootfs
	user := ""
	if c.Config != nil {
		user = c.Config.User
	}
	if err := fs.extract(ctx, p, name, readOnly, user, opts, content); err != nil {
		return err
	}
	e.logEvent(c, "extract-to-dir", nil)
	return nil
}

// extract unpacks content into the directory at the client's path p,
// which is followed in full inside the root and must be a directory. name
// is the container as the client named it, for errors; readOnly refuses
// (the container's rootfs is read-only); user is the container's User,
// whose ids copyUIDGID gives the files.
func (fs *containerFS) extract(ctx context.Context, p, name string, readOnly bool, user string, opts apicontainer.ExtractOptions, content io.Reader) error {
	t, dfd, err := fs.openDest(absContainerPath(p))
	if err != nil {
		return pathError(err, p, name)
	}
	defer syscall.Close(dfd)
	var st syscall.Stat_t
	if err := syscall.Fstat(dfd, &st); err != nil {
		return pathError(err, p, name)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return errdefs.InvalidParameter(errors.New("extraction point is not a directory"))
	}
	switch {
	case t.mount != nil && !t.mount.rw:
		return errdefs.InvalidParameter(errors.New("mounted volume is marked read-only"))
	case t.mount == nil && readOnly:
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
	if opts.CopyUIDGID && user != "" {
		uid, gid, err := containerUser(fs.fd, user)
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
func (fs *containerFS) openDest(abs string) (*tree, int, error) {
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
func (fs *containerFS) openInMount(m *cpMount, rel string) (*tree, int, error) {
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

// containerUser resolves a container's User ("name", "uid", with an
// optional ":group") to numeric ids with the container's own /etc/passwd
// and /etc/group, read inside its root.
func containerUser(rootfd int, user string) (int, int, error) {
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(u); err == nil {
		uid, gid = n, 0
	}
	if pw, err := readInRoot(rootfd, "etc/passwd"); err == nil {
		for _, f := range colonRecords(pw, 7) {
			if f[0] == u || (uid >= 0 && f[2] == strconv.Itoa(uid)) {
				uid, _ = strconv.Atoi(f[2])
				gid, _ = strconv.Atoi(f[3])
				break
			}
		}
	}
	if uid < 0 {
		return 0, 0, errdefs.InvalidParameter(fmt.Errorf("unable to find user %s: no matching entries in passwd file", u))
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if n, err := strconv.Atoi(g); err == nil {
		return uid, n, nil
	}
	if gr, err := readInRoot(rootfd, "etc/group"); err == nil {
		for _, f := range colonRecords(gr, 4) {
			if f[0] == g {
				n, _ := strconv.Atoi(f[2])
				return uid, n, nil
			}
		}
	}
	return 0, 0, errdefs.InvalidParameter(fmt.Errorf("unable to find group %s: no matching entries in group file", g))
}

// readInRoot reads a small file at rel inside the root, at most 1 MiB.
func readInRoot(rootfd int, rel string) ([]byte, error) {
	fd, err := sys.Openat2(rootfd, rel, &sys.OpenHow{Flags: uint64(syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NONBLOCK), Resolve: resolveFlags})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// colonRecords splits passwd-style lines into their fields, keeping those
// with at least n fields.
func colonRecords(b []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n {
			out = append(out, f)
		}
	}
	return out
}
