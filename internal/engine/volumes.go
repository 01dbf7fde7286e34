package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/volume"
)

// openVolumes opens the volume store under <data-root>/volumes; New calls
// it once, after the container store, which answers who uses a volume.
// Who uses a volume is answered from the container records (their
// MountPoints), so references survive restarts without a file of their own.
func (e *Engine) openVolumes() error {
	s, err := volume.Open(filepath.Join(e.opts.DataRoot, "volumes"), volume.Options{InUse: e.volumeUsers, Logger: e.logger})
	if err != nil {
		return fmt.Errorf("open volume store: %w", err)
	}
	e.volumes = s
	return nil
}

// volumeUsers returns the IDs of the containers whose mounts name the
// volume, from the containers' persisted records. Containers being created
// hold their volumes with Store.Acquire until their record is saved.
func (e *Engine) volumeUsers(name string) []string {
	var ids []string
	for _, c := range e.containers.Snapshots() {
		for _, m := range c.MountPoints {
			if m.Type == types.MountTypeVolume && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	return ids
}

func (e *Engine) logVolumeEvent(action, name string, attrs map[string]string) {
	e.events.Log(action, types.VolumeEventType, types.EventActor{ID: name, Attributes: attrs})
}

// Volumes answers GET /volumes.
func (e *Engine) Volumes(ctx context.Context, ef filters.Args) ([]*types.Volume, []string, error) {
	s := e.volumes
	list, err := s.List(ef)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*types.Volume, 0, len(list))
	for _, v := range list {
		out = append(out, v.API())
	}
	return out, nil, nil
}

// VolumeCreate answers POST /volumes/create. Creating a name that exists
// returns that volume unchanged and logs no event, as dockerd does.
func (e *Engine) VolumeCreate(ctx context.Context, req types.VolumeCreateOptions) (*types.Volume, error) {
	s := e.volumes
	v, created, err := s.Create(req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return nil, err
	}
	if created {
		e.logVolumeEvent(types.EventActionCreate, v.Name, map[string]string{"driver": v.Driver})
	}
	return v.API(), nil
}

// VolumeInspect answers GET /volumes/{name}.
func (e *Engine) VolumeInspect(ctx context.Context, name string) (*types.Volume, error) {
	s := e.volumes
	v, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	return v.API(), nil
}

// VolumeRemove answers DELETE /volumes/{name}.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	s := e.volumes
	v, getErr := s.Get(name)
	if err := s.Remove(name, force); err != nil {
		return err
	}
	if getErr == nil {
		e.logVolumeEvent(types.EventActionDestroy, name, map[string]string{"driver": v.Driver})
	}
	return nil
}

// VolumesPrune answers POST /volumes/prune: a destroy event per volume and
// one prune event with the space reclaimed, as dockerd logs them.
func (e *Engine) VolumesPrune(ctx context.Context, ef filters.Args) (*types.VolumesPruneReport, error) {
	s := e.volumes
	rep, err := s.Prune(ctx, ef)
	if err != nil {
		return nil, err
	}
	for _, name := range rep.Deleted {
		e.logVolumeEvent(types.EventActionDestroy, name, map[string]string{"driver": volume.DefaultDriver})
	}
	e.logVolumeEvent(types.EventActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.Reclaimed, 10)})
	return &types.VolumesPruneReport{VolumesDeleted: rep.Deleted, SpaceReclaimed: rep.Reclaimed}, nil
}

// VolumesDiskUsage lists the local volumes without driver options, with
// their size and reference count, for GET /system/df (DiskUsage.Volumes).
// Option-backed volumes are left out, as dockerd leaves them out: their
// content is not on the local disk. Size is -1 when it cannot be measured.
func (e *Engine) VolumesDiskUsage(ctx context.Context) ([]*types.Volume, error) {
	s := e.volumes
	list, err := s.List(filters.NewArgs())
	if err != nil {
		return nil, err
	}
	out := make([]*types.Volume, 0, len(list))
	for _, v := range list {
		if len(v.Options) > 0 {
			continue
		}
		size, err := volume.DirSize(ctx, v.Mountpoint)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e.logger.Warn("could not measure volume", "volume", v.Name, "error", err)
			size = -1
		}
		api := v.API()
		api.UsageData = &types.VolumeUsageData{Size: size, RefCount: int64(len(s.Users(v.Name)))}
		out = append(out, api)
	}
	return out, nil
}

// createMountVolumes is the create-time half of a container's volumes, for
// the container code: for every volume mount point it creates the volume
// (a random name for anonymous ones; labels and driver options from
// --mount's VolumeOptions) or finds the existing one, holds it for
// containerID so no prune or removal races the record being saved, and
// fills in Name, Driver and Source. On error, the volumes held so far are
// released again (volumes it created stay, as in dockerd). Once the record
// with these MountPoints is saved the hold is redundant but harmless;
// releaseMountVolumes drops it.
func (e *Engine) createMountVolumes(ctx context.Context, containerID string, mps []volume.MountPoint) (err error) {
	s := e.volumes
	var held []string
	defer func() {
		if err != nil {
			for _, name := range held {
				s.Release(name, containerID)
			}
		}
	}()
	for i := range mps {
		mp := &mps[i]
		if mp.Type != types.MountTypeVolume {
			continue
		}
		var labels, opts map[string]string
		if vo := mp.Spec.VolumeOptions; vo != nil {
			labels = vo.Labels
			if vo.DriverConfig != nil {
				opts = vo.DriverConfig.Options
			}
		}
		v, created, err := s.Create(mp.Name, mp.Driver, opts, labels)
		if err != nil {
			return err
		}
		if created {
			e.logVolumeEvent(types.EventActionCreate, v.Name, map[string]string{"driver": v.Driver})
		}
		if err := s.Acquire(v.Name, containerID); err != nil {
			return err
		}
		held = append(held, v.Name)
		mp.Name, mp.Driver, mp.Source = v.Name, v.Driver, v.Mountpoint
	}
	return nil
}

