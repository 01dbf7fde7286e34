package main

import (
	"log/slog"
	"net/http"
	"strings"

	"skiffd/internal/api/container"
	"skiffd/internal/api/exec"
	"skiffd/internal/api/image"
	"skiffd/internal/api/network"
	"skiffd/internal/api/system"
	"skiffd/internal/api/unsupported"
	"skiffd/internal/api/volume"
	"skiffd/internal/api/wire"
	"skiffd/internal/policy"
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
	return optionsRoute(newRoutes(b, logger).mux)
}

// newRoutes registers every route with its policy group (see
// internal/policy for what each group means) and records the table, which
// a test walks: a route without a known group fails it.
func newRoutes(b backends, logger *slog.Logger) *routeTable {
	rt := &routeTable{mux: http.NewServeMux(), logger: logger}

	// system
	rt.handle("GET /_ping", policy.Ping, system.Ping())
	rt.handle("GET /version", policy.SystemRead, system.Version(b.System))
	rt.handle("GET /info", policy.SystemRead, system.Info(b.System))
	rt.handle("GET /events", policy.Events, system.Events(b.Events))
	rt.handle("GET /system/df", policy.SystemRead, system.DiskUsage(b.System))
	rt.handle("POST /auth", policy.Auth, image.Auth(b.Registry))

	// containers
	rt.handle("GET /containers/json", policy.ContainersRead, container.List(b.Container))
	rt.handle("POST /containers/create", policy.ContainersWrite, container.Create(b.Container))
	rt.handle("POST /containers/prune", policy.ContainersWrite, container.Prune(b.Container))
	rt.handle("GET /containers/{id}/json", policy.ContainersRead, container.Inspect(b.Container))
	rt.handle("GET /containers/{id}/top", policy.ContainersRead, container.Top(b.Container))
	rt.handle("GET /containers/{id}/logs", policy.ContainersLogs, container.Logs(b.Container))
	rt.handle("GET /containers/{id}/stats", policy.ContainersRead, container.Stats(b.Container))
	rt.handle("POST /containers/{id}/resize", policy.ContainersWrite, container.Resize(b.Container))
	rt.handle("POST /containers/{id}/start", policy.ContainersWrite, container.Start(b.Container))
	rt.handle("POST /containers/{id}/stop", policy.ContainersWrite, container.Stop(b.Container))
	rt.handle("POST /containers/{id}/restart", policy.ContainersWrite, container.Restart(b.Container))
	rt.handle("POST /containers/{id}/kill", policy.ContainersWrite, container.Kill(b.Container))
	rt.handle("POST /containers/{id}/update", policy.ContainersWrite, container.Update(b.Container))
	rt.handle("POST /containers/{id}/rename", policy.ContainersWrite, container.Rename(b.Container))
	rt.handle("POST /containers/{id}/pause", policy.ContainersWrite, container.Pause(b.Container))
	rt.handle("POST /containers/{id}/unpause", policy.ContainersWrite, container.Unpause(b.Container))
	rt.hijack("POST /containers/{id}/attach", policy.ContainersAttach, container.Attach(b.Container))
	rt.handle("POST /containers/{id}/wait", policy.ContainersRead, container.Wait(b.Container))
	rt.handle("DELETE /containers/{id}", policy.ContainersWrite, container.Remove(b.Container))
	rt.handle("DELETE /containers/{id}/{alias}", policy.ContainersWrite, container.Remove(b.Container))
	rt.hijack("GET /containers/{id}/attach/ws", policy.ContainersAttach, container.AttachWebsocket(b.Container))
	rt.handle("HEAD /containers/{id}/archive", policy.ContainersCopy, container.ArchiveHead(b.Archive))
	rt.handle("GET /containers/{id}/archive", policy.ContainersCopy, container.ArchiveGet(b.Archive))
	rt.stream("PUT /containers/{id}/archive", policy.ContainersWrite, container.ArchivePut(b.Archive))
	rt.handle("GET /containers/{id}/export", policy.ContainersCopy, container.Export(b.Archive))
	rt.handle("GET /containers/{id}/changes", policy.ContainersRead, container.Changes(b.Archive))
	rt.handle("POST /commit", policy.ImagesWrite, image.Commit(b.Commit))

	// exec
	rt.handle("POST /containers/{id}/exec", policy.Exec, exec.Create(b.Exec))
	rt.hijack("POST /exec/{id}/start", policy.Exec, exec.Start(b.Exec))
	rt.handle("POST /exec/{id}/resize", policy.Exec, exec.Resize(b.Exec))
	rt.handle("GET /exec/{id}/json", policy.Exec, exec.Inspect(b.Exec))

	// images; names carry slashes, so /images/{name...} dispatches on its last segment
	rt.handle("GET /images/json", policy.ImagesRead, image.List(b.Image))
	rt.stream("POST /images/create", policy.ImagesWrite, image.Create(b.Image, b.Registry))
	rt.stream("POST /images/load", policy.ImagesWrite, image.Load(b.Image))
	rt.handle("GET /images/get", policy.ImagesSave, image.Save(b.Image))
	rt.handle("POST /images/prune", policy.ImagesWrite, image.Prune(b.Image))
	rt.handle("GET /images/search", policy.ImagesRead, image.Search(b.Registry))
	rt.handle("GET /images/{name...}", policy.ImagesRead, image.ByName(map[string]wire.HandlerFunc{
		"json":    image.Inspect(b.Image), // GET /images/{name}/json
		"history": image.History(b.Image), // GET /images/{name}/history
		"get":     rt.sub("GET /images/{name}/get", policy.ImagesSave, image.Save(b.Image)),
	}))
	rt.handle("POST /images/{name...}", policy.ImagesWrite, image.ByName(map[string]wire.HandlerFunc{
		"tag":  image.Tag(b.Image),     // POST /images/{name}/tag
		"push": image.Push(b.Registry), // POST /images/{name}/push
	}))
	rt.handle("DELETE /images/{name...}", policy.ImagesWrite, image.Delete(b.Image))
	rt.handle("GET /distribution/{name...}", policy.ImagesRead, image.ByName(map[string]wire.HandlerFunc{
		"json": image.DistributionInspect(b.Registry), // GET /distribution/{name}/json
	}))

	// volumes
	rt.handle("GET /volumes", policy.VolumesRead, volume.List(b.Volume))
	rt.handle("POST /volumes/create", policy.VolumesWrite, volume.Create(b.Volume))
	rt.handle("POST /volumes/prune", policy.VolumesWrite, volume.Prune(b.Volume))
	rt.handle("GET /volumes/{name}", policy.VolumesRead, volume.Inspect(b.Volume))
	rt.handle("PUT /volumes/{name}", policy.VolumesWrite, volume.Update())
	rt.handle("DELETE /volumes/{name}", policy.VolumesWrite, volume.Remove(b.Volume))

	// networks
	rt.handle("GET /networks", policy.NetworksRead, network.List(b.Network))
	rt.handle("POST /networks/create", policy.NetworksWrite, network.Create(b.Network))
	rt.handle("POST /networks/prune", policy.NetworksWrite, network.Prune(b.Network))
	rt.handle("GET /networks/{id}", policy.NetworksRead, network.Inspect(b.Network))
	rt.handle("DELETE /networks/{id}", policy.NetworksWrite, network.Remove(b.Network))
	rt.handle("POST /networks/{id}/connect", policy.NetworksWrite, network.Connect(b.Network))
	rt.handle("POST /networks/{id}/disconnect", policy.NetworksWrite, network.Disconnect(b.Network))

	// swarm: skiffd is single-host; answers are dockerd's "not in a swarm" errors
	rt.handle("GET /swarm", policy.Swarm, unsupported.SwarmNotManager())
	rt.handle("POST /swarm/init", policy.Swarm, unsupported.SwarmJoin())
	rt.handle("POST /swarm/join", policy.Swarm, unsupported.SwarmJoin())
	rt.handle("POST /swarm/leave", policy.Swarm, unsupported.SwarmLeave())
	rt.handle("POST /swarm/update", policy.Swarm, unsupported.SwarmNotManager())
	rt.handle("GET /swarm/unlockkey", policy.Swarm, unsupported.SwarmNotManager())
	rt.handle("POST /swarm/unlock", policy.Swarm, unsupported.SwarmNotManager())
	for _, area := range []string{"nodes", "services", "tasks", "secrets", "configs"} {
		rt.handle("/"+area, policy.Swarm, unsupported.SwarmNotManager())
		rt.handle("/"+area+"/", policy.Swarm, unsupported.SwarmNotManager())
	}

	// plugins: none are managed
	rt.handle("GET /plugins", policy.PluginsRead, unsupported.PluginList())
	rt.handle("GET /plugins/privileges", policy.PluginsRead, unsupported.PluginManage())
	rt.handle("POST /plugins/pull", policy.PluginsWrite, unsupported.PluginManage())
	rt.handle("POST /plugins/create", policy.PluginsWrite, unsupported.PluginManage())
	rt.handle("GET /plugins/{name}/json", policy.PluginsRead, unsupported.PluginNotFound())
	rt.handle("DELETE /plugins/{name}", policy.PluginsWrite, unsupported.PluginNotFound())
	rt.handle("POST /plugins/{name}/{action}", policy.PluginsWrite, unsupported.PluginNotFound())

	// build: no builder in skiffd
	rt.stream("POST /build", policy.Build, unsupported.Build())
	rt.handle("POST /build/prune", policy.Build, unsupported.BuildPrune())
	rt.handle("POST /build/cancel", policy.Build, unsupported.Build())
	rt.stream("POST /session", policy.Build, unsupported.Build())
	rt.stream("POST /grpc", policy.Build, unsupported.Build())

	// everything else
	rt.add("/", routeInfo{Group: policy.Unrouted}, notFound())
	return rt
}

