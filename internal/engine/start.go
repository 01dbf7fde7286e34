package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shimclient"
	"skiffd/internal/runtime/spec"
)

// opTimeout bounds a runtime call made on behalf of a request, which must
// not be cut short by the client going away half way.
const opTimeout = 30 * time.Second

func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
}

// ContainerStart answers POST /containers/{id}/start.
func (e *Engine) ContainerStart(ctx context.Context, name string) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	cs := e.state(c.ID)
	c.Lock()
	switch {
	case c.State.Paused:
		c.Unlock()
		return errdefs.Conflict(errors.New("cannot start a paused container, try unpause instead"))
	case c.State.Running && !c.State.Restarting:
		c.Unlock()
		return errdefs.NotModified(errors.New("container already started"))
	case c.State.RemovalInProgress || c.State.Dead:
		c.Unlock()
		return errdefs.Conflict(errors.New("container is marked for removal and cannot be started"))
	}
	// A manual start takes over from a pending policy restart and resets
	// the restart manager.
	cs.mu.Lock()
	cancelRestartLocked(cs)
	cs.policyCount = 0
	cs.backoff = 0
	cs.mu.Unlock()
	c.RestartCount = 0
	c.HasBeenManuallyStopped = false
	err = e.startLocked(ctx, c, cs, true)
	autoRemove := err != nil && c.HostConfig.AutoRemove
	if autoRemove {
		// dockerd's removed-waiters hear only the exit code of a start
		// that failed; the error goes to the start request.
		c.State.SetError(nil)
	}
	c.Unlock()
	if autoRemove {
		e.removeContainer(c, true, true)
	}
	return err
}

// startLocked starts the container's next run; c's lock is held. A start
// a client asked for (byClient) is undone if its record cannot be saved:
// the process is killed and the client gets the save's error. A start the
// restart policy or the daemon's start-up made goes on, and the save is
// retried.
func (e *Engine) startLocked(ctx context.Context, c *container.Container, cs *ctrState, byClient bool) (retErr error) {
	ts := time.Now()
	defer e.span("start.total", ts)
	img, err := e.images.Get(c.ImageID)
	if err != nil {
		return errdefs.System(fmt.Errorf("image of container %s: %w", c.ID, err))
	}
	// A previous run whose exit is still waiting for a retried save keeps
	// its runtime state until then (afterSaved); a new run supersedes that
	// exit and needs the runtime directory, so the deferred work runs now.
	cs.mu.Lock()
	after := cs.afterSave
	cs.afterSave = nil
	deleting := cs.runtimeDeleting
	cs.mu.Unlock()
	for _, f := range after {
		f()
	}
	if deleting != nil {
		// The runtime directory of the previous run is being deleted
		// (an AutoRemove exit whose removal failed); the new run needs
		// its path.
		<-deleting
	}
	var connected []epRef
	defer func() {
		if retErr != nil {
			e.releaseNetwork(c)
			e.logNetworkEvents(c, connected, "disconnect")
			c.State.SetError(retErr)
			if c.State.ExitCode == 0 {
				c.State.ExitCode = startExitCode(retErr.Error())
			}
			c.State.Running, c.State.Restarting = false, false
			e.saveOrRetry(c)
			e.failPending(cs, retErr)
		}
	}()
	if err := e.prepareNetwork(c); err != nil {
		return err
	}
	connected = e.endpoints(c)
	e.logNetworkEvents(c, connected, "connect")
	t := e.span("start.network", ts)
	dir := e.containerDir(c.ID)
	rootfs, err := e.layers.MountRootfs(img.ChainIDs[len(img.ChainIDs)-1], dir)
	if err != nil {
		return err
	}
	s, err := e.buildSpec(c, rootfs)
	if err != nil {
		return err
	}
	userMounts, unmountVolumes, err := e.startMounts(ctx, c, rootfs)
	if err != nil {
		return err
	}
	s.Mounts = mergeMounts(s.Mounts, userMounts)
	t = e.span("start.spec", t)
	// The network is wired while init sets up its root file system and
	// process, as soon as its namespaces exist (the shim says so before
	// init is ready). Not when the container sets net.* sysctls: init
	// writes them during its set-up, and the wiring's own writes
	// (disable_ipv6 of each interface) and the interfaces it makes
	// (which net.ipv6.conf.default.* apply to) would race with them;
	// then the wiring follows init's ready, as it always did.
	var opts shimclient.CreateOptions
	var wireErr error
	ownNet := false
	if path, own := s.HasNamespace(spec.NetworkNamespace); own && path == "" {
		ownNet = true
		if !hasNetSysctl(s.Sysctl) {
			opts.Wire = func(pid int) error {
				defer e.span("net.wire", time.Now())
				wireErr = e.wireNetwork(c, pid)
				return wireErr
			}
		}
	}
	rc, err := e.rt.CreateWith(ctx, s, opts)
	// The container's mount namespace has its own binds now.
	e.detachSubpaths(c.ID)
	if err != nil {
		unmountVolumes()
		if wireErr != nil && err == wireErr {
			return err
		}
		return startError(err)
	}
	t = e.span("start.create", t)
	if ownNet && opts.Wire == nil {
		err := errors.New("the container's init has no pid")
		if pid := rc.InitPid(); pid > 0 {
			err = e.wireNetwork(c, pid)
		}
		if err != nil {
			rc.Delete(ctx)
			unmountVolumes()
			return err
		}
	}
	t = e.span("start.wire-network", t)
	// Attaches opened before the start get their streams now, so they see
	// everything the process writes.
	cs.mu.Lock()
	pending := cs.pending
	cs.pending = nil
	cs.rc = rc
	cs.runtimeDeleted = false
	cs.stopping = false
	cs.unmountVolumes = unmountVolumes
	cs.mu.Unlock()
	for _, p := range pending {
		st, err := rc.Attach(ctx, p.opts)
		p.ready <- attachResult{st: st, err: err}
	}
	t = e.span("start.attach", t)
	// init execs the entrypoint at go (same pid), and its record is saved
	// meanwhile: the fsync overlaps init's last steps instead of following
	// them. The start is acknowledged only once both are done. A daemon
	// that dies in between finds either the record running and the shim
	// still created (restore stops the run that never began) or the
	// record stopped and the shim running (the shim is the truth).
	pid := rc.InitPid()
	st := c.State
	startedBefore := c.HasBeenStartedBefore
	prevErr, prevRunning, prevPaused, prevRestarting := st.Error, st.Running, st.Paused, st.Restarting
	prevCode, prevOOM, prevPid, prevStartedAt := st.ExitCode, st.OOMKilled, st.Pid, st.StartedAt
	st.SetRunning(pid, true)
	c.HasBeenStartedBefore = true
	undo := func() {
		c.HasBeenStartedBefore = startedBefore
		st.Error, st.Running, st.Paused, st.Restarting = prevErr, prevRunning, prevPaused, prevRestarting
		st.ExitCode, st.OOMKilled, st.Pid, st.StartedAt = prevCode, prevOOM, prevPid, prevStartedAt
		cs.mu.Lock()
		cs.rc = nil
		cs.unmountVolumes = nil
		cs.mu.Unlock()
	}
	saved := make(chan error, 1)
	if byClient {
		go func() { saved <- e.containers.Save(c) }()
	}
	err = rc.Start(ctx)
	var saveErr error
	if byClient {
		saveErr = <-saved
	}
	t = e.span("start.go+save", t)
	if err != nil {
		undo()
		rc.Delete(ctx)
		unmountVolumes()
		return startError(err)
	}
	if saveErr != nil {
		// As if the start had failed: the deferred failure handling
		// records the error, the record keeps the previous run.
		undo()
		if _, kerr := rc.Kill(ctx); kerr != nil {
			e.logger.Warn("killing a container whose start could not be saved", "container", c.ID, "error", kerr)
		}
		rc.Delete(ctx)
		unmountVolumes()
		return saveErr
	}
	if !byClient {
		e.saveOrRetry(c)
	}
	done := make(chan struct{})
	cs.mu.Lock()
	cs.monitorDone = done
	cs.mu.Unlock()
	e.startHealthMonitor(c, rc, done)
	e.logEvent(c, "start", nil)
	go e.monitor(c, cs, rc, done)
	return nil
}

