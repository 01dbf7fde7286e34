package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/caps"
	"skiffd/internal/runtime/shimclient"
	"skiffd/internal/runtime/spec"
)

// ContainerExecCreate answers POST /containers/{id}/exec: it records an
// exec in a running container and returns its ID. The process is made at
// start.
func (e *Engine) ContainerExecCreate(ctx context.Context, name string, cfg *types.ExecConfig) (string, error) {
	c, err := e.get(name)
	if err != nil {
		return "", err
	}
	var keys []byte
	if cfg.DetachKeys != "" {
		if keys, err = parseDetachKeys(cfg.DetachKeys); err != nil {
			return "", fmt.Errorf("Invalid escape keys (%s) provided", cfg.DetachKeys)
		}
	}
	c.Lock()
	rc, err := e.activeRun(c, name)
	if err != nil {
		c.Unlock()
		return "", err
	}
	x := &execRecord{
		id:          container.GenerateID(),
		containerID: c.ID,
		run:         rc,
		entrypoint:  cfg.Cmd[0],
		args:        append([]string{}, cfg.Cmd[1:]...),
		env:         execEnv(c.Config, cfg.Tty, cfg.Env, execLinkEnv(e, c)...),
		user:        cfg.User,
		workdir:     cfg.WorkingDir,
		tty:         cfg.Tty,
		privileged:  cfg.Privileged,
		openStdin:   cfg.AttachStdin,
		openStdout:  cfg.AttachStdout,
		openStderr:  cfg.AttachStderr,
		keys:        keys,
		consoleSize: cfg.ConsoleSize,
		startDone:   make(chan struct{}),
		done:        make(chan struct{}),
	}
	if x.user == "" {
		x.user = c.Config.User
	}
	if x.workdir == "" {
		x.workdir = c.Config.WorkingDir
	}
	c.Unlock()

	e.sweepExecs()
	s := e.execs
	s.mu.Lock()
	s.execs[x.id] = x
	s.mu.Unlock()
	e.logEvent(c, "exec_create: "+x.commandLine(), map[string]string{"execID": x.id})
	return x.id, nil
}

// execEnv is dockerd's exec environment: PATH, HOSTNAME and (with a
// terminal) TERM, the variables of its legacy links, overridden by the
// container's variables, then by the exec's.
func execEnv(cfg *types.Config, tty bool, extra []string, links ...string) []string {
	env := []string{defaultPath, "HOSTNAME=" + cfg.Hostname}
	if tty {
		env = append(env, "TERM=xterm")
	}
	env = append(env, links...)
	env = replaceOrAppendEnv(env, cfg.Env)
	return replaceOrAppendEnv(env, extra)
}

// execLinkEnv is the link environment of c (locked) for an exec; links
// that no longer resolve are left out.
func execLinkEnv(e *Engine, c *container.Container) []string {
	links, _ := e.legacyLinks(c)
	return linkEnv(links)
}

// replaceOrAppendEnv applies overrides to env as dockerd does: NAME=value
// replaces the variable NAME or is appended, and a bare NAME removes it.
func replaceOrAppendEnv(env, overrides []string) []string {
	out := slices.Clone(env)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	removed := map[int]bool{}
	for _, kv := range overrides {
		k, _, hasValue := strings.Cut(kv, "=")
		i, ok := index[k]
		switch {
		case !hasValue:
			if ok {
				removed[i] = true
			}
		case ok:
			out[i] = kv
			delete(removed, i)
		default:
			out = append(out, kv)
		}
	}
	if len(removed) == 0 {
		return out
	}
	kept := out[:0]
	for i, kv := range out {
		if !removed[i] {
			kept = append(kept, kv)
		}
	}
	return kept
}

