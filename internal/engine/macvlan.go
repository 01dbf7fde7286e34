package engine

// This file: the macvlan network driver, as dockerd's: containers get an
// interface of their own on a host interface (the parent), with its own
// MAC address, straight on the parent's LAN: no bridge, no NAT, no
// published ports. Without a parent the network gets a parent of its own
// ("dm-" and the network ID's start), which keeps it to its containers.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/netlink"
	"skiffd/internal/network"
)

// macvlanMode is the kernel's mode for a macvlan_mode option value ("" is
// bridge, dockerd's default); false for one that is not a mode.
func macvlanMode(v string) (uint32, bool) {
	switch v {
	case "", "bridge":
		return netlink.MacvlanBridge, true
	case "private":
		return netlink.MacvlanPrivate, true
	case "vepa":
		return netlink.MacvlanVEPA, true
	case "passthru":
		return netlink.MacvlanPassthru, true
	}
	return 0, false
}

// macvlanParentName is the parent interface of macvlan network nw: its
// parent option, or the network's own "dm-<id>" interface.
func macvlanParentName(nw network.Network) string {
	if p := nw.Options[network.OptMacvlanParent]; p != "" {
		return p
	}
	return "dm-" + nw.ID[:12]
}

// checkMacvlan checks a macvlan network's options as dockerd's driver
// does, before anything is made: its mode, its parent (not loopback, and
// not taken by a passthru network, nor taken at all for one), and, for a
// parent that does not exist, the name.vlan form of an 802.1q link
// skiffd is to make.
func (n *networking) checkMacvlan(nw network.Network) error {
	mode := nw.Options[network.OptMacvlanMode]
	if _, ok := macvlanMode(mode); !ok {
		return errdefs.InvalidParameter(fmt.Errorf("requested macvlan mode '%s' is not valid, 'bridge' mode is the macvlan driver default", mode))
	}
	parent := nw.Options[network.OptMacvlanParent]
	if parent == "" {
		return nil
	}
	if parent == "lo" {
		return errdefs.InvalidParameter(errors.New("loopback interface is not a valid macvlan parent link"))
	}
	for _, o := range n.store.List() {
		if o.Driver != network.DriverMacvlan || o.Options[network.OptMacvlanParent] != parent {
			continue
		}
		if mode == "passthru" {
			return errdefs.Forbidden(fmt.Errorf("cannot use mode passthru, macvlan network %s is already using parent interface %s", o.ID, parent))
		}
		if o.Options[network.OptMacvlanMode] == "passthru" {
			return errdefs.Forbidden(fmt.Errorf("macvlan network %s is already using parent interface %s in mode passthru", o.ID, parent))
		}
	}
	if _, err := n.host.LinkByName(parent); err == nil {
		return nil
	} else if !netlink.IsNotFound(err) {
		return err
	}
	_, _, err := parseVLAN(parent)
	return err
}

// parseVLAN splits an 802.1q interface name, "eth0.10", into its
// interface and VLAN id, with dockerd's errors.
func parseVLAN(name string) (string, uint16, error) {
	base, vid, ok := strings.Cut(name, ".")
	if !ok {
		return "", 0, errdefs.InvalidParameter(fmt.Errorf("invalid subinterface vlan name %s, example formatting is eth0.10", name))
	}
	id, err := strconv.Atoi(vid)
	if err != nil {
		return "", 0, errdefs.InvalidParameter(fmt.Errorf("unable to parse a valid vlan id from: %s (ex. eth0.10 for vlan 10)", vid))
	}
	if id < 1 || id > 4094 {
		return "", 0, errdefs.InvalidParameter(fmt.Errorf("vlan id must be between 1-4094, received: %d", id))
	}
	return base, uint16(id), nil
}