// mountVolumes is the start-time half: it mounts each volume of a starting
// container (option-backed volumes get their tmpfs/bind/device mounted),
// fills still-empty volumes from the container's rootfs at the mount's
// destination unless nocopy was asked, and logs dockerd's volume "mount"
// events. The returned function undoes the mounts (call it when the
// container stops, or on a later start failure). rootfs is the container's
// root file system as the daemon sees it, before the volumes are bound in.
func (e *Engine) mountVolumes(ctx context.Context, containerID, rootfs string, mps []volume.MountPoint) (unmount func(), err error) {
	s := e.volumes
	var mounted []string
	unmount = func() {
		for _, name := range mounted {
			if err := s.Unmount(name, containerID); err != nil {
				e.logger.Warn("unmounting volume", "volume", name, "container", containerID, "error", err)
			}
			e.logVolumeEvent(types.EventActionUnmount, name, map[string]string{"driver": volume.DefaultDriver, "container": containerID})
		}
		mounted = nil
	}
	for _, mp := range mps {
		if mp.Type != types.MountTypeVolume {
			continue
		}
		if _, err := s.Mount(mp.Name, containerID); err != nil {
			unmount()
			return nil, err
		}
		mounted = append(mounted, mp.Name)
		if mp.CopyData {
			if err := s.PopulateFrom(ctx, mp.Name, rootfs, mp.Destination); err != nil {
				unmount()
				return nil, err
			}
		}
		e.logVolumeEvent(types.EventActionMount, mp.Name, map[string]string{
			"driver":      mp.Driver,
			"container":   containerID,
			"destination": mp.Destination,
			"read/write":  strconv.FormatBool(mp.RW),
			"propagation": mp.Propagation,
		})
	}
	return unmount, nil
}

// releaseMountVolumes is the removal half: it drops containerID's holds and,
// with removeAnonymous (docker rm -v, --rm), removes the container's
// anonymous volumes that nothing else uses, as dockerd does; named volumes
// always stay. Failures are logged, not returned: the container is gone
// either way. Call it after the container record is deleted, so the record
// no longer counts as a user.
func (e *Engine) releaseMountVolumes(containerID string, mps []types.MountPoint, removeAnonymous bool) {
	s := e.volumes
	for _, mp := range mps {
		if mp.Type != types.MountTypeVolume || mp.Name == "" {
			continue
		}
		s.Release(mp.Name, containerID)
		if !removeAnonymous {
			continue
		}
		v, err := s.Get(mp.Name)
		if err != nil || !v.Anonymous() {
			continue
		}
		if err := s.Remove(mp.Name, false); err != nil {
			e.logger.Info("keeping anonymous volume", "volume", mp.Name, "container", containerID, "reason", err)
			continue
		}
		e.logVolumeEvent(types.EventActionDestroy, mp.Name, map[string]string{"driver": v.Driver})
	}
}

// volumesFrom adds to own, the create's own mounts, every bind and volume
// of the containers HostConfig.VolumesFrom names ("name[:ro|:rw]"), at
// the same destinations, as dockerd's registerMountPoints does: a later
// entry replaces an earlier one's mount on the same destination, and the
// container's own mounts replace them all. The mode, when given, sets
// whether the copy is writable; without it the copy is as the original.
// It reads the named containers from the store's views, without their
// locks.
func (e *Engine) volumesFrom(from []string, own []volume.MountPoint) ([]volume.MountPoint, error) {
	if len(from) == 0 {
		return own, nil
	}
	byDest := map[string]volume.MountPoint{}
	var order []string
	for _, spec := range from {
		if spec == "" {
			return nil, errdefs.InvalidParameter(errors.New("volume-from specification cannot be an empty string"))
		}
		ref, mode, _ := strings.Cut(spec, ":")
		rw := true
		switch mode {
		case "":
		case "rw":
		case "ro":
			rw = false
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid mode: %s", mode))
		}
		c, err := e.get(ref)
		if err != nil {
			return nil, err
		}
		v := e.containers.View(c.ID)
		if v == nil {
			return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
		}
		for _, m := range loadRuntimeData(v).Mounts {
			if m.Type != types.MountTypeBind && m.Type != types.MountTypeVolume {
				continue
			}
			if mode != "" {
				m.RW = rw
				m.Mode = mode
			}
			// The source container filled the volume (or chose not to).
			m.CopyData = false
			m.CreateSource = false
			if _, seen := byDest[m.Destination]; !seen {
				order = append(order, m.Destination)
			}
			byDest[m.Destination] = m
		}
	}
	for _, m := range own {
		if _, seen := byDest[m.Destination]; seen {
			delete(byDest, m.Destination)
		}
	}
	var out []volume.MountPoint
	for _, d := range order {
		if m, ok := byDest[d]; ok {
			out = append(out, m)
		}
	}
	return append(out, own...), nil
}
