package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/containerfs"
	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
)

// The file operations on a container (docker cp, diff; export and commit
// beside) happen in package containerfs; the engine picks the container,
// locks it, keeps its root file system mounted for the duration, names
// the mounts the container sees, and logs the events.

// openContainerFS opens the root file system of c, which must be locked
// (so that no start or exit changes the mount under the operation),
// mounting it if it is not mounted. name is the container as the client
// named it, for errors. done closes the file system and unmounts what
// openContainerFS mounted.
func (e *Engine) openContainerFS(c *container.Container, name string) (fs *containerfs.FS, done func(), err error) {
	dir := e.containerDir(c.ID)
	root := filepath.Join(dir, "rootfs")
	mounted, err := isMountPoint(root)
	if err != nil {
		return nil, nil, err
	}
	unmount := func() {}
	if !mounted {
		img, err := e.images.Get(c.ImageID)
		if err != nil {
			return nil, nil, errdefs.System(fmt.Errorf("image of container %s: %w", c.ID, err))
		}
		if len(img.ChainIDs) == 0 {
			return nil, nil, errdefs.System(fmt.Errorf("image %s of container %s has no layers", img.ID, c.ID))
		}
		if _, err := e.layers.MountRootfs(img.ChainIDs[len(img.ChainIDs)-1], dir); err != nil {
			return nil, nil, errdefs.System(err)
		}
		unmount = func() { layer.UnmountRootfs(dir) }
	}
	opts := containerfs.Options{
		Name:     name,
		ReadOnly: c.HostConfig != nil && c.HostConfig.ReadonlyRootfs,
		Mounts:   containerMounts(c),
	}
	if c.Config != nil {
		opts.User = c.Config.User
	}
	fs, err = containerfs.Open(root, opts)
	if err != nil {
		unmount()
		return nil, nil, errdefs.System(fmt.Errorf("open rootfs of %s: %w", c.ID, err))
	}
	return fs, func() { fs.Close(); unmount() }, nil
}

// containerMounts lists the mounts of c that docker cp reaches: the
// engine's network files and the volume and bind mounts whose source
// exists on the host. tmpfs mounts exist only inside the container.
func containerMounts(c *container.Container) []containerfs.Mount {
	var ms []containerfs.Mount
	rw := c.HostConfig == nil || !c.HostConfig.ReadonlyRootfs
	for _, f := range []struct{ src, dst string }{
		{c.ResolvConfPath, "/etc/resolv.conf"},
		{c.HostnamePath, "/etc/hostname"},
		{c.HostsPath, "/etc/hosts"},
	} {
		if f.src != "" {
			if _, err := os.Lstat(f.src); err == nil {
				ms = append(ms, containerfs.Mount{Destination: f.dst, Source: f.src, RW: rw, File: true})
			}
		}
	}
	for _, mp := range c.MountPoints {
		if mp.Source == "" {
			continue
		}
		if mp.Type == types.MountTypeImage && imageSubpath(c, mp.Destination) {
			// Its source is the whole image, of which the container
			// sees a part (resolved inside the image at its start).
			continue
		}
		st, err := os.Stat(mp.Source)
		if err != nil {
			continue
		}
		ms = append(ms, containerfs.Mount{Destination: mp.Destination, Source: mp.Source, RW: mp.RW, File: !st.IsDir()})
	}
	return ms
}

// imageSubpath reports whether c's image mount on dest binds a subpath of
// the image.
func imageSubpath(c *container.Container, dest string) bool {
	for _, m := range loadRuntimeData(c).Mounts {
		if m.Type == types.MountTypeImage && m.Destination == dest {
			return mountSubpath(m.Spec) != ""
		}
	}
	return false
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

// ContainerStatPath answers HEAD /containers/{id}/archive.
func (e *Engine) ContainerStatPath(ctx context.Context, name, p string) (*types.PathStat, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	fs, done, err := e.openContainerFS(c, name)
	if err != nil {
		return nil, err
	}
	defer done()
	r, err := fs.Resolve(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Stat(), nil
}

// ContainerArchivePath answers GET /containers/{id}/archive: a tar of the
// path (see containerfs.FS.Pack). The container stays locked, and its
// file system mounted, until the stream is closed or packed in full.
func (e *Engine) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *types.PathStat, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, nil, err
	}
	c.Lock()
	fs, done, err := e.openContainerFS(c, name)
	if err != nil {
		c.Unlock()
		return nil, nil, err
	}
	r, err := fs.Resolve(p)
	if err != nil {
		done()
		c.Unlock()
		return nil, nil, err
	}
	st := r.Stat()
	pr, pw := io.Pipe()
	go func() {
		err := fs.Pack(ctx, pw, r)
		r.Close()
		done()
		c.Unlock()
		pw.CloseWithError(err)
	}()
	e.logEvent(c, "archive-path", nil)
	return pr, st, nil
}

// ContainerExtractToDir answers PUT /containers/{id}/archive: the archive
// is unpacked into the directory at the path (see
// containerfs.FS.Extract).
func (e *Engine) ContainerExtractToDir(ctx context.Context, name, p string, opts types.ExtractOptions, content io.Reader) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	fs, done, err := e.openContainerFS(c, name)
	if err != nil {
		return err
	}
	defer done()
	if err := fs.Extract(ctx, p, opts, content); err != nil {
		return err
	}
	e.logEvent(c, "extract-to-dir", nil)
	return nil
}

// ContainerChanges answers GET /containers/{id}/changes: what the
// container changed relative to its image, read from its overlay upper
// directory. Nothing changed is nil, which dockerd sends as null.
func (e *Engine) ContainerChanges(ctx context.Context, name string) ([]types.Change, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	img, err := e.images.Get(c.ImageID)
	if err != nil {
		return nil, errdefs.System(fmt.Errorf("image of container %s: %w", c.ID, err))
	}
	var lowers []string
	if len(img.ChainIDs) > 0 {
		if lowers, err = e.layers.DiffDirs(img.ChainIDs[len(img.ChainIDs)-1]); err != nil {
			return nil, errdefs.System(err)
		}
	}
	changes, err := containerfs.Changes(ctx, filepath.Join(e.containerDir(c.ID), "upper"), lowers)
	if err != nil {
		return nil, errdefs.System(fmt.Errorf("changes of container %s: %w", c.ID, err))
	}
	return changes, nil
}
