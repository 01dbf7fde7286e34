package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"
)

// Applier extracts a tar archive one entry at a time, for callers that run
// the tar.Reader loop themselves because they need to see the stream
// between entries (the layer store records the raw tar bytes so it can
// reproduce the archive later). Apply is such a loop.
//
//	ap, err := archive.NewApplier(ctx, dir, opts)
//	...
//	defer ap.Close()
//	for {
//		hdr, err := tr.Next()
//		...
//		if err := ap.ApplyEntry(hdr, tr); err != nil { ... }
//	}
//	if err := ap.Finish(); err != nil { ... }
//
// An Applier is not safe for concurrent use.
type Applier struct {
	// BeforeRemove, if not nil, is called just before the applier removes
	// an existing file or directory to make room for an entry or to apply
	// a whiteout, with the path relative to the target directory with
	// every symbolic link resolved (the path Resolve gives), and whether it
	// is a directory (removed with everything below it). The entry fails
	// with the error BeforeRemove returns. A directory entry over an
	// existing directory merges with it and removes nothing.
	BeforeRemove func(path string, dir bool) error

	a      *applier
	failed bool
	closed bool
}

// NewApplier prepares extraction into dir, which must exist, with the same
// behaviour as Apply. Close releases it.
func NewApplier(ctx context.Context, dir string, opts ApplyOptions) (*Applier, error) {
	t, err := openTree(dir)
	if err != nil {
		return nil, err
	}
	empty, err := isEmptyDir(t.fd)
	if err != nil {
		t.close()
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: err}
	}
	root := os.Geteuid() == 0
	a := &applier{
		ctx:      ctx,
		t:        t,
		opts:     opts,
		chown:    root && !opts.NoLchown,
		devices:  root && !opts.SkipDevices,
		unpacked: make(map[string]struct{}),
		// Symbolic links can only be on a path if the target had content
		// already or the archive makes one; until then a cleaned name is
		// its own resolution and no system call is needed to find it.
		resolve: !empty,
	}
	return &Applier{a: a}, nil
}

// ApplyEntry extracts one entry. content is the entry's data, as a
// tar.Reader positioned on it yields it: exactly hdr.Size bytes for a
// regular file. ApplyEntry reads content only for a regular file it writes,
// and then to its end; it leaves it unread for every other entry (including
// entries it skips, like AUFS metadata), so a caller can tell content that
// landed in a file from bytes that did not.
//
// After ApplyEntry fails, the Applier must not be used for more entries;
// Finish then does nothing.
func (ap *Applier) ApplyEntry(hdr *tar.Header, content io.Reader) error {
	if ap.closed {
		return fmt.Errorf("apply %q: applier closed", hdr.Name)
	}
	if ap.failed {
		return fmt.Errorf("apply %q: an earlier entry failed", hdr.Name)
	}
	if err := ap.a.ctx.Err(); err != nil {
		ap.failed = true
		return err
	}
	ap.a.beforeRemove = ap.BeforeRemove
	if err := ap.a.entry(hdr, content); err != nil {
		ap.failed = true
		return err
	}
	return nil
}

// Finish sets the times of the directories extracted so far, which
// creating their content changed; Apply does this after the last entry.
// It does nothing after a failed entry.
func (ap *Applier) Finish() error {
	if ap.closed {
		return fmt.Errorf("finish: applier closed")
	}
	if ap.failed {
		return nil
	}
	return ap.a.setDirTimes()
}

// Close releases the target directory. It does not set directory times
// (see Finish). Closing twice is harmless.
func (ap *Applier) Close() error {
	if !ap.closed {
		ap.closed = true
		ap.a.t.close()
	}
	return nil
}

// Resolve returns the path, relative to the target directory, that an
// entry named name is (or would be) extracted to: the name cleaned as
// ApplyEntry cleans it, with every symbolic link in its parent directories
// resolved the way ApplyEntry resolves them (as if the target were "/").
// The last component is not followed. It fails when a parent is missing.
func (ap *Applier) Resolve(name string) (string, error) {
	clean, err := cleanName(name)
	if err != nil {
		return "", err
	}
	if !ap.a.resolve || clean == "." {
		return clean, nil
	}
	dir := path.Dir(clean)
	pfd, err := ap.a.t.openDir(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", name, err)
	}
	defer syscall.Close(pfd)
	return ap.a.resolvedPath(pfd, dir, path.Base(clean))
}

// resolvedPath is the symlink-free path, relative to the top, of base in
// the directory open as dirfd, whose name (as the archive spelled it) is
// dirName.
func (a *applier) resolvedPath(dirfd int, dirName, base string) (string, error) {
	if !a.resolve {
		return path.Join(dirName, base), nil
	}
	if a.top == "" {
		top, err := os.Readlink(procFdPath(a.t.fd, ""))
		if err != nil {
			return "", fmt.Errorf("resolve target directory: %w", err)
		}
		a.top = top
	}
	real, err := os.Readlink(procFdPath(dirfd, ""))
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", dirName, err)
	}
	rel, ok := relativeTo(a.top, real)
	if !ok {
		return "", fmt.Errorf("resolve %q: %q is not below %q", dirName, real, a.top)
	}
	return path.Join(rel, base), nil
}

// relativeTo returns p relative to the absolute directory top, "." for top
// itself, and false when p is not below top.
func relativeTo(top, p string) (string, bool) {
	if p == top {
		return ".", true
	}
	prefix := top
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	rel, ok := strings.CutPrefix(p, prefix)
	if !ok || rel == "" {
		return "", false
	}
	return rel, true
}

// notifyRemove tells beforeRemove that base in dirfd (named dirName) is
// about to be removed.
func (a *applier) notifyRemove(dirfd int, dirName, base string, dir bool) error {
	if a.beforeRemove == nil {
		return nil
	}
	p, err := a.resolvedPath(dirfd, dirName, base)
	if err != nil {
		return err
	}
	return a.beforeRemove(p, dir)
}

// removeAt is removeAll that first tells beforeRemove, if anything is
// there to remove.
func (a *applier) removeAt(dirfd int, dirName, base string) error {
	if a.beforeRemove != nil {
		st, err := lstatAt(dirfd, base)
		switch {
		case err == syscall.ENOENT:
			return nil
		case err != nil:
			return err
		}
		if err := a.notifyRemove(dirfd, dirName, base, st.Mode&syscall.S_IFMT == syscall.S_IFDIR); err != nil {
			return err
		}
	}
	return removeAll(dirfd, base)
}

// isEmptyDir reports whether the directory open (as O_PATH) as fd has no
// entries.
func isEmptyDir(fd int) (bool, error) {
	dfd, err := syscall.Openat(fd, ".", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(dfd), ".")
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(names) == 0, nil
}
