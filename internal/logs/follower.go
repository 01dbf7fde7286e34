package logs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// ErrPause, returned by the message func or ReadOptions.Idle of a
// follower, says that the message was taken but the consumer wants no
// more for now (its client is behind): the follower stops reading the log
// until Resume. Nothing is lost; the log is the buffer.
var ErrPause = errors.New("log consumer paused")

// Follower is a follow in progress, driven by events rather than by a
// goroutine of its own (issue 13, memory per stream): a wake-up from the
// log's watcher (a write, a rotation, a removal), Stop, Resume, Until on
// the clock or the end of its context starts a goroutine that reads what
// is new, follows rotations, hands the records to the message func and
// ends when it has caught up. An idle follower is this struct, an open
// file and a subscription.
//
// At most one such goroutine runs at a time, so the message func is never
// called concurrently, and a slow consumer holds up no other follower nor
// the shared watcher.
type Follower struct {
	r    *reader
	c    *cursor
	ctx  context.Context
	w    *watcher
	done func(error)

	mu    sync.Mutex
	state followState
	// again: a wake-up came while running; read once more.
	again bool
	// resumed: Resume was called while running; a pause at the end of
	// this run would wait for a resume that has already come.
	resumed  bool
	paused   bool // ErrPause: idle until Resume
	stopping bool // send what is written, then end
	ended    bool
	// busy is set when the last run found records: the writer is
	// writing, and the next wake-up waits coalesceDelay so that one run
	// takes many records rather than one each (issue 13: a wake-up, read
	// and flush per record held a follower to a fifth of the writer's
	// rate).
	busy       bool
	coalesce   *time.Timer
	until      *time.Timer
	stopCtx    func() bool
	unregister func()
	// runs, if set, runs the reads (Follow with a shared Watchers);
	// otherwise each gets a goroutine (Read).
	runs *runQueue
}

type followState int

const (
	idle      followState = iota
	scheduled             // the coalesce timer will run it
	running               // a goroutine reads
)

// Follow sends the log at path as Read does with Follow, but returns once
// following has begun instead of blocking: from then on records are sent
// from whatever goroutine the follower runs on (never two at once), and
// done is called once, with what Read would have returned, when following
// ends: at ctx's end, at Until, when fn or Idle fails, or after Stop once
// what was written before has been sent.
//
// If Follow returns an error, nothing is followed and done is not called;
// otherwise done is called exactly once, possibly before Follow returns.
// opts.Following, if set, is called with the Follower before it first
// waits.
//
// With opts.Watchers, the reads of all its followers run on a few shared
// goroutines, so fn and Idle must not block (they return ErrPause
// instead): every follower of a log is woken by the same write, and a
// goroutine each, each growing its stack, cost the daemon a stack a
// follower at every write.
func Follow(ctx context.Context, path string, opts ReadOptions, fn func(Message) error, done func(error)) error {
	opts.Follow = true
	r := newReader(path, opts, fn)
	var runs *runQueue
	if opts.Watchers != nil {
		runs = &opts.Watchers.runs
	}
	_, err := r.start(ctx, runs, done)
	return err
}

// start sends the history and starts following.
func (r *reader) start(ctx context.Context, runs *runQueue, done func(error)) (*Follower, error) {
	f := &Follower{r: r, ctx: ctx, done: done, state: running, runs: runs}
	// Watch before opening, so no write after the open goes unnoticed:
	// a wake-up meanwhile only sets again.
	f.w = newWatcher(r.path, r.opts.Watchers, r.noInotify, r.pollInterval, f.wake)
	set, err := openSet(r.path)
	if err != nil {
		f.w.close()
		return nil, err
	}
	cur, err := r.history(ctx, set)
	for _, fl := range set[:len(set)-1] {
		fl.close()
	}
	if err != nil {
		set[len(set)-1].close()
		f.w.close()
		if errors.Is(err, errUntil) {
			done(nil)
			return nil, nil
		}
		return nil, err
	}
	f.c = cur
	if r.followed != nil {
		r.followed()
	}
	if r.opts.Following != nil {
		r.opts.Following(f)
	}
	if !r.opts.Until.IsZero() {
		f.until = time.AfterFunc(time.Until(r.opts.Until), f.Stop)
	}
	f.stopCtx = context.AfterFunc(ctx, f.cancel)
	f.run()
	return f, nil
}

// OnEnd registers fn to run when the follower ends, before done; at once
// if it has ended. Only one is kept.
func (f *Follower) OnEnd(fn func()) {
	f.mu.Lock()
	if !f.ended {
		f.unregister = fn
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	fn()
}

// Stop ends the follower once what has been written so far has been sent
// (the container has stopped). It does not wait.
func (f *Follower) Stop() {
	f.mu.Lock()
	if f.ended || f.stopping {
		f.mu.Unlock()
		return
	}
	f.stopping = true
	switch {
	case f.state == running:
		f.again = true
	case f.state == scheduled:
		f.coalesce.Stop()
		f.state = running
		f.spawn()
	case !f.paused:
		f.state = running
		f.spawn()
	}
	f.mu.Unlock()
}

// Resume reads on after the message func or Idle returned ErrPause, on
// the calling goroutine: the caller is the one that sent the backlog, about
// to end, and a hand-over to another goroutine each time the client caught
// up cost a follower that is behind a tenth of its rate.
func (f *Follower) Resume() {
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return
	}
	if f.state == running {
		f.resumed = true
		f.mu.Unlock()
		return
	}
	if !f.paused {
		f.mu.Unlock()
		return
	}
	f.paused = false
	f.state = running
	f.mu.Unlock()
	f.run()
}