// process is the runtime's description of the exec: the container's
// capabilities (all of them for a privileged exec, as dockerd gives),
// no_new_privs, supplementary groups, rlimits and OOM score adjustment
// with the exec's command, environment, user, directory and terminal. The
// runtime applies the container's seccomp filter and namespaces.
func (x *execRecord) process(base *spec.Process, size *[2]uint) *spec.Process {
	p := &spec.Process{
		Args:             append([]string{x.entrypoint}, x.args...),
		Env:              slices.Clone(x.env),
		Cwd:              x.workdir,
		User:             x.user,
		AdditionalGroups: slices.Clone(base.AdditionalGroups),
		Terminal:         x.tty,
		OpenStdin:        x.openStdin,
		// dockerd closes an exec's stdin when its client's input ends.
		StdinOnce:       x.openStdin,
		Capabilities:    slices.Clone(base.Capabilities),
		NoNewPrivileges: base.NoNewPrivileges,
		Rlimits:         slices.Clone(base.Rlimits),
		OOMScoreAdj:     base.OOMScoreAdj,
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if x.privileged {
		p.Capabilities = heldCapabilities()
	}
	if size == nil {
		size = x.consoleSize
	}
	if x.tty && size != nil {
		p.ConsoleHeight, p.ConsoleWidth = clampSize(size[0]), clampSize(size[1])
	}
	return p
}

// heldCapabilities is what a privileged exec gets: dockerd gives every
// capability, which the engine can only do for those it holds itself (a
// daemon in a restricted environment lacks some).
func heldCapabilities() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return caps.All()
	}
	mask := ^uint64(0)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "CapPrm" && k != "CapBnd") {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return caps.All()
		}
		mask &= m
	}
	return caps.Names(mask)
}

func clampSize(v uint) uint16 {
	if v > 65535 {
		return 65535
	}
	return uint16(v)
}

// startableExec finds an exec whose container can run it: dockerd's
// checks before it hijacks the connection.
func (e *Engine) startableExec(id string) (*execRecord, *container.Container, *shimclient.Container, error) {
	x, err := e.getExec(id)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := e.containers.Get(x.containerID)
	if err != nil {
		return nil, nil, nil, errExecNotFound(id)
	}
	c.Lock()
	rc, err := e.activeRun(c, c.ID)
	c.Unlock()
	if err != nil {
		return nil, nil, nil, err
	}
	if rc != x.run {
		return nil, nil, nil, errExecNotFound(id)
	}
	return x, c, rc, nil
}

