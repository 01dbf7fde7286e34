package events

import (
	"skiffd/internal/api/types"
	"skiffd/internal/filters"
	"skiffd/internal/reference"
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

// familiarRepo returns the repository of an image reference in its short
// form, without tag or digest: "docker.io/library/busybox:1.36" and
// "busybox@sha256:..." give "busybox", "localhost:5000/app:2" gives
// "localhost:5000/app". Anything that is not a valid reference (an image ID,
// the empty string) comes back unchanged, as in dockerd's stripTag.
func familiarRepo(ref string) string {
	if reference.IsFullID(ref) {
		return ref
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return n.FamiliarName()
}
