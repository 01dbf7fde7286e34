package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shim"
)

// restoreContainers reconnects the engine to the containers of a previous
// daemon: running ones get a monitor again (their shims kept them running
// and logging), exits that happened while no daemon was there are recorded
// (and acted on: restart policy, AutoRemove), and containers whose policy
// says so are started. Shims left without a record are ended. Without live
// restore, containers found running (the previous daemon died without its
// Shutdown) are stopped first, as dockerd does.
func (e *Engine) restoreContainers(ctx context.Context) {
	known := map[string]bool{}
	var mu sync.Mutex
	var toStart, toRemove, toStop []*container.Container
	// Each container is independent, and most of the time goes to asking
	// its shim: restore them in parallel so the daemon answers soon.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	list := e.containers.List()
	for _, c := range list {
		known[c.ID] = true
	}
	for _, c := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start, remove, stop := e.restoreOne(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if start {
				toStart = append(toStart, c)
			}
			if stop {
				toStop = append(toStop, c)
			}
			if remove {
				toRemove = append(toRemove, c)
			}
		}()
	}
	wg.Wait()
	toStart = append(toStart, e.stopRestored(ctx, toStop)...)
	e.finishRestore(ctx, known, toStart, toRemove)
}

// stopRestored stops, all at once, the running containers that a daemon
// without live restore found, as its Shutdown would have (see
// shutdownContainer), and returns those the restart policy starts again.
// It waits for the stops: until they are done the API does not show these
// containers as running.
func (e *Engine) stopRestored(ctx context.Context, list []*container.Container) (toStart []*container.Container) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Go(func() {
			e.logger.Info("stopping a container left running, live restore is off", "container", c.ID)
			e.shutdownContainer(ctx, c)
			c.Lock()
			start := !c.State.Running && !c.State.IsRemoved() && !c.State.RemovalInProgress && wantsStartAtBoot(c)
			c.Unlock()
			if start {
				mu.Lock()
				toStart = append(toStart, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return toStart
}

// restoreOne reconnects one container and says whether it is to be
// started (restart policy), removed (AutoRemove) or stopped (it runs, and
// live restore is off).
func (e *Engine) restoreOne(ctx context.Context, c *container.Container) (start, remove, stop bool) {
	{
		c.Lock()
		cs := e.state(c.ID)
		rc, err := e.rt.Load(ctx, c.ID)
		switch {
		case err == nil:
			st, serr := rc.State(ctx)
			if serr != nil {
				// Neither a shim that answers nor a state file: a create
				// cut short whose shim is gone. Nothing of it runs.
				e.logger.Warn("discarding runtime state without a state", "container", c.ID, "error", serr)
				if err := rc.Delete(ctx); err != nil {
					e.logger.Warn("deleting runtime state", "container", c.ID, "error", err)
				}
				if c.State.Running {
					c.State.SetStopped(container.ExitStatus{ExitCode: 255})
					c.State.SetError(fmt.Errorf("the container's runtime state was unusable after a daemon restart: %w", serr))
					unmountContainerFS(e.containerDir(c.ID))
					e.saveOrRetry(c)
				}
				break
			}
			if st.Status == shim.StatusCreated {
				// The daemon died during a start. Its start request may
				// still reach the shim: then the delete finds the run
				// begun (a conflict), and it is restored as running below,
				// not recorded as stopped while it runs on.
				derr := rc.Delete(ctx)
				if !errors.Is(derr, errdefs.ErrConflict) {
					// This run never began.
					if c.State.Running {
						c.State.SetStopped(container.ExitStatus{ExitCode: 128})
					}
					c.State.SetError(errors.New("the daemon stopped while the container was starting"))
					e.saveOrRetry(c)
					break
				}
				if st, err = rc.State(ctx); err != nil || st.Status == shim.StatusCreated {
					e.logger.Warn("restoring a container started as the daemon stopped", "container", c.ID, "error", err)
					break
				}
			}
			if st.Status == shim.StatusStopped && !c.State.Running {
				// The exit was recorded; the daemon died before it
				// deleted the runtime state.
				rc.Delete(ctx)
				break
			}
			if !c.State.Running {
				// A record saying stopped next to a running shim (the
				// daemon died as the start was being recorded): the shim
				// is the truth.
				c.State.SetRunning(st.InitPid, true)
				if !st.StartedAt.IsZero() {
					c.State.StartedAt = st.StartedAt.UTC()
				}
				c.HasBeenStartedBefore = true
				e.recoverNetwork(c)
				e.saveOrRetry(c)
			}
			// The kernel's freezer state is the truth about pausing (a
			// pause or unpause may have been cut short by the crash).
			if paused, err := rc.Paused(ctx); err == nil && paused != c.State.Paused && c.State.Running {
				c.State.Paused = paused
				e.saveOrRetry(c)
			}
			done := make(chan struct{})
			unmount := e.remountVolumes(c)
			cs.mu.Lock()
			cs.rc = rc
			cs.monitorDone = done
			cs.unmountVolumes = unmount
			cs.mu.Unlock()
			if c.State.Running {
				e.startHealthMonitor(c, rc, done)
			}
			go e.monitor(c, cs, rc, done)
			stop = c.State.Running && !e.opts.LiveRestore
		case errdefs.KindOf(err) == errdefs.ErrNotFound:
			if c.State.Running {
				// No runtime state at all (the exec root was wiped, as by
				// a reboot): the process is gone.
				c.State.SetStopped(container.ExitStatus{ExitCode: 255})
				c.State.SetError(errors.New("the container's runtime state was lost while the daemon was stopped"))
				unmountContainerFS(e.containerDir(c.ID))
				e.saveOrRetry(c)
				e.logEvent(c, "die", map[string]string{"exitCode": "255"})
			}
			if c.HostConfig.AutoRemove && !c.State.Running {
				remove = true
			} else if wantsStartAtBoot(c) {
				start = true
			}
		default:
			// Runtime state that does not load: a shim the previous
			// daemon died while creating. Nothing of it can run; forget it.
			e.logger.Warn("discarding unusable runtime state", "container", c.ID, "error", err)
			e.discardRuntimeState(c.ID)
			if c.State.Running {
				c.State.SetStopped(container.ExitStatus{ExitCode: 255})
				c.State.SetError(fmt.Errorf("the container's runtime state was unusable after a daemon restart: %w", err))
				unmountContainerFS(e.containerDir(c.ID))
				e.saveOrRetry(c)
			}
		}
		// An AutoRemove container found stopped is removed, as dockerd
		// does at its start, whichever way the previous daemon left it:
		// its exit saved but its runtime state not yet deleted, a start
		// cut short, or no runtime state at all. (One found running has
		// a monitor again, whose exit handler removes it.)
		if c.HostConfig.AutoRemove && !c.State.Running && !c.State.IsRemoved() {
			remove, start = true, false
		}
		c.Unlock()
	}
	return start, remove, stop
}

// finishRestore ends shims without a record, then removes and starts what
// restoreOne asked for.
func (e *Engine) finishRestore(ctx context.Context, known map[string]bool, toStart, toRemove []*container.Container) {
	// Shims without a record, and runtime directories a crash left half
	// written: a create or remove that a crash cut short.
	if ents, err := os.ReadDir(e.runtimeRoot()); err == nil {
		for _, ent := range ents {
			id := ent.Name()
			if known[id] || !ent.IsDir() {
				continue
			}
			if rc, err := e.rt.Load(ctx, id); err == nil {
				// Delete refuses a running container: wait for the kill
				// to be recorded first.
				if _, err := rc.Kill(ctx); err != nil {
					e.logger.Warn("killing a container without a record", "container", id, "error", err)
				}
				if err := rc.Delete(ctx); err != nil {
					e.logger.Warn("deleting a container without a record", "container", id, "error", err)
				}
			} else {
				e.discardRuntimeState(id)
			}
		}
	}
	for _, c := range toRemove {
		go e.removeContainer(c, true, true)
	}
	for _, c := range toStart {
		go func() {
			sctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			c.Lock()
			defer c.Unlock()
			if c.State.Running || c.State.IsRemoved() {
				return
			}
			if err := e.startLocked(sctx, c, e.state(c.ID), false); err != nil {
				e.logger.Warn("starting container at daemon start", "container", c.ID, "error", err)
			}
		}()
	}
}

// wantsStartAtBoot reports whether the restart policy starts a stopped
// container when the daemon starts: always does, unless-stopped unless a
// user stopped it.
func wantsStartAtBoot(c *container.Container) bool {
	if !c.HasBeenStartedBefore {
		return false
	}
	switch c.HostConfig.RestartPolicy.Name {
	case types.RestartPolicyAlways:
		return true
	case types.RestartPolicyUnlessStopped:
		return !c.HasBeenManuallyStopped
	}
	return false
}

// restoreTimeout bounds the reconnection to the shims at daemon start.
const restoreTimeout = 20 * time.Second

// discardRuntimeState removes a runtime directory that the runtime cannot
// load (no state file: its shim never got going), so that it does not
// linger. A directory whose state says a shim runs is left alone.
func (e *Engine) discardRuntimeState(id string) {
	dir := filepath.Join(e.runtimeRoot(), id)
	if _, err := os.Stat(filepath.Join(dir, shim.StateFile)); err == nil {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		e.logger.Warn("removing unusable runtime state", "dir", dir, "error", err)
	}
}
