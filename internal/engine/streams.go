package engine

import (
	"sync"
	"time"

	"skiffd/internal/memtrim"
)

// streamTracker gives memory back to the system after a burst of streams
// (logs, events, stats) has closed (issue 13: with 120 streams opened and
// closed, the daemon's RSS stayed at its peak). The Go runtime returns freed
// pages only slowly, against a heap goal set at the peak, and an idle daemon
// seldom collects; so once trimAfter streams have closed since the last
// trim and none has opened or closed for quietPeriod, it runs memtrim.Trim
// (two collections and a release of every free page: a few milliseconds
// for a daemon's heap; and the binary's pages the streams ran taken out of
// the page tables: a detached stream's request ended when it opened, so
// the API's trimmer does not see it close). A steady trickle of streams
// never reaches trimAfter within a quiet period and costs nothing;
// nothing runs on a timer while no stream closes.
//
// The zero value is ready; free and quiet are for tests.
type streamTracker struct {
	mu     sync.Mutex
	open   int
	closed int // since the last trim
	timer  *time.Timer
	// free and quiet replace memtrim.Trim and quietPeriod in tests.
	free  func()
	quiet time.Duration
}

const (
	// trimAfter is how many closed streams make a burst worth a trim:
	// each held tens of KiB at least (buffers, goroutine stack, decoder).
	trimAfter = 16
	// quietPeriod is how long no stream opens or closes before the trim.
	quietPeriod = 5 * time.Second
)

// begin counts an open stream; the caller calls end (once) when it closes.
func (t *streamTracker) begin() (end func()) {
	t.mu.Lock()
	t.open++
	t.touchLocked()
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.open--
			t.closed++
			t.touchLocked()
			t.mu.Unlock()
		})
	}
}

// touchLocked restarts the quiet period when a trim is due; t.mu is held.
func (t *streamTracker) touchLocked() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	if t.closed < trimAfter {
		return
	}
	quiet := t.quiet
	if quiet == 0 {
		quiet = quietPeriod
	}
	var timer *time.Timer
	timer = time.AfterFunc(quiet, func() {
		t.mu.Lock()
		if t.timer != timer {
			t.mu.Unlock()
			return // a stream opened or closed since
		}
		t.timer, t.closed = nil, 0
		free := t.free
		t.mu.Unlock()
		if free == nil {
			free = memtrim.Trim
		}
		free()
	})
	t.timer = timer
}