// ContainerExecStart answers POST /exec/{id}/start. Errors found before the
// process is started are the request's; a start that fails after the
// connection is taken over is reported in the stream, as dockerd does
// (the CLI then reads exit code 126 from inspect).
func (e *Engine) ContainerExecStart(ctx context.Context, id string, cfg *types.ExecStartConfig) error {
	x, c, rc, err := e.startableExec(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	switch {
	case x.exitCode != nil:
		x.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("Error: Exec command %s has already run", x.id))
	case x.tried:
		x.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("Error: Exec command %s is already running", x.id))
	}
	x.tried = true
	x.running = true
	x.mu.Unlock()
	started := false
	defer func() {
		if !started {
			// A start that failed leaves dockerd's exit code 126 and no
			// process.
			x.setExit(126)
			close(x.done)
		}
		x.startTried()
	}()
	e.logEvent(c, "exec_start: "+x.commandLine(), map[string]string{"execID": x.id})

	rctx, cancel := detached(ctx)
	defer cancel()
	// As in dockerd, the start's console size counts only when the start
	// asks for a terminal stream.
	var size *[2]uint
	if cfg.Tty {
		size = cfg.ConsoleSize
	}
	proc, err := rc.Exec(rctx, x.id, x.process(&rc.Spec().Process, size))
	if err != nil {
		if errdefs.KindOf(err) == errdefs.ErrConflict {
			c.Lock()
			err2 := notRunning(c)
			paused := c.State.Paused
			c.Unlock()
			if !paused {
				err = err2
			}
		}
		return err
	}
	if cfg.Detach {
		// Nothing is attached: the exec's output goes nowhere.
		pid, err := proc.Start(rctx)
		if err != nil {
			proc.Delete(rctx)
			return execStartError(err)
		}
		started = true
		e.execStarted(c, x, proc, pid)
		return nil
	}

	// The stream is framed as the start asks, which dockerd does even when
	// that differs from the exec's terminal: a terminal's output then goes
	// in stdout frames, and without frames there is no stderr.
	stdin, stdout, stderr, err := cfg.GetStreams(cfg.Tty)
	if err != nil {
		proc.Delete(rctx)
		return err
	}
	if cfg.Tty {
		stderr = nil
	}
	st, err := proc.Attach(rctx, shimclient.AttachOptions{Stdin: x.openStdin, Stdout: x.openStdout, Stderr: x.openStderr})
	if err != nil {
		proc.Delete(rctx)
		fmt.Fprintf(stdout, "%v\r\n", err)
		return nil
	}
	defer st.Close()
	// ended says why the streams ended early: the client typed the detach
	// keys or went away. Then the process runs on and the start returns.
	const (
		endDetached = 1
		endClient   = 2
	)
	var ended atomic.Int32
	// After the take-over the request's ctx no longer ends when the client
	// goes away: the connection tells (issue 9, item 6). The watch is in
	// place before the process starts, so that a started exec (its pid in
	// inspect) has its whole stream.
	if hangup := clientHangup(stdin); hangup != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-hangup:
				ended.CompareAndSwap(0, endClient)
				st.Close()
			case <-stop:
			}
		}()
	}
	pid, err := proc.Start(rctx)
	if err != nil {
		proc.Delete(rctx)
		fmt.Fprintf(stdout, "%v\r\n", execStartError(err))
		return nil
	}
	started = true
	e.execStarted(c, x, proc, pid)

	if x.openStdin {
		go func() {
			var in io.Reader = stdin
			if x.tty {
				// As for attach, the detach keys work only with a
				// terminal.
				keys := x.keys
				if keys == nil {
					keys, _ = parseDetachKeys(defaultDetachKeys)
				}
				in = newEscapeReader(stdin, keys)
			}
			switch err := feedStdin(st, in); {
			case err == nil:
			case errors.Is(err, errDetached):
				ended.CompareAndSwap(0, endDetached)
				st.Close()
			default:
				ended.CompareAndSwap(0, endClient)
				st.Close()
			}
		}()
	}
	// A failed write is the client gone. The stream from the runtime
	// may also break (it resets when the process's side closes with input
	// of ours unread); then the exit still follows.
	var clientGone atomic.Bool
	var outOut, outErr io.Writer
	if x.openStdout {
		outOut = &clientWriter{w: stdout, failed: &clientGone}
	}
	if x.openStderr && stderr != nil {
		outErr = &clientWriter{w: stderr, failed: &clientGone}
	}
	if err := st.Copy(outOut, outErr); err != nil && clientGone.Load() {
		ended.CompareAndSwap(0, endClient)
	}
	switch ended.Load() {
	case endDetached:
		e.logEvent(c, "exec_detach", map[string]string{"execID": x.id})
		return nil
	case endClient:
		return nil
	}
	// The output ended; the exit follows. The client reads the exit code
	// as soon as the stream closes, so it must be recorded first. ctx is
	// no guide here: a client that half-closed before the hijack has
	// cancelled it already.
	<-x.done
	return nil
}

// clientWriter is a writer to the client that notes a failure.
type clientWriter struct {
	w      io.Writer
	failed *atomic.Bool
}

func (c *clientWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.failed.Store(true)
	}
	return n, err
}

// feedStdin copies the client's input to the exec's stdin and closes that
// when the input ends. It returns the error that ended the input (the
// detach keys, the client going away), or nil when the input ended or the
// process stopped taking it: only its exit ends the stream then, and the
// start must still wait for it.
func feedStdin(st *shimclient.Stream, in io.Reader) error {
	buf := make([]byte, 32*1024)
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := st.Write(buf[:n]); err != nil {
				return nil
			}
		}
		switch {
		case rerr == io.EOF:
			st.CloseStdin()
			return nil
		case rerr != nil:
			return rerr
		}
	}
}

