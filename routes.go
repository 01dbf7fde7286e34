package main

import (
	"log/slog"
	"net/http"

	"skiffd/internal/api/container"
	"skiffd/internal/api/exec"
	"skiffd/internal/api/image"
	"skiffd/internal/api/network"
	"skiffd/internal/api/system"
	"skiffd/internal/api/unsupported"
	"skiffd/internal/api/volume"
	"skiffd/internal/api/wire"
)

// backends are the engine-facing interfaces the API modules consume. main
// fills every field with the one *engine.Engine; keeping them separate
// documents which module needs what.
type backends struct {
	System    system.Backend
	Events    system.EventsBackend
	Image     image.Backend
	Container container.Backend
	Exec      exec.Backend
	Volume    volume.Backend
	Network   network.Backend
	Archive   container.ArchiveBackend
	Commit    image.CommitBackend
	Registry  image.RegistryBackend
}

// newRouter lists the whole API surface, one "METHOD /path" per line. Paths
// are unversioned: the version middleware strips /v1.NN before routing.
// A GET pattern also serves HEAD. OPTIONS on any path is answered in front
// of the mux (see optionsRoute).
func newRouter(b backends, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	h := func(f wire.HandlerFunc) http.Handler { return makeHTTPHandler(f, logger) }

	// system
	mux.Handle("GET /_ping", h(system.Ping()))
	mux.Handle("GET /version", h(system.Version(b.System)))
	mux.Handle("GET /info", h(system.Info(b.System)))
	mux.Handle("GET /events", h(system.Events(b.Events)))
	mux.Handle("GET /system/df", h(system.DiskUsage(b.System)))
	mux.Handle("POST /auth", h(image.Auth(b.Registry)))

	// containers
	mux.Handle("GET /containers/json", h(container.List(b.Container)))
	mux.Handle("POST /containers/create", h(container.Create(b.Container)))
	mux.Handle("POST /containers/prune", h(container.Prune(b.Container)))
	mux.Handle("GET /containers/{id}/json", h(container.Inspect(b.Container)))
	mux.Handle("GET /containers/{id}/top", h(container.Top(b.Container)))
	mux.Handle("GET /containers/{id}/logs", h(container.Logs(b.Container)))
	mux.Handle("GET /containers/{id}/stats", h(container.Stats(b.Container)))
	mux.Handle("POST /containers/{id}/resize", h(container.Resize(b.Container)))
	mux.Handle("POST /containers/{id}/start", h(container.Start(b.Container)))
	mux.Handle("POST /containers/{id}/stop", h(container.Stop(b.Container)))
	mux.Handle("POST /containers/{id}/restart", h(container.Restart(b.Container)))
	mux.Handle("POST /containers/{id}/kill", h(container.Kill(b.Container)))
	mux.Handle("POST /containers/{id}/update", h(container.Update(b.Container)))
	mux.Handle("POST /containers/{id}/rename", h(container.Rename(b.Container)))
	mux.Handle("POST /containers/{id}/pause", h(container.Pause(b.Container)))
	mux.Handle("POST /containers/{id}/unpause", h(container.Unpause(b.Container)))
	mux.Handle("POST /containers/{id}/attach", h(container.Attach(b.Container)))
	mux.Handle("POST /containers/{id}/wait", h(container.Wait(b.Container)))
	mux.Handle("DELETE /containers/{id}", h(container.Remove(b.Container)))
	mux.Handle("GET /containers/{id}/attach/ws", h(unsupported.NotYet("websocket attach")))
	mux.Handle("HEAD /containers/{id}/archive", h(container.ArchiveHead(b.Archive)))
	mux.Handle("GET /containers/{id}/archive", h(container.ArchiveGet(b.Archive)))
	mux.Handle("PUT /containers/{id}/archive", h(container.ArchivePut(b.Archive)))
	mux.Handle("GET /containers/{id}/export", h(container.Export(b.Archive)))
	mux.Handle("GET /containers/{id}/changes", h(container.Changes(b.Archive)))
	mux.Handle("POST /commit", h(image.Commit(b.Commit)))

	// exec
	mux.Handle("POST /containers/{id}/exec", h(exec.Create(b.Exec)))
	mux.Handle("POST /exec/{id}/start", h(exec.Start(b.Exec)))
	mux.Handle("POST /exec/{id}/resize", h(exec.Resize(b.Exec)))
	mux.Handle("GET /exec/{id}/json", h(exec.Inspect(b.Exec)))

	// images; names carry slashes, so /images/{name...} dispatches on its last segment
	mux.Handle("GET /images/json", h(image.List(b.Image)))
	mux.Handle("POST /images/create", h(image.Create(b.Image, b.Registry)))
	mux.Handle("POST /images/load", h(image.Load(b.Image)))
	mux.Handle("GET /images/get", h(image.Save(b.Image)))
	mux.Handle("POST /images/prune", h(image.Prune(b.Image)))
	mux.Handle("GET /images/search", h(image.Search(b.Registry)))
	mux.Handle("GET /images/{name...}", h(image.ByName(map[string]wire.HandlerFunc{
		"json":    image.Inspect(b.Image), // GET /images/{name}/json
		"history": image.History(b.Image), // GET /images/{name}/history
		"get":     image.Save(b.Image),    // GET /images/{name}/get
	})))
	mux.Handle("POST /images/{name...}", h(image.ByName(map[string]wire.HandlerFunc{
		"tag":  image.Tag(b.Image),     // POST /images/{name}/tag
		"push": image.Push(b.Registry), // POST /images/{name}/push
	})))
	mux.Handle("DELETE /images/{name...}", h(image.Delete(b.Image)))
	mux.Handle("GET /distribution/{name...}", h(unsupported.NotYet("registry access")))

	// volumes
	mux.Handle("GET /volumes", h(volume.List(b.Volume)))
	mux.Handle("POST /volumes/create", h(volume.Create(b.Volume)))
	mux.Handle("POST /volumes/prune", h(volume.Prune(b.Volume)))
	mux.Handle("GET /volumes/{name}", h(volume.Inspect(b.Volume)))
	mux.Handle("PUT /volumes/{name}", h(volume.Update()))
	mux.Handle("DELETE /volumes/{name}", h(volume.Remove(b.Volume)))

	// networks
	mux.Handle("GET /networks", h(network.List(b.Network)))
	mux.Handle("POST /networks/create", h(network.Create(b.Network)))
	mux.Handle("POST /networks/prune", h(network.Prune(b.Network)))
	mux.Handle("GET /networks/{id}", h(network.Inspect(b.Network)))
	mux.Handle("DELETE /networks/{id}", h(network.Remove(b.Network)))
	mux.Handle("POST /networks/{id}/connect", h(network.Connect(b.Network)))
	mux.Handle("POST /networks/{id}/disconnect", h(network.Disconnect(b.Network)))

	// swarm: skiffd is single-host; answers are dockerd's "not in a swarm" errors
	mux.Handle("GET /swarm", h(unsupported.SwarmNotManager()))
	mux.Handle("POST /swarm/init", h(unsupported.SwarmJoin()))
	mux.Handle("POST /swarm/join", h(unsupported.SwarmJoin()))
	mux.Handle("POST /swarm/leave", h(unsupported.SwarmLeave()))
	mux.Handle("POST /swarm/update", h(unsupported.SwarmNotManager()))
	mux.Handle("GET /swarm/unlockkey", h(unsupported.SwarmNotManager()))
	mux.Handle("POST /swarm/unlock", h(unsupported.SwarmNotManager()))
	for _, area := range []string{"nodes", "services", "tasks", "secrets", "configs"} {
		mux.Handle("/"+area, h(unsupported.SwarmNotManager()))
		mux.Handle("/"+area+"/", h(unsupported.SwarmNotManager()))
	}

	// plugins: none are managed
	mux.Handle("GET /plugins", h(unsupported.PluginList()))
	mux.Handle("GET /plugins/privileges", h(unsupported.PluginManage()))
	mux.Handle("POST /plugins/pull", h(unsupported.PluginManage()))
	mux.Handle("POST /plugins/create", h(unsupported.PluginManage()))
	mux.Handle("GET /plugins/{name}/json", h(unsupported.PluginNotFound()))
	mux.Handle("DELETE /plugins/{name}", h(unsupported.PluginNotFound()))
	mux.Handle("POST /plugins/{name}/{action}", h(unsupported.PluginNotFound()))

	// build: no builder in skiffd
	mux.Handle("POST /build", h(unsupported.Build()))
	mux.Handle("POST /build/prune", h(unsupported.BuildPrune()))
	mux.Handle("POST /build/cancel", h(unsupported.Build()))
	mux.Handle("POST /session", h(unsupported.Build()))
	mux.Handle("POST /grpc", h(unsupported.Build()))

	// everything else
	mux.Handle("/", notFound())
	return optionsRoute(mux)
}

// optionsRoute answers OPTIONS on every path, existing or not, with 200 and
// an empty body, as dockerd's options route ("/{anyroute:.*}" in its system
// router) does for CORS preflight requests, whether or not
// --api-cors-header is set. It sits where a route would, inside every
// middleware, so the answer carries the version headers, the CORS headers
// when configured, and passes authorization. It cannot be a mux pattern:
// "OPTIONS /" conflicts with the method-less swarm patterns above.
func optionsRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
