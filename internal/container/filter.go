package container

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// ListFilters are the filter keys GET /containers/json accepts, dockerd's
// list. is-task never matches a task (skiffd has no swarm).
var ListFilters = map[string]bool{
	"ancestor":  true,
	"before":    true,
	"exited":    true,
	"expose":    true,
	"health":    true,
	"id":        true,
	"is-task":   true,
	"isolation": true,
	"label":     true,
	"name":      true,
	"network":   true,
	"publish":   true,
	"since":     true,
	"status":    true,
	"volume":    true,
}

// FilterOptions are the query parameters of GET /containers/json besides
// filters, and what the engine lends the filter.
type FilterOptions struct {
	// All lists stopped containers too; a status filter implies it.
	All bool
	// Limit, when positive, returns at most that many containers (the
	// newest) and, as in dockerd, lists stopped ones too.
	Limit int
	// Since and Before are the legacy query parameters, the same as the
	// since and before filters.
	Since, Before string
	// Ancestor resolves an `ancestor` filter value (image name, short or
	// full ID) to the image IDs ("sha256:...") that count as that ancestor:
	// the image and the images built on it. Nil or an empty result means
	// no container matches the value, as when dockerd cannot find the image.
	Ancestor func(ref string) []string
	// Sorted tells that the list is newest first already
	// (Store.SortedSnapshots): Filter neither copies nor sorts it.
	Sorted bool
}

