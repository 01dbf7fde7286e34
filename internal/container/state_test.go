package container

import (
	"context"
	"errors"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

var now = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "Less than a second"},
		{999 * time.Millisecond, "Less than a second"},
		{time.Second, "1 second"},
		{1999 * time.Millisecond, "1 second"},
		{59 * time.Second, "59 seconds"},
		{60 * time.Second, "About a minute"},
		{119 * time.Second, "About a minute"},
		{2 * time.Minute, "2 minutes"},
		{59 * time.Minute, "59 minutes"},
		{60 * time.Minute, "About an hour"},
		{89 * time.Minute, "About an hour"},
		{90 * time.Minute, "2 hours"},
		{47 * time.Hour, "47 hours"},
		{47*time.Hour + 31*time.Minute, "2 days"},
		{13 * 24 * time.Hour, "13 days"},
		{14 * 24 * time.Hour, "2 weeks"},
		{59 * 24 * time.Hour, "8 weeks"},
		{60 * 24 * time.Hour, "2 months"},
		{729 * 24 * time.Hour, "24 months"},
		{730 * 24 * time.Hour, "2 years"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestStateStringAndStatus(t *testing.T) {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name       string
		s          *State
		wantString string
		wantStatus string
	}{
		{"created", &State{}, "Created", StatusCreated},
		{"running", &State{Running: true, StartedAt: ago(2 * time.Minute)}, "Up 2 minutes", StatusRunning},
		{"running 1s", &State{Running: true, StartedAt: ago(time.Second)}, "Up 1 second", StatusRunning},
		{"paused", &State{Running: true, Paused: true, StartedAt: ago(5 * time.Second)}, "Up 5 seconds (Paused)", StatusPaused},
		{"restarting", &State{Running: true, Restarting: true, ExitCode: 1, StartedAt: ago(time.Hour), FinishedAt: ago(2 * time.Second)}, "Restarting (1) 2 seconds ago", StatusRestarting},
		{"exited", &State{ExitCode: 0, StartedAt: ago(time.Minute), FinishedAt: ago(3 * time.Second)}, "Exited (0) 3 seconds ago", StatusExited},
		{"exited just now", &State{ExitCode: 3, StartedAt: ago(time.Second), FinishedAt: ago(400 * time.Millisecond)}, "Exited (3) Less than a second ago", StatusExited},
		{"healthy", &State{Running: true, StartedAt: ago(3 * time.Hour), Health: &types.Health{Status: types.HealthHealthy}}, "Up 3 hours (healthy)", StatusRunning},
		{"health starting", &State{Running: true, StartedAt: ago(45 * time.Second), Health: &types.Health{Status: types.HealthStarting}}, "Up 45 seconds (health: starting)", StatusRunning},
		{"removing", &State{RemovalInProgress: true, StartedAt: ago(time.Hour), FinishedAt: ago(time.Minute)}, "Removal In Progress", StatusRemoving},
		{"removing running", &State{Running: true, RemovalInProgress: true, StartedAt: ago(time.Minute)}, "Up About a minute", StatusRunning},
		{"dead", &State{Dead: true, StartedAt: ago(time.Hour)}, "Dead", StatusDead},
		{"started never finished", &State{StartedAt: ago(time.Hour)}, "", StatusExited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.StringAt(now); got != tt.wantString {
				t.Errorf("StringAt = %q, want %q", got, tt.wantString)
			}
			if got := tt.s.Status(); got != tt.wantStatus {
				t.Errorf("Status = %q, want %q", got, tt.wantStatus)
			}
			if !IsValidStatus(tt.wantStatus) {
				t.Errorf("IsValidStatus(%q) = false", tt.wantStatus)
			}
		})
	}
	if IsValidStatus("up") {
		t.Errorf(`IsValidStatus("up") = true, want false`)
	}
}

