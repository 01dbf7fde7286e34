package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// Range is one subnet of a network with what dockerd's IPAMConfig says
// about it.
type Range struct {
	Subnet netip.Prefix `json:"Subnet"`
	// IPRange, if valid, is where dynamic addresses come from (--ip-range,
	// --fixed-cidr); static ones may be anywhere in Subnet.
	IPRange netip.Prefix `json:"IPRange,omitzero"`
	// Gateway is the network's address on the bridge; Create allocates the
	// first free address (of IPRange if set) when it is not given.
	Gateway netip.Addr `json:"Gateway,omitzero"`
	// Aux are the --aux-address values: reserved, never handed out.
	Aux map[string]netip.Addr `json:"AuxiliaryAddresses,omitempty"`
	// NoGateway keeps Create from allocating a gateway when none is
	// given: a macvlan network's gateway is a router outside skiffd,
	// which only the user can name (dockerd's GetSkipGwAlloc).
	NoGateway bool `json:"NoGateway,omitempty"`
}

// Errors of address allocation, with dockerd's texts and kinds.
var (
	ErrAddressInUse = errdefs.Forbidden(errors.New("Address already in use"))
)

// gatewayOwner owns the gateway address in a network's allocations.
const gatewayOwner = "gateway"

// netState is one network's allocation file.
type netState struct {
	ID     string  `json:"ID"`
	Name   string  `json:"Name"`
	Ranges []Range `json:"Ranges"`
	// Addrs maps every allocated address to its owner (an endpoint ID,
	// or "gateway").
	Addrs map[netip.Addr]string `json:"Addrs"`
	// Last is the last dynamically allocated address per subnet: dynamic
	// allocation continues after it, as dockerd's serial allocation does,
	// so a released address is not reused at once.
	Last map[netip.Prefix]netip.Addr `json:"Last,omitempty"`
}

// Store holds the address allocations of every network. It is safe for
// concurrent use; every change is on disk (atomically, fsynced) before the
// method returns.
type Store struct {
	dir string

	mu   sync.Mutex
	nets map[string]*netState
}

// Open opens (creating it if needed) the allocation store in dir, one
// <network-id>.json per network. Leftover temporary files of interrupted
// writes are removed; the previous version of their file is what counts.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, nets: map[string]*netState{}}
	err := atomicfile.LoadDir(dir, func(id string, st *netState) error {
		if st.ID != id {
			return fmt.Errorf("names network %q", st.ID)
		}
		if st.Addrs == nil {
			st.Addrs = map[netip.Addr]string{}
		}
		if st.Last == nil {
			st.Last = map[netip.Prefix]netip.Addr{}
		}
		s.nets[id] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open ipam store: %w", err)
	}
	return s, nil
}

// save writes st's file: durably when its ranges change (Create), and
// without fsyncs when only allocations do (Request, Release). Those belong
// to running containers, which a power loss ends anyway: the daemon then
// frees every address whose owner does not run (reconcile), so an older
// file is harmless, while a kill -9 of the daemon loses nothing written.
func (s *Store) save(st *netState, durable bool) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, st.ID+".json")
	if durable {
		return atomicfile.WriteFile(path, b, 0o600)
	}
	return exchange(path, b)
}

// exchange replaces the file at path with b as atomicfile.Replace does (a
// kill -9 leaves the old content or the new), but by swapping a new file
// with it (sys.ExchangeFiles) and removing the swapped-out old one, instead
// of renaming the new file over it: ext4 flushes the data of a file
// renamed over another (auto_da_alloc), which cost ~0.25 ms of each
// allocation and release, twice per networked `docker run` (issue 14). A
// daemon killed before the removal leaves the old content under a
// temporary name, which Open removes. Where path does not exist yet or the
// file system cannot swap, it is atomicfile.Replace.
func exchange(path string, b []byte) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, atomicfile.TempPrefix+base+"-")
	if err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b) // CreateTemp made it 0600 already
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = sys.ExchangeFiles(tmp, path)
	}
	// The old content, or the new one if it was not swapped in.
	os.Remove(tmp)
	if err != nil {
		return atomicfile.Replace(path, b, 0o600)
	}
	return nil
}

