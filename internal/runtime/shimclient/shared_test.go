package shimclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// shimOf returns the pid of the shim serving c, from its state.
func shimOf(t *testing.T, c *Container) int {
	t.Helper()
	st, err := c.State(context.Background())
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if !st.DirLock {
		t.Errorf("state of %s does not say its shim holds the directory's lock", c.ID())
	}
	return st.ShimPid
}

// startSleeping creates and starts a container that sleeps.
func startSleeping(t *testing.T, rt *Runtime, alone bool) *Container {
	t.Helper()
	s := newSpec(t, "sleep", "1000")
	if alone {
		// Sharing the host's pid namespace: its orphans would come to
		// its shim, which must then be its own.
		s.Namespaces = slices.DeleteFunc(s.Namespaces, func(n spec.Namespace) bool { return n.Type == spec.PIDNamespace })
	}
	c := create(t, rt, s)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return c
}

func cmdlineArgs(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// runExit execs `exit code` in c as exec id and checks that it exits so.
func runExit(t *testing.T, ctx context.Context, c *Container, id string, code int) {
	t.Helper()
	ps := newSpec(t, "sh", "-c", "exit "+strconv.Itoa(code)).Process
	e, err := c.Exec(ctx, id, &ps)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if _, err := e.Start(ctx); err != nil {
		t.Fatalf("exec Start: %v", err)
	}
	if exit, err := e.Wait(ctx); err != nil || exit.Code != code {
		t.Fatalf("exec Wait = %+v, %v; want code %d", exit, err, code)
	}
}

// TestSharedShim: containers with a pid namespace of their own share one
// shim process, which names them all in its command line; one that shares
// the host's gets a shim of its own. Removing one container releases its
// directory while the shim goes on serving the others, which still run,
// exec and stop as before.
func TestSharedShim(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, c := startSleeping(t, rt, false), startSleeping(t, rt, false), startSleeping(t, rt, false)
	pid := shimOf(t, a)
	if shimOf(t, b) != pid || shimOf(t, c) != pid {
		t.Fatalf("shims %d, %d, %d: want one for the three", pid, shimOf(t, b), shimOf(t, c))
	}
	if got, want := cmdlineArgs(t, pid), []string{"skiffd-shim", "shim", a.dir, b.dir, c.dir}; !slices.Equal(got, want) {
		t.Errorf("shared shim's command line = %q, want %q", got, want)
	}
	alone := startSleeping(t, rt, true)
	if p := shimOf(t, alone); p == pid {
		t.Errorf("a container sharing the host's pid namespace got the shared shim %d", p)
	}

	// Remove b: its directory is released (Delete waited for that), the
	// shim still runs and serves a and c.
	if _, err := b.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := b.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(b.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b's directory after Delete: %v", err)
	}
	if gone(pid) {
		t.Fatal("the shared shim exited with one of its containers")
	}
	poll(t, "the shim's command line without b", func() bool {
		return slices.Equal(cmdlineArgs(t, pid), []string{"skiffd-shim", "shim", a.dir, c.dir})
	})
	for _, x := range []*Container{a, c} {
		st, err := x.State(ctx)
		if err != nil || st.Status != shim.StatusRunning {
			t.Fatalf("State of %s after b's removal = %+v, %v; want running", x.ID(), st, err)
		}
		runExit(t, ctx, x, "e1", 4)
	}
	// a's exit ends a's service in the shim without a Delete; c lives.
	if err := a.Signal(ctx, syscall.SIGKILL); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if exit, err := a.Wait(ctx); err != nil || exit.Code != 137 {
		t.Fatalf("Wait = %+v, %v; want 137", exit, err)
	}
	poll(t, "a's directory released", func() bool { return !dirLocked(a.dir) })
	if st, err := c.State(ctx); err != nil || st.Status != shim.StatusRunning {
		t.Errorf("State of c after a's exit = %+v, %v; want running", st, err)
	}
}

// TestSharedShimCrash: a shim that dies takes the containers it serves
// down with it (the trade-off of sharing, bounded by shareMax): each is
// reported stopped, its init killed, and none is left running unwatched.
func TestSharedShimCrash(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := []*Container{startSleeping(t, rt, false), startSleeping(t, rt, false)}
	pid := shimOf(t, cs[0])
	var inits []*shim.State
	for _, c := range cs {
		st, err := c.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inits = append(inits, st)
	}
	fd, err := sys.PidfdOpen(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := sys.PidfdSendSignal(fd, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, "the killed shim's exit", func() bool { return gone(pid) })
	for i, c := range cs {
		st, err := c.State(ctx)
		if err != nil || st.Status != shim.StatusStopped || st.ExitCode != 137 || st.Error != "the container's shim died" {
			t.Errorf("State of %s after its shim died = %+v, %v; want stopped, 137, the shim died", c.ID(), st, err)
		}
		poll(t, "the orphaned init's end", func() bool {
			_, alive := initAlive(inits[i])
			return !alive
		})
	}
}

// withKeeper returns a runtime with one running container, the keeper,
// and the shim that serves it, which the next containers share, and a
// context for the test.
func withKeeper(t *testing.T) (*Runtime, context.Context, *Container, int) {
	t.Helper()
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	keeper := startSleeping(t, rt, false)
	return rt, ctx, keeper, shimOf(t, keeper)
}

// TestSharedShimLetsGo: a shim that has served containers holds no more
// file descriptors once they are gone than before (it lives on with
// others: what a container leaves behind would add up).
func TestSharedShimLetsGo(t *testing.T) {
	rt, ctx, keeper, pid := withKeeper(t)
	base := fdCount(t, pid)
	for i := range 4 {
		s := newSpec(t, "sh", "-c", "echo out; echo err >&2; exit 2")
		s.Log.Path = filepath.Join(t.TempDir(), "json.log")
		if i%2 == 1 {
			s.Process.Terminal = true
		}
		c := create(t, rt, s)
		if shimOf(t, c) != pid {
			t.Fatalf("container %d went to another shim", i)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 2 {
			t.Fatalf("Wait = %+v, %v; want 2", exit, err)
		}
		if err := c.Delete(ctx); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	var n int
	poll(t, "the shim's fds back to what it held with the keeper alone", func() bool {
		n = fdCount(t, pid)
		return n <= base
	})
	if st, err := keeper.State(ctx); err != nil || st.Status != shim.StatusRunning {
		t.Errorf("keeper = %+v, %v; want running", st, err)
	}
}

// TestSharedShimCap: a shim takes at most shareMax containers in its life;
// the next shareable one goes to the next shared shim. A fresh shim is started ahead only once the shared one has one place
// left, and takes the container after.
func TestSharedShimCap(t *testing.T) {
	rt := newRuntime(t)
	poll(t, "the first pre-started shim", func() bool { return rt.pool.waiting() == 1 })
	first := shimOf(t, startSleeping(t, rt, false))
	for i := 1; i < shareMax; i++ {
		if i < shareMax-1 {
			rt.pool.fills.Wait()
			if w := rt.pool.waiting(); w != 0 {
				t.Fatalf("with %d places left in the shared shim, %d shims wait", shareMax-i, w)
			}
		}
		if p := shimOf(t, startSleeping(t, rt, false)); p != first {
			t.Fatalf("container %d of %d went to shim %d, want the shared %d", i+1, shareMax, p, first)
		}
	}
	var next int
	poll(t, "a shim started ahead", func() bool {
		rt.pool.mu.Lock()
		defer rt.pool.mu.Unlock()
		if len(rt.pool.idle) == 1 {
			next = rt.pool.idle[0].p.Pid
		}
		return next != 0
	})
	if p := shimOf(t, startSleeping(t, rt, false)); p == first || p != next {
		t.Errorf("container %d went to shim %d, want the one started ahead %d (the full one is %d)", shareMax+1, p, next, first)
	}
}

// TestCreateCancelledInSharedShim: a create given up by the daemon (its
// request cancelled) is aborted in the shim, which kills its init and
// lets go of the directory, and goes on serving its other containers.
func TestCreateCancelledInSharedShim(t *testing.T) {
	rt := newRuntime(t)
	keeper := startSleeping(t, rt, false)
	pid := shimOf(t, keeper)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newSpec(t, "sleep", "1000")
	var initPid int
	_, err := rt.CreateWith(ctx, s, CreateOptions{Wire: func(p int) error {
		initPid = p
		cancel()
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateWith with its context cancelled = %v, want context.Canceled", err)
	}
	if initPid == 0 {
		t.Fatal("Wire was not called")
	}
	poll(t, "the aborted init's end", func() bool { return gone(initPid) })
	if _, err := os.Stat(rt.dir(s.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the aborted container's directory: %v", err)
	}
	if gone(pid) {
		t.Fatal("the shared shim exited")
	}
	if st, err := keeper.State(context.Background()); err != nil || st.Status != shim.StatusRunning {
		t.Errorf("keeper = %+v, %v; want running", st, err)
	}
}

// TestSharedShimConcurrentCreates: containers handed to one shim at the
// same moment are created side by side (each its own init, namespaces and
// state) and each runs and exits as its own.
func TestSharedShimConcurrentCreates(t *testing.T) {
	rt, ctx, _, pid := withKeeper(t)
	const n = 6
	specs := make([]*spec.Spec, n)
	for i := range specs {
		specs[i] = newSpec(t, "sh", "-c", "exit "+strconv.Itoa(10+i))
	}
	type made struct {
		c   *Container
		err error
	}
	ch := make(chan made, n)
	for _, s := range specs {
		go func() {
			c, err := rt.Create(ctx, s)
			ch <- made{c, err}
		}()
	}
	cs := map[string]*Container{}
	for range n {
		m := <-ch
		if m.err != nil {
			t.Fatalf("Create: %v", m.err)
		}
		t.Cleanup(func() { cleanup(t, m.c) })
		cs[m.c.ID()] = m.c
	}
	inits := map[int]bool{}
	shared := 0
	for i, s := range specs {
		c := cs[s.ID]
		if shimOf(t, c) == pid {
			shared++
		}
		if inits[c.InitPid()] {
			t.Errorf("two containers with init %d", c.InitPid())
		}
		inits[c.InitPid()] = true
		if err := c.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 10+i {
			t.Errorf("Wait of container %d = %+v, %v; want %d", i, exit, err, 10+i)
		}
	}
	if shared < n-1 {
		t.Errorf("%d of %d concurrent containers went to the shared shim", shared, n)
	}
}
