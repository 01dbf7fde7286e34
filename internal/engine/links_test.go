package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
)

// TestEngineRepairLinksAfterCrashedRename starts an engine on the records
// a daemon killed in the middle of `docker rename db db2` leaves: the
// child saved with its new name, the parent's link still naming the old
// one. The start repairs the parent's HostConfig.Links from the child's
// ID, on disk too, and leaves a link to a container that is gone as it
// is.
func TestEngineRepairLinksAfterCrashedRename(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	e := newTestEngine(t, root)
	add := func(id, name string, links []string, ids map[string]string) *container.Container {
		t.Helper()
		c := container.New(strings.Repeat(id, 32))
		c.Name = name
		c.Config = &types.Config{Image: "busybox"}
		c.HostConfig = &types.HostConfig{Links: links}
		if ids != nil {
			if err := saveRuntimeData(c, runtimeData{LinkIDs: ids}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.containers.Add(c); err != nil {
			t.Fatal(err)
		}
		if err := e.containers.Save(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	child := add("ab", "/db2", nil, nil)
	parent := add("cd", "/web", []string{"/db:/web/alias", "/gone:/web/g"},
		map[string]string{"alias": child.ID, "g": strings.Repeat("ef", 32)})

	want := []string{"/db2:/web/alias", "/gone:/web/g"}
	e2 := newTestEngine(t, root)
	p, err := e2.containers.Get(parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	p.Lock()
	got := slices.Clone(p.HostConfig.Links)
	p.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("after the start: parent's HostConfig.Links = %q, want %q", got, want)
	}
	b, err := os.ReadFile(filepath.Join(root, "containers", parent.ID, container.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ HostConfig struct{ Links []string } }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.HostConfig.Links, want) {
		t.Errorf("parent's record on disk: HostConfig.Links = %q, want %q", rec.HostConfig.Links, want)
	}
}