// Create registers network id (name is for error messages) with its
// subnets, reserving each gateway and auxiliary address, and returns the
// ranges with the gateways filled in. Calling it again for an existing
// network returns the recorded ranges unchanged, so a caller that crashed
// between Create and saving its network can simply call it again.
func (s *Store) Create(id, name string, ranges []Range) ([]Range, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.nets[id]; ok {
		return cloneRanges(st.Ranges), nil
	}
	st := &netState{ID: id, Name: name, Addrs: map[netip.Addr]string{}, Last: map[netip.Prefix]netip.Addr{}}
	for _, r := range ranges {
		if !r.Subnet.IsValid() {
			return nil, errdefs.InvalidParameter(fmt.Errorf("network %s: a range without a subnet (pick one with PickSubnet first)", name))
		}
		r.Subnet = r.Subnet.Masked()
		r.Aux = maps.Clone(r.Aux)
		for _, a := range r.Aux {
			st.Addrs[a.Unmap()] = "aux"
		}
		if r.Gateway.IsValid() {
			r.Gateway = r.Gateway.Unmap()
			if r.Subnet.Contains(r.Gateway) {
				st.Addrs[r.Gateway] = gatewayOwner
			}
		} else if !r.NoGateway {
			st.Ranges = append(st.Ranges, r)
			gw, ok := st.pick(len(st.Ranges) - 1)
			if !ok {
				return nil, fmt.Errorf("no available addresses on this pool")
			}
			r.Gateway = gw
			st.Addrs[gw] = gatewayOwner
			st.Ranges = st.Ranges[:len(st.Ranges)-1]
		}
		st.Ranges = append(st.Ranges, r)
	}
	clear(st.Last) // the gateway does not start the serial sequence
	if err := s.save(st, true); err != nil {
		return nil, err
	}
	s.nets[id] = st
	return cloneRanges(st.Ranges), nil
}

func cloneRanges(rs []Range) []Range {
	out := slices.Clone(rs)
	for i := range out {
		out[i].Aux = maps.Clone(out[i].Aux)
	}
	return out
}

// Delete forgets network id and its file. Deleting an unknown network is
// not an error.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete ipam state of %s: %w", id, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return err
	}
	delete(s.nets, id)
	return nil
}

// Ranges returns network id's ranges, nil for an unknown network.
func (s *Store) Ranges(id string) []Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.nets[id]; ok {
		return cloneRanges(st.Ranges)
	}
	return nil
}

// Request allocates an address of family (4 or 6) on network id to owner
// and returns it with its subnet's prefix length. If want is valid, that
// address is taken or the request fails; otherwise the next free address
// after the last one handed out, in the subnet's IPRange if it has one. An
// owner that already holds an address of that family on the network gets
// it again, so a caller replaying a request after a crash never leaks or
// duplicates. The allocation is in its file when Request returns (see
// save for its durability).
func (s *Store) Request(id, owner string, family int, want netip.Addr) (netip.Prefix, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.nets[id]
	if !ok {
		return netip.Prefix{}, errdefs.NotFound(fmt.Errorf("network %s not found", id))
	}
	want = want.Unmap()
	for a, o := range st.Addrs {
		if o == owner && a.Is4() == (family == 4) && (!want.IsValid() || want == a) {
			return st.prefixOf(a), nil
		}
	}
	if want.IsValid() {
		if want.Is4() != (family == 4) {
			return netip.Prefix{}, errdefs.InvalidParameter(fmt.Errorf("invalid IPv%d address: %s", family, want))
		}
		p := st.prefixOf(want)
		if !p.IsValid() {
			return netip.Prefix{}, errdefs.InvalidParameter(fmt.Errorf("invalid address %s: It does not belong to any of this network's subnets", want))
		}
		if _, taken := st.Addrs[want]; taken || reservedAddr(p, want) {
			return netip.Prefix{}, ErrAddressInUse
		}
		st.Addrs[want] = owner
		if err := s.save(st, false); err != nil {
			delete(st.Addrs, want)
			return netip.Prefix{}, err
		}
		return p, nil
	}
	for i, r := range st.Ranges {
		if r.Subnet.Addr().Is4() != (family == 4) {
			continue
		}
		a, ok := st.pick(i)
		if !ok {
			continue
		}
		prevLast, hadLast := st.Last[r.Subnet]
		st.Addrs[a] = owner
		st.Last[r.Subnet] = a
		if err := s.save(st, false); err != nil {
			delete(st.Addrs, a)
			if hadLast {
				st.Last[r.Subnet] = prevLast
			} else {
				delete(st.Last, r.Subnet)
			}
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, r.Subnet.Bits()), nil
	}
	return netip.Prefix{}, errdefs.System(fmt.Errorf("no available IPv%d addresses on this network's address pools: %s (%s)", family, st.Name, st.ID))
}

