package engine

import (
	"context"
	"errors"
	"strconv"
	"time"

	"skiffd/internal/container"
	"skiffd/internal/layer"
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
	// An AutoRemove container's removal stands for the exit's save: the
	// record's removal is the one persisted step, and it runs while the
	// shim goes. A daemon killed before it is durable finds the record
	// running and the exit in the shim's state file, and removes the
	// container at its start (restoreOne: its exit handler does, as
	// dockerd removes AutoRemove containers on restart); one killed after
	// finds no record, and clears the directories it left (unmounting the
	// root file system, see containers.go). The waiters are woken by the removal
	// (SetRemoved), with the exit code; if the record cannot be removed,
	// the exit is saved as for any container, and the container stays.
	autoRemove := !restart && c.HostConfig.AutoRemove && !c.State.RemovalInProgress
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
			if err := layer.UnmountRootfs(e.containerDir(c.ID)); err != nil {
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
	if autoRemove {
		// Marked as being removed: no start and no other removal
		// meanwhile.
		c.State.RemovalInProgress = true
		cs.mu.Lock()
		cs.stopping = true
		cs.mu.Unlock()
		// The record goes while the root file system is unmounted (an
		// overlay's unmount syncs its upper file system, as long as the
		// record's fsync) and the shim goes. Not before the volumes are
		// unmounted: a daemon that finds no record clears the container's
		// directory and root file system, not its volumes.
		<-volumesUnmounted
		err := e.containers.RemoveRecord(c)
		t = e.span("exit.remove-record", t)
		<-unmounted
		t = e.span("exit.unmount", t)
		if err == nil {
			shutErr := <-shut
			t = e.span("exit.runtime-shutdown", t)
			e.logEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(exit.Code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
			e.finishAutoRemove(c, cs, rc, shutErr, wake)
			c.Unlock()
			e.span("exit.auto-remove", t)
			return
		}
		e.logger.Warn("auto-removing container", "container", c.ID, "error", err)
		c.State.ResetRemovalInProgress()
		cs.mu.Lock()
		cs.stopping = stopping
		cs.mu.Unlock()
	}
	// The exit happened: a record that cannot be saved now is saved
	// later, and until then the shim's state file, which a restarted
	// daemon reads, keeps the exit: its Delete waits for the save. The
	// waiters learn of the exit only once the record (and so the list's
	// view) has it.
	saved := e.saveOrRetry(c)
	wake()
	t = e.span("exit.save", t)
	shutErr := <-shut
	t = e.span("exit.runtime-shutdown", t)
	e.afterSaved(c, saved, func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if shutErr != nil {
			e.logger.Warn("shutting down the runtime of an exited container", "container", c.ID, "error", shutErr)
		}
		if err := rc.Delete(ctx); err != nil {
			e.logger.Warn("deleting the runtime state of an exited container", "container", c.ID, "error", err)
			return
		}
		cs.mu.Lock()
		cs.runtimeDeleted = cs.rc == nil
		cs.mu.Unlock()
	})
	t = e.span("exit.runtime-delete", t)
	if unmounted != nil {
		<-unmounted
	} else if unmountVolumes != nil {
		unmountVolumes()
	}
	c.Unlock()
	t = e.span("exit.unmount", t)
	e.logEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(exit.Code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
	if restart {
		e.scheduleRestart(c, cs, delay)
	}
}

// finishAutoRemove removes an AutoRemove container whose run has exited
// and whose record is removed (Store.RemoveRecord): its runtime state
// (rc, shut down meanwhile, shutErr if that failed), its directory and
// what the engine holds for it. c's lock is held. Nothing here can bring
// the container back: what fails is logged and left to the next daemon,
// which clears the directories of containers without a record. If the
// directory cannot be removed, the container stays, dead (only a remove
// applies to it), and its waiters are woken with wake.
func (e *Engine) finishAutoRemove(c *container.Container, cs *ctrState, rc *shimclient.Container, shutErr error, wake func()) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if shutErr != nil {
		e.logger.Warn("shutting down the runtime of an exited container", "container", c.ID, "error", shutErr)
	}
	if err := rc.Delete(ctx); err != nil {
		e.logger.Warn("deleting the runtime state of an auto-removed container", "container", c.ID, "error", err)
	}
	e.detachSubpaths(c.ID)
	if err := e.containers.Delete(c); err != nil {
		e.logger.Warn("auto-removing container", "container", c.ID, "error", err)
		c.State.ResetRemovalInProgress()
		c.State.SetDead()
		c.State.SetError(err)
		wake()
		return
	}
	e.forgetRemoved(c, cs, true)
}
