package engine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/layer"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/shimclient"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sysinfo"
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
	img, err := e.images.Get(c.ImageID)
	if err != nil {
		return errdefs.System(fmt.Errorf("image of container %s: %w", c.ID, err))
	}
	defer func() {
		if retErr != nil {
			e.releaseNetwork(c)
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
	rc, err := e.rt.Create(ctx, s)
	if err != nil {
		unmountVolumes()
		return startError(err)
	}
	if path, own := s.HasNamespace(spec.NetworkNamespace); own && path == "" {
		err := errors.New("the container's init has no pid")
		if st, serr := rc.State(ctx); serr == nil && st.InitPid > 0 {
			err = e.wireNetwork(c, st.InitPid)
		}
		if err != nil {
			rc.Delete(ctx)
			unmountVolumes()
			return err
		}
	}
	// Attaches opened before the start get their streams now, so they see
	// everything the process writes.
	cs.mu.Lock()
	pending := cs.pending
	cs.pending = nil
	cs.rc = rc
	cs.stopping = false
	cs.unmountVolumes = unmountVolumes
	cs.mu.Unlock()
	for _, p := range pending {
		st, err := rc.Attach(ctx, p.opts)
		p.ready <- attachResult{st: st, err: err}
	}
	if err := rc.Start(ctx); err != nil {
		cs.mu.Lock()
		cs.rc = nil
		cs.unmountVolumes = nil
		cs.mu.Unlock()
		rc.Delete(ctx)
		unmountVolumes()
		return startError(err)
	}
	pid := 0
	if st, err := rc.State(ctx); err == nil {
		pid = st.InitPid
	}
	startedBefore, startedAt := c.HasBeenStartedBefore, c.State.StartedAt
	c.State.SetRunning(pid, true)
	c.HasBeenStartedBefore = true
	if byClient {
		if err := e.containers.Save(c); err != nil {
			// As if the start had failed: the deferred failure handling
			// records the error, the record keeps the previous run.
			c.HasBeenStartedBefore, c.State.StartedAt, c.State.Pid = startedBefore, startedAt, 0
			cs.mu.Lock()
			cs.rc = nil
			cs.unmountVolumes = nil
			cs.mu.Unlock()
			if _, kerr := rc.Kill(ctx); kerr != nil {
				e.logger.Warn("killing a container whose start could not be saved", "container", c.ID, "error", kerr)
			}
			rc.Delete(ctx)
			unmountVolumes()
			return err
		}
	} else {
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

// startError gives an error from the runtime's init dockerd's wording
// (the CLI turns "executable file not found" and "no such file or
// directory" into exit code 127 and "permission denied" into 126).
func startError(err error) error {
	msg := err.Error()
	if errdefs.KindOf(err) == errdefs.ErrInvalidParameter || errdefs.KindOf(err) == errdefs.ErrNotFound {
		wrapped := errors.New("failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: " + msg + ": unknown")
		if errdefs.KindOf(err) == errdefs.ErrNotFound {
			return errdefs.NotFound(wrapped)
		}
		return errdefs.InvalidParameter(wrapped)
	}
	return err
}

// startExitCode is the exit code dockerd records for a failed start.
func startExitCode(msg string) int {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
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

// monitor waits for the exit of one run of the container and turns it into
// state, events and the restart policy's or AutoRemove's consequences.
func (e *Engine) monitor(c *container.Container, cs *ctrState, rc *shimclient.Container, done chan struct{}) {
	defer close(done)
	var exit shim.ExitStatus
	var err error
	for attempt := 0; ; attempt++ {
		exit, err = rc.Wait(e.monitorCtx)
		if e.monitorCtx.Err() != nil {
			return // the engine is closing; the next daemon takes over
		}
		if err == nil || attempt >= 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.logger.Error("waiting for container", "container", c.ID, "error", err)
		exit = shim.ExitStatus{Code: 255, ExitedAt: time.Now(), Error: err.Error()}
	}
	e.handleExit(c, cs, rc, exit)
}

// handleExit records an exit, then deletes the run's runtime state (in
// that order: a daemon killed in between finds the exit in the record or,
// failing that, in the shim's state file) and applies the restart policy
// or AutoRemove.
func (e *Engine) handleExit(c *container.Container, cs *ctrState, rc *shimclient.Container, exit shim.ExitStatus) {
	c.Lock()
	cs.mu.Lock()
	stopping := cs.stopping
	cs.rc = nil
	unmountVolumes := cs.unmountVolumes
	cs.unmountVolumes = nil
	cs.mu.Unlock()
	es := container.ExitStatus{ExitCode: exit.Code, OOMKilled: exit.OOMKilled, ExitedAt: exit.ExitedAt}
	ran := time.Since(c.State.StartedAt)
	if !exit.ExitedAt.IsZero() {
		ran = exit.ExitedAt.Sub(c.State.StartedAt)
	}
	var delay time.Duration
	restart := false
	// An exit during the daemon's shutdown is not restarted: the next
	// daemon applies the policy at its start (wantsStartAtBoot).
	if !stopping && !e.shuttingDown.Load() && !c.State.RemovalInProgress && !c.State.IsRemoved() {
		cs.mu.Lock()
		restart, delay = shouldRestart(c.HostConfig.RestartPolicy, exit.Code, c.HasBeenManuallyStopped, cs.policyCount, &cs.backoff, ran)
		if restart {
			cs.policyCount++
		}
		cs.mu.Unlock()
	}
	if exit.OOMKilled {
		e.logEvent(c, "oom", nil)
	}
	if restart {
		c.State.SetRestarting(es)
		c.RestartCount++
	} else {
		c.State.SetStopped(es)
		e.releaseNetwork(c)
		if exit.Error != "" {
			c.State.SetError(errors.New(exit.Error))
		}
	}
	// The exit happened: a record that cannot be saved now is saved
	// later. Until then the shim's state file holds the exit too, but
	// only until the Delete below.
	e.saveOrRetry(c)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	if err := rc.Delete(ctx); err != nil {
		e.logger.Warn("deleting the runtime state of an exited container", "container", c.ID, "error", err)
	}
	cancel()
	if unmountVolumes != nil {
		unmountVolumes()
	}
	if !restart {
		if err := layer.UnmountRootfs(e.containerDir(c.ID)); err != nil {
			e.logger.Warn("unmounting the rootfs of an exited container", "container", c.ID, "error", err)
		}
	}
	autoRemove := !restart && c.HostConfig.AutoRemove && !c.State.RemovalInProgress
	c.Unlock()
	e.logEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(exit.Code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
	if restart {
		e.scheduleRestart(c, cs, delay)
	} else if autoRemove {
		if err := e.removeContainer(c, true, true); err != nil {
			e.logger.Warn("auto-removing container", "container", c.ID, "error", err)
		}
	}
}

// Restart manager constants, dockerd's.
const (
	restartBackoffStart = 100 * time.Millisecond
	restartBackoffMax   = time.Minute
	restartResetAfter   = 10 * time.Second
)

// shouldRestart is dockerd's restart manager: whether the policy restarts
// a container that exited with code, and after what delay. backoff is the
// manager's delay, updated: it doubles from 100 ms up to a minute and
// starts over after a run of 10 s or more. count is the number of policy
// restarts so far.
func shouldRestart(p types.RestartPolicy, code int, manuallyStopped bool, count int, backoff *time.Duration, ran time.Duration) (bool, time.Duration) {
	if ran >= restartResetAfter {
		*backoff = 0
	}
	switch {
	case *backoff == 0:
		*backoff = restartBackoffStart
	case *backoff < restartBackoffMax:
		*backoff *= 2
	}
	if *backoff > restartBackoffMax {
		*backoff = restartBackoffMax
	}
	restart := false
	switch p.Name {
	case types.RestartPolicyAlways:
		restart = true
	case types.RestartPolicyUnlessStopped:
		restart = !manuallyStopped
	case types.RestartPolicyOnFailure:
		if p.MaximumRetryCount == 0 || count < p.MaximumRetryCount {
			restart = code != 0
		}
	}
	return restart, *backoff
}

// scheduleRestart starts the container again after delay unless a stop,
// start or remove cancels it first.
func (e *Engine) scheduleRestart(c *container.Container, cs *ctrState, delay time.Duration) {
	cancelCh := make(chan struct{})
	cs.mu.Lock()
	cs.restartCancel = cancelCh
	cs.restartTimer = time.AfterFunc(delay, func() {
		if e.monitorCtx.Err() != nil || e.shuttingDown.Load() {
			return // the engine is closing; the next daemon applies the policy
		}
		c.Lock()
		defer c.Unlock()
		select {
		case <-cancelCh:
			return
		default:
		}
		cs.mu.Lock()
		cs.restartTimer, cs.restartCancel = nil, nil
		cs.mu.Unlock()
		if !c.State.Restarting || c.State.RemovalInProgress || c.State.IsRemoved() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := e.startLocked(ctx, c, cs, false); err != nil {
			e.logger.Warn("restarting container", "container", c.ID, "error", err)
			c.State.SetStopped(container.ExitStatus{ExitCode: c.State.ExitCode})
			c.State.SetError(err)
			e.saveOrRetry(c)
		}
	})
	cs.mu.Unlock()
}

// cancelRestartLocked cancels a pending policy restart; cs.mu is held.
func cancelRestartLocked(cs *ctrState) bool {
	if cs.restartCancel == nil {
		return false
	}
	close(cs.restartCancel)
	cs.restartTimer.Stop()
	cs.restartCancel, cs.restartTimer = nil, nil
	return true
}

// stopRestarting turns a container waiting for a policy restart into a
// stopped one; c's lock is held. It reports whether it did.
func (e *Engine) stopRestarting(c *container.Container, cs *ctrState) bool {
	cs.mu.Lock()
	cancelled := cancelRestartLocked(cs)
	running := cs.rc != nil
	cs.mu.Unlock()
	if !c.State.Restarting || running {
		return false
	}
	_ = cancelled
	c.State.SetStopped(container.ExitStatus{ExitCode: c.State.ExitCode, ExitedAt: c.State.FinishedAt})
	layer.UnmountRootfs(e.containerDir(c.ID))
	e.saveOrRetry(c)
	return true
}

// ContainerStop answers POST /containers/{id}/stop.
func (e *Engine) ContainerStop(ctx context.Context, name string, signal string, timeout *int) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	sig, err := optionalSignal(signal)
	if err != nil {
		return err
	}
	c.Lock()
	cs := e.state(c.ID)
	if e.stopRestarting(c, cs) {
		c.Unlock()
		e.logEvent(c, "stop", nil)
		return nil
	}
	if !c.State.Running {
		c.Unlock()
		return errdefs.NotModified(errors.New("container already stopped"))
	}
	c.Unlock()
	if err := e.stop(ctx, c, sig, timeout); err != nil {
		return err
	}
	e.logEvent(c, "stop", nil)
	return nil
}

// stop ends the container's process: sig (zero: the stop signal), then
// SIGKILL after the timeout; it returns once the exit is recorded.
func (e *Engine) stop(ctx context.Context, c *container.Container, sig syscall.Signal, timeout *int) error {
	return e.stopRun(ctx, c, sig, timeout, true)
}

// stopRun is stop; manual records that a user asked for it, which
// unless-stopped remembers across daemon restarts. A stop by the daemon's
// own shutdown is not manual, as in dockerd.
func (e *Engine) stopRun(ctx context.Context, c *container.Container, sig syscall.Signal, timeout *int, manual bool) error {
	c.Lock()
	cs := e.state(c.ID)
	if manual {
		c.HasBeenManuallyStopped = true
		e.saveOrRetry(c) // a stop goes ahead on a full disk (records.go)
	}
	cs.mu.Lock()
	cs.stopping = true
	rc := cs.rc
	done := cs.monitorDone
	cs.mu.Unlock()
	if sig == 0 {
		sig = stopSignal(c)
	}
	wait := 10
	if c.Config.StopTimeout != nil {
		wait = *c.Config.StopTimeout
	}
	if timeout != nil {
		wait = *timeout
	}
	paused := c.State.Paused
	c.Unlock()
	if rc == nil || done == nil {
		return nil
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if sig != syscall.SIGKILL {
		e.logEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
		if err := rc.Signal(rctx, sig); err == nil {
			if paused {
				rc.Resume(rctx)
			}
			if wait < 0 {
				<-done
				return nil
			}
			select {
			case <-done:
				return nil
			case <-time.After(time.Duration(wait) * time.Second):
			}
		}
	}
	e.logEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(syscall.SIGKILL))})
	if err := rc.Signal(rctx, syscall.SIGKILL); err != nil && errdefs.KindOf(err) != errdefs.ErrConflict {
		e.logger.Warn("killing container", "container", c.ID, "error", err)
	}
	if paused {
		rc.Resume(rctx)
	}
	select {
	case <-done:
		return nil
	case <-rctx.Done():
		return fmt.Errorf("container %s did not exit after SIGKILL", c.ID)
	}
}

// ContainerRestart answers POST /containers/{id}/restart.
func (e *Engine) ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	sig, err := optionalSignal(signal)
	if err != nil {
		return err
	}
	c.Lock()
	cs := e.state(c.ID)
	e.stopRestarting(c, cs)
	running := c.State.Running
	c.Unlock()
	if running {
		if err := e.stop(ctx, c, sig, timeout); err != nil {
			return err
		}
		e.logEvent(c, "stop", nil)
	}
	if err := e.ContainerStart(ctx, c.ID); err != nil && errdefs.KindOf(err) != errdefs.ErrNotModified {
		return err
	}
	e.logEvent(c, "restart", nil)
	return nil
}

// ContainerKill answers POST /containers/{id}/kill.
func (e *Engine) ContainerKill(ctx context.Context, name string, signal string) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	c.Lock()
	cs := e.state(c.ID)
	if sig == syscall.SIGKILL && e.stopRestarting(c, cs) {
		c.HasBeenManuallyStopped = true
		e.saveOrRetry(c)
		c.Unlock()
		return nil
	}
	rc := cs.run()
	if !c.State.Running || rc == nil {
		c.Unlock()
		return errdefs.Conflict(fmt.Errorf("Cannot kill container: %s: %w", name, notRunning(c)))
	}
	// A kill goes ahead on a full disk (records.go).
	c.HasBeenManuallyStopped = true
	e.saveOrRetry(c)
	// The stop signal and SIGKILL end the container for good; other
	// signals may not end it at all.
	if sig == syscall.SIGKILL || sig == stopSignal(c) {
		cs.mu.Lock()
		cs.stopping = true
		cs.mu.Unlock()
	}
	paused := c.State.Paused
	c.Unlock()
	rctx, cancel := detached(ctx)
	defer cancel()
	if err := rc.Signal(rctx, sig); err != nil {
		if errdefs.KindOf(err) == errdefs.ErrConflict {
			return errdefs.Conflict(fmt.Errorf("Cannot kill container: %s: %w", name, notRunning(c)))
		}
		return fmt.Errorf("Cannot kill container: %s: %w", name, err)
	}
	if paused && sig == syscall.SIGKILL {
		rc.Resume(rctx)
	}
	e.logEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

// ContainerPause answers POST /containers/{id}/pause.
func (e *Engine) ContainerPause(ctx context.Context, name string) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	cs := e.state(c.ID)
	rc := cs.run()
	switch {
	case !c.State.Running || rc == nil && !c.State.Restarting:
		return notRunning(c)
	case c.State.Paused:
		return errdefs.Conflict(fmt.Errorf("Container %s is already paused", c.ID))
	case c.State.Restarting || rc == nil:
		return errdefs.Conflict(fmt.Errorf("Container %s is restarting, wait until the container is running", c.ID))
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if err := rc.Pause(rctx); err != nil {
		return fmt.Errorf("Cannot pause container %s: %w", c.ID, err)
	}
	c.State.SetPaused()
	if err := e.containers.Save(c); err != nil {
		if rerr := rc.Resume(rctx); rerr != nil {
			// Still frozen: the record is saved later, and a restarted
			// daemon reads the freezer anyway.
			e.logger.Warn("thawing a container whose pause could not be saved", "container", c.ID, "error", rerr)
			e.saveOrRetry(c)
			return err
		}
		c.State.SetUnpaused()
		return err
	}
	e.logEvent(c, "pause", nil)
	return nil
}

// ContainerUnpause answers POST /containers/{id}/unpause.
func (e *Engine) ContainerUnpause(ctx context.Context, name string) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	cs := e.state(c.ID)
	rc := cs.run()
	if !c.State.Paused || rc == nil {
		return errdefs.Conflict(fmt.Errorf("Container %s is not paused", c.ID))
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if err := rc.Resume(rctx); err != nil {
		return fmt.Errorf("Cannot unpause container %s: %w", c.ID, err)
	}
	c.State.SetUnpaused()
	if err := e.containers.Save(c); err != nil {
		if perr := rc.Pause(rctx); perr != nil {
			e.logger.Warn("freezing a container whose unpause could not be saved", "container", c.ID, "error", perr)
			e.saveOrRetry(c)
			return err
		}
		c.State.SetPaused()
		return err
	}
	e.logEvent(c, "unpause", nil)
	return nil
}

// ContainerWait answers POST /containers/{id}/wait.
func (e *Engine) ContainerWait(ctx context.Context, name string, condition types.WaitCondition) (<-chan types.WaitResponse, error) {
	switch condition {
	case "", types.WaitConditionNotRunning, types.WaitConditionNextExit, types.WaitConditionRemoved:
	default:
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", condition))
	}
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	st := c.State.Wait(ctx, condition)
	out := make(chan types.WaitResponse, 1)
	go func() {
		s := <-st
		r := types.WaitResponse{StatusCode: int64(s.ExitCode)}
		if s.Err != nil {
			r.Error = &types.WaitExitError{Message: s.Err.Error()}
		}
		out <- r
	}()
	return out, nil
}

// ContainerRemove answers DELETE /containers/{id}.
func (e *Engine) ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	c.Lock()
	if c.State.Running && !force {
		c.Unlock()
		if c.State.Paused {
			return errdefs.Conflict(fmt.Errorf("You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", c.ID))
		}
		if c.State.Restarting {
			return errdefs.Conflict(fmt.Errorf("You cannot remove a restarting container %s. Stop the container before attempting removal or force remove", c.ID))
		}
		return errdefs.Conflict(fmt.Errorf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.ID))
	}
	c.Unlock()
	return e.removeContainer(c, force, removeVolumes)
}

