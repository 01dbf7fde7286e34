// Package policy decides which API routes a listener serves. Every route in
// routes.go names one Group; a listener's Policy (from the -H address, e.g.
// unix:///run/skiffd-ro.sock?mode=ro or ?allow=containers:read,events)
// either allows the group or refuses the request with a 403 naming the
// policy, before any handler runs (issue 12, item 3).
//
//	p, err := policy.Parse("mode=ro")
//	if err := p.Check("POST", policy.ContainersWrite); err != nil { ... } // 403
//
// What read-only means: the client can read everything a GET on the API
// shows (inspect, including environment variables and labels; logs;
// events; image and volume metadata) but cannot change state, and cannot
// reach into a container (no exec, no attach, no copying files out, no
// export, no image save). A read-only socket is not a secret-free socket.
package policy

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Group is a set of routes that an allow-list names.
type Group string

// The route groups. Safe groups are served on a read-only listener (for GET
// and HEAD only); the others never are.
const (
	Ping             Group = "ping"              // GET/HEAD /_ping
	SystemRead       Group = "system:read"       // version, info, system df
	Events           Group = "events"            // the event stream
	Auth             Group = "auth"              // registry login
	ContainersRead   Group = "containers:read"   // list, inspect, top, stats, changes, wait
	ContainersLogs   Group = "containers:logs"   // logs
	ContainersWrite  Group = "containers:write"  // create, start, stop, kill, update, rename, remove, prune, resize, cp in
	ContainersAttach Group = "containers:attach" // attach, attach over websocket
	ContainersCopy   Group = "containers:copy"   // cp out (archive HEAD/GET), export
	Exec             Group = "exec"              // exec create, start, resize, inspect
	ImagesRead       Group = "images:read"       // list, inspect, history, search, distribution
	ImagesSave       Group = "images:save"       // docker save
	ImagesWrite      Group = "images:write"      // pull, import, load, tag, push, remove, prune, commit
	VolumesRead      Group = "volumes:read"      // list, inspect
	VolumesWrite     Group = "volumes:write"     // create, update, remove, prune
	NetworksRead     Group = "networks:read"     // list, inspect
	NetworksWrite    Group = "networks:write"    // create, connect, disconnect, remove, prune
	Swarm            Group = "swarm"             // swarm, nodes, services, tasks, secrets, configs (all refused: single host)
	PluginsRead      Group = "plugins:read"      // list, inspect, privileges
	PluginsWrite     Group = "plugins:write"     // pull, create, enable, disable, remove, ...
	Build            Group = "build"             // build, build prune, session, grpc
	// Unrouted is the catch-all that answers 404: it serves nothing, so
	// every policy lets it answer. Ping, too, is served by every policy:
	// clients ping first to learn the API version.
	Unrouted Group = "unrouted"
)

// groups lists every group and whether a read-only listener serves it.
var groups = map[Group]bool{
	Ping: true, SystemRead: true, Events: true, Auth: false,
	ContainersRead: true, ContainersLogs: true, ContainersWrite: false, ContainersAttach: false,
	ContainersCopy: false, Exec: false,
	ImagesRead: true, ImagesSave: false, ImagesWrite: false,
	VolumesRead: true, VolumesWrite: false,
	NetworksRead: true, NetworksWrite: false,
	Swarm: true, PluginsRead: true, PluginsWrite: false, Build: false,
	Unrouted: true,
}

// Groups returns every group name, sorted.
func Groups() []Group {
	gs := make([]Group, 0, len(groups))
	for g := range groups {
		gs = append(gs, g)
	}
	slices.Sort(gs)
	return gs
}

// Known reports whether g is a defined group.
func Known(g Group) bool { _, ok := groups[g]; return ok }

// ReadSafe reports whether a read-only listener serves g (for GET and HEAD).
func ReadSafe(g Group) bool { return groups[g] }

// Policy is one listener's rule. The zero Policy allows everything.
type Policy struct {
	ReadOnly bool
	Allow    []Group // nil: no allow-list; sorted
}

// Parse reads a listener's options, the query of its -H address:
// "mode=ro", "mode=rw", "allow=GROUP,GROUP", or both (a request must then
// pass both). Unknown keys and groups are errors, so a typo cannot open a
// socket wider than meant.
func Parse(query string) (Policy, error) {
	var p Policy
	if query == "" {
		return p, nil
	}
	v, err := url.ParseQuery(query)
	if err != nil {
		return p, fmt.Errorf("invalid listener options %q: %w", query, err)
	}
	for k, vals := range v {
		if len(vals) != 1 {
			return p, fmt.Errorf("invalid listener options %q: %s given more than once", query, k)
		}
		switch k {
		case "mode":
			switch vals[0] {
			case "ro":
				p.ReadOnly = true
			case "rw":
			default:
				return p, fmt.Errorf("invalid listener options %q: mode must be ro or rw", query)
			}
		case "allow":
			p.Allow = []Group{}
			for _, s := range strings.Split(vals[0], ",") {
				g := Group(strings.TrimSpace(s))
				if !Known(g) || g == Unrouted {
					return p, fmt.Errorf("invalid listener options %q: unknown route group %q (known: %s)", query, g, knownList())
				}
				if !slices.Contains(p.Allow, g) {
					p.Allow = append(p.Allow, g)
				}
			}
			slices.Sort(p.Allow)
		default:
			return p, fmt.Errorf("invalid listener options %q: unknown option %q (mode, allow)", query, k)
		}
	}
	return p, nil
}

func knownList() string {
	var s []string
	for _, g := range Groups() {
		if g != Unrouted {
			s = append(s, string(g))
		}
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// String gives the canonical query form: Parse(p.String()) equals p.
func (p Policy) String() string {
	var parts []string
	if p.Allow != nil {
		s := make([]string, len(p.Allow))
		for i, g := range p.Allow {
			s[i] = string(g)
		}
		parts = append(parts, "allow="+strings.Join(s, ","))
	}
	if p.ReadOnly {
		parts = append(parts, "mode=ro")
	}
	return strings.Join(parts, "&")
}

// Open reports whether p allows everything.
func (p Policy) Open() bool { return !p.ReadOnly && p.Allow == nil }

// Check returns nil when p serves a request with this method to a route of
// group g, else a Denied error.
func (p Policy) Check(method string, g Group) error {
	if g == Unrouted || g == Ping || p.Open() {
		return nil
	}
	if p.ReadOnly && (!ReadSafe(g) || (method != "GET" && method != "HEAD")) {
		return &Denied{Policy: p, Method: method, Group: g}
	}
	if p.Allow != nil && !slices.Contains(p.Allow, g) {
		return &Denied{Policy: p, Method: method, Group: g}
	}
	return nil
}

// Denied is a request refused by a listener policy; the API answers it
// with 403.
type Denied struct {
	Policy Policy
	Method string
	Group  Group
}

func (e *Denied) Error() string {
	return fmt.Sprintf("access denied by listener policy %q: %s requests to %s are not allowed on this socket", e.Policy.String(), e.Method, e.Group)
}
