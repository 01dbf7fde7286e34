// Package unsupported answers the API areas skiffd deliberately does not
// implement (swarm, plugins, the legacy builder and BuildKit sessions) with
// the errors dockerd gives when the feature is not available, so clients
// such as `docker node ls` or `docker inspect` fail fast and cleanly.
package unsupported

import (
	"errors"
	"fmt"
	"net/http"

	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// errNotManager is dockerd's answer for every swarm endpoint on a node that
// is not in a swarm.
var errNotManager = errdefs.Unavailable(errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`))

// errNoSwarm is dockerd's answer to `docker swarm leave` outside a swarm.
var errNoSwarm = errdefs.Unavailable(errors.New("This node is not part of a swarm"))

// SwarmNotManager answers swarm, node, service, task, secret and config
// endpoints.
func SwarmNotManager() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error { return errNotManager }
}

// SwarmLeave answers POST /swarm/leave.
func SwarmLeave() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error { return errNoSwarm }
}

// SwarmJoin answers POST /swarm/init and /swarm/join: skiffd is a
// single-host engine; fleets are driven by an orchestrator instead.
func SwarmJoin() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotImplemented(errors.New("skiffd does not support swarm mode: it is a single-host engine"))
	}
}

// PluginList answers GET /plugins: no managed plugins are installed.
func PluginList() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, []struct{}{})
	}
}

// PluginNotFound answers per-plugin endpoints with dockerd's 404.
func PluginNotFound() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotFound(fmt.Errorf("plugin %q not found", r.PathValue("name")))
	}
}

// PluginManage answers plugin install, create and upgrade.
func PluginManage() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotImplemented(errors.New("skiffd does not support managed plugins"))
	}
}

// BuildPrune answers POST /build/prune. skiffd has no build cache, so
// there is truly nothing to reclaim; `docker system prune` always calls it.
func BuildPrune() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, struct {
			CachesDeleted  []string
			SpaceReclaimed int64
		}{CachesDeleted: []string{}})
	}
}

// Build answers POST /build, /build/cancel, /session and /grpc.
func Build() wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotImplemented(errors.New("skiffd does not build images: build elsewhere and use docker load or docker import"))
	}
}