// removeContainer kills the container if it runs (force), then deletes its
// runtime state, root file system and record.
func (e *Engine) removeContainer(c *container.Container, force, removeVolumes bool) error {
	c.Lock()
	if err := c.State.SetRemovalInProgress(c.Name[1:]); err != nil {
		c.Unlock()
		return err
	}
	cs := e.state(c.ID)
	e.stopRestarting(c, cs)
	cs.mu.Lock()
	cs.stopping = true
	rc := cs.rc
	done := cs.monitorDone
	cs.mu.Unlock()
	running := c.State.Running && rc != nil
	c.Unlock()
	if running {
		if !force {
			c.Lock()
			c.State.ResetRemovalInProgress()
			c.Unlock()
			return errdefs.Conflict(fmt.Errorf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.ID))
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		rc.Signal(ctx, syscall.SIGKILL)
		rc.Resume(ctx)
		if done != nil {
			select {
			case <-done:
			case <-ctx.Done():
			}
		}
		cancel()
	}
	c.Lock()
	defer c.Unlock()
	if c.State.IsRemoved() {
		return nil
	}
	fail := func(err error) error {
		c.State.ResetRemovalInProgress()
		c.State.SetError(err)
		e.saveOrRetry(c)
		return errdefs.System(fmt.Errorf("unable to remove container %s: %w", c.ID, err))
	}
	// A shim may still exist: a container created by the runtime but never
	// started, or one whose monitor has not run.
	cs.mu.Lock()
	rc = cs.rc
	cs.rc = nil
	cs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if rc != nil {
		rc.Signal(ctx, syscall.SIGKILL)
		if err := rc.Delete(ctx); err != nil {
			return fail(err)
		}
	} else if rc2, err := e.rt.Load(ctx, c.ID); err == nil {
		rc2.Signal(ctx, syscall.SIGKILL)
		rc2.Delete(ctx)
	} else if errdefs.KindOf(err) == errdefs.ErrNotFound {
		// The runtime directory is gone (an exec root wiped while no
		// daemon ran): the cgroups it would have removed are not.
		if err := e.rt.DiscardCgroups(c.ID, c.HostConfig.CgroupParent); err != nil {
			return fail(err)
		}
	}
	// What the runtime could not load (a directory a crash left before its
	// shim wrote any state) goes too.
	e.discardRuntimeState(c.ID)
	if err := layer.UnmountRootfs(e.containerDir(c.ID)); err != nil {
		return fail(err)
	}
	if err := e.containers.Delete(c); err != nil {
		return fail(err)
	}
	e.failPending(cs, errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID)))
	e.forgetState(c.ID)
	e.releaseMountVolumes(c.ID, c.MountPoints, removeVolumes)
	e.logEvent(c, "destroy", nil)
	return nil
}

