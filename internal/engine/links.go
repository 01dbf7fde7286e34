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
// as ALIAS_* variables. Links are resolved by name at each start.

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

// checkLinks validates the links of a create request and returns them as
// (child name, alias) pairs; links on a user-defined network are not
// kept, as dockerd keeps only those of the default bridge.
func (e *Engine) checkLinks(hc *types.HostConfig) ([][2]string, error) {
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
	var out [][2]string
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		child, err := e.linkChild(name)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{child.Name, alias})
	}
	return out, nil
}

// storedLinks is the HostConfig.Links of parent for links: one
// "/child:/parent/alias" each, the first of equal aliases kept.
func storedLinks(parent string, links [][2]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range links {
		full := path.Join(parent, l[1])
		if seen[full] {
			continue
		}
		seen[full] = true
		out = append(out, l[0]+":"+full)
	}
	return out
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
	for _, l := range c.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		full := path.Join(c.Name, alias)
		child, err := e.linkChild(name)
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
	parent.HostConfig.Links = kept
	if err := e.containers.Save(parent); err != nil {
		return err
	}
	if parent.State.Running {
		if err := e.rewriteHosts(parent); err != nil {
			e.logger.Debug("could not update network to remove link", "link", alias, "error", err)
		}
	}
	return nil
}

// dropLinksTo removes the links to a removed container from the
// containers that had them, as dockerd forgets them with the container.
// Only containers whose saved record has such a link are locked: a
// removal must not wait for the lock of every other container.
func (e *Engine) dropLinksTo(name string) {
	linksTo := func(links []string) bool {
		for _, l := range links {
			if child, _, err := parseLink(l); err == nil && "/"+child == name {
				return true
			}
		}
		return false
	}
	for _, v := range e.containers.Snapshots() {
		if v.HostConfig == nil || !linksTo(v.HostConfig.Links) {
			continue
		}
		p, err := e.containers.Get(v.ID)
		if err != nil {
			continue
		}
		p.Lock()
		var kept []string
		for _, l := range p.HostConfig.Links {
			if child, _, err := parseLink(l); err != nil || "/"+child != name {
				kept = append(kept, l)
			}
		}
		if len(kept) != len(p.HostConfig.Links) {
			p.HostConfig.Links = kept
			if err := e.containers.Save(p); err != nil {
				e.logger.Warn("forgetting the links to a removed container", "container", p.ID, "error", err)
			}
		}
		p.Unlock()
	}
}
