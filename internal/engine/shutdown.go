package engine

import (
	"context"
	"sync"
	"time"

	"skiffd/internal/container"
)

// Shutdown is the engine's part of a clean daemon stop (SIGTERM, SIGINT),
// called before Close. With live restore on it does nothing: containers
// keep running and the next daemon reconnects to them. With it off it does
// what dockerd's daemon.Shutdown does: every running container is stopped,
// all at once, each as docker stop would with no options (its stop signal,
// then SIGKILL after its stop timeout), and its exit is recorded. The
// restart policy does not act on those exits; the next daemon starts the
// containers whose policy says so (always, and unless-stopped: a stop by
// shutdown is not a user's stop). A container waiting for a policy restart
// is recorded as exited instead.
//
// Shutdown waits at most shutdownTimeout for the stops; what is still
// running then is left running (dockerd's "Force shutdown daemon"), and the
// next daemon, if it too runs without live restore, stops it at its start
// (stopRestored). The individual stops are not cut short by ctx.
func (e *Engine) Shutdown(ctx context.Context) {
	if e.opts.LiveRestore {
		return
	}
	e.waitRestored()
	e.shuttingDown.Store(true)
	list := e.containers.List()
	timeout := shutdownTimeout(e.opts.ShutdownTimeout, list)
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	limit := "none"
	if timeout >= 0 {
		limit = timeout.String()
	}
	e.logger.Info("stopping containers for shutdown", "timeout", limit)
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Go(func() { e.shutdownContainer(ctx, c) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		e.logger.Error("containers still running after the shutdown timeout; leaving them running", "timeout", limit)
	}
}

// shutdownContainer stops one container for Shutdown.
func (e *Engine) shutdownContainer(ctx context.Context, c *container.Container) {
	c.Lock()
	cs := e.state(c.ID)
	if e.stopRestarting(c, cs) {
		c.Unlock()
		return
	}
	running := c.State.Running
	c.Unlock()
	if !running {
		return
	}
	if err := e.stopRun(ctx, c, 0, nil, false); err != nil {
		e.logger.Error("stopping container for shutdown", "container", c.ID, "error", err)
		return
	}
	e.logEvent(c, "stop", nil)
}

// shutdownTimeout is dockerd's: the configured timeout, raised to each
// container's stop timeout (10 s unless set) plus 5 s of grace, or no limit
// (-1) when the configured one or any container's stop timeout is negative.
func shutdownTimeout(configured int, list []*container.Container) time.Duration {
	if configured < 0 {
		return -1
	}
	secs := configured
	for _, c := range list {
		stop := 10
		if c.Config.StopTimeout != nil {
			stop = *c.Config.StopTimeout
		}
		if stop < 0 {
			return -1
		}
		secs = max(secs, stop+5)
	}
	return time.Duration(secs) * time.Second
}
