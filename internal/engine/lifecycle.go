package engine

import (
	"context"
	"fmt"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shimclient"
)

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
	return e.setPaused(ctx, c, rc, true)
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
	return e.setPaused(ctx, c, rc, false)
}

// setPaused freezes (pause) or thaws the container's processes, records
// it and logs the event. Should the record fail to save, the processes go
// back as they were; should that fail too, they stay as asked and the
// record is saved later (a restarted daemon reads the freezer anyway). c's
// lock is held.
func (e *Engine) setPaused(ctx context.Context, c *container.Container, rc *shimclient.Container, pause bool) error {
	do, undo, verb := rc.Pause, rc.Resume, "pause"
	if !pause {
		do, undo, verb = rc.Resume, rc.Pause, "unpause"
	}
	set := func(paused bool) {
		if paused {
			c.State.SetPaused()
		} else {
			c.State.SetUnpaused()
		}
	}
	rctx, cancel := detached(ctx)
	defer cancel()
	if err := do(rctx); err != nil {
		return fmt.Errorf("Cannot %s container %s: %w", verb, c.ID, err)
	}
	set(pause)
	if err := e.containers.Save(c); err != nil {
		if uerr := undo(rctx); uerr != nil {
			e.logger.Warn("undoing a pause or unpause that could not be saved", "container", c.ID, "op", verb, "error", uerr)
			e.saveOrRetry(c)
			return err
		}
		set(!pause)
		return err
	}
	e.logEvent(c, verb, nil)
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