// ContainerResize answers POST /containers/{id}/resize.
func (e *Engine) ContainerResize(ctx context.Context, name string, height, width int) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	if height < 0 || width < 0 || height > 65535 || width > 65535 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid terminal size %dx%d", height, width))
	}
	cs := e.state(c.ID)
	rc := cs.run()
	if rc == nil {
		return notRunning(c)
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if err := rc.Resize(rctx, uint16(height), uint16(width)); err != nil {
		// A shim that no longer answers belongs to a process that exited.
		if errdefs.KindOf(err) == errdefs.ErrConflict || errdefs.KindOf(err) == errdefs.ErrNotFound || strings.Contains(err.Error(), "shim not reachable") {
			return notRunning(c)
		}
		return err
	}
	return nil
}

// ContainerUpdate answers POST /containers/{id}/update: resources (applied
// to the running container's cgroups at once) and the restart policy.
func (e *Engine) ContainerUpdate(ctx context.Context, name string, u *types.UpdateConfig) (*types.ContainerUpdateResponse, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	if c.State.RemovalInProgress || c.State.Dead {
		return nil, errdefs.Conflict(fmt.Errorf("Cannot update container %s: container is marked for removal and cannot be \"update\"", c.ID))
	}
	hc := *c.HostConfig
	r := &hc.Resources
	in := u.Resources
	if in.BlkioWeight != 0 {
		r.BlkioWeight = in.BlkioWeight
	}
	if in.CPUShares != 0 {
		r.CPUShares = in.CPUShares
	}
	if in.NanoCPUs != 0 {
		r.NanoCPUs = in.NanoCPUs
	}
	if in.CPUPeriod != 0 {
		r.CPUPeriod = in.CPUPeriod
	}
	if in.CPUQuota != 0 {
		r.CPUQuota = in.CPUQuota
	}
	if in.CpusetCpus != "" {
		r.CpusetCpus = in.CpusetCpus
	}
	if in.CpusetMems != "" {
		r.CpusetMems = in.CpusetMems
	}
	if in.Memory != 0 {
		r.Memory = in.Memory
		if in.MemorySwap == 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
			r.MemorySwap = 0
		}
	}
	if in.MemorySwap != 0 {
		r.MemorySwap = in.MemorySwap
	}
	if in.MemoryReservation != 0 {
		r.MemoryReservation = in.MemoryReservation
	}
	if in.PidsLimit != nil {
		if *in.PidsLimit <= 0 {
			r.PidsLimit = nil
		} else {
			v := *in.PidsLimit
			r.PidsLimit = &v
		}
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != types.RestartPolicyDisabled {
			return nil, errdefs.InvalidParameter(errors.New("Cannot update container " + c.ID + ": Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	warnings, err := validateHostConfig(&hc, e.features.Cgroup, cpuCount(), true)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Cannot update container %s: %w", c.ID, err))
	}
	if len(in.Devices) > 0 || len(in.Ulimits) > 0 || len(in.DeviceRequests) > 0 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Cannot update container %s: skiffd does not support updating devices or ulimits", c.ID))
	}
	cs := e.state(c.ID)
	rc := cs.run()
	if rc != nil {
		rctx, cancel := detached(ctx)
		defer cancel()
		if err := rc.Update(rctx, runtimeResources(r)); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	old := c.HostConfig
	c.HostConfig = &hc
	if err := e.containers.Save(c); err != nil {
		// Put the running container's limits back, so that the record
		// on disk (the previous one) stays the truth.
		c.HostConfig = old
		if rc != nil {
			rctx, cancel := detached(ctx)
			defer cancel()
			if rerr := rc.Update(rctx, runtimeResources(&old.Resources)); rerr != nil {
				e.logger.Warn("restoring the limits of a container whose update could not be saved", "container", c.ID, "error", rerr)
			}
		}
		return nil, err
	}
	e.logEvent(c, "update", nil)
	if warnings == nil {
		warnings = []string{}
	}
	return &types.ContainerUpdateResponse{Warnings: warnings}, nil
}

