package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/roles"
	"skiffd/internal/runtime/shimclient"
	"skiffd/internal/skifftest"
	"skiffd/internal/stdcopy"
)

// TestMain lets the test binary stand in for skiffd: the engine's runtime
// re-executes it (sealed) as shim, init and exec-helper.
func TestMain(m *testing.M) {
	roles.Dispatch()
	skifftest.Main(m)
}

// runEngine returns an engine on fresh roots with busybox imported; every
// container is removed at the end (they outlive the engine).
func runEngine(t *testing.T) (*Engine, string, string) {
	t.Helper()
	skifftest.RequireRoot(t)
	dir := t.TempDir()
	data, exec := filepath.Join(dir, "data"), filepath.Join(dir, "exec")
	e := openEngine(t, data, exec)
	if _, err := e.ImportImage(context.Background(), bytes.NewReader(skifftest.BusyboxTar(t)), "busybox", "latest", "", nil); err != nil {
		t.Fatal(err)
	}
	return e, data, exec
}

func openEngine(t *testing.T, data, exec string) *Engine {
	t.Helper()
	// Live restore is skiffd's default (--live-restore): a second engine on
	// the same roots reconnects to running containers instead of stopping them.
	e, err := New(context.Background(), Options{DataRoot: data, ExecRoot: exec, LiveRestore: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if e.monitorCtx.Err() != nil {
			return // closed by the test; another engine owns the containers
		}
		for _, c := range e.containers.List() {
			e.removeContainer(c, true, false)
		}
		e.Close()
	})
	return e
}

