package engine

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/filters"
)

func newTestEngine(t *testing.T, dataRoot string) *Engine {
	t.Helper()
	e, err := New(context.Background(), Options{DataRoot: dataRoot, ExecRoot: filepath.Join(t.TempDir(), "exec"), Build: BuildInfo{Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEngineIDPersistsAndTempsCleaned(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(root, 0o711); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(root, atomicfile.TempPrefix+"engine-id-123")
	os.WriteFile(leftover, []byte("half"), 0o600)
	e1 := newTestEngine(t, root)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(e1.id) {
		t.Errorf("engine ID %q is not a v4 UUID", e1.id)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover temp file survived start: %v", err)
	}
	e2 := newTestEngine(t, root)
	if e1.id != e2.id {
		t.Errorf("engine ID changed across restarts: %q then %q", e1.id, e2.id)
	}
	info, err := e2.SystemInfo(context.Background())
	if err != nil || info.ID != e1.id || info.DockerRootDir != root {
		t.Errorf("SystemInfo = ID %q root %q (%v)", info.ID, info.DockerRootDir, err)
	}
}

func TestEngineEvents(t *testing.T) {
	e := newTestEngine(t, filepath.Join(t.TempDir(), "data"))
	bad := filters.NewArgs(filters.Arg("bogus", "1"))
	if _, _, _, err := e.SubscribeToEvents(context.Background(), time.Time{}, time.Time{}, bad); err == nil {
		t.Error("SubscribeToEvents accepted an unknown filter key")
	}
	ef := filters.NewArgs(filters.Arg("type", "image"))
	_, live, cancel, err := e.SubscribeToEvents(context.Background(), time.Time{}, time.Time{}, ef)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if info, _ := e.SystemInfo(context.Background()); info.NEventsListener != 1 {
		t.Errorf("NEventsListener = %d, want 1", info.NEventsListener)
	}
	e.events.Log("create", "container", types.EventActor{ID: "c1"})
	e.events.Log("tag", "image", types.EventActor{ID: "sha256:abc", Attributes: map[string]string{"name": "busybox:latest"}})
	<-live.Ready()
	batch, _ := live.Take(nil)
	if len(batch) == 0 {
		t.Fatal("no live event")
	}
	m := batch[0]
	if m.Type != "image" || m.Action != "tag" {
		t.Errorf("first live event = %s %s, want the image tag (container event filtered out)", m.Type, m.Action)
	}
}