// makeMacvlanParent makes the parent interface of a new macvlan network
// nw if it has none yet: its own "dm-" interface (a dummy one, or, on a
// kernel without dummy interfaces, an empty bridge, which serves the
// same), or the 802.1q link its parent option names. It reports whether
// it made an 802.1q link, which the network's record then keeps
// (CreatedParent) so that the link goes with it.
func (n *networking) makeMacvlanParent(nw network.Network) (vlan bool, err error) {
	name := macvlanParentName(nw)
	if _, err := n.host.LinkByName(name); err == nil {
		return false, nil
	} else if !netlink.IsNotFound(err) {
		return false, err
	}
	if nw.Options[network.OptMacvlanParent] == "" {
		_, err := n.host.AddDummy(name)
		if errors.Is(err, syscall.EOPNOTSUPP) {
			var l *netlink.Link
			if l, err = n.host.AddBridge(name, 0); err == nil {
				err = n.host.SetUp(l.Index)
			}
		}
		if err != nil {
			return false, fmt.Errorf("create the parent interface %s of macvlan network %s: %w", name, nw.Name, err)
		}
		return false, nil
	}
	base, id, err := parseVLAN(name)
	if err != nil {
		return false, err
	}
	l, err := n.host.LinkByName(base)
	if err != nil {
		return false, errdefs.InvalidParameter(fmt.Errorf("-o parent interface was not found on the host: %s", base))
	}
	if _, err := n.host.AddVLAN(name, l.Index, id); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			return false, errdefs.NotImplemented(fmt.Errorf("failed to create %s vlan link: this host's kernel has no 802.1q VLAN support", name))
		}
		return false, fmt.Errorf("failed to create %s vlan link: %w", name, err)
	}
	return true, nil
}

// ensureMacvlan records the host side of macvlan network nw: its parent
// interface, which must exist (a daemon restarted after the parent went
// logs it and the network's containers fail to start, as dockerd's).
func (n *networking) ensureMacvlan(nw network.Network) (*bridgeNet, error) {
	name := macvlanParentName(nw)
	link, err := n.host.LinkByName(name)
	if err != nil {
		if netlink.IsNotFound(err) {
			return nil, fmt.Errorf("the requested parent interface %s was not found on the Docker host", name)
		}
		return nil, err
	}
	mode, ok := macvlanMode(nw.Options[network.OptMacvlanMode])
	if !ok {
		mode = netlink.MacvlanBridge
	}
	mtu := link.MTU
	if v, err := strconv.Atoi(nw.Options[network.OptMTU]); err == nil && v > 0 {
		mtu = v
	}
	bn := &bridgeNet{id: nw.ID, name: name, index: link.Index, internal: nw.Internal || nw.Options[network.OptMacvlanParent] == "",
		mtu: mtu, macvlan: true, mode: mode}
	for _, r := range n.ipam.Ranges(nw.ID) {
		switch {
		case r.Subnet.Addr().Is4() && !bn.subnet.IsValid():
			bn.subnet, bn.gateway = r.Subnet, r.Gateway
		case r.Subnet.Addr().Is6() && nw.EnableIPv6 && !bn.subnet6.IsValid():
			bn.subnet6, bn.gateway6 = r.Subnet, r.Gateway
		}
	}
	n.mu.Lock()
	n.bridges[nw.ID] = bn
	n.mu.Unlock()
	return bn, nil
}

// removeMacvlanParent deletes the parent interface skiffd made for
// macvlan network nw (its "dm-" one, or an 802.1q link it recorded),
// unless another network still uses it; a parent of the host's is never
// touched.
func (n *networking) removeMacvlanParent(nw network.Network) error {
	name := macvlanParentName(nw)
	if nw.Options[network.OptMacvlanParent] != "" && !nw.CreatedParent {
		return nil
	}
	for _, o := range n.store.List() {
		if o.ID != nw.ID && o.Driver == network.DriverMacvlan && macvlanParentName(o) == name {
			return nil
		}
	}
	l, err := n.host.LinkByName(name)
	if err != nil {
		if netlink.IsNotFound(err) {
			return nil
		}
		return err
	}
	return n.host.DeleteLink(l.Index)
}