func TestStateTransitions(t *testing.T) {
	var s State
	s.SetRunning(42, true)
	if s.Status() != StatusRunning || s.Pid != 42 || s.StartedAt.IsZero() {
		t.Fatalf("after SetRunning: %+v", &s)
	}
	started := s.StartedAt

	s.SetPaused()
	if s.Status() != StatusPaused || !s.Running {
		t.Errorf("after SetPaused: status %q running %v, want paused and still running", s.Status(), s.Running)
	}
	s.SetUnpaused()
	if s.Status() != StatusRunning {
		t.Errorf("after SetUnpaused: status %q", s.Status())
	}

	exitedAt := now
	s.SetStopped(ExitStatus{ExitCode: 137, OOMKilled: true, ExitedAt: exitedAt})
	if s.Status() != StatusExited || s.Pid != 0 || s.ExitCode != 137 || !s.OOMKilled || !s.FinishedAt.Equal(exitedAt) {
		t.Errorf("after SetStopped: %+v", &s)
	}

	s.SetRestarting(ExitStatus{ExitCode: 1})
	if s.Status() != StatusRestarting || !s.Running || s.FinishedAt.IsZero() || s.ExitCode != 1 {
		t.Errorf("after SetRestarting: %+v", &s)
	}

	s.SetError(errors.New("oci runtime error"))
	s.SetRunning(43, false)
	if s.Status() != StatusRunning || s.ExitCode != 0 || s.OOMKilled || s.Error != "" || !s.StartedAt.Equal(started) {
		t.Errorf("after SetRunning(initial=false): %+v, want exit state cleared and StartedAt kept", &s)
	}

	if err := s.SetRemovalInProgress("web"); err != nil {
		t.Fatalf("SetRemovalInProgress: %v", err)
	}
	err := s.SetRemovalInProgress("web")
	if errdefs.Status(err) != 409 || err.Error() != "removal of container web is already in progress" {
		t.Errorf("second SetRemovalInProgress = %v (status %d), want 409 dockerd text", err, errdefs.Status(err))
	}
	s.ResetRemovalInProgress()
	if err := s.SetRemovalInProgress("web"); err != nil {
		t.Errorf("SetRemovalInProgress after reset: %v", err)
	}
}

func TestStateInspect(t *testing.T) {
	s := State{ExitCode: 3, StartedAt: now.Add(-time.Second), FinishedAt: now, Error: "x"}
	got := s.Inspect()
	if got.Status != "exited" || got.ExitCode != 3 || got.Error != "x" ||
		got.StartedAt != "2026-11-26T08:59:59Z" || got.FinishedAt != "2026-11-26T09:00:00Z" {
		t.Errorf("Inspect = %+v", got)
	}
	if z := (&State{}).Inspect(); z.StartedAt != "0001-01-01T00:00:00Z" || z.Status != "created" {
		t.Errorf("Inspect of a new state = %+v, want dockerd's zero time and created", z)
	}
}

// ready reports whether ch has a value, without waiting. A waiter's
// channel can only have a value after a notification or cancellation, so a
// false here is never a timing accident.
func ready(ch <-chan StateStatus) (StateStatus, bool) {
	select {
	case st := <-ch:
		return st, true
	default:
		return StateStatus{}, false
	}
}

