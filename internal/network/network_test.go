package network

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"skiffd/internal/errdefs"
)

func TestStoreFind(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pre, err := s.EnsurePredefined(Network{Options: map[string]string{OptBridgeName: "skiff0"}, IPAM: IPAM{Config: []IPAMConfig{{Subnet: "172.17.0.0/16", Gateway: "172.17.0.1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if pre[NameBridge].Driver != DriverBridge || pre[NameHost].Driver != DriverHost || pre[NameNone].Driver != DriverNull {
		t.Fatalf("predefined = %+v", pre)
	}
	a, _ := s.Create(Network{ID: "abc111", Name: "app"})
	s.Create(Network{ID: "abc222", Name: "db"})
	s.Create(Network{ID: "def333", Name: "abc111x"})
	// A network named like another's ID prefix.
	s.Create(Network{ID: "fff444", Name: "def"})
	if a.Driver != DriverBridge || a.Scope != ScopeLocal || a.IPAM.Driver != "default" || a.Created.IsZero() {
		t.Errorf("defaults not filled: %+v", a)
	}
	for _, tc := range []struct {
		term, wantID, err string
		kind              errdefs.Kind
	}{
		{"abc111", "abc111", "", 0},
		{"app", "abc111", "", 0},
		{"abc2", "abc222", "", 0},
		{"def", "fff444", "", 0}, // the name wins over def333's ID prefix
		{"abc", "", "network abc is ambiguous (2 matches found based on ID prefix)", errdefs.ErrInvalidParameter},
		{"nope", "", "network nope not found", errdefs.ErrNotFound},
		{"", "", "network  not found", errdefs.ErrNotFound},
	} {
		n, err := s.Find(tc.term)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errors.Is(err, tc.kind) {
				t.Errorf("Find(%q) error = %v, want %q", tc.term, err, tc.err)
			}
			continue
		}
		if err != nil || n.ID != tc.wantID {
			t.Errorf("Find(%q) = %s, %v; want %s", tc.term, n.ID, err, tc.wantID)
		}
	}
}

func TestStoreCreateDelete(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, err := s.EnsurePredefined(Network{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(Network{Name: "host"}); err == nil || err.Error() != "operation is not permitted on predefined host network " || !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("create host: %v", err)
	}
	n, err := s.Create(Network{Name: "app", Labels: map[string]string{"a": "b"}})
	if err != nil || len(n.ID) != 64 {
		t.Fatalf("create app: %+v, %v", n, err)
	}
	if _, err := s.Create(Network{Name: "app"}); err == nil || err.Error() != "network with name app already exists" || !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	bridge, _ := s.Find("bridge")
	if err := s.Delete(bridge.ID); err == nil || err.Error() != "bridge is a pre-defined network and cannot be removed" || !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("delete bridge: %v", err)
	}

	// A torn temporary file from an interrupted write is ignored on reopen.
	os.WriteFile(filepath.Join(dir, ".tmp-x.json-1"), []byte(`{"Id":`), 0o600)
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Find("app")
	if err != nil || got.ID != n.ID || got.Labels["a"] != "b" || !got.Created.Equal(n.Created) {
		t.Errorf("after reopen: %+v, %v", got, err)
	}
	// The default bridge keeps its ID when the daemon's options change.
	pre, err := s2.EnsurePredefined(Network{Options: map[string]string{OptMTU: "1400"}})
	if err != nil || pre[NameBridge].ID != bridge.ID || pre[NameBridge].Options[OptMTU] != "1400" {
		t.Errorf("EnsurePredefined again: %+v, %v", pre[NameBridge], err)
	}
	if len(s2.List()) != 4 {
		t.Errorf("List = %d networks, want 4", len(s2.List()))
	}
	if err := s2.Delete(n.ID); err != nil {
		t.Fatal(err)
	}
	s3, _ := Open(dir)
	if _, err := s3.Find("app"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted network after reopen: %v", err)
	}
}

func TestIPAMRanges(t *testing.T) {
	c := IPAM{Config: []IPAMConfig{{Subnet: "10.99.0.0/24", IPRange: "10.99.0.128/25", Gateway: "10.99.0.1", AuxAddress: map[string]string{"r": "10.99.0.2"}}, {Subnet: "fd00:99::/64"}}}
	rs, err := c.Ranges()
	if err != nil {
		t.Fatal(err)
	}
	var back IPAM
	back.SetRanges(rs)
	if len(back.Config) != 2 || back.Config[0].IPRange != "10.99.0.128/25" || back.Config[0].AuxAddress["r"] != "10.99.0.2" || back.Config[1].Subnet != "fd00:99::/64" || back.Config[1].Gateway != "" {
		t.Errorf("round trip = %+v", back.Config)
	}
	if _, err := (IPAM{Config: []IPAMConfig{{Subnet: "10.0.0.0"}}}).Ranges(); !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Errorf("bad subnet: %v", err)
	}
}

// TestStoreDropDefaultBridge: a daemon started without a default bridge
// has host and none only; the record of the bridge it had before goes,
// durably, while user networks stay.
func TestStoreDropDefaultBridge(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, ok, err := s.DropDefaultBridge(); ok || err != nil {
		t.Fatalf("drop with no bridge = %v, %v; want nothing to drop", ok, err)
	}
	pre, err := s.EnsurePredefined(Network{})
	if err != nil {
		t.Fatal(err)
	}
	app, _ := s.Create(Network{Name: "app"})
	got, ok, err := s.DropDefaultBridge()
	if err != nil || !ok || got.ID != pre[NameBridge].ID {
		t.Fatalf("drop = %+v, %v, %v; want the bridge %s", got, ok, err, pre[NameBridge].ID)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	nets, err := s2.EnsureHostAndNone()
	if err != nil || nets[NameHost].ID != pre[NameHost].ID || nets[NameNone].ID != pre[NameNone].ID || len(nets) != 2 {
		t.Fatalf("EnsureHostAndNone after reopen = %+v, %v; want the same host and none", nets, err)
	}
	var names []string
	for _, n := range s2.List() {
		names = append(names, n.Name)
	}
	if want := []string{"app", "host", "none"}; !slices.Equal(names, want) {
		t.Errorf("after reopen: %q, want %q", names, want)
	}
	if _, err := s2.Find(app.ID); err != nil {
		t.Errorf("user network: %v", err)
	}
}
