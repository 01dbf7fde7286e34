package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/network"
	"skiffd/internal/network/etcfiles"
)

// Legacy links (--link name:alias) on the default bridge, as dockerd
// keeps them: the parent's HostConfig.Links holds "/child:/parent/alias"
// (what inspect shows), its /etc/hosts names the child by alias, hostname
// and name, and its process gets the child's ports, name and environment
// as ALIAS_* variables. Links are resolved at each start: by the child's
// ID, kept with the parent's engine data (runtimeData.LinkIDs), so that
// a link follows a renamed child as dockerd's link graph does, and by name
// for records written before the IDs were kept. A rename rewrites the
// names in HostConfig.Links (the child's in its parents, the parent's in
// its own), and the daemon's start repairs those a kill -9 in the middle
// of a rename left behind (repairLinks).

// dockerd's texts for links with a network mode that cannot have them.
const (
	msgHostNetworkAndLinks      = "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
	msgContainerNetworkAndLinks = "conflicting options: container type network can't be used with links. This would result in undefined behavior"
)

// parseLink splits a --link value into the child's name and the alias,
// accepting the stored "/child:/parent/alias" form too.
func parseLink(val string) (name, alias string, err error) {
	if val == "" {
		return "", "", errors.New("empty string specified for links")
	}
	parts := strings.SplitN(val, ":", 3)
	switch {
	case len(parts) > 2:
		return "", "", errors.New("bad format for links: " + val)
	case len(parts) == 1:
		return val, val, nil
	case strings.HasPrefix(parts[0], "/"):
		_, a := path.Split(parts[1])
		return parts[0][1:], a, nil
	}
	return parts[0], parts[1], nil
}

// linkChild finds the container a link names, following container:
// network modes to the container that owns the namespace.
func (e *Engine) linkChild(name string) (*container.Container, error) {
	child, err := e.containers.Get(name)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("could not get container for %s: %w", name, err))
	}
	for i := 0; i < 16; i++ {
		child.Lock()
		mode := child.HostConfig.NetworkMode
		child.Unlock()
		if mode == network.NameHost {
			return nil, errdefs.InvalidParameter(errors.New(msgHostNetworkAndLinks))
		}
		owner, ok := strings.CutPrefix(mode, "container:")
		if !ok {
			return child, nil
		}
		if child, err = e.containers.Get(owner); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("could not get container for %s: %w", owner, err))
		}
	}
	return child, nil
}

// link is a link of a create request: the child's name and ID, the alias.
type link struct{ name, id, alias string }

// checkLinks validates the links of a create request; links on a
// user-defined network are not kept, as dockerd keeps only those of the
// default bridge.
func (e *Engine) checkLinks(hc *types.HostConfig) ([]link, error) {
	if len(hc.Links) == 0 {
		return nil, nil
	}
	mode := hc.NetworkMode
	switch {
	case mode == network.NameHost:
		return nil, errdefs.InvalidParameter(errors.New(msgHostNetworkAndLinks))
	case strings.HasPrefix(mode, "container:"):
		return nil, errdefs.InvalidParameter(errors.New(msgContainerNetworkAndLinks))
	case networkName(mode) != network.NameBridge:
		return nil, nil
	}
	var out []link
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		child, err := e.linkChild(name)
		if err != nil {
			return nil, err
		}
		out = append(out, link{name: child.Name, id: child.ID, alias: alias})
	}
	return out, nil
}

// storeLinks sets the links of a new container c: HostConfig.Links, one
// "/child:/parent/alias" each, the first of equal aliases kept, and the
// children's IDs by alias.
func storeLinks(c *container.Container, links []link) error {
	c.HostConfig.Links = nil
	if len(links) == 0 {
		return nil
	}
	ids := map[string]string{}
	for _, l := range links {
		if _, seen := ids[l.alias]; seen {
			continue
		}
		ids[l.alias] = l.id
		c.HostConfig.Links = append(c.HostConfig.Links, l.name+":"+path.Join(c.Name, l.alias))
	}
	rd := loadRuntimeData(c)
	rd.LinkIDs = ids
	return saveRuntimeData(c, rd)
}

