package engine

import (
	"time"

	"skiffd/internal/container"
)

// Saving container records (issue 9, item 7). Every change to a record is
// saved one of two ways:
//
//   - A change a client asks for (create, rename, update, pause, unpause,
//     start) is saved with containers.Save before the client hears of
//     success. If the save fails (a full disk, a read-only file system)
//     the operation is undone, the record on disk stays the previous one,
//     and the client gets the error: a 500 naming the container and the
//     cause.
//   - A change that has already happened and cannot be undone (an exit the
//     shim recorded, a policy restart, what a restore finds, a health
//     probe) goes through saveOrRetry: a failure is logged and the save
//     retried until it succeeds, the container is removed or the engine
//     closes. So do stop, kill and rm: they free resources, which is what
//     an operator reaches for when the disk is full, so they go ahead and
//     only their record change (the container was stopped by hand) waits
//     for room, as dockerd's kill does.

// saveRetryMax bounds the delay between two attempts of a retried save.
const saveRetryMax = 5 * time.Second

// saveOrRetry saves c's record; c's lock is held. If the save fails, it
// logs the error and retries in the background, so the change is never
// dropped silently. A retry saves the container as it is then, which
// includes this change and any later one.
func (e *Engine) saveOrRetry(c *container.Container) (saved bool) {
	err := e.containers.Save(c)
	if err == nil || c.State.IsRemoved() {
		return true
	}
	cs := e.state(c.ID)
	cs.mu.Lock()
	retrying := cs.saveRetrying
	cs.saveRetrying = true
	cs.mu.Unlock()
	if retrying {
		return false
	}
	e.logger.Error("saving container record failed; retrying", "container", c.ID, "error", err)
	go e.retrySave(c, cs)
	return false
}

// afterSaved runs f now if saved, else once the retried save of c's record
// succeeds or c is removed. c's lock is held.
func (e *Engine) afterSaved(c *container.Container, saved bool, f func()) {
	if saved {
		f()
		return
	}
	cs := e.state(c.ID)
	cs.mu.Lock()
	cs.afterSave = append(cs.afterSave, f)
	cs.mu.Unlock()
}

// retrySave saves c's record again and again, backing off, until it
// succeeds, c is removed or the engine closes.
func (e *Engine) retrySave(c *container.Container, cs *ctrState) {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-e.monitorCtx.Done():
			t.Stop()
			e.logger.Error("daemon stopping with a container record not saved; the next daemon reads the previous record", "container", c.ID)
			return
		case <-t.C:
		}
		c.Lock()
		err := e.containers.Save(c)
		removed := c.State.IsRemoved()
		var after []func()
		if err == nil || removed {
			cs.mu.Lock()
			cs.saveRetrying = false
			after, cs.afterSave = cs.afterSave, nil
			cs.mu.Unlock()
		}
		c.Unlock()
		for _, f := range after {
			f()
		}
		switch {
		case removed:
			return
		case err == nil:
			e.logger.Info("container record saved after an earlier failure", "container", c.ID, "attempts", attempt)
			return
		}
		e.logger.Debug("saving container record failed again", "container", c.ID, "error", err)
		delay = min(2*delay, saveRetryMax)
	}
}
