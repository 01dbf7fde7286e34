package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
)

// TestEngineStartRecordNotSaved: a start is acknowledged only once its
// record is on disk. When it cannot be written (here the record file is
// bound onto itself, and the rename of the new one over it fails), the
// start fails with the save's error, the process is killed and its
// runtime state deleted, the record on disk is still the created one, and
// a start once the record can be written again works.
func TestEngineStartRecordNotSaved(t *testing.T) {
	e, _, _ := runEngine(t)
	ctx := context.Background()
	id := create(t, e, "unsaved", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	dir := e.containerDir(id)
	before, err := os.ReadFile(filepath.Join(dir, container.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	// The record bound onto itself: it reads the same, but a rename
	// over a mount point fails (EBUSY), so the atomic write cannot land.
	rec := filepath.Join(dir, container.ConfigFile)
	if err := syscall.Mount(rec, rec, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	bound := true
	unbind := func() {
		if bound {
			if err := syscall.Unmount(rec, syscall.MNT_DETACH); err != nil {
				t.Fatal(err)
			}
			bound = false
		}
	}
	t.Cleanup(unbind)

	err = e.ContainerStart(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "save container") || !strings.Contains(err.Error(), "device or resource busy") {
		t.Fatalf("start with a read-only record: %v, want the save's error", err)
	}
	insp, err := e.ContainerInspect(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if insp.State.Running || insp.State.Pid != 0 {
		t.Errorf("after the failed start: running %v, pid %d", insp.State.Running, insp.State.Pid)
	}
	if cs := e.state(id); cs.rc != nil {
		t.Error("the failed start left its runtime container behind")
	}
	if _, err := os.Stat(filepath.Join(e.runtimeRoot(), id)); !os.IsNotExist(err) {
		t.Errorf("the failed start left its runtime state: %v", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, container.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the record changed on disk:\n%s\nwas\n%s", after, before)
	}

	unbind()
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatalf("start once the record can be written: %v", err)
	}
	insp, err = e.ContainerInspect(ctx, id, false)
	if err != nil || !insp.State.Running || insp.State.Pid <= 0 {
		t.Fatalf("after the second start: %+v, %v", insp.State, err)
	}
	saved, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), `"Running":true`) {
		t.Errorf("the record of the running container does not say so: %s", saved)
	}
}
