package shimclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// fakeDaemonEnv makes the test binary play a daemon: it reads the exec
// root and specs from stdin, creates and starts the containers, says
// "started" and waits to be killed.
const fakeDaemonEnv = "SHIMCLIENT_TEST_DAEMON"

type fakeDaemonInput struct {
	Root  string
	Specs []*spec.Spec
}

func fakeDaemon() int {
	var in fakeDaemonInput
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	rt, err := New(Options{Root: in.Root})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx := context.Background()
	for _, s := range in.Specs {
		c, err := rt.Create(ctx, s)
		if err == nil {
			err = c.Start(ctx)
		}
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	fmt.Println("started")
	select {}
}

// startDaemon runs the fake daemon on specs, waits until it has started
// them, and kills it with SIGKILL.
func startAndKillDaemon(t *testing.T, root string, specs []*spec.Spec) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fakeDaemonEnv+"=1")
	in, _ := json.Marshal(fakeDaemonInput{Root: root, Specs: specs})
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if line != "started\n" {
		t.Fatalf("fake daemon: %q", line)
	}
}

func TestRestore(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// running: waits for stdin, then exits 0.
	running := newSpec(t, "sh", "-c", "echo before; read x; echo after $x")
	running.Process.OpenStdin, running.Process.StdinOnce = true, true
	// exits: exits 5 while no daemon is around, once the test allows it.
	exits := newSpec(t, "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.01; done; seq 3; exit 5")
	exits.Log.Path = filepath.Join(t.TempDir(), "exits-json.log")
	// orphan: its shim is killed. It shares the host's pid namespace,
	// which gives it a shim of its own; running and exits share one.
	orphan := newSpec(t, "sh", "-c", "exec sleep 100000")
	orphan.Namespaces = slices.DeleteFunc(orphan.Namespaces, func(n spec.Namespace) bool { return n.Type == spec.PIDNamespace })
	specs := []*spec.Spec{running, exits, orphan}

	startAndKillDaemon(t, rt.root, specs)
	for _, s := range specs {
		t.Cleanup(func() {
			if c, err := rt.Load(context.Background(), s.ID); err == nil {
				cleanup(t, c)
			}
		})
	}
	if err := os.WriteFile(filepath.Join(exits.Root, "tmp/go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	orphanState, err := shim.ReadState(rt.dir(orphan.ID))
	if err != nil {
		t.Fatal(err)
	}
	// Kill the orphan's shim and wait until it is dead: kill(2) returns
	// before the target has died.
	shimfd, err := sys.PidfdOpen(orphanState.ShimPid)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.PidfdSendSignal(shimfd, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	fds := [1]sys.PollFd{{Fd: int32(shimfd), Events: sys.POLLIN}}
	if n, err := sys.Ppoll(fds[:], syscall.NsecToTimespec(int64(30*time.Second))); n != 1 || err != nil {
		t.Fatalf("the killed shim did not die (%d, %v)", n, err)
	}
	syscall.Close(shimfd)

	ids, err := rt.List()
	if err != nil || len(ids) != 3 {
		t.Fatalf("List = %v, %v; want 3 containers", ids, err)
	}

	t.Run("running", func(t *testing.T) {
		c, err := rt.Load(ctx, running.ID)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.State(ctx)
		if err != nil || st.Status != shim.StatusRunning {
			t.Fatalf("State = %+v, %v; want running", st, err)
		}
		// An exec started by this daemon, found again by id by the next.
		e, err := c.Exec(ctx, "x1", execSpec("sh", "-c", "exit 6"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if exit, err := c.Process("x1").Wait(ctx); err != nil || exit.Code != 6 {
			t.Errorf("Process(x1).Wait = %+v, %v; want 6", exit, err)
		}
		if _, err := c.Process("nope").Wait(ctx); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Process(nope).Wait = %v, want not found", err)
		}
		s, err := c.Attach(ctx, AttachOptions{Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Write([]byte("again\n"))
		s.CloseStdin()
		var out strings.Builder
		if err := s.Copy(&out, io.Discard); err != nil {
			t.Fatal(err)
		}
		exit, err := c.Wait(ctx)
		if err != nil || exit.Code != 0 || out.String() != "after again\n" {
			t.Errorf("after restore: output %q, exit %+v, %v; want \"after again\\n\", 0", out.String(), exit, err)
		}
	})

	t.Run("exited meanwhile", func(t *testing.T) {
		c, err := rt.Load(ctx, exits.ID)
		if err != nil {
			t.Fatal(err)
		}
		exit, err := c.Wait(ctx)
		if err != nil || exit.Code != 5 {
			t.Fatalf("Wait = %+v, %v; want 5", exit, err)
		}
		// Once the shim has gone, the exit comes from the state file.
		c.waitShimGone(ctx)
		exit, err = c.Wait(ctx)
		if err != nil || exit.Code != 5 || exit.ExitedAt.IsZero() {
			t.Errorf("Wait after the shim left = %+v, %v; want 5", exit, err)
		}
		b, err := os.ReadFile(exits.Log.Path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e struct{ Log string }
			json.Unmarshal([]byte(l), &e)
			got = append(got, e.Log)
		}
		if strings.Join(got, "") != "1\n2\n3\n" {
			t.Errorf("log %q, want the lines 1 2 3", got)
		}
	})

	t.Run("orphan", func(t *testing.T) {
		fd, alive := initAlive(orphanState)
		if !alive {
			t.Fatal("the orphan's init is not alive before restore")
		}
		defer syscall.Close(fd)
		c, err := rt.Load(ctx, orphan.ID)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.State(ctx)
		if err != nil || st.Status != shim.StatusStopped || st.ExitCode != 137 || st.Error == "" {
			t.Errorf("State = %+v, %v; want stopped, 137, an error", st, err)
		}
		// The orphaned init was killed through its pidfd.
		fds := [1]sys.PollFd{{Fd: int32(fd), Events: sys.POLLIN}}
		if n, err := sys.Ppoll(fds[:], syscall.NsecToTimespec(int64(10*time.Second))); n != 1 || err != nil {
			t.Errorf("the orphan's init still runs (%d, %v)", n, err)
		}
	})

	t.Run("identity", func(t *testing.T) {
		// A recorded start time that does not match is another process.
		st := *orphanState
		st.InitPid = os.Getpid()
		if _, alive := initAlive(&st); alive {
			t.Error("initAlive accepted a process with another start time")
		}
		me, _ := sys.StartTime(os.Getpid())
		st.InitStart = me
		if fd, alive := initAlive(&st); !alive {
			t.Error("initAlive rejected the right process")
		} else {
			syscall.Close(fd)
		}
	})
}

// TestLoadHalfCreated finds a container directory whose shim never wrote
// its state (a create cut short) and removes it.
func TestLoadHalfCreated(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	s := newSpec(t, "true")
	dir := rt.dir(s.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, shim.SpecFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := rt.Load(ctx, s.ID)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the directory is still there: %v", err)
	}
}
