package shimclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"skiffd/internal/runtime/spec"
)

// TestCreateWire checks CreateOptions.Wire: it runs as soon as init's
// namespaces exist, while init sets up (so it runs even when init's set-up
// then fails), Create waits for it, and a Wire that fails deletes the
// container (issue 13: the network wiring overlaps init's set-up).
func TestCreateWire(t *testing.T) {
	rt := newRuntime(t)
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("ready", func(t *testing.T) {
		s := newSpec(t, "true")
		var wiredPid atomic.Int64
		var netns atomic.Value
		c, err := rt.CreateWith(ctx, s, CreateOptions{Wire: func(pid int) error {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
			if err != nil {
				return err
			}
			netns.Store(ns)
			wiredPid.Store(int64(pid))
			return nil
		}})
		if err != nil {
			t.Fatalf("CreateWith: %v", err)
		}
		t.Cleanup(func() { cleanup(t, c) })
		if got := int(wiredPid.Load()); got != c.InitPid() || got <= 0 {
			t.Errorf("Wire got pid %d, want init's %d", got, c.InitPid())
		}
		if ns, _ := netns.Load().(string); ns == "" || ns == self {
			t.Errorf("Wire saw network namespace %q, want init's own (not %q)", ns, self)
		}
	})

	t.Run("init fails after Wire began", func(t *testing.T) {
		// The bind's source is missing: init fails in its rootfs set-up,
		// after its namespaces exist. Wire is called all the same, and
		// returns only once init is gone; Create must wait for it.
		s := newSpec(t, "true")
		s.Mounts = append(s.Mounts, spec.Mount{Destination: "/data", Type: "bind", Source: "/nonexistent-skiffd-wire-test", Options: []string{"rbind"}})
		var called, returned atomic.Bool
		_, err := rt.CreateWith(ctx, s, CreateOptions{Wire: func(pid int) error {
			called.Store(true)
			defer returned.Store(true)
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil {
					return nil
				}
				time.Sleep(time.Millisecond)
			}
			return errors.New("init outlived its failed set-up")
		}})
		if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
			t.Fatalf("CreateWith = %v, want init's error about the missing source", err)
		}
		if !called.Load() {
			t.Fatal("Wire was not called: it does not overlap init's set-up")
		}
		if !returned.Load() {
			t.Error("CreateWith returned before Wire did")
		}
		if _, err := os.Stat(rt.dir(s.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the container's directory is left: %v", err)
		}
	})

	t.Run("Wire fails", func(t *testing.T) {
		s := newSpec(t, "true")
		wireErr := errors.New("the veth could not be made")
		var initPid atomic.Int64
		_, err := rt.CreateWith(ctx, s, CreateOptions{Wire: func(pid int) error {
			initPid.Store(int64(pid))
			return wireErr
		}})
		if err != wireErr {
			t.Fatalf("CreateWith = %v, want Wire's error %v", err, wireErr)
		}
		if _, err := os.Stat(rt.dir(s.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the container's directory is left: %v", err)
		}
		if pid := initPid.Load(); pid > 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
				t.Errorf("init (pid %d) still runs after a failed Wire", pid)
			}
		}
	})
}