// runtimeResources is the runtime's form of a host config's limits.
func runtimeResources(r *types.Resources) spec.Resources {
	res := spec.Resources{
		Memory: r.Memory, MemorySwap: r.MemorySwap, MemoryReservation: r.MemoryReservation,
		NanoCPUs: r.NanoCPUs, CPUShares: r.CPUShares, CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, BlkioWeight: r.BlkioWeight,
	}
	if r.PidsLimit != nil {
		res.PidsLimit = *r.PidsLimit
	}
	return res
}

// ContainersPrune answers POST /containers/prune: it removes the stopped
// containers that match the label and until filters.
func (e *Engine) ContainersPrune(ctx context.Context, ef filters.Args) (*types.ContainersPruneReport, error) {
	if err := ef.Validate(map[string]bool{"label": true, "label!": true, "until": true}); err != nil {
		return nil, err
	}
	var until time.Time
	for _, v := range ef.Get("until") {
		t, err := parseUntil(v)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		until = t
	}
	e.waitRestored()
	report := &types.ContainersPruneReport{ContainersDeleted: []string{}}
	for _, v := range e.containers.Snapshots() {
		if v.State.Running || v.State.RemovalInProgress {
			continue
		}
		if !until.IsZero() && !v.Created.Before(until) {
			continue
		}
		labels := map[string]string{}
		if v.Config != nil && v.Config.Labels != nil {
			labels = v.Config.Labels
		}
		if ef.Contains("label") && !ef.MatchKVList("label", labels) {
			continue
		}
		if ef.Contains("label!") && ef.MatchKVList("label!", labels) {
			continue
		}
		c, err := e.containers.Get(v.ID)
		if err != nil {
			continue
		}
		size := dirSize(filepath.Join(e.containerDir(c.ID), "upper"))
		if err := e.removeContainer(c, false, false); err != nil {
			e.logger.Warn("prune: removing container", "container", c.ID, "error", err)
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, c.ID)
		report.SpaceReclaimed += uint64(size)
	}
	e.events.Log("prune", types.ContainerEventType, types.EventActor{Attributes: map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)}})
	return report, nil
}

