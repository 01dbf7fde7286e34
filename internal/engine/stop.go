package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/signal"
)

// ContainerStop answers POST /containers/{id}/stop.
func (e *Engine) ContainerStop(ctx context.Context, name string, signal string, timeout *int) error {
	c, sig, err := e.stopTarget(name, signal)
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

// ContainerKill answers POST /containers/{id}/kill.
func (e *Engine) ContainerKill(ctx context.Context, name string, sigName string) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if sigName != "" {
		if sig, err = signal.Parse(sigName); err != nil {
			// A number the platform has no signal for is dockerd's
			// kill error, not the parser's.
			if n, nerr := strconv.Atoi(sigName); nerr == nil && n > 0 {
				return errdefs.InvalidParameter(fmt.Errorf("Cannot kill container: %s: the linux daemon does not support signal %d", name, n))
			}
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
	cs.mu.Lock()
	done := cs.monitorDone
	cs.mu.Unlock()
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
	if sig != syscall.SIGKILL || done == nil {
		return nil
	}
	// As dockerd's Kill: a SIGKILL answers only once the exit is recorded,
	// so that a client's inspect or remove right after sees the container
	// stopped (issue 15). Other signals answer at once.
	select {
	case <-done:
		return nil
	case <-time.After(killWaitTimeout):
		return fmt.Errorf("Cannot kill container: %s: tried to kill container, but did not receive an exit event", name)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// killWaitTimeout bounds how long a SIGKILL waits for the exit (dockerd's
// Kill waits as long).
const killWaitTimeout = 10 * time.Second

// stopTarget resolves the container and the signal parameter of a stop
// or restart request; "" means the container's own stop signal (0 here).
func (e *Engine) stopTarget(name, sigName string) (*container.Container, syscall.Signal, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, 0, err
	}
	if sigName == "" {
		return c, 0, nil
	}
	sig, err := signal.Parse(sigName)
	if err != nil {
		return nil, 0, errdefs.InvalidParameter(err)
	}
	return c, sig, nil
}

// stopSignal is the container's stop signal, SIGTERM by default.
func stopSignal(c *container.Container) syscall.Signal {
	if c.Config != nil && c.Config.StopSignal != "" {
		if sig, err := signal.Parse(c.Config.StopSignal); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}
