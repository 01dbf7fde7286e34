package shimclient

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/spec"
)

func TestRun(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name       string
		args       []string
		wantOut    string
		wantErr    string
		wantCode   int
		hostnameIs bool
	}{
		{name: "echo", args: []string{"/bin/busybox", "echo", "hello"}, wantOut: "hello\n"},
		{name: "exit3", args: []string{"sh", "-c", "exit 3"}, wantCode: 3},
		{name: "pid1", args: []string{"sh", "-c", "echo $$"}, wantOut: "1\n"},
		{name: "stderr", args: []string{"sh", "-c", "echo oops >&2; exit 1"}, wantErr: "oops\n", wantCode: 1},
		{name: "hostname", args: []string{"hostname"}, hostnameIs: true},
		{name: "created cwd", args: []string{"pwd"}, wantOut: "/work/dir\n"},
		{name: "orphans reaped", args: []string{"sh", "-c", "sleep 1000 & sleep 1000 & echo started"}, wantOut: "started\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t, tc.args...)
			if tc.name == "created cwd" {
				s.Process.Cwd, s.Process.CreateCwd = "/work/dir", true
			}
			res := run(t, rt, s)
			want := tc.wantOut
			if tc.hostnameIs {
				want = s.Hostname + "\n"
			}
			if res.stdout != want || res.stderr != tc.wantErr || res.exit.Code != tc.wantCode {
				t.Errorf("run %q = stdout %q, stderr %q, exit %d; want %q, %q, %d", tc.args, res.stdout, res.stderr, res.exit.Code, want, tc.wantErr, tc.wantCode)
			}
		})
	}
}

