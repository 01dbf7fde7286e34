package containerfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/archive"
)

// Pack writes the tar of r to w: its top entry takes the path's own last
// name (a symlink followed by a trailing "/" keeps the name the client
// used), and "dir/." packs the directory's content under ".". Mounts
// below a directory it packs show their content in place of what the root
// file system holds there, as the container sees it.
func (fs *FS) Pack(ctx context.Context, w io.Writer, r *Path) error {
	rebase := path.Base(r.abs)
	fix := &tarFix{ctx: ctx, top: rebase}
	if rebase == "." {
		// The CLI renames entries by their "./" prefix; Pack cleans
		// names, so the prefix is put back on the way out.
		fix.prefix = "./"
	}
	if r.st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
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

// PackRoot writes the whole root file system as one tar, as docker export
// does: what is mounted in the container (volumes, binds, the engine's
// network files) is not part of it.
func (fs *FS) PackRoot(ctx context.Context, w io.Writer) error {
	return archive.Pack(ctx, w, fdPath(fs.fd), archive.PackOptions{})
}

// mountsBelow returns the container path of the directory r (found in
// the root) and the mounts strictly below it.
func (fs *FS) mountsBelow(r *Path) (string, []*mount) {
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
	var below []*mount
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
func packDir(ctx context.Context, w io.Writer, r *Path, name string) error {
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
	mounts []*mount
	fs     *FS
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
	tw := tar.NewWriter(w)
	err := eachEntry(r, func(hdr *tar.Header, body io.Reader) error {
		return f.entry(tw, hdr, body)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// eachEntry calls fn for every entry of the tar r, in order, until the
// end of the archive or an error.
func eachEntry(r io.Reader, fn func(hdr *tar.Header, body io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(hdr, tr); err != nil {
			return err
		}
	}
}

func (f *tarFix) entry(tw *tar.Writer, hdr *tar.Header, body io.Reader) error {
	var m *mount
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
func (f *tarFix) mountedFile(tw *tar.Writer, hdr *tar.Header, m *mount) error {
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
func (f *tarFix) mountedDir(tw *tar.Writer, hdr *tar.Header, m *mount) error {
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
	return eachEntry(pr, func(h *tar.Header, body io.Reader) error {
		return f.write(tw, h, body)
	})
}

// eofReader is an empty body.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
