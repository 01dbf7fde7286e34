package engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/runtime/spec"
)

func TestReplaceOrAppendEnv(t *testing.T) {
	for _, tc := range []struct {
		name           string
		env, overrides []string
		want           []string
	}{
		{"append", []string{"A=1"}, []string{"B=2"}, []string{"A=1", "B=2"}},
		{"replace in place", []string{"A=1", "B=2"}, []string{"A=3"}, []string{"A=3", "B=2"}},
		{"unset", []string{"A=1", "B=2"}, []string{"A"}, []string{"B=2"}},
		{"unset missing", []string{"A=1"}, []string{"C"}, []string{"A=1"}},
		{"unset then set", []string{"A=1"}, []string{"A", "A=2"}, []string{"A=2"}},
		{"empty value is a value", []string{"A=1"}, []string{"A="}, []string{"A="}},
		{"appended twice", nil, []string{"B=1", "B=2"}, []string{"B=1", "B=2"}},
		{"value with =", []string{"A=1"}, []string{"A=x=y"}, []string{"A=x=y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.env)
			got := replaceOrAppendEnv(tc.env, tc.overrides)
			if !slices.Equal(got, tc.want) {
				t.Errorf("replaceOrAppendEnv(%q, %q) = %q, want %q", tc.env, tc.overrides, got, tc.want)
			}
			if !slices.Equal(in, tc.env) {
				t.Errorf("replaceOrAppendEnv changed its input to %q", tc.env)
			}
		})
	}
}

func TestExecEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   types.Config
		tty   bool
		extra []string
		want  []string
	}{
		{"defaults", types.Config{Hostname: "h"}, false, nil, []string{defaultPath, "HOSTNAME=h"}},
		{"tty", types.Config{Hostname: "h"}, true, nil, []string{defaultPath, "HOSTNAME=h", "TERM=xterm"}},
		{"container PATH replaces the default", types.Config{Hostname: "h", Env: []string{"PATH=/x", "A=1"}}, false, nil, []string{"PATH=/x", "HOSTNAME=h", "A=1"}},
		{"exec overrides the container", types.Config{Hostname: "h", Env: []string{"A=1"}}, false, []string{"A=2", "B=3"}, []string{defaultPath, "HOSTNAME=h", "A=2", "B=3"}},
		{"exec unsets", types.Config{Hostname: "h", Env: []string{"A=1"}}, true, []string{"TERM", "A"}, []string{defaultPath, "HOSTNAME=h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := execEnv(&tc.cfg, tc.tty, tc.extra); !slices.Equal(got, tc.want) {
				t.Errorf("execEnv(%+v, %v, %q) = %q, want %q", tc.cfg, tc.tty, tc.extra, got, tc.want)
			}
		})
	}
}

func TestExecProcess(t *testing.T) {
	adj := -5
	base := &spec.Process{
		Args: []string{"sleep", "1"}, Env: []string{"X=container"}, Cwd: "/srv", User: "root",
		AdditionalGroups: []string{"audio"}, Capabilities: []string{"CAP_CHOWN"}, NoNewPrivileges: true,
		Rlimits: []spec.Rlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}}, OOMScoreAdj: &adj,
	}
	x := &execRecord{entrypoint: "sh", args: []string{"-c", "id"}, env: []string{"A=1"}, user: "1000", tty: true, openStdin: true, consoleSize: &[2]uint{24, 80}}
	p := x.process(base, nil)
	want := &spec.Process{
		Args: []string{"sh", "-c", "id"}, Env: []string{"A=1"}, Cwd: "/", User: "1000",
		AdditionalGroups: []string{"audio"}, Terminal: true, ConsoleHeight: 24, ConsoleWidth: 80,
		OpenStdin: true, StdinOnce: true, Capabilities: []string{"CAP_CHOWN"}, NoNewPrivileges: true,
		Rlimits: base.Rlimits, OOMScoreAdj: &adj,
	}
	if !execProcessEqual(p, want) {
		t.Errorf("process = %+v\nwant %+v", p, want)
	}
	if p := x.process(base, &[2]uint{50, 70000}); p.ConsoleHeight != 50 || p.ConsoleWidth != 65535 {
		t.Errorf("start's console size: %dx%d, want 50x65535", p.ConsoleHeight, p.ConsoleWidth)
	}
	x.tty, x.workdir, x.privileged = false, "/tmp", true
	p = x.process(base, &[2]uint{50, 70})
	if p.ConsoleHeight != 0 || p.Cwd != "/tmp" || !slices.Equal(p.Capabilities, heldCapabilities()) || !p.NoNewPrivileges {
		t.Errorf("privileged exec without a terminal = %+v", p)
	}
	if base.Capabilities[0] != "CAP_CHOWN" || len(base.Capabilities) != 1 {
		t.Errorf("process changed the container's capabilities: %q", base.Capabilities)
	}
}

