package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/volume"
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
	var pending []types.EventMessage
	return func(n int) []string {
		t.Helper()
		var out []string
		for range n {
			for len(pending) == 0 {
				select {
				case <-live.Ready():
					pending, _ = live.Take(pending)
				case <-time.After(5 * time.Second):
					t.Fatalf("timed out waiting for volume events; got %q", out)
				}
			}
			m := pending[0]
			pending = pending[1:]
			{
				attrs := ""
				for _, k := range []string{"driver", "reclaimed"} {
					if v, ok := m.Actor.Attributes[k]; ok {
						attrs += k + "=" + v
					}
				}
				out = append(out, m.Action+" "+m.Actor.ID+" "+attrs)
			}
		}
		return out
	}
}

func TestEngineVolumeLifecycle(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	e := newTestEngine(t, root)
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

// TestEngineContainerVolumeHelpers runs the create / start / stop / remove
// halves the container code calls, on a fake root file system.
func TestEngineContainerVolumeHelpers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs-backed volume")
	}
	root := filepath.Join(t.TempDir(), "data")
	e := newTestEngine(t, root)
	next := volumeEvents(t, e)
	ctx := context.Background()
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "srv"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "srv", "index.html"), []byte("from the image"), 0o644)
	os.MkdirAll(filepath.Join(rootfs, "cache"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "cache", "x"), []byte("not copied"), 0o644)

	mps, _, err := volume.CollectMounts(map[string]struct{}{"/srv": {}}, []string{"named:/data", "keep:/cache:nocopy"},
		[]types.Mount{{Type: "volume", Source: "scratch", Target: "/scratch", VolumeOptions: &types.VolumeOptions{
			Labels:       map[string]string{"l": "1"},
			DriverConfig: &types.VolumeDriverConfig{Name: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}},
		}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("cd", 32)
	if err := e.createMountVolumes(ctx, id, mps); err != nil {
		t.Fatal(err)
	}
	byDest := map[string]volume.MountPoint{}
	for _, mp := range mps {
		byDest[mp.Destination] = mp
		if mp.Name == "" || mp.Driver != "local" || mp.Source != filepath.Join(root, "volumes", mp.Name, "_data") {
			t.Errorf("mount point after createMountVolumes = %+v", mp)
		}
	}
	anon := byDest["/srv"].Name
	if got := next(4); len(got) != 4 {
		t.Errorf("create events = %q", got)
	}
	if v, err := e.VolumeInspect(ctx, "scratch"); err != nil || v.Labels["l"] != "1" || v.Options["type"] != "tmpfs" {
		t.Errorf("volume from --mount = %+v, %v", v, err)
	}
	if err := e.VolumeRemove(ctx, "named", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("removing a volume held by a container being created = %v, want conflict", err)
	}

	unmount, err := e.mountVolumes(ctx, id, rootfs, mps)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(byDest["/srv"].Source, "index.html")); err != nil || string(b) != "from the image" {
		t.Errorf("anonymous volume at /srv = %q, %v; want the image's content", b, err)
	}
	if entries, _ := os.ReadDir(byDest["/cache"].Source); len(entries) != 0 {
		t.Errorf("nocopy volume got content: %v", entries)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(byDest["/scratch"].Source, &st); err != nil || st.Type != 0x01021994 {
		t.Errorf("tmpfs-backed volume not mounted: type %#x, %v", st.Type, err)
	}
	if got := next(4); !strings.HasPrefix(got[0], "mount ") {
		t.Errorf("mount events = %q", got)
	}
	unmount()
	if err := syscall.Statfs(byDest["/scratch"].Source, &st); err != nil || st.Type == 0x01021994 {
		t.Errorf("tmpfs-backed volume still mounted after unmount: %v", err)
	}
	if got := next(4); !strings.HasPrefix(got[0], "unmount ") {
		t.Errorf("unmount events = %q", got)
	}

	var recorded []types.MountPoint
	for _, mp := range mps {
		recorded = append(recorded, mp.API())
	}
	e.releaseMountVolumes(id, recorded, true)
	if got := next(1); got[0] != "destroy "+anon+" driver=local" {
		t.Errorf("rm -v events = %q, want the anonymous volume destroyed", got)
	}
	list, _, _ := e.Volumes(ctx, filters.NewArgs())
	var left []string
	for _, v := range list {
		left = append(left, v.Name)
	}
	if strings.Join(left, " ") != "keep named scratch" {
		t.Errorf("volumes after rm -v = %q, want the named ones kept", left)
	}
	if err := e.VolumeRemove(ctx, "named", false); err != nil {
		t.Errorf("named volume still held after release: %v", err)
	}
}