// linkNamed finds the child of parent's link: by the ID kept for alias,
// else by the name the link gives.
func (e *Engine) linkNamed(ids map[string]string, name, alias string) (*container.Container, error) {
	if id := ids[alias]; id != "" {
		if child, err := e.linkChild(id); err == nil {
			return child, nil
		}
	}
	return e.linkChild(name)
}

// relink rewrites the links of c (locked) as "/child:/parent/alias" with
// parent as c's name and new as the name of the child named old or with
// ID id. It reports whether a link changed.
func relink(c *container.Container, parent, id, old, new string) bool {
	ids := loadRuntimeData(c).LinkIDs
	changed := false
	for i, l := range c.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		name = "/" + strings.TrimPrefix(name, "/")
		if old != "" && (name == old || (id != "" && ids[alias] == id)) {
			name = new
		}
		if v := name + ":" + path.Join(parent, alias); v != l {
			c.HostConfig.Links[i] = v
			changed = true
		}
	}
	return changed
}

// renameLinks makes the links to child (renamed from old; its lock not
// held) name it by its new name in every parent. Only the containers
// whose saved record has a link to it are locked.
func (e *Engine) renameLinks(child *container.Container, old, new string) {
	for _, v := range e.containers.Snapshots() {
		if v.ID == child.ID || v.HostConfig == nil || !linksTo(v, child.ID, old) {
			continue
		}
		p, err := e.containers.Get(v.ID)
		if err != nil {
			continue
		}
		p.Lock()
		if relink(p, p.Name, child.ID, old, new) {
			if err := e.containers.Save(p); err != nil {
				e.logger.Warn("renaming the links to a renamed container", "container", p.ID, "error", err)
			}
		}
		p.Unlock()
	}
}

// linksTo reports whether container v (a snapshot) has a link to the
// container with ID id or name name.
func linksTo(v *container.Container, id, name string) bool {
	if len(v.HostConfig.Links) == 0 {
		return false
	}
	ids := loadRuntimeData(v).LinkIDs
	for _, l := range v.HostConfig.Links {
		if child, alias, err := parseLink(l); err == nil && ("/"+strings.TrimPrefix(child, "/") == name || (id != "" && ids[alias] == id)) {
			return true
		}
	}
	return false
}

// repairLinks runs at the daemon's start, before any request: a daemon
// killed in the middle of a rename may have left a parent's links with
// the child's old name (the child's record was saved first); the IDs say
// which container each link is to.
func (e *Engine) repairLinks() {
	for _, v := range e.containers.Snapshots() {
		if v.HostConfig == nil || len(v.HostConfig.Links) == 0 || len(loadRuntimeData(v).LinkIDs) == 0 {
			continue
		}
		p, err := e.containers.Get(v.ID)
		if err != nil {
			continue
		}
		p.Lock()
		changed := false
		for alias, id := range loadRuntimeData(p).LinkIDs {
			child, err := e.containers.Get(id)
			if err != nil {
				continue
			}
			child.Lock()
			name := child.Name
			child.Unlock()
			for _, l := range p.HostConfig.Links {
				if n, a, err := parseLink(l); err == nil && a == alias && "/"+strings.TrimPrefix(n, "/") != name {
					changed = relink(p, p.Name, id, "/"+strings.TrimPrefix(n, "/"), name) || changed
				}
			}
		}
		if changed {
			if err := e.containers.Save(p); err != nil {
				e.logger.Warn("repairing the links of a container", "container", p.ID, "error", err)
			}
		}
		p.Unlock()
	}
}

// legacyLink is one resolved link of a container being started.
type legacyLink struct {
	full     string // "/parent/alias"
	alias    string
	name     string // the child's name, with its slash
	hostname string
	ip       netip.Addr
	env      []string
	ports    []string
}