// execStarted records a started exec and watches for its exit.
// The exit is watched before the pid is published: inspect showing the
// pid means the daemon holds all it holds for a started exec.
func (e *Engine) execStarted(c *container.Container, x *execRecord, proc *shimclient.Process, pid int) {
	x.mu.Lock()
	x.proc = proc
	x.mu.Unlock()
	go e.watchExec(c, x, proc)
	x.mu.Lock()
	x.pid = pid
	x.mu.Unlock()
	x.startTried()
}

// watchExec waits for the exec's exit, records it, releases the runtime's
// record of the process and logs exec_die.
func (e *Engine) watchExec(c *container.Container, x *execRecord, proc *shimclient.Process) {
	defer close(x.done)
	exit, err := proc.Wait(e.monitorCtx)
	if e.monitorCtx.Err() != nil {
		return // the engine is closing
	}
	code := exit.Code
	if err != nil {
		// The container's shim went away with the process: it died with
		// the container's pid namespace.
		e.logger.Warn("waiting for exec", "exec", x.id, "container", x.containerID, "error", err)
		code = 137
	}
	x.setExit(code)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	proc.Delete(ctx)
	cancel()
	e.logEvent(c, "exec_die", map[string]string{"execID": x.id, "exitCode": strconv.Itoa(code)})
}

// execStartError gives a failed start dockerd's wording: runc's error
// inside containerd's. User lookups fail in dockerd itself, so their text
// stands alone.
func execStartError(err error) error {
	msg := err.Error()
	if l := strings.ToLower(msg); strings.Contains(l, "unable to find user") || strings.Contains(l, "unable to find group") {
		return err
	}
	wrapped := errors.New("OCI runtime exec failed: exec failed: unable to start container process: " + msg + ": unknown")
	switch errdefs.KindOf(err) {
	case errdefs.ErrInvalidParameter, errdefs.ErrNotFound:
		return errdefs.InvalidParameter(wrapped)
	case errdefs.ErrConflict:
		return errdefs.Conflict(wrapped)
	}
	return wrapped
}

// ContainerExecInspect answers GET /exec/{id}/json.
func (e *Engine) ContainerExecInspect(ctx context.Context, id string) (*types.ExecInspect, error) {
	x, err := e.getExec(id)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	privileged := x.privileged
	out := &types.ExecInspect{
		ID:      x.id,
		Running: x.running,
		ProcessConfig: types.ExecProcessConfig{
			Tty:        x.tty,
			Entrypoint: x.entrypoint,
			Arguments:  append([]string{}, x.args...),
			Privileged: &privileged,
			User:       x.user,
		},
		OpenStdin:   x.openStdin,
		OpenStderr:  x.openStderr,
		OpenStdout:  x.openStdout,
		ContainerID: x.containerID,
		// dockerd keeps the parsed keys as bytes, which JSON sends in
		// base64.
		DetachKeys: base64.StdEncoding.EncodeToString(x.keys),
		Pid:        x.pid,
	}
	if x.exitCode != nil {
		code := *x.exitCode
		out.ExitCode = &code
	}
	return out, nil
}

// ContainerExecResize answers POST /exec/{id}/resize. The CLI sends it
// right after the start, so it waits for the start to finish.
func (e *Engine) ContainerExecResize(ctx context.Context, id string, height, width int) error {
	x, err := e.getExec(id)
	if err != nil {
		return err
	}
	t := time.NewTimer(execResizeWait)
	defer t.Stop()
	select {
	case <-x.startDone:
	case <-t.C:
		return errors.New("timeout waiting for exec session ready")
	case <-ctx.Done():
		return ctx.Err()
	}
	x.mu.Lock()
	proc := x.proc
	exited := x.exitCode != nil
	x.mu.Unlock()
	if proc == nil {
		return errdefs.InvalidParameter(errors.New("exec process is not started"))
	}
	if exited {
		return nil
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if err := proc.Resize(rctx, clampSize(uint(height)), clampSize(uint(width))); err != nil {
		x.mu.Lock()
		exited := x.exitCode != nil
		x.mu.Unlock()
		if exited || errdefs.KindOf(err) == errdefs.ErrNotFound {
			return nil // the process ended meanwhile
		}
		return err
	}
	return nil
}
