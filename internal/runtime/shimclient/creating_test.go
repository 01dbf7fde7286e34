package shimclient

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shim"
)

// fakeCreatingShim starts a process whose command line is a shim's for dir
// ("skiffd ... shim <dir>"): /bin/sh waiting on its stdin. It runs until
// the returned function is called.
func fakeCreatingShim(t *testing.T, dir string) (end func()) {
	t.Helper()
	cmd := &exec.Cmd{Path: "/bin/sh", Args: []string{"skiffd", "-c", "read x", "shim", dir}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting /bin/sh to stand in for a shim: %v", err)
	}
	var once sync.Once
	end = func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(end)
	for deadline := time.Now().Add(10 * time.Second); !shimRunsFor(dir); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shimRunsFor(%s) = false with the fake shim running", dir)
		}
	}
	return end
}

// TestLoadWaitsForAShimStillCreating: a daemon killed during a create
// leaves its shim creating the container on its own, its state file not
// written yet. Load must wait for that state instead of taking the
// directory for an abandoned one (which the caller would then delete
// under the shim, leaving it waiting for a start forever) — issue 9.
func TestLoadWaitsForAShimStillCreating(t *testing.T) {
	root := t.TempDir()
	r := &Runtime{root: root}
	const id = "creating"
	dir := r.dir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, shim.SpecFile), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	end := fakeCreatingShim(t, dir)
	// The shim gets as far as its state a moment later (stopped: a create
	// that failed, so that Load asks no socket).
	st, _ := json.Marshal(shim.State{ID: id, Status: shim.StatusStopped})
	time.AfterFunc(200*time.Millisecond, func() {
		// As the shim does: replaced whole, never seen half-written.
		atomicfile.Replace(filepath.Join(dir, shim.StateFile), st, 0o600)
		end()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Load(ctx, id); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, shim.StateFile)); err != nil {
		t.Errorf("Load returned before the creating shim wrote its state: %v", err)
	}
}

// TestLoadWithoutShimOrState: a directory whose shim died before writing
// any state loads at once as a handle good for Delete.
func TestLoadWithoutShimOrState(t *testing.T) {
	root := t.TempDir()
	r := &Runtime{root: root}
	const id = "abandoned"
	dir := r.dir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, shim.SpecFile), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	end := fakeCreatingShim(t, dir)
	end() // the shim is gone, without a state
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.Load(ctx, id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Load waited for a shim that is gone")
	}
	if _, err := c.State(ctx); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State of an abandoned directory = %v, want not found", err)
	}
}