func TestWaitConditions(t *testing.T) {
	ctx := context.Background()
	exit := func(s *State, code int) {
		s.Lock()
		s.SetStopped(ExitStatus{ExitCode: code})
		s.Unlock()
	}
	start := func(s *State) {
		s.Lock()
		s.SetRunning(1, true)
		s.Unlock()
	}
	remove := func(s *State) {
		s.Lock()
		s.SetRemoved()
		s.Unlock()
	}

	t.Run("removed is told of a removal that failed", func(t *testing.T) {
		var s State
		ch := s.Wait(ctx, types.WaitConditionRemoved)
		s.Lock()
		s.SetRemovalFailed(errors.New("no cgroup v1 mount"))
		s.Unlock()
		st, ok := ready(ch)
		if !ok || st.Err == nil || st.Err.Error() != "no cgroup v1 mount" {
			t.Fatalf("got %+v (delivered %v), want the removal's error", st, ok)
		}
		// The container is still there: a later wait waits for a
		// removal that succeeds.
		ch = s.Wait(ctx, types.WaitConditionRemoved)
		if _, ok := ready(ch); ok {
			t.Fatal("a wait after the failed removal was answered at once")
		}
		remove(&s)
		if _, ok := ready(ch); !ok {
			t.Fatal("the removal did not answer the later wait")
		}
	})
	t.Run("not-running before start returns at once", func(t *testing.T) {
		var s State
		st := <-s.Wait(ctx, types.WaitConditionNotRunning)
		if st.ExitCode != 0 || st.Err != nil {
			t.Errorf("got %+v, want exit 0", st)
		}
		if st := <-s.Wait(ctx, ""); st.ExitCode != 0 {
			t.Errorf(`condition "" got %+v, want not-running's answer`, st)
		}
	})
	t.Run("not-running while running waits for the exit", func(t *testing.T) {
		var s State
		start(&s)
		ch := s.Wait(ctx, types.WaitConditionNotRunning)
		if _, ok := ready(ch); ok {
			t.Fatal("delivered before the exit")
		}
		exit(&s, 7)
		if st := <-ch; st.ExitCode != 7 || st.Err != nil {
			t.Errorf("got %+v, want 7", st)
		}
	})
	t.Run("not-running after exit returns the last code", func(t *testing.T) {
		var s State
		start(&s)
		exit(&s, 7)
		if st := <-s.Wait(ctx, types.WaitConditionNotRunning); st.ExitCode != 7 {
			t.Errorf("got %+v, want 7", st)
		}
	})
	t.Run("next-exit registered before start", func(t *testing.T) {
		var s State
		ch := s.Wait(ctx, types.WaitConditionNextExit)
		start(&s)
		if _, ok := ready(ch); ok {
			t.Fatal("delivered at start")
		}
		exit(&s, 3)
		if st := <-ch; st.ExitCode != 3 {
			t.Errorf("got %+v, want 3", st)
		}
	})
	t.Run("next-exit after an exit waits for the next one", func(t *testing.T) {
		var s State
		start(&s)
		exit(&s, 1)
		ch := s.Wait(ctx, types.WaitConditionNextExit)
		if _, ok := ready(ch); ok {
			t.Fatal("delivered the previous exit")
		}
		start(&s)
		exit(&s, 2)
		if st := <-ch; st.ExitCode != 2 {
			t.Errorf("got %+v, want 2", st)
		}
	})
	t.Run("next-exit woken by a restart", func(t *testing.T) {
		var s State
		start(&s)
		ch := s.Wait(ctx, types.WaitConditionNextExit)
		s.Lock()
		s.SetRestarting(ExitStatus{ExitCode: 5})
		s.Unlock()
		if st := <-ch; st.ExitCode != 5 {
			t.Errorf("got %+v, want 5", st)
		}
	})
	t.Run("exit carries the recorded error", func(t *testing.T) {
		var s State
		start(&s)
		ch := s.Wait(ctx, types.WaitConditionNextExit)
		s.Lock()
		s.SetError(errors.New("boom"))
		s.SetStopped(ExitStatus{ExitCode: 127})
		s.Unlock()
		if st := <-ch; st.ExitCode != 127 || st.Err == nil || st.Err.Error() != "boom" {
			t.Errorf("got %+v, want 127 and boom", st)
		}
	})
	t.Run("removed ignores exits and fires on removal", func(t *testing.T) {
		var s State
		ch := s.Wait(ctx, types.WaitConditionRemoved)
		start(&s)
		exit(&s, 4)
		if _, ok := ready(ch); ok {
			t.Fatal("delivered at exit")
		}
		remove(&s)
		if st := <-ch; st.ExitCode != 4 {
			t.Errorf("got %+v, want 4", st)
		}
		if st := <-s.Wait(ctx, types.WaitConditionRemoved); st.ExitCode != 4 {
			t.Errorf("after removal got %+v, want at once 4", st)
		}
		if st := <-s.Wait(ctx, types.WaitConditionNextExit); st.ExitCode != 4 {
			t.Errorf("next-exit after removal got %+v, want at once 4", st)
		}
	})
	t.Run("removal ends stop waiters", func(t *testing.T) {
		var s State
		start(&s)
		ch := s.Wait(ctx, types.WaitConditionNotRunning)
		remove(&s)
		if _, ok := <-ch; !ok {
			t.Error("channel closed without a status")
		}
	})
	t.Run("cancelled wait reports -1 and is forgotten", func(t *testing.T) {
		var s State
		cctx, cancel := context.WithCancel(ctx)
		ch := s.Wait(cctx, types.WaitConditionNextExit)
		cancel()
		st := <-ch
		if st.ExitCode != -1 || !errors.Is(st.Err, context.Canceled) {
			t.Errorf("got %+v, want -1 and context.Canceled", st)
		}
		s.Lock()
		n := len(s.stopWaiters)
		s.Unlock()
		if n != 0 {
			t.Errorf("%d stop waiters left after cancellation, want 0", n)
		}
	})
	t.Run("unknown condition", func(t *testing.T) {
		var s State
		st := <-s.Wait(ctx, "sometime")
		if errdefs.Status(st.Err) != 400 {
			t.Errorf("got %+v, want an InvalidParameter error", st)
		}
	})
}