// legacyLinks resolves c's links for its start (c locked); a child that
// is gone, stopped or off the default bridge fails the start as it does
// with dockerd.
func (e *Engine) legacyLinks(c *container.Container) ([]legacyLink, error) {
	if len(c.HostConfig.Links) == 0 || c.NetworkSettings == nil || c.NetworkSettings.Networks[network.NameBridge] == nil {
		return nil, nil
	}
	var out []legacyLink
	ids := loadRuntimeData(c).LinkIDs
	for _, l := range c.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		full := path.Join(c.Name, alias)
		child, err := e.linkNamed(ids, name, alias)
		if err != nil {
			return nil, fmt.Errorf("Cannot link to a non running container: /%s AS %s", strings.TrimPrefix(name, "/"), full)
		}
		if child == c {
			continue
		}
		child.Lock()
		ll := legacyLink{full: full, alias: alias, name: child.Name, hostname: child.Config.Hostname, env: slices.Clone(child.Config.Env)}
		for p := range child.Config.ExposedPorts {
			ll.ports = append(ll.ports, p)
		}
		running := child.State.Running
		var ep *types.EndpointSettings
		if child.NetworkSettings != nil {
			ep = child.NetworkSettings.Networks[network.NameBridge]
		}
		child.Unlock()
		if !running {
			return nil, fmt.Errorf("Cannot link to a non running container: %s AS %s", ll.name, full)
		}
		if ep == nil {
			return nil, fmt.Errorf("Cannot link to %s, as it does not belong to the default network", ll.name)
		}
		ll.ip, _ = netip.ParseAddr(ep.IPAddress)
		out = append(out, ll)
	}
	slices.SortFunc(out, func(a, b legacyLink) int { return strings.Compare(a.full, b.full) })
	return out, nil
}

// linkHosts are the /etc/hosts entries of links: the alias, the child's
// hostname and, when it differs from the alias, its name.
func linkHosts(links []legacyLink) []etcfiles.Host {
	var out []etcfiles.Host
	for _, l := range links {
		if !l.ip.IsValid() {
			continue
		}
		names := l.alias + " " + l.hostname
		if l.alias != l.name[1:] {
			names += " " + l.name[1:]
		}
		out = append(out, etcfiles.Host{IP: l.ip, Names: names})
	}
	return out
}

// linkPort is an exposed port "80/tcp" split up.
type linkPort struct {
	num   int
	proto string
}

// linkEnv is the environment dockerd gives a container for its links:
// ALIAS_PORT (the lowest port, TCP first), per port ALIAS_PORT_<n>_<PROTO>
// with _ADDR, _PORT and _PROTO, per run of consecutive ports the _START,
// _PORT_START, _END and _PORT_END variables, ALIAS_NAME, and the child's
// environment (but HOME and PATH) as ALIAS_ENV_*.
func linkEnv(links []legacyLink) []string {
	var env []string
	for _, l := range links {
		alias := strings.ReplaceAll(strings.ToUpper(l.alias), "-", "_")
		ip := l.ip.String()
		var ports []linkPort
		for _, p := range l.ports {
			n, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			num, err := strconv.Atoi(n)
			if err != nil {
				continue
			}
			ports = append(ports, linkPort{num, proto})
		}
		slices.SortFunc(ports, func(a, b linkPort) int {
			switch {
			case a.proto == b.proto:
				return cmp.Compare(a.num, b.num)
			case a.proto == "tcp":
				return -1
			case b.proto == "tcp":
				return 1
			}
			return cmp.Compare(a.proto, b.proto)
		})
		var start, end linkPort
		for i, p := range ports {
			if i == 0 {
				start, end = p, p
				env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", alias, p.proto, ip, p.num))
			}
			prefix := fmt.Sprintf("%s_PORT_%d_%s", alias, p.num, strings.ToUpper(p.proto))
			env = append(env,
				fmt.Sprintf("%s=%s://%s:%d", prefix, p.proto, ip, p.num),
				fmt.Sprintf("%s_ADDR=%s", prefix, ip),
				fmt.Sprintf("%s_PORT=%d", prefix, p.num),
				fmt.Sprintf("%s_PROTO=%s", prefix, p.proto))
			if p.num == end.num+1 && p.proto == end.proto {
				end = p
				if i < len(ports)-1 {
					continue
				}
			}
			if end != start {
				prefix = fmt.Sprintf("%s_PORT_%d_%s", alias, start.num, strings.ToUpper(start.proto))
				env = append(env,
					fmt.Sprintf("%s_START=%s://%s:%d", prefix, start.proto, ip, start.num),
					fmt.Sprintf("%s_PORT_START=%d", prefix, start.num),
					fmt.Sprintf("%s_END=%s://%s:%d", prefix, end.proto, ip, end.num),
					fmt.Sprintf("%s_PORT_END=%d", prefix, end.num))
			}
			start, end = p, p
		}
		env = append(env, fmt.Sprintf("%s_NAME=%s", alias, l.full))
		for _, v := range l.env {
			k, val, ok := strings.Cut(v, "=")
			if !ok || k == "HOME" || k == "PATH" {
				continue
			}
			env = append(env, fmt.Sprintf("%s_ENV_%s=%s", alias, k, val))
		}
	}
	return env
}

