package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"skiffd/internal/api/types"
	"skiffd/internal/filters"
	"skiffd/internal/volume"
)

// volumeStores holds each Engine's volume store. Engine has no field for it
// yet (its struct is edited elsewhere); New should call openVolumes, and a
// `volumes *volume.Store` field can then replace this map without touching
// the methods below, which all go through e.volumeStore.
var volumeStores struct {
	sync.Mutex
	m map[*Engine]*volume.Store
}

// openVolumes opens the volume store under <data-root>/volumes. New calls
// it at start-up so a broken volumes directory fails the daemon early;
// until then the store opens on first use.
func (e *Engine) openVolumes() error {
	_, err := e.volumeStore()
	return err
}

// volumeStore returns the engine's volume store, opening it the first time.
// Who uses a volume is answered from the container records (their
// MountPoints), so references survive restarts without a file of their own.
func (e *Engine) volumeStore() (*volume.Store, error) {
	volumeStores.Lock()
	defer volumeStores.Unlock()
	if s, ok := volumeStores.m[e]; ok {
		return s, nil
	}
	s, err := volume.Open(filepath.Join(e.opts.DataRoot, "volumes"), volume.Options{InUse: e.volumeUsers, Logger: e.logger})
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	if volumeStores.m == nil {
		volumeStores.m = map[*Engine]*volume.Store{}
	}
	volumeStores.m[e] = s
	return s, nil
}

// volumeUsers returns the IDs of the containers whose mounts name the
// volume, from the containers' persisted records. Containers being created
// hold their volumes with Store.Acquire until their record is saved.
func (e *Engine) volumeUsers(name string) []string {
	if e.containers == nil {
		return nil
	}
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
	s, err := e.volumeStore()
	if err != nil {
		return nil, nil, err
	}
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
	s, err := e.volumeStore()
	if err != nil {
		return nil, err
	}
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
	s, err := e.volumeStore()
	if err != nil {
		return nil, err
	}
	v, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	return v.API(), nil
}

// VolumeRemove answers DELETE /volumes/{name}.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	s, err := e.volumeStore()
	if err != nil {
		return err
	}
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
	s, err := e.volumeStore()
	if err != nil {
		return nil, err
	}
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
	s, err := e.volumeStore()
	if err != nil {
		return nil, err
	}
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
