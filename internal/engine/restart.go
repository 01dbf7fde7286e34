package engine

import (
	"context"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
)

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
	unmountContainerFS(e.containerDir(c.ID))
	e.saveOrRetry(c)
	return true
}

// ContainerRestart answers POST /containers/{id}/restart.
func (e *Engine) ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error {
	c, sig, err := e.stopTarget(name, signal)
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
