package containerfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"

	"skiffd/internal/archive"
	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// Diff is what commit makes a layer of: a container's overlay upper
// directory without the mount points the runtime created in it (what
// dockerd keeps in its init layer, see initLayerPaths). Nothing is
// followed or changed in the upper directory.
type Diff struct {
	upper string
	skip  map[string]bool // runtimeArtifacts
	empty bool
}

// NewDiff examines the upper directory upper over the image's layer
// directories lowers (top first). A missing upper directory is empty.
func NewDiff(upper string, lowers []string) (*Diff, error) {
	names, err := upperNames(upper)
	if err != nil {
		return nil, errdefs.System(err)
	}
	skip, err := runtimeArtifacts(upper, lowers)
	if err != nil {
		return nil, errdefs.System(fmt.Errorf("commit: %w", err))
	}
	empty := !slices.ContainsFunc(names, func(n string) bool { return !skip[n] })
	return &Diff{upper: upper, skip: skip, empty: empty}, nil
}

// Empty reports a diff with nothing but the runtime's mount points, of
// which dockerd makes no layer.
func (d *Diff) Empty() bool { return d.empty }

// Pack writes the diff as a layer tar, whiteouts in the archive form.
func (d *Diff) Pack(ctx context.Context, w io.Writer) error {
	return packUpper(ctx, w, d.upper, d.skip)
}

// packUpper writes the upper directory as a layer tar (whiteouts in the
// archive form) without the entries in skip.
func packUpper(ctx context.Context, w io.Writer, upper string, skip map[string]bool) error {
	opts := archive.PackOptions{WhiteoutFormat: archive.OverlayWhiteouts}
	if len(skip) == 0 {
		return archive.Pack(ctx, w, upper, opts)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Pack(ctx, pw, upper, opts))
	}()
	defer pr.CloseWithError(io.ErrClosedPipe)
	tw := tar.NewWriter(w)
	err := eachEntry(pr, func(hdr *tar.Header, body io.Reader) error {
		if skip[strings.TrimSuffix(hdr.Name, "/")] {
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// runtimeArtifacts finds, in the upper directory, the entries that only
// hold the runtime's mount points (see initLayerPaths): an empty file (or
// the /etc/mtab symlink) at such a path that no lower layer has, and a
// directory at such a path, new or with the lower one's mode, that holds
// nothing else. The keys are relative paths, as Pack names entries
// without the trailing "/". Nothing is followed: a symlink on the way
// means no artifact.
func runtimeArtifacts(upper string, lowers []string) (map[string]bool, error) {
	ufd, err := syscall.Open(upper, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", upper, err)
	}
	defer syscall.Close(ufd)
	w := &changeWalker{}
	if err := w.openLowers(lowers); err != nil {
		return nil, err
	}
	defer w.closeLowers()
	paths := slices.Collect(maps.Keys(initLayerPaths))
	// Deepest first, so a directory is judged after what it holds.
	slices.SortFunc(paths, func(a, b string) int {
		if d := strings.Count(b, "/") - strings.Count(a, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	skip := map[string]bool{}
	for _, p := range paths {
		rel := p[1:]
		fd, st, err := openBeneath(ufd, rel)
		if err != nil {
			continue
		}
		lst, inLower := w.lower(p)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			skip[rel] = !inLower && st.Size == 0
		case syscall.S_IFLNK:
			skip[rel] = !inLower && p == "/etc/mtab"
		case syscall.S_IFDIR:
			if inLower && lst.Mode != st.Mode {
				break
			}
			if opaque, err := isOpaque(fd, "."); err != nil || opaque {
				break
			}
			children, err := sys.ReadDirNames(fd, ".")
			if err != nil {
				break
			}
			skip[rel] = !slices.ContainsFunc(children, func(c string) bool { return !skip[rel+"/"+c] })
		}
		syscall.Close(fd)
	}
	for k, v := range skip {
		if !v {
			delete(skip, k)
		}
	}
	return skip, nil
}

// upperNames lists the top of the upper directory; a missing one is empty.
func upperNames(upper string) ([]string, error) {
	fd, err := syscall.Open(upper, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", upper, err)
	}
	defer syscall.Close(fd)
	names, err := sys.ReadDirNames(fd, ".")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", upper, err)
	}
	return names, nil
}