// routeTable is the mux and the list of what was registered on it.
type routeTable struct {
	mux    *http.ServeMux
	logger *slog.Logger
	routes []routeEntry
	// pending holds the sub actions recorded for the next route.
	pending map[string]policy.Group
}

// routeEntry is one registered pattern. Sub entries are dispatched inside
// another route's handler (the /images/{name...} actions) and checked
// against the policy there.
type routeEntry struct {
	Pattern string
	Info    routeInfo
	Sub     bool
}

func (t *routeTable) add(pattern string, info routeInfo, h http.Handler) {
	info.Subs, t.pending = t.pending, nil
	t.routes = append(t.routes, routeEntry{Pattern: pattern, Info: info})
	t.mux.Handle(pattern, guardRoute(info, h))
}

// handle registers a route whose body, if any, is a JSON document.
func (t *routeTable) handle(pattern string, g policy.Group, f wire.HandlerFunc) {
	t.add(pattern, routeInfo{Group: g}, makeHTTPHandler(f, t.logger))
}

// stream registers a route whose body is a stream (a tar): it is not
// capped, not buffered and not shown to authorization plugins.
func (t *routeTable) stream(pattern string, g policy.Group, f wire.HandlerFunc) {
	t.add(pattern, routeInfo{Group: g, StreamBody: true}, makeHTTPHandler(f, t.logger))
}

// hijack registers a route that takes over the connection; it counts
// against the cap on concurrent streams.
func (t *routeTable) hijack(pattern string, g policy.Group, f wire.HandlerFunc) {
	t.add(pattern, routeInfo{Group: g, Hijack: true}, makeHTTPHandler(f, t.logger))
}

// sub records an action that another route's handler dispatches on the
// last path segment (the /images/{name...} actions) under its own group:
// the next route registered serves that segment under g.
func (t *routeTable) sub(pattern string, g policy.Group, f wire.HandlerFunc) wire.HandlerFunc {
	t.routes = append(t.routes, routeEntry{Pattern: pattern, Info: routeInfo{Group: g}, Sub: true})
	if t.pending == nil {
		t.pending = map[string]policy.Group{}
	}
	t.pending[pattern[strings.LastIndexByte(pattern, '/')+1:]] = g
	return f
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
