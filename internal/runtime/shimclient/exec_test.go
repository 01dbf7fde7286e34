package shimclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
)

// live is a started container whose output can be read line by line.
type live struct {
	c     *Container
	lines chan string // closed at the end of the output
	st    *Stream
}

// startLive creates, attaches to and starts a container.
func startLive(t *testing.T, rt *Runtime, s *spec.Spec) *live {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := create(t, rt, s)
	st, err := c.Attach(ctx, AttachOptions{Stdin: s.Process.OpenStdin, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(st.Copy(pw, pw)) }()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		r := bufio.NewReader(pr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &live{c: c, lines: lines, st: st}
}

// expect reads lines until one equals want (after trimming \r). It gives
// up after 30 seconds, a bound, not a synchronisation.
func (l *live) expect(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("output ended before %q", want)
			}
			if strings.TrimRight(line, "\r\n") == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within 30s", want)
		}
	}
}

var execSeq atomic.Int64

// execProcess runs p in c and returns its output and exit.
func execProcess(t *testing.T, c *Container, p *spec.Process, stdin string) (string, string, shim.ExitStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "e" + strconv.FormatInt(execSeq.Add(1), 10)
	e, err := c.Exec(ctx, id, p)
	if err != nil {
		return "", "", shim.ExitStatus{}, err
	}
	defer e.Delete(ctx)
	st, err := e.Attach(ctx, AttachOptions{Stdin: p.OpenStdin, Stdout: true, Stderr: true})
	if err != nil {
		return "", "", shim.ExitStatus{}, err
	}
	defer st.Close()
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- st.Copy(&out, &errb) }()
	if _, err := e.Start(ctx); err != nil {
		return "", "", shim.ExitStatus{}, err
	}
	if p.OpenStdin {
		st.Write([]byte(stdin))
		st.CloseStdin()
	}
	exit, err := e.Wait(ctx)
	if err != nil {
		return "", "", exit, err
	}
	if err := <-done; err != nil {
		return "", "", exit, err
	}
	return out.String(), errb.String(), exit, nil
}

func execSpec(args ...string) *spec.Process {
	return &spec.Process{
		Args:         args,
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Capabilities: spec.DefaultCapabilities(),
	}
}

func TestExec(t *testing.T) {
	rt := newRuntime(t)
	parent := cgroupParent(t)
	s := newSpec(t, "sh", "-c", "echo up; exec sleep 100000")
	s.Cgroup = &spec.Cgroup{Parent: parent}
	s.Namespaces = append(s.Namespaces, spec.Namespace{Type: spec.CgroupNamespace})
	s.Seccomp = defaultSeccomp(t)
	l := startLive(t, rt, s)
	l.expect(t, "up")
	for _, tc := range []struct {
		name    string
		p       *spec.Process
		stdin   string
		want    string
		wantErr string
		code    int
	}{
		{name: "exit code and namespaces", p: execSpec("sh", "-c",
			`for n in ipc mnt net pid uts cgroup; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] || echo "not in $n"; done; hostname; exit 7`),
			want: s.Hostname + "\n", code: 7},
		{name: "not pid 1, parent outside", p: execSpec("sh", "-c", `[ $$ != 1 ] && exec grep PPid: /proc/self/status`), want: "PPid:\t0\n"},
		{name: "security", p: execSpec("sh", "-c", `grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t'; cat /proc/self/cgroup | grep -v ':/$'; exit 0`),
			want: "CapEff:00000000a80425fb\nCapBnd:00000000a80425fb\nNoNewPrivs:0\nSeccomp:2\n"},
		{name: "stdin", p: func() *spec.Process { p := execSpec("cat"); p.OpenStdin, p.StdinOnce = true, true; return p }(), stdin: "piped\n", want: "piped\n"},
		{name: "user and cwd", p: func() *spec.Process {
			p := execSpec("sh", "-c", "id -u; pwd")
			p.User, p.Cwd = "1000", "/tmp"
			return p
		}(), want: "1000\n/tmp\n"},
		{name: "not found", p: execSpec("nope"), wantErr: `exec: "nope": executable file not found in $PATH`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, exit, err := execProcess(t, l.c, tc.p, tc.stdin)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("exec error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want || exit.Code != tc.code {
				t.Errorf("exec %q = %q (stderr %q), exit %d; want %q, %d", tc.p.Args, out, errOut, exit.Code, tc.want, tc.code)
			}
		})
	}
	t.Run("exec after exit", func(t *testing.T) {
		ctx := context.Background()
		l.c.Signal(ctx, syscall.SIGKILL)
		if exit, err := l.c.Wait(ctx); err != nil || exit.Code != 137 {
			t.Fatalf("Wait = %v, %v, want 137", exit, err)
		}
		_, err := l.c.Exec(ctx, "late", execSpec("true"))
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Exec on a stopped container: %v, want a conflict", err)
		}
		l.c.waitShimGone(ctx)
		for name, err := range map[string]error{
			"Start":  l.c.Start(ctx),
			"Resize": l.c.Resize(ctx, 1, 1),
			"Signal": l.c.Signal(ctx, syscall.SIGTERM),
		} {
			if !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("%s after the shim left: %v, want a conflict", name, err)
			}
		}
		if _, err := l.c.Attach(ctx, AttachOptions{Stdout: true}); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Attach after the shim left: %v, want a conflict", err)
		}
	})
}