// parseUntil reads an until filter: a Unix time (with optional fraction),
// an RFC 3339 time or date, or a Go duration before now.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if ok {
				f, err := strconv.ParseFloat("0."+frac, 64)
				if err != nil {
					return time.Time{}, fmt.Errorf("invalid until filter %q", v)
				}
				ns = int64(f * 1e9)
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("failed to parse value as time or duration: %q", v)
}

func cpuCount() int { return sysinfo.Read().NCPU }

// mergeMounts adds the client's mounts after the spec's own, as dockerd's
// WithMounts does: a default mount whose destination a client's mount
// takes is left out, and with a client's mount on /dev (-v /dev:/dev) so
// is every default mount below /dev but /dev/shm, which follows the
// client's mounts: the container keeps its own shared memory instead of
// the bound directory's (dockerd's IPC mount is a client mount, sorted
// after /dev).
func mergeMounts(base, user []spec.Mount) []spec.Mount {
	if len(user) == 0 {
		return base
	}
	taken := map[string]bool{}
	for _, m := range user {
		taken[path.Clean(m.Destination)] = true
	}
	out := make([]spec.Mount, 0, len(base)+len(user))
	var after []spec.Mount
	for _, m := range base {
		dst := path.Clean(m.Destination)
		switch {
		case taken[dst]:
		case taken["/dev"] && dst == "/dev/shm":
			after = append(after, m)
		case taken["/dev"] && strings.HasPrefix(dst, "/dev/"):
		default:
			out = append(out, m)
		}
	}
	return append(append(out, user...), after...)
}

// optionalSignal parses the signal parameter of stop and restart; "" means
// the container's own stop signal (0 here).
func optionalSignal(signal string) (syscall.Signal, error) {
	if signal == "" {
		return 0, nil
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return 0, errdefs.InvalidParameter(err)
	}
	return sig, nil
}
