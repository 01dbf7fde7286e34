package engine

import (
	"context"
	"errors"
	"strconv"
	"time"

	"skiffd/internal/container"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/shimclient"
)

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
	e.span("exit.delivery", exit.ExitedAt)
	e.handleExit(c, cs, rc, exit)
}

// handleExit records an exit, then deletes the run's runtime state (in
// that order: a daemon killed in between finds the exit in the record or,
// failing that, in the shim's state file) and applies the restart policy
// or AutoRemove.
func (e *Engine) handleExit(c *container.Container, cs *ctrState, rc *shimclient.Container, exit shim.ExitStatus) {
	th := time.Now()
	defer e.span("exit.total", th)
	c.Lock()
	t := e.span("exit.lock", th)
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
	var wake func()
	// The networks the container leaves (as a run; a restart rejoins
	// them): dockerd logs their disconnect events after its die.
	disconnected := e.endpoints(c)
	if restart {
		wake = c.State.SetRestartingLater(es)
		c.RestartCount++
	} else {
		wake = c.State.SetStoppedLater(es)
		e.releaseNetwork(c)
		if exit.Error != "" {
			c.State.SetError(errors.New(exit.Error))
		}
	}
	t = e.span("exit.prepare", t)
	// A run that is over unmounts its root file system and volumes while
	// its exit is saved and its runtime state deleted: neither needs
	// them, and a daemon killed meanwhile finds a stopped container
	// unmounted, as it would after the whole exit.
	var unmounted, volumesUnmounted chan struct{}
	if !restart {
		unmounted, volumesUnmounted = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(unmounted)
			if unmountVolumes != nil {
				unmountVolumes()
			}
			close(volumesUnmounted)
			if err := unmountContainerFS(e.containerDir(c.ID)); err != nil {
				e.logger.Warn("unmounting the rootfs of an exited container", "container", c.ID, "error", err)
			}
		}()
	}
	// The shim goes and the cgroups are removed meanwhile too; only the
	// shim's state file, which holds the exit, must outlive the save.
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		shut <- rc.Shutdown(ctx)
	}()
	autoRemove := !restart && c.HostConfig.AutoRemove && !c.State.RemovalInProgress
	// An AutoRemove container's removal stands for the exit's save: its
	// record is removed (the removal's one durable step) while its root
	// file system is unmounted and its shim goes, and the rest of the
	// removal follows. A daemon killed before that step is durable finds
	// the record running and the exit in the shim's state file, and
	// removes the container at its start (restoreOne, then the exit
	// handler); one killed after finds no record, and clears what is
	// left (the container's directory, unmounting its root file system:
	// containers.go; the runtime state: finishRestore). Not before the
	// volumes are unmounted: nothing clears those. The waiters learn of
	// the exit from the removal (SetRemoved). If the record cannot be
	// removed, the exit is saved as for any container.
	recordRemoved := false
	if autoRemove {
		c.State.RemovalInProgress = true
		<-volumesUnmounted
		if err := e.containers.RemoveRecord(c); err != nil {
			e.logger.Warn("auto-removing container", "container", c.ID, "error", err)
			c.State.ResetRemovalInProgress()
		} else {
			recordRemoved = true
		}
		t = e.span("exit.remove-record", t)
	}
	saved := true
	if !recordRemoved {
		// The exit happened: a record that cannot be saved now is saved
		// later, and until then the shim's state file, which a restarted
		// daemon reads, keeps the exit: its Delete waits for the save.
		// The waiters learn of the exit only once the record (and so the
		// list's view) has it.
		saved = e.saveOrRetry(c)
		wake()
		t = e.span("exit.save", t)
	}
	deleteRuntime := func(shutErr error) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if shutErr != nil {
			e.logger.Warn("shutting down the runtime of an exited container", "container", c.ID, "error", shutErr)
		}
		err := rc.Delete(ctx)
		if err != nil {
			e.logger.Warn("deleting the runtime state of an exited container", "container", c.ID, "error", err)
		}
		cs.mu.Lock()
		cs.runtimeDeleted = err == nil && cs.rc == nil
		cs.mu.Unlock()
	}
	if autoRemove && saved {
		// The removal does not wait for the shim to be gone: a shim's
		// exit can take a kernel grace period (its inotify instance's
		// marks are destroyed under SRCU: 10-25 ms on a busy host), which
		// `docker run --rm` would wait for. The runtime state (the shim's
		// state file, its directory, the cgroups) is deleted once the
		// shim is gone, in the background; the record goes meanwhile. A
		// daemon killed before the runtime state is deleted finds it
		// with no record and ends it (finishRestore), or with the record
		// and removes the container (restoreOne). The container is
		// marked as being removed first, so no new run starts in that
		// directory; should the removal fail, a start waits for the
		// deletion (runtimeDeleting).
		c.State.RemovalInProgress = true
		deleting := make(chan struct{})
		cs.mu.Lock()
		cs.runtimeDeleted = true
		cs.runtimeDeleting = deleting
		cs.mu.Unlock()
		e.background(func() {
			defer close(deleting)
			deleteRuntime(<-shut)
		})
	} else {
		shutErr := <-shut
		t = e.span("exit.runtime-shutdown", t)
		e.afterSaved(c, saved, func() { deleteRuntime(shutErr) })
	}
	t = e.span("exit.runtime-delete", t)
	if unmounted != nil {
		<-unmounted
	} else if unmountVolumes != nil {
		unmountVolumes()
	}
	c.Unlock()
	t = e.span("exit.unmount", t)
	e.logEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(exit.Code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
	e.logNetworkEvents(c, disconnected, "disconnect")
	if restart {
		e.scheduleRestart(c, cs, delay)
	} else if autoRemove && saved {
		if err := e.removeMarked(c, true, true, true); err != nil {
			e.logger.Warn("auto-removing container", "container", c.ID, "error", err)
			if recordRemoved {
				// The failed removal saved the record again, with the
				// exit; the waiters hear of it now.
				c.Lock()
				wake()
				c.Unlock()
			}
		}
		e.span("exit.auto-remove", t)
	} else if autoRemove {
		if err := e.removeContainer(c, true, true); err != nil {
			e.logger.Warn("auto-removing container", "container", c.ID, "error", err)
		}
		e.span("exit.auto-remove", t)
	}
}
