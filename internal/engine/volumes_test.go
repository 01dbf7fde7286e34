package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// volumeEvents subscribes to volume events and returns a function that
// reads the next n of them as "action actor attrs".
func volumeEvents(t *testing.T, e *Engine) func(n int) []string {
	t.Helper()
	_, live, cancel, err := e.SubscribeToEvents(context.Background(), time.Time{}, time.Time{}, filters.NewArgs(filters.Arg("type", "volume")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return func(n int) []string {
		t.Helper()
		var out []string
		for range n {
			select {
			case m := <-live:
				attrs := ""
				for _, k := range []string{"driver", "reclaimed"} {
					if v, ok := m.Actor.Attributes[k]; ok {
						attrs += k + "=" + v
					}
				}
				out = append(out, m.Action+" "+m.Actor.ID+" "+attrs)
			case <-time.After(5 * time.Second):
				t.Fatalf("timed out waiting for volume events; got %q", out)
			}
		}
		return out
	}
}

func TestEngineVolumeLifecycle(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	e := newTestEngine(t, root)
	if err := e.openVolumes(); err != nil {
		t.Fatal(err)
	}
	next := volumeEvents(t, e)
	ctx := context.Background()

	v, err := e.VolumeCreate(ctx, types.VolumeCreateOptions{Name: "data", Driver: "local", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "volumes", "data", "_data"); v.Mountpoint != want || v.Name != "data" || v.Labels["a"] != "b" || v.Scope != "local" {
		t.Errorf("VolumeCreate = %+v", v)
	}
	if _, err := e.VolumeCreate(ctx, types.VolumeCreateOptions{Name: "data"}); err != nil {
		t.Fatal(err)
	}
	anon, err := e.VolumeCreate(ctx, types.VolumeCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := next(2); got[0] != "create data driver=local" || got[1] != "create "+anon.Name+" driver=local" {
		t.Errorf("create events = %q (a second create of an existing name logs nothing)", got)
	}

	list, warnings, err := e.Volumes(ctx, filters.NewArgs(filters.Arg("label", "a=b")))
	if err != nil || len(list) != 1 || list[0].Name != "data" || warnings != nil {
		t.Errorf("Volumes(label=a=b) = %v, %v, %v", list, warnings, err)
	}
	if got, err := e.VolumeInspect(ctx, "data"); err != nil || got.Mountpoint != v.Mountpoint {
		t.Errorf("VolumeInspect = %+v, %v", got, err)
	}
	if _, err := e.VolumeInspect(ctx, "nope"); err == nil || err.Error() != "get nope: no such volume" {
		t.Errorf("VolumeInspect(nope) = %v", err)
	}

	os.WriteFile(filepath.Join(v.Mountpoint, "f"), make([]byte, 300), 0o644)
	du, err := e.VolumesDiskUsage(ctx)
	if err != nil || len(du) != 2 {
		t.Fatalf("VolumesDiskUsage = %v, %v", du, err)
	}
	for _, d := range du {
		if d.Name == "data" && (d.UsageData == nil || d.UsageData.Size != 300 || d.UsageData.RefCount != 0) {
			t.Errorf("usage of data = %+v, want 300 bytes, no references", d.UsageData)
		}
	}

	rep, err := e.VolumesPrune(ctx, filters.NewArgs())
	if err != nil || len(rep.VolumesDeleted) != 1 || rep.VolumesDeleted[0] != anon.Name {
		t.Errorf("VolumesPrune = %+v, %v; want the anonymous volume only", rep, err)
	}
	if got := next(2); got[0] != "destroy "+anon.Name+" driver=local" || got[1] != "prune  reclaimed=0" {
		t.Errorf("prune events = %q", got)
	}

	if err := e.VolumeRemove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if err := e.VolumeRemove(ctx, "data", true); err != nil {
		t.Errorf("forced removal of a missing volume = %v", err)
	}
	if err := e.VolumeRemove(ctx, "data", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removal of a missing volume = %v, want not found", err)
	}
	if got := next(1); got[0] != "destroy data driver=local" {
		t.Errorf("remove events = %q", got)
	}
}

// TestEngineVolumeUsersFromContainerRecords checks that a container record
// naming a volume protects it, also after a restart, with no reference file.
func TestEngineVolumeUsersFromContainerRecords(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	e := newTestEngine(t, root)
	ctx := context.Background()
	if _, err := e.VolumeCreate(ctx, types.VolumeCreateOptions{Name: "db"}); err != nil {
		t.Fatal(err)
	}
	if e.containers == nil {
		t.Skip("this engine has no container store")
	}
	c := container.New(strings.Repeat("ab", 32))
	c.Config = &types.Config{Image: "busybox"}
	c.HostConfig = &types.HostConfig{Binds: []string{"db:/var/lib/db"}}
	c.MountPoints = []types.MountPoint{{Type: "volume", Name: "db", Source: filepath.Join(root, "volumes", "db", "_data"), Destination: "/var/lib/db", Driver: "local", Mode: "", RW: true}}
	if err := e.containers.Add(c); err != nil {
		t.Fatal(err)
	}
	if err := e.containers.Save(c); err != nil {
		t.Fatal(err)
	}
	want := "remove db: volume is in use - [" + c.ID + "]"
	if err := e.VolumeRemove(ctx, "db", true); err == nil || err.Error() != want || !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("VolumeRemove(in use) = %v, want %q", err, want)
	}
	if list, _, _ := e.Volumes(ctx, filters.NewArgs(filters.Arg("dangling", "true"))); len(list) != 0 {
		t.Errorf("dangling volumes = %v, want none", list)
	}
	if rep, err := e.VolumesPrune(ctx, filters.NewArgs(filters.Arg("all", "true"))); err != nil || len(rep.VolumesDeleted) != 0 {
		t.Errorf("prune removed a volume in use: %+v, %v", rep, err)
	}
	du, _ := e.VolumesDiskUsage(ctx)
	if len(du) != 1 || du[0].UsageData.RefCount != 1 {
		t.Errorf("disk usage = %+v, want one reference", du)
	}

	e2 := newTestEngine(t, root)
	if err := e2.VolumeRemove(ctx, "db", false); err == nil || err.Error() != want {
		t.Errorf("after restart VolumeRemove = %v, want %q", err, want)
	}
	c2, err := e2.containers.Get(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.containers.Delete(c2); err != nil {
		t.Fatal(err)
	}
	if err := e2.VolumeRemove(ctx, "db", false); err != nil {
		t.Errorf("VolumeRemove after the container went = %v", err)
	}
}