// Filter returns the containers of list that GET /containers/json shows for
// args and opts, newest first, with dockerd's semantics: name and id are
// unanchored regular expressions (name with or without its slash, id also
// limited to IDs a unique prefix names), label is key or key=value, status
// and exited imply nothing about running state except as dockerd does,
// before and since name a container by ID, name or prefix. list should be
// Store.SortedSnapshots(); Filter neither locks nor modifies its containers.
//
// Errors are 400s: an unknown key ("invalid filter 'x'"), a bad status
// ("invalid filter 'status=x'"), exit code, health or port value; and 404
// when before or since name no container.
func Filter(list []*Container, args filters.Args, opts FilterOptions) ([]*Container, error) {
	out := []*Container{}
	err := Walk(list, args, opts, func(c *Container) { out = append(out, c) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Walk is Filter calling yield with each container listed, in order,
// instead of returning them: a list need not allocate a slice of them. On
// error yield is not called.
func Walk(list []*Container, args filters.Args, opts FilterOptions, yield func(*Container)) error {
	if err := args.Validate(ListFilters); err != nil {
		return err
	}
	var exited []int
	err := args.WalkValues("exited", func(v string) error {
		code, err := strconv.Atoi(v)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		exited = append(exited, code)
		return nil
	})
	if err != nil {
		return err
	}
	all := opts.All
	err = args.WalkValues("status", func(v string) error {
		if !IsValidStatus(v) {
			return errdefs.InvalidParameter(fmt.Errorf("invalid filter 'status=%s'", v))
		}
		all = true
		return nil
	})
	if err != nil {
		return err
	}
	taskFilter, isTask := false, false
	if args.Contains("is-task") {
		switch {
		case args.ExactMatch("is-task", "true"):
			taskFilter, isTask = true, true
		case args.ExactMatch("is-task", "false"):
			taskFilter = true
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid filter 'is-task=%s'", args.Get("is-task")))
		}
	}
	err = args.WalkValues("health", func(v string) error {
		switch v {
		case types.HealthStarting, types.HealthHealthy, types.HealthUnhealthy, types.HealthNone:
			return nil
		}
		return errdefs.InvalidParameter(fmt.Errorf("Unrecognised filter value for health: %s", v))
	})
	if err != nil {
		return err
	}
	publish, err := portFilter(args, "publish")
	if err != nil {
		return err
	}
	expose, err := portFilter(args, "expose")
	if err != nil {
		return err
	}

	sorted := list
	if !opts.Sorted {
		sorted = slices.Clone(list)
		sortNewestFirst(sorted)
	}

	var before, since *Container
	for _, ref := range append(args.Get("before"), nonEmpty(opts.Before)...) {
		if before, err = findIn(sorted, ref); err != nil {
			return err
		}
	}
	for _, ref := range append(args.Get("since"), nonEmpty(opts.Since)...) {
		if since, err = findIn(sorted, ref); err != nil {
			return err
		}
	}

	var images map[string]bool
	if args.Contains("ancestor") {
		images = map[string]bool{}
		for _, ref := range args.Get("ancestor") {
			if opts.Ancestor == nil {
				continue
			}
			for _, id := range opts.Ancestor(ref) {
				images[id] = true
			}
		}
	}

	var idMatches map[string]bool
	if ids := args.Get("id"); len(ids) > 0 {
		idMatches = map[string]bool{}
		for _, prefix := range ids {
			if id, ok := uniquePrefix(sorted, prefix); ok {
				idMatches[id] = true
			}
		}
	}

	// Without filters (the usual poll) every container passes them.
	filtered := args.Len() > 0
	n := 0 // listed so far
	for _, c := range sorted {
		// Containers up to and including `before` are left out; the
		// list stops at `since`.
		if before != nil {
			if c.ID == before.ID {
				before = nil
			}
			continue
		}
		if since != nil && c.ID == since.ID {
			break
		}
		if !all && opts.Limit <= 0 && !c.State.Running {
			continue
		}
		if filtered && !matchBeforeLimit(c, args, idMatches, taskFilter && isTask) {
			continue
		}
		if opts.Limit > 0 && n == opts.Limit {
			break
		}
		if filtered && !matchAfterLimit(c, args, exited, images, publish, expose) {
			continue
		}
		yield(c)
		n++
	}
	return nil
}

// matchBeforeLimit reports whether c passes the filters that count
// towards limit (as in dockerd, which applies the others after it).
func matchBeforeLimit(c *Container, args filters.Args, idMatches map[string]bool, task bool) bool {
	if !args.Match("name", c.Name) && !args.Match("name", strings.TrimPrefix(c.Name, "/")) {
		return false
	}
	if idMatches != nil && !idMatches[c.ID] || !args.Match("id", c.ID) {
		return false
	}
	if task {
		return false // no container is a swarm task
	}
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if !args.MatchKVList("label", labels) {
		return false
	}
	if !args.Match("isolation", isolation(c)) {
		return false
	}
	return true
}

// matchAfterLimit reports whether c passes the filters applied after
// limit.
func matchAfterLimit(c *Container, args filters.Args, exited []int, images map[string]bool, publish, expose map[string]bool) bool {
	if len(exited) > 0 && !(slices.Contains(exited, c.State.ExitCode) && !c.State.Running && !c.State.StartedAt.IsZero()) {
		return false
	}
	if !args.Match("status", c.State.Status()) {
		return false
	}
	if !args.ExactMatch("health", c.State.HealthStatus()) {
		return false
	}
	if args.Contains("volume") && !hasVolume(c, args.Get("volume")) {
		return false
	}
	if images != nil && !images[c.ImageID] {
		return false
	}
	if args.Contains("network") && !onNetwork(c, args.Get("network")) {
		return false
	}
	if (len(publish) > 0 || len(expose) > 0) && !matchPorts(c, publish, expose) {
		return false
	}
	return true
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// findIn resolves a before/since value against the listed containers: full
// ID, name with or without slash, then a unique ID prefix.
func findIn(list []*Container, ref string) (*Container, error) {
	name := "/" + strings.TrimPrefix(ref, "/")
	for _, c := range list {
		if c.ID == ref || c.Name == name {
			return c, nil
		}
	}
	if id, ok := uniquePrefix(list, ref); ok {
		for _, c := range list {
			if c.ID == id {
				return c, nil
			}
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
}

// uniquePrefix returns the one ID in list that starts with prefix.
func uniquePrefix(list []*Container, prefix string) (string, bool) {
	if prefix == "" {
		return "", false
	}
	found := ""
	for _, c := range list {
		if strings.HasPrefix(c.ID, prefix) {
			if found != "" && found != c.ID {
				return "", false
			}
			found = c.ID
		}
	}
	return found, found != ""
}

func isolation(c *Container) string {
	if c.HostConfig == nil || c.HostConfig.Isolation == "" {
		return "default"
	}
	return strings.ToLower(c.HostConfig.Isolation)
}

// hasVolume reports whether c mounts one of values, by volume name, source
// or destination. Without MountPoints from the engine it reads the mounts
// the client asked for (Binds and Mounts of HostConfig).
func hasVolume(c *Container, values []string) bool {
	mounts := c.MountPoints
	if len(mounts) == 0 && c.HostConfig != nil {
		mounts = requestedMounts(c.HostConfig)
	}
	for _, m := range mounts {
		for _, v := range values {
			if v == m.Destination || (m.Name != "" && v == m.Name) || (m.Name == "" && v == m.Source) {
				return true
			}
		}
	}
	return false
}

// requestedMounts turns HostConfig.Binds ("src:dst[:opts]") and Mounts into
// mount points, naming volumes (a bind source that is not a path).
func requestedMounts(hc *types.HostConfig) []types.MountPoint {
	var out []types.MountPoint
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		m := types.MountPoint{Source: parts[0], Destination: parts[1]}
		if !strings.HasPrefix(parts[0], "/") {
			m.Type, m.Name = types.MountTypeVolume, parts[0]
		} else {
			m.Type = types.MountTypeBind
		}
		out = append(out, m)
	}
	for _, mt := range hc.Mounts {
		m := types.MountPoint{Type: mt.Type, Source: mt.Source, Destination: mt.Target}
		if mt.Type == types.MountTypeVolume {
			m.Name = mt.Source
		}
		out = append(out, m)
	}
	return out
}

// onNetwork reports whether c is attached to one of the networks named (by
// name or network ID prefix). Before the engine records endpoints, the
// network mode stands for the network ("default" being "bridge").
func onNetwork(c *Container, values []string) bool {
	if c.NetworkSettings != nil && len(c.NetworkSettings.Networks) > 0 {
		for _, v := range values {
			if _, ok := c.NetworkSettings.Networks[v]; ok {
				return true
			}
			for _, ep := range c.NetworkSettings.Networks {
				if ep != nil && v != "" && strings.HasPrefix(ep.NetworkID, v) {
					return true
				}
			}
		}
		return false
	}
	if c.HostConfig == nil {
		return false
	}
	mode := c.HostConfig.NetworkMode
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	return slices.Contains(values, mode)
}

// portFilter parses the values of publish or expose: "80", "80/udp",
// "8000-8010/tcp", into a set of "port/proto".
func portFilter(args filters.Args, key string) (map[string]bool, error) {
	set := map[string]bool{}
	err := args.WalkValues(key, func(v string) error {
		if strings.Contains(v, ":") {
			return errdefs.InvalidParameter(fmt.Errorf("filter for '%s' should not contain ':': %s", key, v))
		}
		ports, proto, _ := strings.Cut(v, "/")
		if proto == "" {
			proto = "tcp"
		}
		lo, hi, isRange := strings.Cut(ports, "-")
		start, ok1 := parsePortNumber(lo)
		end := start
		ok2 := true
		if isRange {
			end, ok2 = parsePortNumber(hi)
		}
		if !ok1 || !ok2 || end < start {
			return errdefs.InvalidParameter(fmt.Errorf("error while looking up for %s %s: invalid port", key, v))
		}
		for p := int(start); p <= int(end); p++ {
			set[strconv.Itoa(p)+"/"+strings.ToLower(proto)] = true
		}
		return nil
	})
	return set, err
}

func matchPorts(c *Container, publish, expose map[string]bool) bool {
	for _, p := range c.ports() {
		if publish[fmt.Sprintf("%d/%s", p.PublicPort, p.Type)] || expose[fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)] {
			return true
		}
	}
	return false
}