func execProcessEqual(a, b *spec.Process) bool {
	return slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env) && a.Cwd == b.Cwd && a.User == b.User &&
		slices.Equal(a.AdditionalGroups, b.AdditionalGroups) && a.Terminal == b.Terminal &&
		a.ConsoleHeight == b.ConsoleHeight && a.ConsoleWidth == b.ConsoleWidth && a.OpenStdin == b.OpenStdin &&
		a.StdinOnce == b.StdinOnce && slices.Equal(a.Capabilities, b.Capabilities) &&
		a.NoNewPrivileges == b.NoNewPrivileges && slices.Equal(a.Rlimits, b.Rlimits) &&
		(a.OOMScoreAdj == nil) == (b.OOMScoreAdj == nil) && (a.OOMScoreAdj == nil || *a.OOMScoreAdj == *b.OOMScoreAdj)
}

func TestExecStartError(t *testing.T) {
	for _, tc := range []struct {
		in   error
		want string
		kind errdefs.Kind
	}{
		{errdefs.InvalidParameter(errors.New(`exec: "nope": executable file not found in $PATH`)),
			`OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`, errdefs.ErrInvalidParameter},
		{errors.New("unable to find user bob: no matching entries in passwd file"),
			"unable to find user bob: no matching entries in passwd file", errdefs.Kind(0)},
		{errors.New("Unable to find group staff2: no matching entries in group file"),
			"Unable to find group staff2: no matching entries in group file", errdefs.Kind(0)},
		{errors.New("boom"), "OCI runtime exec failed: exec failed: unable to start container process: boom: unknown", errdefs.Kind(0)},
	} {
		got := execStartError(tc.in)
		if got.Error() != tc.want || errdefs.KindOf(got) != tc.kind {
			t.Errorf("execStartError(%q) = %q (%v), want %q (%v)", tc.in, got, errdefs.KindOf(got), tc.want, tc.kind)
		}
	}
}

// execResult is what one exec run through the engine produced.
type execResult struct {
	stdout, stderr string
	startErr       error
	inspect        *types.ExecInspect
}

// runExec creates and starts an exec the way the API handler does, with
// stdin as the client's input, and inspects it once the start returns.
func runExec(t *testing.T, e *Engine, ctr string, cfg types.ExecConfig, stdin string) execResult {
	t.Helper()
	ctx := context.Background()
	id, err := e.ContainerExecCreate(ctx, ctr, &cfg)
	if err != nil {
		t.Fatalf("exec create %q: %v", cfg.Cmd, err)
	}
	var out, errOut syncBuf
	calls := 0
	err = e.ContainerExecStart(ctx, id, &types.ExecStartConfig{Tty: cfg.Tty, GetStreams: func(tty bool) (io.ReadCloser, io.Writer, io.Writer, error) {
		calls++
		if tty != cfg.Tty {
			t.Errorf("GetStreams(%v) for an exec with Tty %v", tty, cfg.Tty)
		}
		return io.NopCloser(strings.NewReader(stdin)), &out, &errOut, nil
	}})
	if calls != 1 && err == nil {
		t.Errorf("GetStreams called %d times, want once", calls)
	}
	ins, ierr := e.ContainerExecInspect(ctx, id)
	if ierr != nil {
		t.Fatalf("exec inspect %s: %v", id, ierr)
	}
	return execResult{stdout: out.String(), stderr: errOut.String(), startErr: err, inspect: ins}
}

func execExitCode(ins *types.ExecInspect) int {
	if ins.ExitCode == nil {
		return -1
	}
	return *ins.ExitCode
}

