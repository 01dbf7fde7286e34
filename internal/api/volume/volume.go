// Package volume serves the volume endpoints: list, create, inspect,
// update (cluster volumes, which a single-host engine never has), remove
// and prune.
package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// Backend is what the volume endpoints need from the engine.
type Backend interface {
	// Volumes lists the volumes that match ef, with warnings about
	// volumes that could not be listed.
	Volumes(ctx context.Context, ef filters.Args) ([]*types.Volume, []string, error)
	// VolumeCreate creates a volume, or returns the existing one of that
	// name.
	VolumeCreate(ctx context.Context, req types.VolumeCreateOptions) (*types.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*types.Volume, error)
	// VolumeRemove removes a volume; force makes a missing one a success.
	VolumeRemove(ctx context.Context, name string, force bool) error
	// VolumesPrune removes unused volumes that match ef; ef carries all=true
	// when every unused volume, not only anonymous ones, may go.
	VolumesPrune(ctx context.Context, ef filters.Args) (*types.VolumesPruneReport, error)
}

// clusterVolumesVersion is the API version that brought swarm cluster
// volumes (ClusterVolumeSpec, PUT /volumes/{name}) and prune's "only
// anonymous volumes unless all=true".
const clusterVolumesVersion = "1.42"

// errNotManager is dockerd's answer to a cluster-volume request on an engine
// outside a swarm.
var errNotManager = errdefs.Unavailable(errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`))

// List answers GET /volumes.
func List(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return fmt.Errorf("error reading volume filters: %w", err)
		}
		list, warnings, err := b.Volumes(r.Context(), ef)
		if err != nil {
			return err
		}
		if list == nil {
			list = []*types.Volume{}
		}
		return wire.WriteJSON(w, http.StatusOK, &types.VolumeListResponse{Volumes: list, Warnings: warnings})
	}
}

// Create answers POST /volumes/create with 201 and the volume, new or
// existing.
func Create(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req types.VolumeCreateOptions
		if _, err := wire.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.ClusterVolumeSpec != nil && !wire.VersionLess(r.Context(), clusterVolumesVersion) {
			return errNotManager
		}
		v, err := b.VolumeCreate(r.Context(), req)
		if err != nil {
			return err
		}
		wire.Annotate(r.Context(), "volume", v.Name, v.Name)
		return wire.WriteJSON(w, http.StatusCreated, v)
	}
}

// Inspect answers GET /volumes/{name}.
func Inspect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := b.VolumeInspect(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, v)
	}
}

// Update answers PUT /volumes/{name}. Only swarm cluster volumes can be
// updated, so outside a swarm dockerd refuses before looking at anything.
func Update() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.Unavailable(errors.New("volume update only valid for cluster volumes, but swarm is unavailable"))
	}
}

// Remove answers DELETE /volumes/{name}[?force=1] with 204.
func Remove(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		wire.Annotate(r.Context(), "volume", r.PathValue("name"), r.PathValue("name"))
		if err := b.VolumeRemove(r.Context(), r.PathValue("name"), wire.BoolValue(r, "force")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// Prune answers POST /volumes/prune. Clients older than API 1.42 expect
// every unused volume to go, so they get the all=true filter dockerd adds.
func Prune(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return err
		}
		if wire.VersionLess(r.Context(), clusterVolumesVersion) {
			ef.Add("all", "true")
		}
		rep, err := b.VolumesPrune(r.Context(), ef)
		if err != nil {
			return err
		}
		if rep.VolumesDeleted == nil {
			rep.VolumesDeleted = []string{}
		}
		return wire.WriteJSON(w, http.StatusOK, rep)
	}
}