// ContainerRemoveLink answers DELETE /containers/{parent}/{alias}?link=1:
// it removes the link named "/parent/alias" from the parent (and its
// /etc/hosts entry when the parent runs), leaving both containers.
func (e *Engine) ContainerRemoveLink(_ context.Context, name string) error {
	full := "/" + strings.TrimPrefix(name, "/")
	parentName, alias := path.Split(full)
	if parentName == "/" {
		if _, err := e.get(full); err != nil {
			return err
		}
		return errors.New("Conflict, cannot remove the default link name.")
	}
	parentName = strings.TrimSuffix(parentName, "/")
	parent, err := e.get(parentName)
	if err != nil {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", strings.TrimPrefix(full, "/")))
	}
	parent.Lock()
	defer parent.Unlock()
	kept := parent.HostConfig.Links[:0:0]
	found := false
	for _, l := range parent.HostConfig.Links {
		if _, a, err := parseLink(l); err == nil && a == alias && !found {
			found = true
			continue
		}
		kept = append(kept, l)
	}
	if !found {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", strings.TrimPrefix(full, "/")))
	}
	old, oldRuntime := parent.HostConfig.Links, parent.Runtime
	parent.HostConfig.Links = kept
	if rd := loadRuntimeData(parent); rd.LinkIDs[alias] != "" {
		delete(rd.LinkIDs, alias)
		if err := saveRuntimeData(parent, rd); err != nil {
			parent.HostConfig.Links = old
			return err
		}
	}
	if err := e.containers.Save(parent); err != nil {
		parent.HostConfig.Links, parent.Runtime = old, oldRuntime
		return err
	}
	if parent.State.Running {
		if err := e.rewriteHosts(parent); err != nil {
			e.logger.Debug("could not update network to remove link", "link", alias, "error", err)
		}
	}
	return nil
}

// dropLinksTo removes the links to a removed container (ID id, name
// name) from the containers that had them, as dockerd forgets them with
// the container. Only containers whose saved record has such a link are
// locked: a removal must not wait for the lock of every other container.
func (e *Engine) dropLinksTo(id, name string) {
	for _, v := range e.containers.Snapshots() {
		if v.HostConfig == nil || !linksTo(v, id, name) {
			continue
		}
		p, err := e.containers.Get(v.ID)
		if err != nil {
			continue
		}
		p.Lock()
		rd := loadRuntimeData(p)
		var kept []string
		for _, l := range p.HostConfig.Links {
			child, alias, err := parseLink(l)
			if err == nil && ("/"+strings.TrimPrefix(child, "/") == name || rd.LinkIDs[alias] == id) {
				delete(rd.LinkIDs, alias)
				continue
			}
			kept = append(kept, l)
		}
		if len(kept) != len(p.HostConfig.Links) {
			p.HostConfig.Links = kept
			err := saveRuntimeData(p, rd)
			if err == nil {
				err = e.containers.Save(p)
			}
			if err != nil {
				e.logger.Warn("forgetting the links to a removed container", "container", p.ID, "error", err)
			}
		}
		p.Unlock()
	}
}