// TestEngineExec runs execs in a running container through the engine:
// output, exit codes, stdin with half-close, environment, user, working
// directory, terminal, failed starts, detach, and the errors and events.
func TestEngineExec(t *testing.T) {
	e, _, _ := runEngine(t)
	since := time.Now()
	id := create(t, e, "web", types.Config{Cmd: []string{"sleep", "1000"}, Env: []string{"C=1"}, Hostname: "webhost"}, &types.HostConfig{CapDrop: []string{"NET_RAW"}})
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		cfg        types.ExecConfig
		stdin      string
		wantOut    string
		wantErr    string
		wantCode   int
		wantUser   string
		wantStdout bool // when false, the output must be exactly wantOut
	}{
		{name: "echo", cfg: types.ExecConfig{Cmd: []string{"echo", "hi"}, AttachStdout: true, AttachStderr: true}, wantOut: "hi\n"},
		{name: "stderr", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, AttachStdout: true, AttachStderr: true}, wantOut: "out\n", wantErr: "err\n"},
		{name: "stderr not attached", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, AttachStdout: true}, wantOut: "out\n"},
		{name: "exit code", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", "exit 5"}, AttachStdout: true, AttachStderr: true}, wantCode: 5},
		{name: "killed", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", "kill -9 $$"}, AttachStdout: true}, wantCode: 137},
		{name: "stdin", cfg: types.ExecConfig{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true}, stdin: "piped\n", wantOut: "piped\n"},
		{name: "env user workdir", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", "echo $X $C $HOSTNAME; id -u; pwd"}, Env: []string{"X=1"}, User: "1000", WorkingDir: "/tmp", AttachStdout: true},
			wantOut: "1 1 webhost\n1000\n/tmp\n", wantUser: "1000"},
		{name: "namespaces", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", `hostname; cat /proc/1/cmdline; echo; for n in ipc mnt net pid uts; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] || echo "not in $n"; done`}, AttachStdout: true},
			wantOut: "webhost\nsleep\x001000\x00\n"},
		{name: "security", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", `grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -d '\t'`}, AttachStdout: true},
			wantOut: "CapEff:00000000a80405fb\nSeccomp:2\n"},
		{name: "privileged", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", `grep -E '^CapEff:' /proc/self/status | tr -d '\t'`}, Privileged: true, AttachStdout: true},
			wantOut: "CapEff:000001ffffffffff\n", wantStdout: true},
		{name: "terminal", cfg: types.ExecConfig{Cmd: []string{"sh", "-c", "echo $TERM; tty; echo err >&2"}, Tty: true, AttachStdout: true, AttachStderr: true},
			wantOut: "xterm\r\n/dev/pts/0\r\nerr\r\n"},
		{name: "missing executable", cfg: types.ExecConfig{Cmd: []string{"nope"}, AttachStdout: true, AttachStderr: true},
			wantOut: "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown\r\n", wantCode: 126},
		{name: "unknown user", cfg: types.ExecConfig{Cmd: []string{"true"}, User: "nobody2", AttachStdout: true},
			wantOut: "unable to find user nobody2: no matching entries in passwd file\r\n", wantCode: 126, wantUser: "nobody2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runExec(t, e, "web", tc.cfg, tc.stdin)
			if r.startErr != nil {
				t.Fatalf("exec start: %v", r.startErr)
			}
			outOK := r.stdout == tc.wantOut
			if tc.wantStdout {
				// The full set depends on the kernel: it must hold more
				// than the container's.
				outOK = strings.HasPrefix(r.stdout, "CapEff:") && r.stdout != "CapEff:00000000a80405fb\n"
			}
			if !outOK || r.stderr != tc.wantErr || execExitCode(r.inspect) != tc.wantCode {
				t.Errorf("exec %q: stdout %q stderr %q exit %d; want %q %q %d", tc.cfg.Cmd, r.stdout, r.stderr, execExitCode(r.inspect), tc.wantOut, tc.wantErr, tc.wantCode)
			}
			ins := r.inspect
			if ins.Running || ins.ContainerID != id || ins.ProcessConfig.Entrypoint != tc.cfg.Cmd[0] ||
				!slices.Equal(ins.ProcessConfig.Arguments, tc.cfg.Cmd[1:]) || ins.ProcessConfig.Tty != tc.cfg.Tty ||
				ins.ProcessConfig.User != tc.wantUser || ins.ProcessConfig.Privileged == nil || *ins.ProcessConfig.Privileged != tc.cfg.Privileged ||
				ins.OpenStdin != tc.cfg.AttachStdin || ins.OpenStdout != tc.cfg.AttachStdout || ins.OpenStderr != tc.cfg.AttachStderr {
				t.Errorf("exec inspect = %+v", ins)
			}
			if (ins.Pid == 0) != (tc.wantCode == 126) {
				t.Errorf("exec inspect Pid = %d", ins.Pid)
			}
		})
	}

	ctx := context.Background()
	// The start's Tty frames the stream, whatever the exec's.
	for _, tc := range []struct {
		name             string
		execTty, start   bool
		wantOut, wantErr string
	}{
		{"terminal exec, framed start", true, false, "out\r\nerr\r\n", ""},
		{"plain exec, raw start", false, true, "out\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xid, err := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, Tty: tc.execTty, AttachStdout: true, AttachStderr: true})
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut syncBuf
			err = e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Tty: tc.start, GetStreams: func(tty bool) (io.ReadCloser, io.Writer, io.Writer, error) {
				if tty != tc.start {
					t.Errorf("GetStreams(%v) for a start with Tty %v", tty, tc.start)
				}
				return io.NopCloser(strings.NewReader("")), &out, &errOut, nil
			}})
			if err != nil || out.String() != tc.wantOut || errOut.String() != tc.wantErr {
				t.Errorf("start = %v, stdout %q stderr %q; want %q %q", err, out.String(), errOut.String(), tc.wantOut, tc.wantErr)
			}
		})
	}

	t.Run("detach", func(t *testing.T) {
		xid, err := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"sh", "-c", "echo lost; touch /tmp/detached"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true}); err != nil {
			t.Fatal(err)
		}
		x, _ := e.getExec(xid)
		<-x.done
		if ins, err := e.ContainerExecInspect(ctx, xid); err != nil || execExitCode(ins) != 0 || ins.Running {
			t.Errorf("inspect of the detached exec: %+v, %v", ins, err)
		}
		if r := runExec(t, e, "web", types.ExecConfig{Cmd: []string{"ls", "/tmp/detached"}, AttachStdout: true}, ""); r.stdout != "/tmp/detached\n" {
			t.Errorf("the detached exec left no file: %q", r.stdout)
		}
		err = e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true})
		if errdefs.KindOf(err) != errdefs.ErrConflict || err.Error() != "Error: Exec command "+xid+" has already run" {
			t.Errorf("second start = %v", err)
		}
	})
	t.Run("detached missing executable", func(t *testing.T) {
		xid, _ := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"nope"}})
		err := e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true})
		if errdefs.KindOf(err) != errdefs.ErrInvalidParameter || !strings.Contains(err.Error(), `exec: "nope": executable file not found in $PATH`) {
			t.Errorf("detached start of a missing executable = %v", err)
		}
		if ins, _ := e.ContainerExecInspect(ctx, xid); execExitCode(ins) != 126 {
			t.Errorf("exit code %d, want 126", execExitCode(ins))
		}
	})
	t.Run("running exec", func(t *testing.T) {
		xid, _ := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"sleep", "1000"}, Tty: true, DetachKeys: "ctrl-x"})
		if ids := e.containerExecIDs(id); !slices.Contains(ids, xid) {
			t.Errorf("ExecIDs %q lack the created exec %s", ids, xid)
		}
		if err := e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true}); err != nil {
			t.Fatal(err)
		}
		ins, err := e.ContainerExecInspect(ctx, xid)
		if err != nil || !ins.Running || ins.ExitCode != nil || ins.Pid == 0 || ins.DetachKeys != "GA==" {
			t.Errorf("inspect of a running exec = %+v, %v", ins, err)
		}
		if err := e.ContainerExecResize(ctx, xid, 30, 100); err != nil {
			t.Errorf("resize: %v", err)
		}
		err = e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true})
		if errdefs.KindOf(err) != errdefs.ErrConflict || err.Error() != "Error: Exec command "+xid+" is already running" {
			t.Errorf("start of a running exec = %v", err)
		}
		pending, _ := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"true"}})
		// Stopping the container kills the exec; one never started is
		// forgotten, as dockerd does.
		x, _ := e.getExec(xid)
		if err := e.ContainerStop(ctx, "web", "", new(int)); err != nil {
			t.Fatal(err)
		}
		<-x.done
		if ins, err := e.ContainerExecInspect(ctx, xid); err != nil || ins.Running || execExitCode(ins) != 137 {
			t.Errorf("inspect of an exec killed with its container = %+v, %v", ins, err)
		}
		if _, err := e.ContainerExecInspect(ctx, pending); errdefs.KindOf(err) != errdefs.ErrNotFound || err.Error() != "No such exec instance: "+pending {
			t.Errorf("inspect of an unstarted exec of a stopped container = %v", err)
		}
		err = e.ContainerExecStart(ctx, pending, &types.ExecStartConfig{Detach: true})
		if errdefs.KindOf(err) != errdefs.ErrNotFound {
			t.Errorf("start of an exec of a stopped container = %v", err)
		}
		if ids := e.containerExecIDs(id); ids != nil {
			t.Errorf("ExecIDs of a stopped container = %q", ids)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"true"}})
		if errdefs.KindOf(err) != errdefs.ErrConflict || err.Error() != "Container "+id+" is not running" {
			t.Errorf("exec create in a stopped container = %v", err)
		}
		_, err = e.ContainerExecCreate(ctx, "nothere", &types.ExecConfig{Cmd: []string{"true"}})
		if errdefs.KindOf(err) != errdefs.ErrNotFound || err.Error() != "No such container: nothere" {
			t.Errorf("exec create in a missing container = %v", err)
		}
		for name, f := range map[string]func() error{
			"start":   func() error { return e.ContainerExecStart(ctx, "abc", &types.ExecStartConfig{Detach: true}) },
			"inspect": func() error { _, err := e.ContainerExecInspect(ctx, "abc"); return err },
			"resize":  func() error { return e.ContainerExecResize(ctx, "abc", 1, 1) },
		} {
			if err := f(); errdefs.KindOf(err) != errdefs.ErrNotFound || err.Error() != "No such exec instance: abc" {
				t.Errorf("%s of an unknown exec = %v", name, err)
			}
		}
		if err := e.ContainerStart(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		xid, err := e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ContainerPause(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		_, err = e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"true"}})
		if errdefs.KindOf(err) != errdefs.ErrConflict || err.Error() != "Container web is paused, unpause the container before exec" {
			t.Errorf("exec create in a paused container = %v", err)
		}
		err = e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true})
		if errdefs.KindOf(err) != errdefs.ErrConflict || err.Error() != "Container "+id+" is paused, unpause the container before exec" {
			t.Errorf("exec start in a paused container = %v", err)
		}
		if err := e.ContainerUnpause(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		// The refused start left the exec startable.
		if err := e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Detach: true}); err != nil {
			t.Errorf("start after unpause = %v", err)
		}
		_, err = e.ContainerExecCreate(ctx, "web", &types.ExecConfig{Cmd: []string{"true"}, DetachKeys: "ctrl-Y"})
		if err == nil || err.Error() != "Invalid escape keys (ctrl-Y) provided" {
			t.Errorf("exec create with bad detach keys = %v", err)
		}
	})

	t.Run("events", func(t *testing.T) {
		history, _, cancel, err := e.SubscribeToEvents(ctx, since, time.Now(), filters.NewArgs())
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		var actions []string
		for _, m := range history {
			if strings.HasPrefix(m.Action, "exec_") && strings.Contains(m.Action, "exit 5") || m.Action == "exec_die" && m.Actor.Attributes["exitCode"] == "5" {
				if m.Actor.ID != id || m.Actor.Attributes["execID"] == "" || m.Actor.Attributes["name"] != "web" {
					t.Errorf("event %+v", m)
				}
				actions = append(actions, m.Action)
			}
		}
		if want := []string{"exec_create: sh -c exit 5", "exec_start: sh -c exit 5", "exec_die"}; !slices.Equal(actions, want) {
			t.Errorf("exec events %q, want %q", actions, want)
		}
	})
}

