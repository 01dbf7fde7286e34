package engine

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestStreamTrackerTrimsAfterBurst: once a burst of streams has closed and
// things are quiet, memory is given back exactly once; a few streams
// opening and closing do not trigger it, nor does a burst still open.
func TestStreamTrackerTrimsAfterBurst(t *testing.T) {
	var frees atomic.Int32
	tr := &streamTracker{free: func() { frees.Add(1) }, quiet: 20 * time.Millisecond}
	waitFrees := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for frees.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := frees.Load(); got != want {
			t.Fatalf("frees = %d, want %d", got, want)
		}
	}
	// A trickle: fewer than trimAfter streams close.
	for range trimAfter - 1 {
		tr.begin()()
	}
	// A burst of 3*trimAfter streams, all open, then all closed.
	var ends []func()
	for range 3 * trimAfter {
		ends = append(ends, tr.begin())
	}
	for _, end := range ends {
		end()
		end() // a second end is a no-op
	}
	waitFrees(1)
	tr.mu.Lock()
	open, closed, armed := tr.open, tr.closed, tr.timer != nil
	tr.mu.Unlock()
	// Nothing closing after the trim: no timer is left to run another.
	if open != 0 || closed != 0 || armed {
		t.Errorf("after the trim open=%d closed=%d timer armed %v, want 0, 0, false", open, closed, armed)
	}
	if got := frees.Load(); got != 1 {
		t.Errorf("frees = %d, want 1", got)
	}
}