// TestWaitManyConcurrent registers many waiters, then races cancellations
// of half of them against the exit, for the race detector: every waiter gets
// exactly one status, the exit code or, for a cancelled one, -1.
func TestWaitManyConcurrent(t *testing.T) {
	var s State
	s.Lock()
	s.SetRunning(1, true)
	s.Unlock()
	const n = 100
	chans := make([]<-chan StateStatus, n)
	cancels := make([]context.CancelFunc, n)
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		cancels[i] = cancel
		chans[i] = s.Wait(ctx, types.WaitConditionNextExit)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i += 2 {
			cancels[i]()
		}
		close(done)
	}()
	s.Lock()
	s.SetStopped(ExitStatus{ExitCode: 9})
	s.Unlock()
	<-done
	for i, ch := range chans {
		st := <-ch
		if st.ExitCode != 9 && !(i%2 == 0 && st.ExitCode == -1) {
			t.Errorf("waiter %d got %+v, want 9 (or -1 if cancelled)", i, st)
		}
	}
}

// TestAfterStopped: the func runs at once for a stopped container, at the
// next exit or removal for a running one, once, and never after cancel.
func TestAfterStopped(t *testing.T) {
	s := &State{}
	ran := 0
	s.AfterStopped(s.Stopped(), func() { ran++ })
	if ran != 1 {
		t.Fatalf("not running: ran %d times, want 1 at once", ran)
	}

	s.Lock()
	s.SetRunning(1, true)
	s.Unlock()
	ran = 0
	stopped := s.Stopped()
	s.AfterStopped(stopped, func() { ran++ })
	canceled := s.AfterStopped(stopped, func() { t.Error("cancelled func ran") })
	canceled()
	if ran != 0 {
		t.Fatalf("running: ran %d times before the exit, want 0", ran)
	}
	s.Lock()
	s.SetStopped(ExitStatus{ExitCode: 3})
	s.Unlock()
	if ran != 1 {
		t.Fatalf("after the exit: ran %d times, want 1", ran)
	}
	// A channel of an earlier run that has ended counts as stopped.
	s.Lock()
	s.SetRunning(2, false)
	s.Unlock()
	ran = 0
	s.AfterStopped(stopped, func() { ran++ })
	next := s.Stopped()
	s.AfterStopped(next, func() { ran++ })
	if ran != 1 {
		t.Fatalf("earlier channel: ran %d times, want 1", ran)
	}
	s.Lock()
	s.SetRemoved()
	s.Unlock()
	if ran != 2 {
		t.Fatalf("after removal: ran %d times, want 2", ran)
	}
	if len(s.afterStopped) != 0 {
		t.Errorf("%d funcs kept after they ran", len(s.afterStopped))
	}
}

// TestAfterStoppedCancelAfterRunTakesNoLock: a cancel that comes after fn
// ran returns at once, even while the exit handler that ran fn still holds
// the container's lock (a logs -f stream ended at the exit waited for the
// unmount and the shim's end before).
func TestAfterStoppedCancelAfterRunTakesNoLock(t *testing.T) {
	s := &State{}
	s.Lock()
	s.SetRunning(1, true)
	s.Unlock()
	ran := make(chan struct{})
	cancel := s.AfterStopped(s.Stopped(), func() { close(ran) })
	s.Lock()
	s.SetStopped(ExitStatus{ExitCode: 0})
	<-ran
	// Still locked, as the exit handler is.
	done := make(chan struct{})
	go func() {
		cancel()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cancel after the func ran waited for the container's lock")
	}
	s.Unlock()
}