// TestEngineExecContainerDefaults checks that an exec without User or
// WorkingDir gets the container's, and the container's extra groups.
func TestEngineExecContainerDefaults(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "defaults", types.Config{Cmd: []string{"sleep", "1000"}, User: "1000", WorkingDir: "/tmp"}, &types.HostConfig{GroupAdd: []string{"777"}})
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := runExec(t, e, "defaults", types.ExecConfig{Cmd: []string{"sh", "-c", "id -u; pwd; id -G | tr ' ' '\\n' | grep -x 777"}, AttachStdout: true, AttachStderr: true}, "")
	if r.stdout != "1000\n/tmp\n777\n" || r.inspect.ProcessConfig.User != "1000" {
		t.Errorf("exec with the container's defaults: stdout %q stderr %q, inspect user %q", r.stdout, r.stderr, r.inspect.ProcessConfig.User)
	}
	r = runExec(t, e, "defaults", types.ExecConfig{Cmd: []string{"sh", "-c", "id -u; pwd"}, User: "0", WorkingDir: "/", AttachStdout: true}, "")
	if r.stdout != "0\n/\n" || r.inspect.ProcessConfig.User != "0" {
		t.Errorf("exec overriding the defaults: stdout %q, inspect user %q", r.stdout, r.inspect.ProcessConfig.User)
	}
}

