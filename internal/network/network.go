// Package network holds skiffd's network records: what `docker network
// create` asked for and what `docker network inspect` shows, in dockerd's
// model, kept one file per network under <data-root>/network/networks.
//
// The packages below it are the mechanism-independent parts of
// networking: ipam (subnets and addresses), portalloc (published host
// ports), dns (the embedded 127.0.0.11 server) and etcfiles (a container's
// /etc/hosts and /etc/resolv.conf). Nothing here touches the kernel; links,
// routes and nf_tables rules are another package's business, and facts
// about the host (its routes, its resolv.conf) come from the caller.
//
//	s, err := network.Open(filepath.Join(dataRoot, "network", "networks"))
//	err = s.EnsurePredefined(defaultBridge)   // bridge, host, none
//	err = s.EnsureHostAndNone()               // without a default bridge
//	n, err := s.Create(network.Network{Name: "app", Driver: "bridge", IPAM: ...})
//	n, err = s.Find("app")                    // name, full ID or unique ID prefix
//	err = s.Delete(n.ID)                      // refuses bridge/host/none
package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/network/ipam"
)

// Drivers and names of the predefined networks.
const (
	DriverBridge  = "bridge"
	DriverHost    = "host"
	DriverNull    = "null"
	DriverMacvlan = "macvlan"

	ScopeLocal = "local"

	NameBridge = "bridge"
	NameHost   = "host"
	NameNone   = "none"
)

// Driver options dockerd's bridge driver reads (Options).
const (
	OptBridgeName       = "com.docker.network.bridge.name"
	OptDefaultBridge    = "com.docker.network.bridge.default_bridge"
	OptEnableICC        = "com.docker.network.bridge.enable_icc"
	OptEnableIPMasq     = "com.docker.network.bridge.enable_ip_masquerade"
	OptHostBindingIPv4  = "com.docker.network.bridge.host_binding_ipv4"
	OptMTU              = "com.docker.network.driver.mtu"
	OptInhibitIPv4      = "com.docker.network.bridge.inhibit_ipv4"
	OptGatewayModeIPv4  = "com.docker.network.bridge.gateway_mode_ipv4"
	OptContainerIfacePf = "com.docker.network.container_iface_prefix"
)

// Driver options of dockerd's macvlan driver.
const (
	OptMacvlanParent = "parent"       // the host interface; none: a dummy one
	OptMacvlanMode   = "macvlan_mode" // bridge (the default), private, vepa, passthru
)

// Network is one network, with the fields of dockerd's network inspect
// that are not run-time state (Containers are the engine's).
type Network struct {
	ID         string            `json:"Id"`
	Name       string            `json:"Name"`
	Created    time.Time         `json:"Created"`
	Scope      string            `json:"Scope"`
	Driver     string            `json:"Driver"`
	EnableIPv4 bool              `json:"EnableIPv4"`
	EnableIPv6 bool              `json:"EnableIPv6"`
	IPAM       IPAM              `json:"IPAM"`
	Internal   bool              `json:"Internal"`
	Attachable bool              `json:"Attachable"`
	Ingress    bool              `json:"Ingress"`
	ConfigFrom ConfigReference   `json:"ConfigFrom"`
	ConfigOnly bool              `json:"ConfigOnly"`
	Options    map[string]string `json:"Options"`
	Labels     map[string]string `json:"Labels"`
	// CreatedParent says skiffd made the parent interface of a macvlan
	// network (an 802.1q link named by its parent option), which then
	// goes with the network. Not part of inspect.
	CreatedParent bool `json:"CreatedParent,omitempty"`
}

// IPAM is a network's address management configuration. For a subnet the
// daemon picked, Config holds the chosen subnet and gateway, as dockerd's
// inspect shows them.
type IPAM struct {
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
	Config  []IPAMConfig      `json:"Config"`
}

