package events

import (
	"regexp"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/filters"
)

// acceptedFilters are the keys GET /events understands, as the Docker API
// documents them.
var acceptedFilters = map[string]bool{
	"config":    true,
	"container": true,
	"daemon":    true,
	"event":     true,
	"image":     true,
	"label":     true,
	"network":   true,
	"node":      true,
	"plugin":    true,
	"scope":     true,
	"secret":    true,
	"service":   true,
	"type":      true,
	"volume":    true,
}

// ValidateFilters rejects a filter key GET /events does not know with
// dockerd's InvalidParameter error "invalid filter 'x'".
func ValidateFilters(args filters.Args) error {
	return args.Validate(acceptedFilters)
}

// Filter decides which events a subscriber sees, with dockerd's semantics:
// every key given must match (AND across keys), any value of a key may match
// (OR within a key).
//
//   - type, scope: exact.
//   - event: exact, except that when one of the values is exec_create,
//     exec_start or health_status every value matches as a prefix, so
//     `event=exec_start` matches "exec_start: sh -c ...".
//   - container, daemon, network, volume, plugin, service, node, secret,
//     config: the actor ID or its "name" attribute, by prefix. As in dockerd
//     these apply to every event, so `container=web` also hides image events.
//   - image: exact against the actor ID and the "image" attribute ("name" for
//     image events), each also with its tag or digest stripped, so
//     `image=busybox` matches containers of busybox:latest and
//     docker.io/library/busybox.
//   - label: label=k or label=k=v against the actor's attributes.
type Filter struct {
	args filters.Args
}

// NewFilter returns a Filter for args. It keeps its own copy, so later
// changes to args do not affect it.
func NewFilter(args filters.Args) *Filter {
	return &Filter{args: args.Clone()}
}

// nameFilterKeys are the keys that match an actor by ID or name.
var nameFilterKeys = []string{
	types.DaemonEventType,
	types.ContainerEventType,
	types.PluginEventType,
	types.VolumeEventType,
	types.NetworkEventType,
	types.ServiceEventType,
	types.NodeEventType,
	types.SecretEventType,
	types.ConfigEventType,
}

// Include reports whether m passes the filter. A nil Filter includes
// everything.
func (f *Filter) Include(m types.EventMessage) bool {
	if f == nil || f.args.Len() == 0 {
		return true
	}
	if !f.matchAction(m.Action) ||
		!f.args.ExactMatch("type", m.Type) ||
		!f.args.ExactMatch("scope", m.Scope) {
		return false
	}
	for _, key := range nameFilterKeys {
		if !f.args.FuzzyMatch(key, m.Actor.ID) && !f.args.FuzzyMatch(key, m.Actor.Attributes["name"]) {
			return false
		}
	}
	return f.matchImage(m) && f.args.MatchKVList("label", m.Actor.Attributes)
}

// matchAction implements the `event` key; see Filter.
func (f *Filter) matchAction(action string) bool {
	for _, v := range f.args.Get("event") {
		switch v {
		case types.EventActionExecCreate, types.EventActionExecStart, types.EventActionHealthStatus:
			return f.args.FuzzyMatch("event", action)
		}
	}
	return f.args.ExactMatch("event", action)
}

// matchImage implements the `image` key; see Filter.
func (f *Filter) matchImage(m types.EventMessage) bool {
	attr := "image"
	if m.Type == types.ImageEventType {
		attr = "name"
	}
	name := m.Actor.Attributes[attr]
	return f.args.ExactMatch("image", m.Actor.ID) ||
		f.args.ExactMatch("image", name) ||
		f.args.ExactMatch("image", familiarRepo(m.Actor.ID)) ||
		f.args.ExactMatch("image", familiarRepo(name))
}

// The image reference grammar, enough of it to tell a valid reference from
// anything else (IDs, garbage) the way dockerd's parser does.
var (
	referenceRE = regexp.MustCompile(`^` +
		// optional domain: host name or [ipv6], optional port
		`(?:((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?)/)?` +
		// path components, lower case, separated by / with . _ __ or dashes inside
		`([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)` +
		// optional tag and digest
		`(?::[\w][\w.-]{0,127})?` +
		`(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`)
	hex64RE = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// familiarRepo returns the repository of an image reference in its short
// form, without tag or digest: "docker.io/library/busybox:1.36" and
// "busybox@sha256:..." give "busybox", "localhost:5000/app:2" gives
// "localhost:5000/app". Anything that is not a valid reference (an image ID,
// the empty string) comes back unchanged, as in dockerd's stripTag.
func familiarRepo(ref string) string {
	if hex64RE.MatchString(ref) {
		return ref
	}
	m := referenceRE.FindStringSubmatch(ref)
	if m == nil {
		return ref
	}
	domainPart, path := m[1], m[2]
	// The first component is a domain only when it looks like one (a dot, a
	// port, "localhost" or upper case), as in dockerd's splitDockerDomain;
	// otherwise "foo/bar" is a Docker Hub path. The regexp decides by syntax
	// alone, so correct it both ways.
	first, _, hasSlash := strings.Cut(ref, "/")
	looksLikeDomain := hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first)
	switch {
	case looksLikeDomain && domainPart != first:
		return ref // "a_b.c/x": meant as a domain, but not a valid one
	case !looksLikeDomain && domainPart != "":
		path = domainPart + "/" + path
		domainPart = ""
	}
	if domainPart == "index.docker.io" {
		domainPart = "docker.io"
	}
	if len(path) > 255 {
		return ref
	}
	if domainPart != "" && domainPart != "docker.io" {
		return domainPart + "/" + path
	}
	if rest, ok := strings.CutPrefix(path, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return path
}
