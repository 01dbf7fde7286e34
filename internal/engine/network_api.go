package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/netlink"
	"skiffd/internal/network"
	"skiffd/internal/network/ipam"
	"skiffd/internal/timestamp"
)

// errNoNetworking answers a network change when networking is off (an
// engine made without NetworkOptions.Bridge).
func errNoNetworking() error {
	return errdefs.NotImplemented(errors.New("networking is off"))
}

// networkLog records a network event.
func (e *Engine) networkLog(nw network.Network, action string, extra map[string]string) {
	attrs := map[string]string{"name": nw.Name, "type": nw.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	e.events.Log(action, types.NetworkEventType, types.EventActor{ID: nw.ID, Attributes: attrs})
}

// resource is the API form of nw, with its attached containers.
func (e *Engine) resource(nw network.Network, withContainers bool) types.NetworkResource {
	r := types.NetworkResource{
		Name: nw.Name, ID: nw.ID, Created: nw.Created, Scope: nw.Scope, Driver: nw.Driver,
		EnableIPv4: nw.EnableIPv4, EnableIPv6: nw.EnableIPv6,
		IPAM:     types.NetworkIPAM{Driver: nw.IPAM.Driver, Options: nw.IPAM.Options, Config: []types.NetworkIPAMConfig{}},
		Internal: nw.Internal, Attachable: nw.Attachable, Ingress: nw.Ingress,
		ConfigFrom: types.NetworkConfigReference{Network: nw.ConfigFrom.Network}, ConfigOnly: nw.ConfigOnly,
		Containers: map[string]types.NetworkContainer{}, Options: nw.Options, Labels: nw.Labels,
	}
	for _, c := range nw.IPAM.Config {
		r.IPAM.Config = append(r.IPAM.Config, types.NetworkIPAMConfig(c))
	}
	if withContainers {
		for _, c := range e.containers.List() {
			c.Lock()
			if c.State.Running && c.NetworkSettings != nil {
				for _, ep := range c.NetworkSettings.Networks {
					if ep != nil && ep.NetworkID == nw.ID && ep.EndpointID != "" {
						nc := types.NetworkContainer{Name: strings.TrimPrefix(c.Name, "/"), EndpointID: ep.EndpointID, MacAddress: ep.MacAddress}
						if ep.IPAddress != "" {
							nc.IPv4Address = fmt.Sprintf("%s/%d", ep.IPAddress, ep.IPPrefixLen)
						}
						if ep.GlobalIPv6Address != "" {
							nc.IPv6Address = fmt.Sprintf("%s/%d", ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen)
						}
						r.Containers[c.ID] = nc
					}
				}
			}
			c.Unlock()
		}
	}
	return r
}

// users lists the containers (name, ID) with an endpoint on network id.
func (e *Engine) networkUsers(id string) [][2]string {
	var out [][2]string
	for _, c := range e.containers.List() {
		c.Lock()
		if c.NetworkSettings != nil {
			for _, ep := range c.NetworkSettings.Networks {
				if ep != nil && ep.NetworkID == id {
					out = append(out, [2]string{strings.TrimPrefix(c.Name, "/"), c.ID})
					break
				}
			}
		}
		c.Unlock()
	}
	return out
}

func (e *Engine) networkMatches(nw network.Network, ef filters.Args) bool {
	if ef.Contains("name") && !ef.Match("name", nw.Name) {
		return false
	}
	if ef.Contains("id") && !ef.Match("id", nw.ID) {
		return false
	}
	if ef.Contains("driver") && !ef.ExactMatch("driver", nw.Driver) {
		return false
	}
	if ef.Contains("scope") && !ef.ExactMatch("scope", nw.Scope) {
		return false
	}
	if ef.Contains("label") && !ef.MatchKVList("label", nw.Labels) {
		return false
	}
	if ef.Contains("type") {
		t := "custom"
		if network.IsPredefined(nw.Name) {
			t = "builtin"
		}
		if !ef.ExactMatch("type", t) {
			return false
		}
	}
	if ef.Contains("dangling") {
		d, err := ef.GetBoolOrDefault("dangling", false)
		if err == nil && d != (len(e.networkUsers(nw.ID)) == 0 && !network.IsPredefined(nw.Name)) {
			return false
		}
	}
	return true
}

// Networks answers GET /networks.
func (e *Engine) Networks(ctx context.Context, ef filters.Args) ([]types.NetworkResource, error) {
	if err := ef.Validate(map[string]bool{"dangling": true, "driver": true, "id": true, "label": true, "name": true, "scope": true, "type": true}); err != nil {
		return nil, err
	}
	if e.nets == nil {
		return []types.NetworkResource{}, nil
	}
	var out []types.NetworkResource
	for _, nw := range e.nets.store.List() {
		if e.networkMatches(nw, ef) {
			out = append(out, e.resource(nw, false))
		}
	}
	return out, nil
}

// NetworkInspect answers GET /networks/{id}.
func (e *Engine) NetworkInspect(ctx context.Context, term string) (*types.NetworkResource, error) {
	if e.nets == nil {
		return nil, network.NotFoundError(term)
	}
	nw, err := e.nets.store.Find(term)
	if err != nil {
		return nil, err
	}
	r := e.resource(nw, true)
	return &r, nil
}

// NetworkCreate answers POST /networks/create: the record, the address
// ranges (a free subnet from the pools when none is given), the host
// bridge and the rules.
func (e *Engine) NetworkCreate(ctx context.Context, req types.NetworkCreateRequest) (*types.NetworkCreateResponse, error) {
	n := e.nets
	if n == nil {
		return nil, errNoNetworking()
	}
	if req.Name == "" {
		return nil, errdefs.InvalidParameter(errors.New("network name is required"))
	}
	if network.IsPredefined(req.Name) {
		return nil, errdefs.Forbidden(fmt.Errorf("operation is not permitted on predefined %s network ", req.Name))
	}
	if req.Driver == "" {
		req.Driver = network.DriverBridge
	}
	if req.Driver != network.DriverBridge && req.Driver != network.DriverMacvlan {
		return nil, errdefs.NotFound(fmt.Errorf("could not find plugin %s in v1 plugin registry: plugin not found", req.Driver))
	}
	if _, err := n.store.Find(req.Name); err == nil {
		return nil, errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		// Every endpoint gets an IPv4 address; an IPv6-only network is
		// refused rather than created with IPv4 anyway.
		return nil, errdefs.NotImplemented(errors.New("skiffd does not support IPv6-only networks yet (EnableIPv4=false)"))
	}
	for _, k := range []string{network.OptEnableICC, network.OptEnableIPMasq} {
		if v, ok := req.Options[k]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("failed to parse %s value: %v (%v)", k, v, err))
			}
		}
	}
	// Bridge options skiffd does not carry out are refused, not stored
	// and ignored: each would leave the network otherwise than asked.
	for _, k := range []string{"com.docker.network.bridge.gateway_mode_ipv4", "com.docker.network.bridge.gateway_mode_ipv6"} {
		if v, ok := req.Options[k]; ok && v != "nat" {
			return nil, errdefs.NotImplemented(fmt.Errorf("skiffd does not support %s=%s yet (only nat)", k, v))
		}
	}
	if v := req.Options["com.docker.network.bridge.inhibit_ipv4"]; v != "" && !optionFalse(req.Options, "com.docker.network.bridge.inhibit_ipv4") {
		return nil, errdefs.NotImplemented(fmt.Errorf("skiffd does not support com.docker.network.bridge.inhibit_ipv4=%s yet", v))
	}
	if v, ok := req.Options[network.OptHostBindingIPv4]; ok {
		if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
			return nil, errdefs.InvalidParameter(fmt.Errorf("failed to parse %s value: %v (not an IPv4 address)", network.OptHostBindingIPv4, v))
		}
	}
	nw := network.Network{Name: req.Name, Driver: req.Driver, Scope: network.ScopeLocal, EnableIPv4: true,
		Internal: req.Internal, Attachable: req.Attachable, Options: req.Options, Labels: req.Labels}
	macvlan := nw.Driver == network.DriverMacvlan
	if macvlan {
		if err := n.checkMacvlan(nw); err != nil {
			return nil, err
		}
	}
	nw.EnableIPv6 = req.EnableIPv6 != nil && *req.EnableIPv6
	if req.IPAM != nil {
		nw.IPAM.Driver, nw.IPAM.Options = req.IPAM.Driver, req.IPAM.Options
		for _, c := range req.IPAM.Config {
			nw.IPAM.Config = append(nw.IPAM.Config, network.IPAMConfig(c))
		}
	}
	ranges, err := nw.IPAM.Ranges()
	if err != nil {
		return nil, err
	}
	if err := ipam.ValidateConfig(ranges, nw.EnableIPv6); err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, o := range n.store.List() {
		for _, c := range o.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, p)
			}
		}
	}
	ranges = slices.DeleteFunc(ranges, func(r ipam.Range) bool { return r.Subnet.Addr().Is6() && !nw.EnableIPv6 })
	has4 := slices.ContainsFunc(ranges, func(r ipam.Range) bool { return r.Subnet.Addr().Is4() })
	has6 := slices.ContainsFunc(ranges, func(r ipam.Range) bool { return r.Subnet.Addr().Is6() })
	for _, r := range ranges {
		if err := ipam.CheckOverlap(r.Subnet, used); err != nil {
			return nil, err
		}
	}
	if !has4 {
		p, err := n.pickSubnet(4, "")
		if err != nil {
			return nil, err
		}
		ranges = append([]ipam.Range{{Subnet: p}}, ranges...)
	}
	if nw.EnableIPv6 && !has6 {
		// As dockerd 27+: an IPv6 network without an IPv6 subnet gets
		// one from the pools (the ULA pool unless one is configured).
		p, err := n.pickSubnet(6, "")
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, ipam.Range{Subnet: p})
	}
	// Inspect lists the IPv4 configs, then the IPv6 ones, as dockerd.
	slices.SortStableFunc(ranges, func(a, b ipam.Range) int {
		return cmp.Compare(a.Subnet.Addr().BitLen(), b.Subnet.Addr().BitLen())
	})
	var b [32]byte
	rand.Read(b[:])
	nw.ID = hex.EncodeToString(b[:])
	if macvlan {
		// The gateway is the LAN's router, which only the user knows:
		// without one, the containers get no default route.
		for i := range ranges {
			ranges[i].NoGateway = true
		}
		if nw.CreatedParent, err = n.makeMacvlanParent(nw); err != nil {
			return nil, err
		}
	}
	got, err := n.ipam.Create(nw.ID, nw.Name, ranges)
	if err != nil {
		if macvlan {
			n.removeMacvlanParent(nw)
		}
		return nil, err
	}
	nw.IPAM.SetRanges(got)
	created, err := n.store.Create(nw)
	if err != nil {
		n.ipam.Delete(nw.ID)
		if macvlan {
			n.removeMacvlanParent(nw)
		}
		return nil, err
	}
	nw = created
	if _, err := n.ensureBridge(nw); err != nil {
		e.destroyNetwork(nw)
		return nil, errdefs.System(fmt.Errorf("create the bridge of network %s: %w", nw.Name, err))
	}
	// The first IPv6 network brings the ip6 table, built whole with this
	// network's rules in it.
	rebuilt, err := n.syncFamilies()
	if err == nil && !rebuilt {
		err = n.addNetworkRules(nw.ID)
	}
	if err != nil {
		e.destroyNetwork(nw)
		return nil, errdefs.System(fmt.Errorf("nf_tables rules of network %s: %w", nw.Name, err))
	}
	e.networkLog(nw, "create", nil)
	return &types.NetworkCreateResponse{ID: nw.ID}, nil
}