func TestSignals(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	t.Run("trapped TERM", func(t *testing.T) {
		l := startLive(t, rt, newSpec(t, "sh", "-c", `trap "exit 42" TERM; echo ready; sleep 100000 & wait`))
		l.expect(t, "ready")
		if err := l.c.Signal(ctx, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if exit, err := l.c.Wait(ctx); err != nil || exit.Code != 42 {
			t.Errorf("Wait = %+v, %v; want 42", exit, err)
		}
	})
	t.Run("KILL", func(t *testing.T) {
		l := startLive(t, rt, newSpec(t, "sh", "-c", `echo ready; exec sleep 100000`))
		l.expect(t, "ready")
		// PID 1 without a handler ignores TERM; KILL always works.
		if err := l.c.Signal(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		exit, err := l.c.Wait(ctx)
		if err != nil || exit.Code != 137 || exit.OOMKilled {
			t.Errorf("Wait = %+v, %v; want 137", exit, err)
		}
		if err := l.c.Signal(ctx, syscall.SIGKILL); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Signal after exit = %v, want a conflict", err)
		}
		st, err := l.c.State(ctx)
		if err != nil || st.Status != shim.StatusStopped || st.ExitCode != 137 {
			t.Errorf("State = %+v, %v; want stopped, 137", st, err)
		}
	})
}

func TestPauseResume(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	s := newSpec(t, "sh", "-c", `i=0; echo ready; while :; do i=$((i+1)); echo $i > /tmp/n; done`)
	s.Cgroup = &spec.Cgroup{Parent: cgroupParent(t)}
	l := startLive(t, rt, s)
	l.expect(t, "ready")
	// counter reads the value; "echo > file" truncates before it writes, so
	// an empty read is retried. It fails only when the value is gone for good.
	counter := func() string {
		for range 100000 {
			if b, _ := os.ReadFile(filepath.Join(s.Root, "tmp/n")); len(b) > 0 {
				return string(b)
			}
		}
		return ""
	}
	if err := l.c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if paused, err := l.c.Paused(ctx); !paused || err != nil {
		t.Errorf("Paused() = %v, %v after Pause", paused, err)
	}
	before := counter()
	if _, err := l.c.Exec(ctx, "while-paused", execSpec("true")); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "is paused") {
		t.Errorf("Exec while paused = %v, want dockerd's conflict", err)
	}
	// Not synchronisation: the frozen container gets time to (not) run.
	time.Sleep(100 * time.Millisecond)
	if after := counter(); after != before {
		t.Errorf("counter moved while paused: %q -> %q", before, after)
	}
	if err := l.c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if paused, err := l.c.Paused(ctx); paused || err != nil {
		t.Errorf("Paused() = %v, %v after Resume", paused, err)
	}
	moved := false
	for deadline := time.Now().Add(10 * time.Second); !moved && time.Now().Before(deadline); {
		moved = counter() != before
	}
	if !moved {
		t.Error("counter did not move after resume")
	}
	st, err := l.c.Stats(ctx)
	if err != nil || st == nil {
		t.Errorf("Stats = %v, %v", st, err)
	}
}

func TestTerminal(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	s := newSpec(t, "sh", "-c", `tty; stty size; echo ready; read x; stty size`)
	s.Process.Terminal, s.Process.OpenStdin = true, true
	s.Process.ConsoleHeight, s.Process.ConsoleWidth = 24, 80
	l := startLive(t, rt, s)
	l.expect(t, "/dev/pts/0")
	l.expect(t, "24 80")
	l.expect(t, "ready")
	if err := l.c.Resize(ctx, 50, 200); err != nil {
		t.Fatal(err)
	}
	l.st.Write([]byte("\n"))
	l.expect(t, "50 200")
	if exit, err := l.c.Wait(ctx); err != nil || exit.Code != 0 {
		t.Errorf("Wait = %+v, %v", exit, err)
	}

	t.Run("exec", func(t *testing.T) {
		l := startLive(t, rt, newSpec(t, "sh", "-c", "echo up; exec sleep 100000"))
		l.expect(t, "up")
		p := execSpec("sh", "-c", "tty; stty size; read x; echo got $x")
		p.Terminal, p.ConsoleHeight, p.ConsoleWidth, p.OpenStdin = true, 40, 132, true
		// The client attaches with stdin before the pty exists. The
		// terminal echoes the line it is given, at any point of the output.
		out, _, exit, err := execProcess(t, l.c, p, "line\n")
		if err != nil || exit.Code != 0 || !strings.Contains(out, "/dev/pts/0\r\n") || !strings.Contains(out, "40 132\r\n") || !strings.HasSuffix(out, "got line\r\n") {
			t.Errorf("exec -t = %q, %+v, %v; want /dev/pts/0, 40 132, and the line read back", out, exit, err)
		}
	})
}

// TestConcurrentExec runs 20 execs into one container at once; each gets
// its own output and exit code.
func TestConcurrentExec(t *testing.T) {
	rt := newRuntime(t)
	l := startLive(t, rt, newSpec(t, "sh", "-c", "echo up; exec sleep 100000"))
	l.expect(t, "up")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, exit, err := execProcess(t, l.c, execSpec("sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i)), "")
			if err != nil || out != fmt.Sprintf("%d\n", i) || exit.Code != i {
				t.Errorf("exec %d = %q, %d, %v", i, out, exit.Code, err)
			}
		}()
	}
	wg.Wait()
}
