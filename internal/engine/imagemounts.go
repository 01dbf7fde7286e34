package engine

// This file: image mounts (--mount type=image, API 1.48): an image's
// files bound read-only into a container, as dockerd 28 does it. Each is
// an overlay of the image's layers (without the init layer) mounted on
// the host under the container's directory, at create and at each start,
// and taken off with the container's root file system.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/layer"
	"skiffd/internal/volume"
)

// imageMountsDirName is, in a container's directory, where its image
// mounts are mounted on the host: one numbered directory each.
const imageMountsDirName = "image-mounts"

// resolveImageMounts finds the image of each image mount among mounts
// (dockerd's "No such image" when there is none), records its ID and
// mounts it under dir, the container's directory, which makes its
// Source, shown by inspect.
func (e *Engine) resolveImageMounts(dir string, mounts []volume.MountPoint) error {
	k := 0
	for i := range mounts {
		m := &mounts[i]
		if m.Type != types.MountTypeImage {
			continue
		}
		img, err := e.images.Get(m.Name)
		if err != nil {
			return err
		}
		m.Image = img.ID
		m.Source = filepath.Join(dir, imageMountsDirName, strconv.Itoa(k), "rootfs")
		k++
		if err := e.mountImage(*m); err != nil {
			return err
		}
	}
	return nil
}

// mountImage mounts image mount m at its Source, unless it is mounted.
func (e *Engine) mountImage(m volume.MountPoint) error {
	img, err := e.images.Get(m.Image)
	if err != nil {
		return fmt.Errorf("image mount on %s: %w", m.Destination, err)
	}
	if len(img.ChainIDs) == 0 {
		return fmt.Errorf("image mount on %s: image %s has no layers", m.Destination, img.ID)
	}
	got, err := e.layers.MountImage(img.ChainIDs[len(img.ChainIDs)-1], filepath.Dir(m.Source))
	if err != nil {
		return err
	}
	if got != m.Source {
		layer.UnmountRootfs(filepath.Dir(m.Source))
		return fmt.Errorf("image mount on %s: mounted at %s, not %s", m.Destination, got, m.Source)
	}
	return nil
}

// unmountImageMounts takes the image mounts of the container in dir off
// the host; the container's mount namespace keeps its own binds until it
// ends.
func unmountImageMounts(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, imageMountsDirName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, ent := range entries {
		errs = append(errs, layer.UnmountRootfs(filepath.Join(dir, imageMountsDirName, ent.Name())))
	}
	return errors.Join(errs...)
}

// mountsImage reports whether container v (a view) has an image mount
// of image id: such an image is held as the container's own image is.
func mountsImage(v *container.Container, id string) bool {
	if v.HostConfig == nil {
		return false
	}
	has := false
	for _, m := range v.HostConfig.Mounts {
		has = has || m.Type == types.MountTypeImage
	}
	if !has {
		return false
	}
	for _, m := range loadRuntimeData(v).Mounts {
		if m.Type == types.MountTypeImage && m.Image == id {
			return true
		}
	}
	return false
}