// TestEngineExecHostFiles checks an exec cannot see the host's files: a
// sentinel in the host's /tmp is not the container's /tmp.
func TestEngineExecHostFiles(t *testing.T) {
	e, _, _ := runEngine(t)
	sentinel, err := os.CreateTemp("/tmp", "skiffd-exec-sentinel-")
	if err != nil {
		t.Fatal(err)
	}
	sentinel.Close()
	t.Cleanup(func() { os.Remove(sentinel.Name()) })
	id := create(t, e, "iso", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := runExec(t, e, "iso", types.ExecConfig{Cmd: []string{"sh", "-c", "ls /tmp/" + filepath.Base(sentinel.Name()) + " || echo absent"}, AttachStdout: true}, "")
	if r.stdout != "absent\n" {
		t.Errorf("exec saw the host's /tmp: %q", r.stdout)
	}
}

// refReplaceOrAppendEnv is a model of dockerd's merge, written as its
// documentation reads: overrides apply in order to the variables of env
// (appended ones are not looked up again); a bare NAME marks the variable
// for removal, which a later NAME=value for it undoes.
func refReplaceOrAppendEnv(env, overrides []string) []string {
	type slot struct {
		kv      string
		removed bool
	}
	var slots []slot
	first := map[string]int{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		first[k] = len(slots) // the last one of a key is the one found
		slots = append(slots, slot{kv: kv})
	}
	for _, o := range overrides {
		k, _, set := strings.Cut(o, "=")
		i, ok := first[k]
		switch {
		case !set && ok:
			slots[i].removed = true
		case set && ok:
			slots[i] = slot{kv: o}
		case set:
			slots = append(slots, slot{kv: o})
		}
	}
	var out []string
	for _, s := range slots {
		if !s.removed {
			out = append(out, s.kv)
		}
	}
	return out
}

// FuzzReplaceOrAppendEnv compares the merge of client-sent environment
// lists with the model. Entries are separated by newlines in the inputs.
func FuzzReplaceOrAppendEnv(f *testing.F) {
	f.Add("PATH=/bin\nHOSTNAME=h", "A=1\nPATH=/x\nHOSTNAME")
	f.Add("A=1\nA=2", "A\nA=3\nB")
	f.Add("", "=x\n=\n\n")
	f.Add("A=1", "A=\nA=b=c")
	f.Fuzz(func(t *testing.T, env, overrides string) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		e, o := split(env), split(overrides)
		got := replaceOrAppendEnv(e, o)
		want := refReplaceOrAppendEnv(e, o)
		if !slices.Equal(got, want) {
			t.Errorf("replaceOrAppendEnv(%q, %q) = %q, want %q", e, o, got, want)
		}
	})
}