// Release frees every address owner holds on network id. Releasing what
// is not allocated is not an error.
func (s *Store) Release(id, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.nets[id]
	if !ok {
		return nil
	}
	var freed []netip.Addr
	for a, o := range st.Addrs {
		if o == owner {
			freed = append(freed, a)
		}
	}
	if len(freed) == 0 {
		return nil
	}
	for _, a := range freed {
		delete(st.Addrs, a)
	}
	if err := s.save(st, false); err != nil {
		for _, a := range freed {
			st.Addrs[a] = owner
		}
		return err
	}
	return nil
}

// Owners returns who holds which address on network id (the gateway's
// owner is "gateway", auxiliary addresses' "aux"), for reconciling with the
// caller's endpoints after a crash.
func (s *Store) Owners(id string) map[netip.Addr]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.nets[id]; ok {
		return maps.Clone(st.Addrs)
	}
	return nil
}

// prefixOf returns a in its subnet's prefix length, or an invalid prefix
// if no subnet of the network contains it.
func (st *netState) prefixOf(a netip.Addr) netip.Prefix {
	for _, r := range st.Ranges {
		if r.Subnet.Contains(a) {
			return netip.PrefixFrom(a, r.Subnet.Bits())
		}
	}
	return netip.Prefix{}
}

// pick finds the next free address of range i after its last allocation,
// wrapping around once.
func (st *netState) pick(i int) (netip.Addr, bool) {
	r := st.Ranges[i]
	pool := r.Subnet
	if r.IPRange.IsValid() {
		pool = r.IPRange.Masked()
	}
	first, last := pool.Addr(), lastAddr(pool)
	start := first
	if l, ok := st.Last[r.Subnet]; ok && pool.Contains(l) && l != last {
		start = l.Next()
	}
	// Enough tries to pass every allocated address once and wrap; with
	// IPv6 subnets the space is never scanned to its end.
	budget := len(st.Addrs) + 4
	if pool.Addr().BitLen()-pool.Bits() < 20 {
		budget = 1 << (pool.Addr().BitLen() - pool.Bits())
	}
	a := start
	for range budget + 1 {
		if _, taken := st.Addrs[a]; !taken && !reservedAddr(r.Subnet, a) {
			return a, true
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
	}
	return netip.Addr{}, false
}

// reservedAddr reports the addresses dockerd never hands out: the first
// address of the subnet (IPv4 network address, IPv6 subnet-router anycast)
// and the IPv4 broadcast address, except in a /31 or /32.
func reservedAddr(subnet netip.Prefix, a netip.Addr) bool {
	hostBits := subnet.Addr().BitLen() - subnet.Bits()
	if subnet.Addr().Is4() && hostBits <= 1 {
		return false
	}
	if a == subnet.Masked().Addr() {
		return true
	}
	return subnet.Addr().Is4() && a == lastAddr(subnet)
}