func TestLogFile(t *testing.T) {
	rt := newRuntime(t)
	s := newSpec(t, "sh", "-c", "echo hello; echo err >&2; printf partial")
	s.Log.Path = t.TempDir() + "/c-json.log"
	res := run(t, rt, s)
	if res.exit.Code != 0 {
		t.Fatalf("exit %d", res.exit.Code)
	}
	f, err := os.Open(s.Log.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct{ Log, Stream, Time string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if !strings.HasSuffix(e.Time, "Z") {
			t.Errorf("time %q is not UTC", e.Time)
		}
		got[e.Stream] += e.Log
	}
	if got["stdout"] != "hello\npartial" || got["stderr"] != "err\n" {
		t.Errorf("log = %q, want stdout %q and stderr %q", got, "hello\npartial", "err\n")
	}
}

func TestStartErrors(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name string
		args []string
		cwd  string
		user string
		want string
	}{
		{"not found", []string{"nope"}, "", "", `exec: "nope": executable file not found in $PATH`},
		{"no such file", []string{"/nope"}, "", "", `exec: "/nope": stat /nope: no such file or directory`},
		{"not executable", []string{"/etc/passwd"}, "", "", `exec: "/etc/passwd": permission denied`},
		{"bad cwd", []string{"true"}, "/etc/passwd", "", `chdir to cwd ("/etc/passwd") set in config.json failed: not a directory`},
		{"unknown user", []string{"true"}, "", "nope", `unable to find user nope: no matching entries in passwd file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t, tc.args...)
			s.Process.Cwd = tc.cwd
			s.Process.User = tc.user
			c, err := rt.Create(context.Background(), s)
			if err == nil {
				t.Cleanup(func() { cleanup(t, c) })
				err = c.Start(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run %q: error %v, want %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestJoinNamespaces runs a container in another's network, UTS and IPC
// namespaces (docker run --network container:a and friends).
func TestJoinNamespaces(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	a := newSpec(t, "sh", "-c", "echo up; exec sleep 100000")
	l := startLive(t, rt, a)
	l.expect(t, "up")
	st, err := l.c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nsOf := func(pid int, typ string) string {
		v, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, typ))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	b := newSpec(t, "sh", "-c", "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; echo $$")
	b.Namespaces = []spec.Namespace{
		{Type: spec.MountNamespace}, {Type: spec.PIDNamespace},
		{Type: spec.NetworkNamespace, Path: fmt.Sprintf("/proc/%d/ns/net", st.InitPid)},
		{Type: spec.UTSNamespace, Path: fmt.Sprintf("/proc/%d/ns/uts", st.InitPid)},
		{Type: spec.IPCNamespace, Path: fmt.Sprintf("/proc/%d/ns/ipc", st.InitPid)},
	}
	b.Hostname = ""
	res := run(t, rt, b)
	want := a.Hostname + "\n" + nsOf(st.InitPid, "net") + "\n" + nsOf(st.InitPid, "ipc") + "\n1\n"
	if res.stdout != want {
		t.Errorf("joined container: %q (stderr %q), want %q", res.stdout, res.stderr, want)
	}
}

// TestRerun starts a stopped container again under the same id without
// deleting it first (docker start of an exited container).
func TestRerun(t *testing.T) {
	rt := newRuntime(t)
	s := newSpec(t, "sh", "-c", "echo run")
	for i := range 2 {
		if res := run(t, rt, s); res.stdout != "run\n" || res.exit.Code != 0 {
			t.Errorf("run %d: %q, exit %d", i, res.stdout, res.exit.Code)
		}
	}
}

// TestInitReaper runs with --init: PID 1 is the reaper, the process is
// PID 2, orphans are reaped, signals reach the process and its exit code
// comes back. The reaper runs inside the container, which has no dynamic
// loader: it needs the static skiffd binary, not the test binary.
func TestInitReaper(t *testing.T) {
	rt := staticRuntime(t)
	s := newSpec(t, "sh", "-c", `echo ready; sleep 1000 & wait; exit 9`)
	s.Process.Init = true
	l := startLive(t, rt, s)
	l.expect(t, "ready")
	ctx := context.Background()
	// The shell (not PID 1 here) has no handler for TERM: it dies of it.
	if err := l.c.Signal(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exit, err := l.c.Wait(ctx)
	if err != nil || exit.Code != 128+int(syscall.SIGTERM) {
		t.Errorf("Wait = %+v, %v; want %d", exit, err, 128+int(syscall.SIGTERM))
	}
	s2 := newSpec(t, "sh", "-c", "ps -o pid,comm | tail -n +2 | head -2; exit 4")
	s2.Process.Init = true
	res := run(t, rt, s2)
	if f := strings.Fields(res.stdout); len(f) < 4 || f[0] != "1" || f[1] != "skiffd" || f[3] != "sh" || res.exit.Code != 4 {
		t.Errorf("--init: %q, exit %d; want PID 1 skiffd, then sh, exit 4", res.stdout, res.exit.Code)
	}
}

// TestInitReaperSignalAtStart signals a --init container the moment its
// start returns, as docker stop right after docker run -d does: the reaper
// must already forward it (before, the Go runtime took the SIGTERM for the
// reaper's own and exited 2, the process never started).
func TestInitReaperSignalAtStart(t *testing.T) {
	rt := staticRuntime(t)
	for i := range 5 {
		s := newSpec(t, "sleep", "1000")
		s.Process.Init = true
		l := startLive(t, rt, s)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := l.c.Signal(ctx, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exit, err := l.c.Wait(ctx)
		cancel()
		if err != nil || exit.Code != 128+int(syscall.SIGTERM) {
			t.Fatalf("start %d: Wait = %+v, %v; want %d", i, exit, err, 128+int(syscall.SIGTERM))
		}
	}
}

// TestLongRoot uses an exec root whose socket path is longer than a unix
// socket address can hold; the shim and the client reach it through an
// fd of its directory.
func TestLongRoot(t *testing.T) {
	needRoot(t)
	root := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name/", 6))
	rt, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	s := newSpec(t, "echo", "far")
	if p := filepath.Join(rt.dir(s.ID), "shim.sock"); len(p) < 108 {
		t.Fatalf("socket path %d bytes long; the test needs more than 107", len(p))
	}
	if res := run(t, rt, s); res.stdout != "far\n" || res.exit.Code != 0 {
		t.Errorf("run = %q, exit %d", res.stdout, res.exit.Code)
	}
}