// endlessClient is a client that never stops sending.
type endlessClient struct{}

func (endlessClient) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'y'
	}
	return len(p), nil
}
func (endlessClient) Close() error { return nil }

// TestEngineExecStdinOutlived checks that a process that exits while its
// client still sends input has its exit code recorded before the start
// returns (the CLI reads it at once).
func TestEngineExecStdinOutlived(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "outlived", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	ctx := context.Background()
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		xid, err := e.ContainerExecCreate(ctx, id, &types.ExecConfig{Cmd: []string{"sh", "-c", "head -c 3; exit 3"}, AttachStdin: true, AttachStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuf
		err = e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{GetStreams: func(bool) (io.ReadCloser, io.Writer, io.Writer, error) {
			return endlessClient{}, &out, io.Discard, nil
		}})
		ins, ierr := e.ContainerExecInspect(ctx, xid)
		if err != nil || ierr != nil || out.String() != "yyy" || execExitCode(ins) != 3 {
			t.Fatalf("run %d: start %v, inspect %v, output %q, exit %d; want yyy, 3", i, err, ierr, out.String(), execExitCode(ins))
		}
	}
}

// TestEngineExecConcurrent runs 20 execs at once in one container, each
// with its own input and exit code.
func TestEngineExecConcurrent(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "busy", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	t.Run("group", func(t *testing.T) {
		for i := range 20 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				in := strings.Repeat("exec "+strconv.Itoa(i)+"\n", 1000)
				r := runExec(t, e, id, types.ExecConfig{Cmd: []string{"sh", "-c", "cat; exit " + strconv.Itoa(i%7)}, AttachStdin: true, AttachStdout: true}, in)
				if r.startErr != nil || r.stdout != in || execExitCode(r.inspect) != i%7 {
					t.Errorf("exec %d: %d bytes back (equal %v), exit %d, start %v", i, len(r.stdout), r.stdout == in, execExitCode(r.inspect), r.startErr)
				}
			})
		}
	})
	if ids := e.containerExecIDs(id); ids != nil {
		t.Errorf("ExecIDs after every exec exited = %q", ids)
	}
}