// IPAMConfig is one subnet, in the API's string form.
type IPAMConfig struct {
	Subnet     string            `json:"Subnet,omitempty"`
	IPRange    string            `json:"IPRange,omitempty"`
	Gateway    string            `json:"Gateway,omitempty"`
	AuxAddress map[string]string `json:"AuxiliaryAddresses,omitempty"`
}

// ConfigReference names the config-only network a network takes its
// configuration from.
type ConfigReference struct {
	Network string `json:"Network"`
}

// Endpoint is a container's attachment to a network as the engine records
// it with the container (NetworkSettings.Networks), so that a restart
// finds addresses, names and MAC again without asking the kernel.
type Endpoint struct {
	ID          string `json:"EndpointID"`
	NetworkID   string `json:"NetworkID"`
	ContainerID string `json:"ContainerID"`
	// Aliases are the --network-alias values; DNSNames every name the
	// embedded DNS answers for this endpoint (container name, aliases,
	// short ID, hostname), as API 1.44+ reports them.
	Aliases    []string `json:"Aliases"`
	DNSNames   []string `json:"DNSNames"`
	MacAddress string   `json:"MacAddress"`
	// IPv4/IPv6 are "address/prefix-length", empty when absent.
	IPv4        string `json:"IPv4,omitempty"`
	IPv6        string `json:"IPv6,omitempty"`
	Gateway     string `json:"Gateway,omitempty"`
	IPv6Gateway string `json:"IPv6Gateway,omitempty"`
	// StaticIPv4/StaticIPv6 are what --ip/--ip6 asked for (IPAMConfig).
	StaticIPv4 string `json:"StaticIPv4,omitempty"`
	StaticIPv6 string `json:"StaticIPv6,omitempty"`
}

// IsPredefined reports whether name is one of the networks the daemon
// creates itself, which users can neither create nor remove ("default" is
// dockerd's alias of the default network mode).
func IsPredefined(name string) bool {
	switch name {
	case NameBridge, NameHost, NameNone, "default":
		return true
	}
	return false
}

// NotFoundError is dockerd's ErrNoSuchNetwork.
func NotFoundError(term string) error {
	return errdefs.NotFound(fmt.Errorf("network %s not found", term))
}

// ActiveEndpointsError is what removing a network with containers attached
// answers (403), each endpoint given as its container name and short ID.
func ActiveEndpointsError(name string, endpoints [][2]string) error {
	eps := make([]string, len(endpoints))
	for i, e := range endpoints {
		id := e[1]
		if len(id) > 12 {
			id = id[:12]
		}
		eps[i] = fmt.Sprintf("name:%q id:%q", e[0], id)
	}
	return errdefs.Forbidden(fmt.Errorf("error while removing network: network %s has active endpoints (%s)", name, strings.Join(eps, ", ")))
}

// Store keeps the network records. It is safe for concurrent use; each
// change is on disk (atomically) before the method returns.
type Store struct {
	dir string

	mu   sync.Mutex
	nets map[string]*Network // by ID
}

// Open opens (creating it if needed) the network store in dir. Leftovers
// of interrupted writes are removed.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, nets: map[string]*Network{}}
	err := atomicfile.LoadDir(dir, func(id string, n *Network) error {
		if n.ID != id {
			return fmt.Errorf("holds network %q", n.ID)
		}
		s.nets[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open network store: %w", err)
	}
	return s, nil
}

func (s *Store) save(n *Network) error {
	b, err := json.MarshalIndent(n, "", "\t")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.dir, n.ID+".json"), b, 0o600)
}