// destroyNetwork removes a network's record, allocations, bridge and
// rules.
func (e *Engine) destroyNetwork(nw network.Network) error {
	n := e.nets
	if err := n.store.Delete(nw.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	n.ipam.Delete(nw.ID)
	n.mu.Lock()
	bn := n.bridges[nw.ID]
	delete(n.bridges, nw.ID)
	n.mu.Unlock()
	if nw.Driver == network.DriverMacvlan {
		if err := n.removeMacvlanParent(nw); err != nil {
			e.logger.Warn("deleting a macvlan network's parent interface", "network", nw.Name, "error", err)
		}
	} else if bn != nil {
		if err := n.host.DeleteLink(bn.index); err != nil && !netlink.IsNotFound(err) {
			e.logger.Warn("deleting a network's bridge", "network", nw.Name, "error", err)
		}
	}
	if err := n.removeNetworkRules(nw.ID); err != nil {
		e.logger.Warn("removing a network's nf_tables rules", "network", nw.Name, "error", err)
	}
	if _, err := n.syncFamilies(); err != nil {
		e.logger.Warn("removing the ip6 nf_tables table", "error", err)
	}
	return nil
}

// NetworkRemove answers DELETE /networks/{id}.
func (e *Engine) NetworkRemove(ctx context.Context, term string) error {
	n := e.nets
	if n == nil {
		return network.NotFoundError(term)
	}
	nw, err := n.store.Find(term)
	if err != nil {
		return err
	}
	if network.IsPredefined(nw.Name) {
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", nw.Name))
	}
	if users := e.networkUsers(nw.ID); len(users) > 0 {
		return network.ActiveEndpointsError(nw.Name, users)
	}
	if err := e.destroyNetwork(nw); err != nil {
		return err
	}
	e.networkLog(nw, "destroy", nil)
	return nil
}

// NetworksPrune answers POST /networks/prune: user-defined networks no
// container uses, created before the until filter if given.
func (e *Engine) NetworksPrune(ctx context.Context, ef filters.Args) (*types.NetworksPruneReport, error) {
	if err := ef.Validate(map[string]bool{"label": true, "label!": true, "until": true}); err != nil {
		return nil, err
	}
	var until time.Time
	switch vals := ef.Get("until"); {
	case len(vals) > 1:
		return nil, errdefs.InvalidParameter(errors.New("more than one until filter specified"))
	case len(vals) == 1:
		t, err := timestamp.Parse(vals[0], time.Now())
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("failed to parse value as time or duration: %q", vals[0]))
		}
		until = t
	}
	rep := &types.NetworksPruneReport{}
	if e.nets == nil {
		return rep, nil
	}
	for _, nw := range e.nets.store.List() {
		if network.IsPredefined(nw.Name) || len(e.networkUsers(nw.ID)) > 0 {
			continue
		}
		if !until.IsZero() && !nw.Created.Before(until) {
			continue
		}
		if ef.Contains("label") && !ef.MatchKVList("label", nw.Labels) {
			continue
		}
		if ef.Contains("label!") && ef.MatchKVList("label!", nw.Labels) {
			continue
		}
		if err := e.destroyNetwork(nw); err != nil {
			return nil, err
		}
		e.networkLog(nw, "destroy", nil)
		rep.NetworksDeleted = append(rep.NetworksDeleted, nw.Name)
	}
	return rep, nil
}