func create(t *testing.T, e *Engine, name string, cfg types.Config, hc *types.HostConfig) string {
	t.Helper()
	cfg.Image = "busybox"
	resp, err := e.ContainerCreate(context.Background(), name, &types.CreateRequest{Config: &cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return resp.ID
}

func waitExit(t *testing.T, e *Engine, id string, cond types.WaitCondition) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := e.ContainerWait(ctx, id, cond)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.Error != nil {
		t.Fatalf("wait %s: %s", id, r.Error.Message)
	}
	return r.StatusCode
}

// syncBuf is a bytes.Buffer for a writer goroutine and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestEngineAttachBeforeStart follows docker run's order: create, attach,
// wait, start. The attach sees all output and stdin reaches the process.
func TestEngineAttachBeforeStart(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "a1", types.Config{Cmd: []string{"sh", "-c", "echo first; cat; echo err >&2; exit 4"}, OpenStdin: true, StdinOnce: true}, nil)

	stdinR, stdinW := io.Pipe()
	var out, errOut syncBuf
	attached := make(chan error, 1)
	streamsTaken := make(chan struct{})
	go func() {
		attached <- e.ContainerAttach(context.Background(), id, &types.AttachConfig{
			Stdin: true, Stdout: true, Stderr: true, Stream: true,
			GetStreams: func(tty bool) (io.ReadCloser, io.Writer, io.Writer, error) {
				if tty {
					t.Error("GetStreams(tty=true) for a container without a TTY")
				}
				close(streamsTaken)
				return stdinR, &out, &errOut, nil
			},
		})
	}()
	<-streamsTaken
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitCh, err := e.ContainerWait(ctx, id, types.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	// The attach registered itself before GetStreams returned; give the
	// goroutine no further head start.
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(context.Background(), id); errdefs.KindOf(err) != errdefs.ErrNotModified {
		t.Errorf("second start: %v, want NotModified", err)
	}
	io.WriteString(stdinW, "from stdin\n")
	stdinW.Close()
	r := <-waitCh
	if r.StatusCode != 4 {
		t.Errorf("exit code %d, want 4", r.StatusCode)
	}
	if err := <-attached; err != nil {
		t.Errorf("attach: %v", err)
	}
	if out.String() != "first\nfrom stdin\n" || errOut.String() != "err\n" {
		t.Errorf("attach got stdout %q stderr %q", out.String(), errOut.String())
	}

	// Logs hold the same, and replaying them through attach works too.
	sink := &collectSink{}
	err = e.ContainerLogs(context.Background(), id, types.ContainerLogsOptions{Stdout: true, Stderr: true, Tail: -1}, sink)
	if err != nil || !sink.begun || sink.tty {
		t.Fatalf("logs: %v (begun %v tty %v)", err, sink.begun, sink.tty)
	}
	// The order between the two streams is not kept (as with dockerd).
	got := map[string]string{}
	for _, m := range sink.msgs {
		got[m.Stream] += string(m.Line)
	}
	if got["stdout"] != "first\nfrom stdin\n" || got["stderr"] != "err\n" {
		t.Errorf("logs = %q", got)
	}
	var buf bytes.Buffer
	err = e.ContainerAttach(context.Background(), id, &types.AttachConfig{
		Stdout: true, Stderr: true, Logs: true,
		GetStreams: func(tty bool) (io.ReadCloser, io.Writer, io.Writer, error) {
			so, se := stdcopy.NewWriters(&buf)
			return io.NopCloser(strings.NewReader("")), so, se, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var so, se bytes.Buffer
	if _, err := stdcopy.Copy(&so, &se, &buf); err != nil || so.String() != "first\nfrom stdin\n" || se.String() != "err\n" {
		t.Errorf("attach logs=1 replay: %q %q %v", so.String(), se.String(), err)
	}
}

// TestEngineRestore opens a second engine on the roots of a first one
// (which is simply abandoned, as after kill -9) and finds the running
// container running and the exited one exited with its code.
func TestEngineRestore(t *testing.T) {
	e1, data, exec := runEngine(t)
	run := create(t, e1, "run", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	quit := create(t, e1, "quit", types.Config{Cmd: []string{"sh", "-c", "read x; exit 9"}, OpenStdin: true}, nil)
	for _, id := range []string{run, quit} {
		if err := e1.ContainerStart(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	rc := e1.state(quit).rc
	e1.Close()
	// quit exits while no engine watches it: its stdin pipe is the shim's,
	// so end it through the shim directly.
	st, err := rc.Attach(context.Background(), shimclient.AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("go\n"))
	st.Close()

	e2 := openEngine(t, data, exec)
	insp, err := e2.ContainerInspect(context.Background(), "run", false)
	if err != nil || insp.State.Status != "running" {
		t.Fatalf("run after restore: %+v %v", insp.State, err)
	}
	if code := waitExit(t, e2, "quit", types.WaitConditionNotRunning); code != 9 {
		t.Errorf("quit's exit code after restore = %d, want 9", code)
	}
	timeout := 0
	if err := e2.ContainerStop(context.Background(), "run", "", &timeout); err != nil {
		t.Fatal(err)
	}
	if insp, _ := e2.ContainerInspect(context.Background(), "run", false); insp.State.Status != "exited" || insp.State.ExitCode != 137 {
		t.Errorf("run after stop: %+v", insp.State)
	}
	info, _ := e2.SystemInfo(context.Background())
	if info.Containers != 2 || info.ContainersStopped != 2 {
		t.Errorf("info counts %d/%d, want 2 stopped", info.Containers, info.ContainersStopped)
	}
}

// TestEngineErrors checks dockerd's answers for the usual mistakes.
func TestEngineErrors(t *testing.T) {
	e, _, _ := runEngine(t)
	ctx := context.Background()
	_, err := e.ContainerCreate(ctx, "", &types.CreateRequest{Config: &types.Config{Image: "nothere"}})
	if errdefs.KindOf(err) != errdefs.ErrNotFound || err.Error() != "No such image: nothere:latest" {
		t.Errorf("create of a missing image: %v", err)
	}
	_, err = e.ContainerCreate(ctx, "", &types.CreateRequest{})
	if errdefs.KindOf(err) != errdefs.ErrInvalidParameter {
		t.Errorf("create without config: %v", err)
	}
	id := create(t, e, "xx", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	if _, err := e.ContainerCreate(ctx, "xx", &types.CreateRequest{Config: &types.Config{Image: "busybox", Cmd: []string{"true"}}}); errdefs.KindOf(err) != errdefs.ErrConflict {
		t.Errorf("create with a taken name: %v", err)
	}
	if err := e.ContainerKill(ctx, "xx", ""); errdefs.KindOf(err) != errdefs.ErrConflict || !strings.Contains(err.Error(), "Cannot kill container: xx: Container "+id+" is not running") {
		t.Errorf("kill of a created container: %v", err)
	}
	if err := e.ContainerStop(ctx, "xx", "", nil); errdefs.KindOf(err) != errdefs.ErrNotModified {
		t.Errorf("stop of a created container: %v", err)
	}
	if err := e.ContainerPause(ctx, "xx"); errdefs.KindOf(err) != errdefs.ErrConflict {
		t.Errorf("pause of a created container: %v", err)
	}
	if err := e.ContainerKill(ctx, "xx", "NOSIG"); errdefs.KindOf(err) != errdefs.ErrInvalidParameter {
		t.Errorf("kill with a bad signal: %v", err)
	}
	if err := e.ContainerStart(ctx, "xx"); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerRemove(ctx, "xx", false, false); errdefs.KindOf(err) != errdefs.ErrConflict ||
		err.Error() != "You cannot remove a running container "+id+". Stop the container before attempting removal or force remove" {
		t.Errorf("rm of a running container: %v", err)
	}
	// rmi of its image is refused while it runs: its last tag without
	// force, its ID even with force.
	if _, err := e.ImageDelete(ctx, "busybox", false, false); errdefs.KindOf(err) != errdefs.ErrConflict {
		t.Errorf("rmi of the last tag of an image in use: %v", err)
	}
	if img, err := e.images.Get("busybox"); err != nil {
		t.Error(err)
	} else if _, err := e.ImageDelete(ctx, img.ID, true, false); errdefs.KindOf(err) != errdefs.ErrConflict {
		t.Errorf("forced rmi by ID of an image a running container uses: %v", err)
	}
	if err := e.ContainerRemove(ctx, "xx", true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerInspect(ctx, id, false); errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Errorf("inspect after rm: %v", err)
	}
	if _, err := os.Stat(e.containerDir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container directory left after rm: %v", err)
	}

	id = create(t, e, "bad", types.Config{Cmd: []string{"nope"}}, &types.HostConfig{AutoRemove: true})
	err = e.ContainerStart(ctx, id)
	if errdefs.KindOf(err) != errdefs.ErrInvalidParameter || !strings.Contains(err.Error(), `exec: "nope": executable file not found in $PATH`) {
		t.Errorf("start of a missing executable: %v", err)
	}
	if _, err := e.ContainerInspect(ctx, id, false); errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Errorf("an AutoRemove container whose start failed still exists: %v", err)
	}
}

// TestEngineStartRecordOfAnotherHost starts a container whose record asks
// for a blkio weight, as records made before create checked it (or on
// another host) do: where this host has no weighted IO scheduler the weight
// is discarded at start as at create, and the container runs either way.
func TestEngineStartRecordOfAnotherHost(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "old", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	c, err := e.containers.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	c.Lock()
	c.HostConfig.Resources.BlkioWeight = 300
	err = e.containers.Save(c)
	c.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatalf("start with a blkio weight (host has weighted IO: %v): %v", e.features.Cgroup.BlkioWeight, err)
	}
	if insp, err := e.ContainerInspect(context.Background(), id, false); err != nil || !insp.State.Running {
		t.Errorf("after start: %+v %v", insp, err)
	}
}

// collectSink keeps the records ContainerLogs sends.
type collectSink struct {
	begun, tty bool
	msgs       []types.LogMessage
}

func (c *collectSink) Begin(tty bool) { c.begun, c.tty = true, tty }
func (c *collectSink) Record(stream string, line []byte, t time.Time) error {
	c.msgs = append(c.msgs, types.LogMessage{Stream: stream, Line: bytes.Clone(line), Time: t})
	return nil
}
func (c *collectSink) Idle() error { return nil }
