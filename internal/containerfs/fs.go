package containerfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// FS resolves every container path inside the container's root
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

// FS is a container's root file system opened for file operations: the
// root's descriptor, and the mounts the container sees over it. It holds
// no lock and mounts nothing; the caller keeps the root mounted and
// unchanged (the container locked) until Close.
type FS struct {
	name     string // the container as the client named it, for errors
	readOnly bool   // Extract refuses to write to the root
	user     string // the container's User, for Extract's CopyUIDGID
	root     string // host path of the mounted root file system
	// canon is root as the kernel names it (symlinks in the data root
	// resolved), what relPath compares descriptors' names with.
	canon string
	fd    int // O_PATH descriptor of root
	// mounts are what the container sees mounted over its root, longest
	// destination first; trees holds the ones opened so far.
	mounts []mount
	trees  map[string]*tree
}

// Options describe the container whose root Open opens.
type Options struct {
	// Name is the container as the client named it; errors name it so.
	Name string
	// ReadOnly is the container's read-only root file system: Extract
	// refuses to write to it (mounts keep their own RW).
	ReadOnly bool
	// User is the container's User (name or uid, with an optional
	// ":group"), whose ids Extract gives the files with CopyUIDGID.
	User string
	// Mounts are the files and directories mounted in the container that
	// exist on the host: paths that fall in one are resolved in its
	// source. tmpfs mounts exist only inside the container and are left
	// out.
	Mounts []Mount
}

// Mount is a file or directory mounted in the container.
type Mount struct {
	Destination string // container path
	Source      string // host path
	RW          bool
	File        bool // a file, not a directory
}

// mount is a Mount with its destination made clean and relative.
type mount struct {
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
	mount  *mount
}

// Open opens the container root file system mounted at root. An error
// is the system's, unwrapped, for the caller to name the container in.
func Open(root string, opts Options) (*FS, error) {
	fs := &FS{name: opts.Name, readOnly: opts.ReadOnly, user: opts.User, root: root, fd: -1}
	var err error
	fs.fd, err = syscall.Open(fs.root, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if fs.canon, err = os.Readlink(fdPath(fs.fd)); err != nil {
		fs.Close()
		return nil, err
	}
	for _, m := range opts.Mounts {
		if dest := cleanRel(m.Destination); dest != "" {
			fs.mounts = append(fs.mounts, mount{dest: dest, source: m.Source, rw: m.RW, file: m.File})
		}
	}
	slices.SortStableFunc(fs.mounts, func(a, b mount) int { return len(b.dest) - len(a.dest) })
	return fs, nil
}

// Close closes the descriptors of fs; it unmounts nothing.
func (fs *FS) Close() {
	for _, t := range fs.trees {
		syscall.Close(t.fd)
	}
	fs.trees = nil
	if fs.fd >= 0 {
		syscall.Close(fs.fd)
		fs.fd = -1
	}
}

// mountFor returns the mount that container path rel (clean, relative)
// is in, or nil.
func (fs *FS) mountFor(rel string) *mount {
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
func (fs *FS) viaMount(rel string) (*mount, string) {
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
func (fs *FS) mountTree(m *mount) (*tree, error) {
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

func (fs *FS) rootTree() *tree { return &tree{fd: fs.fd, canon: fs.canon} }

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

// Path is a container path found in an opened container file
// system: the directory holding it and its last component.
type Path struct {
	abs   string // absContainerPath of the client's path
	tree  *tree  // where it was found: the root or a mount
	dirfd int    // O_PATH descriptor of the directory part, links followed
	base  string // last component, "" or "." for the directory itself
	st    syscall.Stat_t
}

// Close closes the descriptor r holds.
func (r *Path) Close() { syscall.Close(r.dirfd) }

// Resolve finds the client's path p in fs as dockerd's ResolvePath and
// StatPath do: the directory part with every symlink followed inside the
// root, the last component as it is.
func (fs *FS) Resolve(p string) (*Path, error) {
	abs := absContainerPath(p)
	r, err := fs.locate(abs)
	if err != nil {
		return nil, pathError(err, p, fs.name)
	}
	if r.st, err = lstatAt(r.dirfd, r.base); err != nil {
		r.Close()
		return nil, pathError(err, p, fs.name)
	}
	return r, nil
}

// locate opens the directory part of abs and names its last component,
// in the mount the path is in by name or, after symlinks in the root are
// followed, by where it leads.
func (fs *FS) locate(abs string) (*Path, error) {
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
	r := &Path{abs: abs, tree: fs.rootTree(), dirfd: dirfd, base: base}
	if len(fs.mounts) == 0 {
		return r, nil
	}
	drel, err := relPath(fs.canon, dirfd)
	if err != nil {
		r.Close()
		return nil, err
	}
	target := drel
	if base != "" && base != "." {
		target = path.Join(drel, base)
	}
	if m := fs.mountFor(target); m != nil {
		r.Close()
		return fs.locateInMount(m, abs, "/"+target+trailing(abs))
	}
	return r, nil
}

// locateInMount is locate for a path in mount m: in is the path as found
// in the root (abs, or where symlinks led), abs the client's for naming.
func (fs *FS) locateInMount(m *mount, abs, in string) (*Path, error) {
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
		return &Path{abs: abs, tree: t, dirfd: dirfd, base: filepath.Base(m.source)}, nil
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
		return &Path{abs: abs, tree: t, dirfd: dirfd, base: ""}, nil
	}
	dir, base := splitContainerPath("/" + rest + trailing(in))
	dirfd, err := openIn(t.fd, dir, syscall.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &Path{abs: abs, tree: t, dirfd: dirfd, base: base}, nil
}

// Stat builds the X-Docker-Container-Path-Stat of r: for a symbolic link,
// LinkTarget is the container path it leads to once fully resolved.
func (r *Path) Stat() *types.PathStat {
	st := &types.PathStat{
		Name:  path.Base(r.abs),
		Size:  r.st.Size,
		Mode:  sys.FileMode(r.st.Mode),
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
func (r *Path) linkTarget() string {
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