// sharedNetnsRefusal is dockerd's refusal to connect a container that
// shares the host's or another container's network namespace, or to
// connect one to the host's network.
const sharedNetnsRefusal = "container sharing network namespace with another container or host cannot be connected to any other network"

// networkAndContainer finds the network term and the container name of a
// connect or disconnect.
func (e *Engine) networkAndContainer(term, name string) (network.Network, *container.Container, error) {
	if e.nets == nil {
		return network.Network{}, nil, network.NotFoundError(term)
	}
	nw, err := e.nets.store.Find(term)
	if err != nil {
		return network.Network{}, nil, err
	}
	c, err := e.get(name)
	return nw, c, err
}

// NetworkConnect answers POST /networks/{id}/connect: the endpoint is
// recorded, and a running container gets its interface at once.
func (e *Engine) NetworkConnect(ctx context.Context, term, name string, req *types.EndpointSettings) error {
	n := e.nets
	nw, c, err := e.networkAndContainer(term, name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	mode := c.HostConfig.NetworkMode
	if strings.HasPrefix(mode, "container:") || nw.Driver == network.DriverHost {
		return errdefs.InvalidParameter(errors.New(sharedNetnsRefusal))
	}
	if c.NetworkSettings == nil {
		c.NetworkSettings = newNetworkSettings(mode)
	}
	if _, ok := c.NetworkSettings.Networks[nw.Name]; ok {
		return errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", strings.TrimPrefix(c.Name, "/"), nw.Name))
	}
	// dockerd's rules (updateNetworkConfig): the host's network shares
	// a namespace, and none goes with no other network. A container that
	// was disconnected from none may join others.
	for _, r := range e.endpoints(c) {
		if r.nw.Driver == network.DriverHost {
			return errdefs.InvalidParameter(errors.New(sharedNetnsRefusal))
		}
		if r.nw.Name == network.NameNone || nw.Name == network.NameNone {
			return errdefs.InvalidParameter(errors.New("container cannot be connected to multiple networks with one of the networks in private (none) mode"))
		}
	}
	if nw.Driver != network.DriverBridge {
		// none, alone: recorded, nothing to wire.
		c.NetworkSettings.Networks[nw.Name] = &types.EndpointSettings{NetworkID: nw.ID}
		if err := e.containers.Save(c); err != nil {
			delete(c.NetworkSettings.Networks, nw.Name)
			return err
		}
		e.networkLog(nw, "connect", map[string]string{"container": c.ID})
		return nil
	}
	ep := &types.EndpointSettings{}
	if req != nil {
		cp := *req
		ep = &cp
	}
	ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen = "", "", "", 0
	ep.IPv6Gateway, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen = "", "", 0
	if nw.ID == n.bridgeID && len(ep.Aliases) > 0 {
		return errdefs.InvalidParameter(errors.New("network-scoped alias is supported only for containers in user defined networks"))
	}
	if _, _, err := e.staticAddrs(nw.ID, ep.IPAMConfig); err != nil {
		return err
	}
	ep.NetworkID = nw.ID
	c.NetworkSettings.Networks[nw.Name] = ep
	if c.State.Running && c.State.Pid > 0 {
		if err := e.connectRunning(c, epRef{name: nw.Name, ep: ep, nw: nw, br: n.bridge(nw.ID)}); err != nil {
			n.ipam.Release(nw.ID, c.ID)
			delete(c.NetworkSettings.Networks, nw.Name)
			return err
		}
	}
	if err := e.containers.Save(c); err != nil {
		return err
	}
	e.updateDNS(c)
	e.networkLog(nw, "connect", map[string]string{"container": c.ID})
	return nil
}

// connectRunning wires a new endpoint into a running container, on the
// next free ethN.
func (e *Engine) connectRunning(c *container.Container, r epRef) error {
	if r.br == nil {
		return fmt.Errorf("network %s has no bridge", r.nw.Name)
	}
	if err := e.allocateEndpoint(c, r); err != nil {
		return err
	}
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", c.State.Pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(nsfd)
	return netlink.Do(nsfd, func() error {
		ctr, err := netlink.Open(netlink.Self)
		if err != nil {
			return err
		}
		defer ctr.Close()
		ifname := ""
		for i := 0; ; i++ {
			ifname = fmt.Sprintf("eth%d", i)
			if _, err := ctr.LinkByName(ifname); netlink.IsNotFound(err) {
				break
			}
		}
		// The first network that can route gets the default route of
		// each family the container lacks one of.
		route, route6 := false, false
		if routes, err := ctr.Routes(syscall.AF_INET); err == nil && !r.br.internal && r.br.gateway.IsValid() {
			route = !slices.ContainsFunc(routes, func(rt netlink.Route) bool { return rt.IsDefault() })
		}
		if routes, err := ctr.Routes(syscall.AF_INET6); err == nil && !r.br.internal && r.ep.GlobalIPv6Address != "" && r.br.gateway6.IsValid() {
			route6 = !slices.ContainsFunc(routes, func(rt netlink.Route) bool { return rt.IsDefault() })
		}
		return e.attachEndpoint(nsfd, ctr, ifname, r, route, route6)
	})
}

// NetworkDisconnect answers POST /networks/{id}/disconnect.
func (e *Engine) NetworkDisconnect(ctx context.Context, term, name string, force bool) error {
	n := e.nets
	nw, c, err := e.networkAndContainer(term, name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	var ep *types.EndpointSettings
	if c.NetworkSettings != nil {
		ep = c.NetworkSettings.Networks[nw.Name]
	}
	if ep == nil {
		return errdefs.Forbidden(fmt.Errorf("container %s is not connected to network %s", c.ID, nw.Name))
	}
	if c.HostConfig.NetworkMode == network.NameHost && nw.Driver == network.DriverHost {
		return errdefs.InvalidParameter(errors.New("cannot disconnect container from host network - container was created in host network mode"))
	}
	if c.State.Running && c.State.Pid > 0 && ep.IPAddress != "" {
		if err := e.detachRunning(c.State.Pid, ep.IPAddress); err != nil {
			return err
		}
	}
	n.ipam.Release(nw.ID, c.ID)
	delete(c.NetworkSettings.Networks, nw.Name)
	if nw.ID == n.bridgeID {
		clearDefaultEndpoint(c.NetworkSettings)
	}
	if err := e.containers.Save(c); err != nil {
		return err
	}
	e.updateDNS(c)
	e.networkLog(nw, "disconnect", map[string]string{"container": c.ID})
	return nil
}

// detachRunning deletes the container's interface holding addr (which
// deletes its veth peer on the host).
func (e *Engine) detachRunning(pid int, addr string) error {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	nsfd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/net", pid), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(nsfd)
	ctr, err := netlink.Open(nsfd)
	if err != nil {
		return err
	}
	defer ctr.Close()
	addrs, err := ctr.Addrs(0, syscall.AF_INET)
	if err != nil {
		return err
	}
	for _, x := range addrs {
		if x.Prefix.Addr() == a {
			return ctr.DeleteLink(x.LinkIndex)
		}
	}
	return nil
}
