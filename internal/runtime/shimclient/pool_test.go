package shimclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// waitingShims lists the pre-started shims (command line "skiffd-shim
// shim -") whose parent is ppid.
func waitingShims(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		i := bytes.LastIndexByte(stat, ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(ppid) {
			continue
		}
		if cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); string(cmd) == "skiffd-shim\x00shim\x00-\x00" {
			out = append(out, pid)
		}
	}
	return out
}

// threadPolicies returns the scheduling policy of each of pid's threads
// (field 41 of their stat).
func threadPolicies(t *testing.T, pid int) []int {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		i := bytes.LastIndexByte(stat, ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:])) // f[0] is field 3
		n, err := strconv.Atoi(f[41-3])
		if err != nil {
			t.Fatalf("%s/%s/stat: %v", dir, task.Name(), err)
		}
		out = append(out, n)
	}
	return out
}

// gone reports whether pid has exited (a zombie has).
func gone(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// poll waits until cond holds, failing the test after the deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPoolShimWaitsWithoutState: a Runtime keeps one shim started ahead
// of its container, which holds nothing of any container (no file under
// the exec root, cwd /), takes the next container, and is replaced; Close
// ends the waiting one before it returns.
func TestPoolShimWaitsWithoutState(t *testing.T) {
	needRoot(t)
	root := filepath.Join(t.TempDir(), "exec")
	rt, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			rt.Close()
		}
	})
	// Exec'd (seen in /proc) comes a moment before the pool holds it.
	w := pollIdleShim(t, rt)
	if cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(w), "cwd")); err != nil || cwd != "/" {
		t.Errorf("waiting shim's cwd = %q, %v; want /", cwd, err)
	}
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(w), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(w), "fd", fd.Name())); strings.HasPrefix(l, root) {
			t.Errorf("waiting shim holds fd %s -> %s", fd.Name(), l)
		}
	}

	if got := threadPolicies(t, w); len(got) == 0 || slices.ContainsFunc(got, func(n int) bool { return n != sys.SCHED_IDLE }) {
		t.Errorf("waiting shim's threads have scheduling policies %v, want all SCHED_IDLE (%d)", got, sys.SCHED_IDLE)
	}

	s := newSpec(t, "true")
	c := create(t, rt, s)
	if got := threadPolicies(t, w); slices.ContainsFunc(got, func(n int) bool { return n != sys.SCHED_OTHER }) {
		t.Errorf("container's shim's threads have scheduling policies %v, want all SCHED_OTHER", got)
	}
	st, err := c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ShimPid != w {
		t.Errorf("container's shim = %d, want the pre-started %d", st.ShimPid, w)
	}
	cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w), "cmdline"))
	if got, want := string(cmd), "skiffd-shim\x00shim\x00"+filepath.Join(root, s.ID)+"\x00"; got != want {
		t.Errorf("shim's command line after the hand-over = %q, want %q", got, want)
	}
	// The shim takes more containers: no other is started meanwhile.
	rt.pool.refill()
	rt.pool.fills.Wait()
	if n := rt.pool.waiting(); n != 0 {
		t.Errorf("%d shims started while the shared one has room", n)
	}

	closed = true
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if gone(w) {
		t.Errorf("the container's shim %d ended with Close", w)
	}
}

// TestPoolShimEndsWithKilledDaemon: a daemon killed with SIGKILL leaves
// no pre-started shim behind.
func TestPoolShimEndsWithKilledDaemon(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fakeDaemonEnv+"=1")
	cmd.Stdin = strings.NewReader(`{"Root":"` + filepath.Join(t.TempDir(), "exec") + `"}`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "started\n" {
		t.Fatalf("fake daemon: %q", line)
	}
	var pids []int
	poll(t, "the fake daemon's pre-started shim", func() bool { pids = waitingShims(cmd.Process.Pid); return len(pids) == 1 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	poll(t, "the pre-started shim to exit after its daemon's SIGKILL", func() bool {
		_, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pids[0]), "stat"))
		return err != nil || gone(pids[0])
	})
}

// pollIdleShim waits until the pool holds one shim ready, exec'd as
// `skiffd-shim shim -`, and returns its pid. (The pool, not a look through
// /proc, says which: a shim of an earlier test that served containers
// reads the same while it exits.)
func pollIdleShim(t *testing.T, rt *Runtime) int {
	t.Helper()
	var w int
	poll(t, "a pre-started shim", func() bool {
		rt.pool.mu.Lock()
		w = 0
		if len(rt.pool.idle) == 1 {
			w = rt.pool.idle[0].p.Pid
		}
		rt.pool.mu.Unlock()
		return w != 0 && slices.Contains(waitingShims(os.Getpid()), w)
	})
	return w
}

// waiting is how many shims the pool holds ready.
func (p *pool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// TestRunningShimsHoldNoThreads checks that the daemon holds no OS thread
// per running container (issue 13: each shim's reaper blocked one in
// waitid for the container's lifetime, 50 threads for 50 containers),
// and that a shim is still reaped when it exits.
func TestRunningShimsHoldNoThreads(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	threads := func() int {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	start := func() *Container {
		c := create(t, rt, newSpec(t, "sleep", "1000"))
		if err := c.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		return c
	}
	refilled := func() bool {
		rt.pool.mu.Lock()
		defer rt.pool.mu.Unlock()
		return len(rt.pool.idle) == 1 || rt.pool.roomyLocked()
	}
	start() // threads the runtime makes once
	poll(t, "the pool's refill", refilled)
	before := threads()
	const n = 8
	for range n {
		start()
	}
	poll(t, "the pool's refill", refilled)
	if grown := threads() - before; grown >= n/2 {
		t.Errorf("%d running containers added %d threads to the daemon, want fewer than %d", n, grown, n/2)
	}
	// A container with a shim of its own (it shares the host's pid
	// namespace: see shareable), removed here rather than at the end.
	alone := newSpec(t, "sleep", "1000")
	alone.Namespaces = slices.DeleteFunc(alone.Namespaces, func(n spec.Namespace) bool { return n.Type == spec.PIDNamespace })
	c, err := rt.Create(ctx, alone)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c)
	poll(t, "the shim's exit to be reaped", func() bool {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(st.ShimPid)))
		return errors.Is(err, os.ErrNotExist)
	})
}

// TestShimWithoutSignalThread checks that the shim of a container with a
// pid namespace of its own reaps its children without os/signal, whose
// Notify keeps a thread with all signals blocked (and the runtime's
// template thread) for the shim's lifetime (issue 13), and that the exits
// of init and of an exec'd process are still collected.
func TestShimWithoutSignalThread(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, rt, newSpec(t, "sleep", "1000"))
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tasks := filepath.Join("/proc", strconv.Itoa(st.ShimPid), "task")
	ents, err := os.ReadDir(tasks)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(tasks, e.Name(), "status"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "SigBlk:"); ok && strings.Trim(strings.TrimSpace(v), "0") != "" {
				t.Errorf("shim thread %s blocks signals %s: os/signal's thread", e.Name(), strings.TrimSpace(v))
			}
		}
	}
	runExit(t, ctx, c, "x1", 3)
	if _, err := c.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 137 {
		t.Fatalf("Wait = %+v, %v; want code 137", exit, err)
	}
}