// brokenClient is a client connection whose writes fail.
type brokenClient struct{}

func (brokenClient) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestEngineExecClientGone checks that the start returns when the client
// goes away, leaving the process running, as dockerd does.
func TestEngineExecClientGone(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "gone", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	ctx := context.Background()
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	xid, err := e.ContainerExecCreate(ctx, id, &types.ExecConfig{Cmd: []string{"sh", "-c", "echo x; exec sleep 1000"}, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{GetStreams: func(bool) (io.ReadCloser, io.Writer, io.Writer, error) {
			return io.NopCloser(strings.NewReader("")), brokenClient{}, brokenClient{}, nil
		}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("start = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the start did not return after the client went away")
	}
	if ins, err := e.ContainerExecInspect(ctx, xid); err != nil || !ins.Running {
		t.Errorf("inspect after the client went away = %+v, %v; want running", ins, err)
	}
}

// TestEngineExecResizeDuringSession resizes an attached exec's terminal
// while its session runs, as the CLI does on SIGWINCH.
func TestEngineExecResizeDuringSession(t *testing.T) {
	e, _, _ := runEngine(t)
	id := create(t, e, "tty", types.Config{Cmd: []string{"sleep", "1000"}}, nil)
	ctx := context.Background()
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	xid, err := e.ContainerExecCreate(ctx, id, &types.ExecConfig{Cmd: []string{"sh", "-c", "stty size; read x; stty size"}, Tty: true, AttachStdin: true, AttachStdout: true, ConsoleSize: &[2]uint{10, 20}})
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- e.ContainerExecStart(ctx, xid, &types.ExecStartConfig{Tty: true, GetStreams: func(bool) (io.ReadCloser, io.Writer, io.Writer, error) {
			return stdinR, outW, outW, nil
		}})
		outW.Close()
	}()
	lines := bufio.NewReader(outR)
	if line, err := lines.ReadString('\n'); line != "10 20\r\n" {
		t.Fatalf("first size %q (%v), want the create's console size", line, err)
	}
	if err := e.ContainerExecResize(ctx, xid, 30, 40); err != nil {
		t.Fatalf("resize during the session: %v", err)
	}
	io.WriteString(stdinW, "\n")
	for {
		line, err := lines.ReadString('\n')
		if line == "30 40\r\n" {
			break
		}
		if err != nil {
			t.Fatalf("output ended (%v) before the new size", err)
		}
	}
	go io.Copy(io.Discard, outR)
	if err := <-done; err != nil {
		t.Errorf("start = %v", err)
	}
}