// wake is the watcher's: the log may have changed.
func (f *Follower) wake() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended || f.paused {
		return
	}
	switch f.state {
	case running:
		f.again = true
	case idle:
		if f.busy && f.r.coalesceDelay > 0 {
			f.schedule()
			return
		}
		f.state = running
		f.spawn()
	}
}

// spawn starts a run of the follower: on the shared run queue, or on a
// goroutine of its own.
func (f *Follower) spawn() {
	if f.runs != nil {
		f.runs.submit(f)
		return
	}
	go f.run()
}

// schedule runs the follower after coalesceDelay; f.mu is held.
func (f *Follower) schedule() {
	f.state = scheduled
	if f.coalesce == nil {
		f.coalesce = time.AfterFunc(f.r.coalesceDelay, f.fire)
	} else {
		f.coalesce.Reset(f.r.coalesceDelay)
	}
}

func (f *Follower) fire() {
	f.mu.Lock()
	if f.ended || f.state != scheduled {
		f.mu.Unlock()
		return
	}
	f.state = running
	f.mu.Unlock()
	f.spawn()
}

// cancel is called when ctx ends.
func (f *Follower) cancel() {
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return
	}
	if f.state == running {
		// The run sees ctx's end at its next read.
		f.again = true
		f.mu.Unlock()
		return
	}
	f.endLocked(f.ctx.Err())
}

// run reads until it has caught up with the log and nothing more is asked
// of it; f.state is running.
func (f *Follower) run() {
	for {
		f.mu.Lock()
		f.again, f.resumed = false, false
		stopping := f.stopping
		f.mu.Unlock()
		busy, err := f.step()
		if err == nil && !stopping && f.r.opts.Idle != nil {
			err = f.r.opts.Idle()
		}
		if err == nil && f.ctx.Err() != nil {
			err = f.ctx.Err()
		}
		f.mu.Lock()
		switch {
		case errors.Is(err, ErrPause):
			if f.resumed {
				f.mu.Unlock()
				continue
			}
			f.paused, f.state = true, idle
			f.mu.Unlock()
			return
		case err != nil:
			f.endLocked(err)
			return
		case stopping:
			f.endLocked(nil)
			return
		}
		f.busy = busy
		if !f.again && f.stopping == stopping {
			f.state = idle
			f.mu.Unlock()
			return
		}
		if busy && !f.stopping && f.r.coalesceDelay > 0 {
			f.schedule()
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
}

// endLocked ends the follower and calls done; f.mu is held and is
// released. Nothing reads the cursor any more: either this is the running
// goroutine, or none runs.
func (f *Follower) endLocked(err error) {
	f.ended = true
	if f.coalesce != nil {
		f.coalesce.Stop()
	}
	if f.until != nil {
		f.until.Stop()
	}
	unregister := f.unregister
	f.unregister = nil
	f.mu.Unlock()
	if f.stopCtx != nil {
		f.stopCtx()
	}
	if unregister != nil {
		unregister()
	}
	f.w.close()
	f.c.f.close()
	f.r.giveBuf(f.c.buf)
	f.c.buf, f.r.dec.slab = nil, nil
	if errors.Is(err, errUntil) {
		err = nil
	}
	f.done(err)
}

// step sends the records appended to the live file, moving on to the next
// file at each rotation, until it has caught up. It reports whether it
// found any.
func (f *Follower) step() (busy bool, err error) {
	c, r := f.c, f.r
	for {
		off := c.off
		if err := c.drain(f.ctx, -1); err != nil {
			return busy, err
		}
		busy = busy || c.off != off
		st, err := c.f.f.Stat()
		if err != nil {
			return busy, fmt.Errorf("follow log: %w", err)
		}
		if st.Size() < c.off {
			// Truncated in place (max-file 1): start over.
			c.reset()
			continue
		}
		// A compressed file is never the live one, whatever inode the
		// live one was given (the kernel reuses the number its original
		// had).
		if !c.f.gz && statIno(r.path) == c.f.ino {
			return busy, nil
		}
		// Rotated: the shim closed the file before renaming it, so one
		// more drain gets all of it. An incomplete record left then is
		// a torn write and is dropped.
		if err := c.drain(f.ctx, -1); err != nil {
			return busy, err
		}
		next, err := successor(r.path, c.f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// No live file yet; its creation wakes the follower.
			return busy, nil
		case err != nil:
			return busy, fmt.Errorf("follow log after rotation: %w", err)
		case next == nil:
			return busy, nil
		}
		c.f.close()
		*c = cursor{r: r, f: next, buf: c.buf[:0]}
	}
}

// runQueue runs followers' reads on at most maxRunners goroutines, each
// started when there is work and ending when there is none: no goroutine
// waits while every follower is idle.
type runQueue struct {
	mu      sync.Mutex
	queue   []*Follower
	workers int
}

// maxRunners bounds the goroutines reading for the followers of one
// Watchers. A read never waits for a client (ErrPause), so a few are
// enough to keep the disk and the CPUs busy.
const maxRunners = 4

func (q *runQueue) submit(f *Follower) {
	q.mu.Lock()
	q.queue = append(q.queue, f)
	if q.workers < maxRunners {
		q.workers++
		q.mu.Unlock()
		go q.work()
		return
	}
	q.mu.Unlock()
}

func (q *runQueue) work() {
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.workers--
			q.queue = nil // let go of a burst's array
			q.mu.Unlock()
			return
		}
		f := q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
		q.mu.Unlock()
		f.run()
	}
}