// startError gives an error from the runtime's init dockerd's wording,
// runc's text inside containerd's, with dockerd's hint for a mount of a
// file onto a directory or back (the CLI turns "executable file not
// found" and "no such file or directory" into exit code 127 and
// "permission denied" into 126). What dockerd finds itself (a user
// missing from the container's passwd file) keeps its own text.
func startError(err error) error {
	var ie *shimclient.InitError
	if !errors.As(err, &ie) {
		return err
	}
	msg := "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: " + err.Error() + ": unknown"
	if strings.Contains(msg, "not a directory") {
		msg += ": Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type"
	}
	switch errdefs.KindOf(err) {
	case errdefs.ErrNotFound:
		return errdefs.NotFound(errors.New(msg))
	case errdefs.ErrInvalidParameter:
		return errdefs.InvalidParameter(errors.New(msg))
	}
	return errors.New(msg)
}

// startExitCode is the exit code dockerd records for a failed start.
func startExitCode(msg string) int {
	switch {
	case !strings.Contains(msg, "OCI runtime create failed"):
		// dockerd's own errors (a user missing from passwd, a working
		// directory that is a file) leave its default.
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "not a directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

// failPending ends the attaches waiting for a start that failed.
func (e *Engine) failPending(cs *ctrState, err error) {
	cs.mu.Lock()
	pending := cs.pending
	cs.pending = nil
	cs.mu.Unlock()
	for _, p := range pending {
		p.ready <- attachResult{err: err}
	}
}

// hasNetSysctl reports whether sysctls set any net.* key, which init
// writes in the container's network namespace, other than the keys of
// dockerd's defaults (dockerdNetSysctls): those are not an interface's.
func hasNetSysctl(sysctls map[string]string) bool {
	for k := range sysctls {
		k = strings.ReplaceAll(k, "/", ".")
		if _, dflt := dockerdNetSysctls[k]; strings.HasPrefix(k, "net.") && !dflt {
			return true
		}
	}
	return false
}