// newID returns 64 random hex digits, dockerd's network ID form.
func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// normalize fills in dockerd's defaults.
func normalize(n *Network) {
	if n.Driver == "" {
		n.Driver = DriverBridge
	}
	if n.Scope == "" {
		n.Scope = ScopeLocal
	}
	if n.IPAM.Driver == "" {
		n.IPAM.Driver = "default"
	}
	if n.Created.IsZero() {
		n.Created = time.Now()
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.IPAM.Config == nil {
		n.IPAM.Config = []IPAMConfig{}
	}
}

// Create records a new user-defined network and returns it with its ID,
// creation time and defaults filled in. A predefined name is Forbidden and
// a name in use a Conflict, with dockerd's texts.
func (s *Store) Create(n Network) (Network, error) {
	if IsPredefined(n.Name) {
		return Network{}, errdefs.Forbidden(fmt.Errorf("operation is not permitted on predefined %s network ", n.Name))
	}
	return s.create(n)
}

func (s *Store) create(n Network) (Network, error) {
	n = clone(n)
	normalize(&n)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.nets {
		if o.Name == n.Name {
			return Network{}, errdefs.Conflict(fmt.Errorf("network with name %s already exists", n.Name))
		}
	}
	if n.ID == "" {
		n.ID = newID()
	} else if _, dup := s.nets[n.ID]; dup {
		return Network{}, errdefs.Conflict(fmt.Errorf("network with id %s already exists", n.ID))
	}
	if err := s.save(&n); err != nil {
		return Network{}, err
	}
	s.nets[n.ID] = &n
	return clone(n), nil
}

// EnsurePredefined creates the networks host and none if they are missing,
// and creates the default bridge from bridge (its name is forced to
// "bridge") or, if it exists, updates its options and IPAM (the daemon's
// --bip, --fixed-cidr, --mtu may have changed) keeping its ID and creation
// time. It returns the three networks.
func (s *Store) EnsurePredefined(bridge Network) (map[string]Network, error) {
	out, err := s.EnsureHostAndNone()
	if err != nil {
		return nil, err
	}
	bridge = clone(bridge)
	bridge.Name, bridge.Driver = NameBridge, DriverBridge
	cur, err := s.Find(NameBridge)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		cur, err = s.create(bridge)
	case err == nil:
		bridge.ID, bridge.Created = cur.ID, cur.Created
		normalize(&bridge)
		cur = bridge
		err = s.put(cur)
	}
	if err != nil {
		return nil, err
	}
	out[NameBridge] = cur
	return out, nil
}

// EnsureHostAndNone creates the networks host and none if they are
// missing, and returns them: the predefined networks of a daemon without
// a default bridge.
func (s *Store) EnsureHostAndNone() (map[string]Network, error) {
	out := map[string]Network{}
	for _, want := range []Network{
		{Name: NameHost, Driver: DriverHost, EnableIPv4: true},
		{Name: NameNone, Driver: DriverNull, EnableIPv4: true},
	} {
		n, err := s.Find(want.Name)
		if errors.Is(err, errdefs.ErrNotFound) {
			n, err = s.create(want)
		}
		if err != nil {
			return nil, err
		}
		out[want.Name] = n
	}
	return out, nil
}

