package shimclient

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/roles"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/skifftest"
)

// TestMain lets the test binary stand in for skiffd: the shims it spawns
// re-exec it (sealed) as `shim`, `init` and `exec-helper`.
func TestMain(m *testing.M) {
	roles.Dispatch()
	if os.Getenv(fakeDaemonEnv) != "" {
		os.Exit(fakeDaemon())
	}
	code := m.Run()
	if rolesBinPath != "" {
		os.RemoveAll(filepath.Dir(rolesBinPath))
	}
	os.Exit(code)
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the runtime needs root")
	}
}

var (
	rolesBinOnce sync.Once
	rolesBinPath string
	rolesBinErr  error
)

// staticRuntime returns a Runtime running a static build of the roles
// (internal/runtime/roles/rolesbin), for what must run inside a container
// and for benchmarks. The test binary is dynamically linked, and the
// daemon's main package may not build while others work on it;
// SKIFFD_TEST_EXE names another static binary to use, such as skiffd.
func staticRuntime(t testing.TB) *Runtime {
	t.Helper()
	needRoot(t)
	rolesBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rolesbin-")
		if err != nil {
			rolesBinErr = err
			return
		}
		rolesBinPath = filepath.Join(dir, "skiffd")
		cmd := exec.Command("go", "build", "-o", rolesBinPath, "skiffd/internal/runtime/roles/rolesbin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			rolesBinErr = fmt.Errorf("go build rolesbin: %v\n%s", err, out)
		}
	})
	if rolesBinErr != nil {
		t.Fatal(rolesBinErr)
	}
	exe := rolesBinPath
	if e := os.Getenv("SKIFFD_TEST_EXE"); e != "" {
		exe = e // e.g. a CGO_ENABLED=0 build of skiffd itself
	}
	rt, err := New(Options{Root: filepath.Join(t.TempDir(), "exec"), Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// busyboxRoot writes the busybox test image into a fresh directory.
func busyboxRoot(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range skifftest.BusyboxRootfs(t) {
		p := filepath.Join(dir, e.Name)
		mode := os.FileMode(e.Mode)
		switch {
		case e.Type == tar.TypeSymlink:
			if err := os.Symlink(e.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(e.Name, "/"):
			if mode == 0 {
				mode = 0o755
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, mode|(mode&0o1000)<<0)
			if e.Mode&0o1000 != 0 {
				os.Chmod(p, os.ModeSticky|0o777)
			}
		default:
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, []byte(e.Body), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

var idSeq atomic.Int64

// newSpec returns a default spec for a container running args.
func newSpec(t testing.TB, args ...string) *spec.Spec {
	t.Helper()
	id := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(id) > 40 {
		id = id[:40]
	}
	id = fmt.Sprintf("%s-%d-%d", strings.ToLower(id), os.Getpid(), idSeq.Add(1))
	s := spec.Default(id, busyboxRoot(t))
	s.Hostname = "c-" + time.Now().Format("150405")
	s.Process.Args = args
	s.Process.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + s.Hostname}
	return s
}

// newRuntime returns a Runtime with its own exec root.
func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	needRoot(t)
	rt, err := New(Options{Root: filepath.Join(t.TempDir(), "exec")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// create creates the container and arranges for it to be killed and
// deleted at the end of the test.
func create(t testing.TB, rt *Runtime, s *spec.Spec) *Container {
	t.Helper()
	c, err := rt.Create(context.Background(), s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { cleanup(t, c) })
	return c
}

func cleanup(t testing.TB, c *Container) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Kill(ctx); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Kill(%s): %v", c.ID(), err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Errorf("Delete(%s): %v", c.ID(), err)
	}
}

// result is what a finished container produced.
type result struct {
	stdout, stderr string
	exit           shim.ExitStatus
}

// run creates, attaches, starts and waits, like `docker run`.
func run(t testing.TB, rt *Runtime, s *spec.Spec) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := create(t, rt, s)
	st, err := c.Attach(ctx, AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	defer st.Close()
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- st.Copy(&out, &errb) }()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	exit, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("attach stream: %v", err)
	}
	return result{out.String(), errb.String(), exit}
}
