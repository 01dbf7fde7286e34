package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/timestamp"
)

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
	c.Unlock()
	return e.removeMarked(c, force, removeVolumes, false)
}

// removeMarked is removeContainer for a container already marked as being
// removed (SetRemovalInProgress), as the exit handler of an AutoRemove
// container marks it before it lets go of its lock. With dirLater the
// container's directory is removed in the background once the container
// is gone (its record's removal durable, its waiters told).
func (e *Engine) removeMarked(c *container.Container, force, removeVolumes, dirLater bool) error {
	tr := time.Now()
	defer e.span("remove.total", tr)
	c.Lock()
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
		c.State.SetRemovalFailed(err)
		e.saveOrRetry(c)
		return errdefs.System(fmt.Errorf("unable to remove container %s: %w", c.ID, err))
	}
	// A shim may still exist: a container created by the runtime but never
	// started, or one whose monitor has not run.
	cs.mu.Lock()
	rc = cs.rc
	cs.rc = nil
	runtimeDeleted := cs.runtimeDeleted
	cs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	t := e.span("remove.stop", tr)
	if rc != nil {
		rc.Signal(ctx, syscall.SIGKILL)
		if err := rc.Delete(ctx); err != nil {
			return fail(err)
		}
	} else if runtimeDeleted {
		// The monitor deleted the last run's shim, directory and
		// cgroups (an exited container, --rm above all).
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
	if !runtimeDeleted {
		e.discardRuntimeState(c.ID)
	}
	e.detachSubpaths(c.ID)
	t = e.span("remove.runtime", t)
	if err := unmountContainerFS(e.containerDir(c.ID)); err != nil {
		return fail(err)
	}
	t = e.span("remove.unmount", t)
	if dirLater {
		removeDir, err := e.containers.DeleteKeepingDir(c)
		if err != nil {
			return fail(err)
		}
		e.background(func() {
			if err := removeDir(); err != nil {
				e.logger.Warn("removing the directory of a removed container", "container", c.ID, "error", err)
			}
		})
	} else if err := e.containers.Delete(c); err != nil {
		return fail(err)
	}
	t = e.span("remove.record", t)
	e.failPending(cs, errdefs.NotFound(fmt.Errorf("No such container: %s", c.ID)))
	e.forgetState(c.ID)
	e.releaseMountVolumes(c.ID, c.MountPoints, removeVolumes)
	e.dropLinksTo(c.ID, c.Name)
	e.logEvent(c, "destroy", nil)
	e.span("remove.events", t)
	return nil
}

// ContainersPrune answers POST /containers/prune: it removes the stopped
// containers that match the label and until filters.
func (e *Engine) ContainersPrune(ctx context.Context, ef filters.Args) (*types.ContainersPruneReport, error) {
	if err := ef.Validate(map[string]bool{"label": true, "label!": true, "until": true}); err != nil {
		return nil, err
	}
	var until time.Time
	for _, v := range ef.Get("until") {
		// dockerd's message for a container prune; the forms are those
		// of every since and until.
		t, err := timestamp.Parse(v, time.Now())
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("failed to parse value as time or duration: %q", v))
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