// DropDefaultBridge removes the default bridge's record, which Delete
// refuses: a daemon started with bridge networking off has none, as
// dockerd's. It returns the record removed, ok false if there was none.
func (s *Store) DropDefaultBridge() (n Network, ok bool, err error) {
	cur, err := s.Find(NameBridge)
	if errors.Is(err, errdefs.ErrNotFound) {
		return Network{}, false, nil
	}
	if err != nil {
		return Network{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.removeLocked(cur.ID); err != nil {
		return Network{}, false, err
	}
	return cur, true, nil
}

// put replaces an existing record.
func (s *Store) put(n Network) error {
	n = clone(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nets[n.ID]; !ok {
		return NotFoundError(n.ID)
	}
	if err := s.save(&n); err != nil {
		return err
	}
	s.nets[n.ID] = &n
	return nil
}

// Find returns the network term names, as dockerd's FindNetwork: a full ID
// first, then an exact name, then a unique ID prefix. Several networks
// with that name or prefix make the term ambiguous (InvalidParameter).
func (s *Store) Find(term string) (Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if term == "" {
		return Network{}, NotFoundError(term)
	}
	var byName, byPrefix []*Network
	for id, n := range s.nets {
		if id == term {
			return clone(*n), nil
		}
		if n.Name == term {
			byName = append(byName, n)
		}
		if strings.HasPrefix(id, term) {
			byPrefix = append(byPrefix, n)
		}
	}
	switch {
	case len(byName) == 1:
		return clone(*byName[0]), nil
	case len(byName) > 1:
		return Network{}, errdefs.InvalidParameter(fmt.Errorf("network %s is ambiguous (%d matches found on name)", term, len(byName)))
	case len(byPrefix) == 1:
		return clone(*byPrefix[0]), nil
	case len(byPrefix) > 1:
		return Network{}, errdefs.InvalidParameter(fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix)", term, len(byPrefix)))
	}
	return Network{}, NotFoundError(term)
}

// List returns every network, sorted by name.
func (s *Store) List() []Network {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Network, 0, len(s.nets))
	for _, n := range s.nets {
		out = append(out, clone(*n))
	}
	slices.SortFunc(out, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Delete removes network id's record. The predefined networks are
// Forbidden; whether containers still use the network is the caller's
// check (ActiveEndpointsError).
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nets[id]
	if !ok {
		return NotFoundError(id)
	}
	if IsPredefined(n.Name) {
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	return s.removeLocked(id)
}

// removeLocked removes network id's file, durably, and its record; s.mu
// is held.
func (s *Store) removeLocked(id string) error {
	if err := os.Remove(filepath.Join(s.dir, id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", id, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return err
	}
	delete(s.nets, id)
	return nil
}

func clone(n Network) Network {
	n.Options = maps.Clone(n.Options)
	n.Labels = maps.Clone(n.Labels)
	n.IPAM.Options = maps.Clone(n.IPAM.Options)
	n.IPAM.Config = slices.Clone(n.IPAM.Config)
	for i := range n.IPAM.Config {
		n.IPAM.Config[i].AuxAddress = maps.Clone(n.IPAM.Config[i].AuxAddress)
	}
	return n
}

// Ranges converts the string form of a network's IPAM config into what
// ipam works with. It checks syntax only; ipam.ValidateConfig checks the
// semantics as dockerd does.
func (c IPAM) Ranges() ([]ipam.Range, error) {
	out := make([]ipam.Range, 0, len(c.Config))
	for _, cfg := range c.Config {
		var r ipam.Range
		var err error
		if cfg.Subnet != "" {
			if r.Subnet, err = netip.ParsePrefix(cfg.Subnet); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: %v", cfg.Subnet, err))
			}
		}
		if cfg.IPRange != "" {
			if r.IPRange, err = netip.ParsePrefix(cfg.IPRange); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid ip-range %s: %v", cfg.IPRange, err))
			}
		}
		if cfg.Gateway != "" {
			if r.Gateway, err = netip.ParseAddr(cfg.Gateway); err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid gateway %s: %v", cfg.Gateway, err))
			}
		}
		for name, a := range cfg.AuxAddress {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid auxiliary address %s: %v", name, err))
			}
			if r.Aux == nil {
				r.Aux = map[string]netip.Addr{}
			}
			r.Aux[name] = ip
		}
		out = append(out, r)
	}
	return out, nil
}

// SetRanges records ranges (with the subnets and gateways ipam chose) as
// the network's IPAM config, in the form inspect shows.
func (c *IPAM) SetRanges(ranges []ipam.Range) {
	c.Config = make([]IPAMConfig, len(ranges))
	for i, r := range ranges {
		cfg := IPAMConfig{Subnet: r.Subnet.String()}
		if r.IPRange.IsValid() {
			cfg.IPRange = r.IPRange.String()
		}
		if r.Gateway.IsValid() {
			cfg.Gateway = r.Gateway.String()
		}
		for name, a := range r.Aux {
			if cfg.AuxAddress == nil {
				cfg.AuxAddress = map[string]string{}
			}
			cfg.AuxAddress[name] = a.String()
		}
		c.Config[i] = cfg
	}
}
