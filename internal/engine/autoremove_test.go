package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/shimclient"
)

// watchRecordWrites watches dir for files written into it (created, or
// renamed in) and returns a function that reports their names so far.
func watchRecordWrites(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	var names []string
	return func() []string {
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if n <= 0 || err != nil {
				return names
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				names = append(names, string(bytes.TrimRight(name, "\x00")))
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
}

// TestEngineAutoRemoveExitNotSaved: the removal of an AutoRemove container
// stands for the save of its exit (issue 13: one fsync less per `docker
// run --rm`). After its start its record is never written again, only
// removed; a waiter for its exit still gets the exit code, and one for
// its removal finds it gone.
func TestEngineAutoRemoveExitNotSaved(t *testing.T) {
	e, _, _ := runEngine(t)
	ctx := context.Background()
	id := startAutoRemoveWaiting(t, ctx, e)
	writes := watchRecordWrites(t, e.containerDir(id))
	exited, err := e.ContainerWait(ctx, id, types.WaitConditionNotRunning)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := e.ContainerWait(ctx, id, types.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	// The process ends by itself (a kill would save the record: the
	// container was stopped by hand).
	sendGo(t, ctx, e, id)
	wantExit3(t, exited, "not-running")
	wantExit3(t, removed, "removed")
	if _, err := e.ContainerInspect(ctx, id, false); errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Errorf("inspect after the auto-removal: %v", err)
	}
	for _, name := range writes() {
		if strings.Contains(name, container.ConfigFile) {
			t.Errorf("record written after the start of an AutoRemove container (%s)", name)
		}
	}
}

// TestEngineRestoreRemovesStoppedAutoRemove: an AutoRemove container
// whose run ended while no daemon watched, or whose daemon died between
// its exit and its removal, is removed by the next daemon, as dockerd
// removes AutoRemove containers at its start, whatever state it was left
// in: the record running with the exit in the shim's state file (killed
// before the exit's save), the record running with no runtime state (the
// exec root wiped, as by a reboot), and the record stopped with the
// runtime state kept (killed after the exit's save, before the runtime
// state's deletion: this one stayed, exited, for good). A fourth state,
// the record removed while the root file system is still mounted and the
// runtime state kept (the exit handler removes the record while it
// unmounts and the shim goes), leaves nothing behind either.
func TestEngineRestoreRemovesStoppedAutoRemove(t *testing.T) {
	for _, tc := range []struct {
		name          string
		deleteRuntime bool
		saveStopped   bool
		removeRecord  bool
	}{
		{"record running, exit in the shim's state", false, false, false},
		{"record running, no runtime state", true, false, false},
		{"record stopped, runtime state kept", false, true, false},
		{"record removed, root file system mounted", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e1, data, exec := runEngine(t)
			ctx := context.Background()
			id := create(t, e1, "rm", types.Config{Cmd: []string{"sleep", "1000"}}, &types.HostConfig{AutoRemove: true})
			if err := e1.ContainerStart(ctx, id); err != nil {
				t.Fatal(err)
			}
			rc := e1.state(id).rc
			e1.Close()
			// The exit happens while no daemon watches.
			if exit, err := rc.Kill(ctx); err != nil || exit.Code != 137 {
				t.Fatalf("kill through the shim: %+v %v", exit, err)
			}
			if tc.deleteRuntime {
				if err := rc.Delete(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tc.saveStopped {
				saveStoppedRecord(t, filepath.Join(data, "containers", id, container.ConfigFile))
			}
			if tc.removeRecord {
				if err := os.Remove(filepath.Join(data, "containers", id, container.ConfigFile)); err != nil {
					t.Fatal(err)
				}
			}

			e2 := openEngine(t, data, exec)
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, err := e2.ContainerInspect(ctx, id, false)
				if errdefs.KindOf(err) == errdefs.ErrNotFound {
					break
				}
				if time.Now().After(deadline) {
					insp, _ := e2.ContainerInspect(ctx, id, false)
					t.Fatalf("the AutoRemove container is still there after the restart: %+v", insp.State)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, dir := range []string{filepath.Join(data, "containers", id), filepath.Join(exec, "containers", id)} {
				// The record goes last but for the directory it is in.
				deadline := time.Now().Add(10 * time.Second)
				for {
					_, err := os.Stat(dir)
					if errors.Is(err, os.ErrNotExist) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s left after the removal: %v", dir, err)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(filepath.Join(data, "containers", id))) {
				t.Errorf("a mount of the container is left after the removal")
			}
		})
	}
}

// saveStoppedRecord rewrites the record at path as the exit handler saves
// it: not running, exit code 137.
func saveStoppedRecord(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	st, ok := rec["State"].(map[string]any)
	if !ok {
		t.Fatalf("record without a State: %s", b)
	}
	st["Running"], st["Pid"], st["ExitCode"] = false, 0, 137
	st["FinishedAt"] = time.Now().UTC().Format(time.RFC3339Nano)
	if b, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEngineAutoRemoveDoesNotWaitForShim: the removal of an AutoRemove
// container that exited does not wait for its shim to be done with it (a
// shim's release of a container can take a kernel grace period); its
// runtime state is deleted once the shim has let go. Here a client connection that never sends a request
// keeps the shim for its drain time (2 s) after the exit: the container
// is removed, and its waiters told, while the shim is still there; once
// the connection closes, the shim, its runtime directory and its cgroups
// go.
func TestEngineAutoRemoveDoesNotWaitForShim(t *testing.T) {
	e, _, exec := runEngine(t)
	ctx := context.Background()
	id := startAutoRemoveWaiting(t, ctx, e)
	dir := filepath.Join(exec, "containers", id)
	st, err := shim.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.DirLock {
		t.Fatal("the shim does not hold the container directory's lock")
	}
	// The shim serves the container while it holds the directory's lock
	// (it may serve others, and live on, after).
	dirf, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dirf.Close()
	shimAlive := func() bool {
		err := syscall.Flock(int(dirf.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			syscall.Flock(int(dirf.Fd()), syscall.LOCK_UN)
		}
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	addr, release, err := shim.SocketAddr(dir)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("unix", addr)
	release()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	var cgPaths []string
	if cg := shim.OpenCgroup(e.state(id).rc.Spec()); cg != nil {
		for _, p := range cg.Paths() {
			cgPaths = append(cgPaths, p)
		}
	}
	if len(cgPaths) == 0 {
		t.Fatal("the container has no cgroup")
	}

	removed, err := e.ContainerWait(ctx, id, types.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	sendGo(t, ctx, e, id)
	wantExit3(t, removed, "removed")
	if !shimAlive() {
		t.Errorf("the removal waited for the shim to let go of the container")
	}
	if _, err := e.ContainerInspect(ctx, id, false); errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Errorf("inspect after the removal: %v", err)
	}
	idle.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, derr := os.Stat(dir)
		left := shimAlive() || derr == nil
		for _, p := range cgPaths {
			if _, err := os.Stat(p); err == nil {
				left = true
			}
		}
		if !left {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the shim's drain: shim alive %v, runtime directory %v, cgroups %v", shimAlive(), derr, cgPaths)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendGo lets the test container id go on past its `read` (its process
// then ends by itself): it writes a line to its stdin.
func sendGo(t *testing.T, ctx context.Context, e *Engine, id string) {
	t.Helper()
	in, err := e.state(id).rc.Attach(ctx, shimclient.AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	in.Close()
}

// startAutoRemoveWaiting creates and starts an AutoRemove container that
// waits for a line on its stdin (sendGo), then exits 3.
func startAutoRemoveWaiting(t *testing.T, ctx context.Context, e *Engine) string {
	t.Helper()
	id := create(t, e, "rm", types.Config{Cmd: []string{"sh", "-c", "read x; exit 3"}, OpenStdin: true}, &types.HostConfig{AutoRemove: true})
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// wantExit3 waits for the wait named cond to answer the exit code 3.
func wantExit3(t *testing.T, ch <-chan types.WaitResponse, cond string) {
	t.Helper()
	select {
	case r := <-ch:
		if r.StatusCode != 3 || r.Error != nil {
			t.Errorf("%s wait = %d %v, want 3", cond, r.StatusCode, r.Error)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s wait answer after 20 s", cond)
	}
}
