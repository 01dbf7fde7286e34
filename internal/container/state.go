package container

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

// The container statuses, as inspect's State.Status, ps's State and the
// `status` filter spell them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// IsValidStatus reports whether s is one of the container statuses, the
// values the `status` filter accepts.
func IsValidStatus(s string) bool {
	switch s {
	case StatusCreated, StatusRunning, StatusPaused, StatusRestarting, StatusRemoving, StatusExited, StatusDead:
		return true
	}
	return false
}

// ExitStatus is how a container's process ended, as the runtime reports it.
type ExitStatus struct {
	ExitCode  int
	OOMKilled bool
	// ExitedAt is when the process was reaped; zero means "now".
	ExitedAt time.Time
}

// StateStatus is what a waiter receives: the exit code, and Err set when the
// wait ended for another reason than the condition being met (the context
// was cancelled: ExitCode -1) or the container recorded an error.
type StateStatus struct {
	ExitCode int
	Err      error
}

// State is a container's run state and the state machine dockerd keeps:
//
//	created ──SetRunning──► running ──SetPaused──► paused ──SetUnpaused──► running
//	running ──SetStopped──► exited ──SetRunning──► running
//	running ──SetRestarting──► restarting ──SetRunning──► running
//	any ──SetRemovalInProgress──► removing ──SetRemoved──► (gone)
//
// Running, Paused and Restarting are not exclusive, as in dockerd: a paused
// container is also Running, and a restarting one is Running too so that
// stop and rm treat it as live. Status gives the precedence.
//
// State carries the container's lock: every method but Wait must be called
// with it held (Container.Lock), and Wait must be called without it.
type State struct {
	mu sync.Mutex

	Running    bool `json:"Running"`
	Paused     bool `json:"Paused"`
	Restarting bool `json:"Restarting"`
	OOMKilled  bool `json:"OOMKilled"`
	// RemovalInProgress is not persisted: a removal interrupted by a
	// crash must not leave the container stuck in "removing".
	RemovalInProgress bool          `json:"-"`
	Dead              bool          `json:"Dead"`
	Pid               int           `json:"Pid"`
	ExitCode          int           `json:"ExitCode"`
	Error             string        `json:"Error"`
	StartedAt         time.Time     `json:"StartedAt"`
	FinishedAt        time.Time     `json:"FinishedAt"`
	Health            *types.Health `json:"Health,omitempty"`

	// removed is set once the container is gone from the store.
	removed bool
	// stopWaiters are woken by every exit (stop, restart) and by removal;
	// removeWaiters only by removal.
	stopWaiters   []chan<- StateStatus
	removeWaiters []chan<- StateStatus
	// stopped, made on demand by Stopped, is closed when the stop
	// waiters are woken.
	stopped chan struct{}
	// afterStopped are AfterStopped's funcs, run when stopped is closed.
	afterStopped map[*afterStop]struct{}
}

// Lock takes the container's lock.
func (s *State) Lock() { s.mu.Lock() }

// Unlock releases the container's lock.
func (s *State) Unlock() { s.mu.Unlock() }

// Status returns the container's status: paused and restarting win over
// running, removing over dead, and a container never started is created.
func (s *State) Status() string {
	if s.Running {
		if s.Paused {
			return StatusPaused
		}
		if s.Restarting {
			return StatusRestarting
		}
		return StatusRunning
	}
	if s.RemovalInProgress {
		return StatusRemoving
	}
	if s.Dead {
		return StatusDead
	}
	if s.StartedAt.IsZero() {
		return StatusCreated
	}
	return StatusExited
}

// HealthStatus returns the health status for the `health` filter: "none"
// when the container has no healthcheck.
func (s *State) HealthStatus() string {
	if s.Health == nil || s.Health.Status == "" {
		return types.HealthNone
	}
	return s.Health.Status
}

// String returns the human status of ps's STATUS column, as of now.
func (s *State) String() string {
	return s.StringAt(time.Now())
}

// StringAt returns the human status as of now: "Up 2 minutes",
// "Up 5 seconds (Paused)", "Up 3 hours (healthy)", "Restarting (1) 2 seconds
// ago", "Exited (0) 3 seconds ago", "Created", "Removal In Progress", "Dead".
func (s *State) StringAt(now time.Time) string {
	if s.Running {
		if s.Paused {
			return fmt.Sprintf("Up %s (Paused)", humanDuration(now.Sub(s.StartedAt)))
		}
		if s.Restarting {
			return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, humanDuration(now.Sub(s.FinishedAt)))
		}
		if s.Health != nil && s.Health.Status != "" && s.Health.Status != types.HealthNone {
			h := s.Health.Status
			if h == types.HealthStarting {
				h = "health: starting"
			}
			return fmt.Sprintf("Up %s (%s)", humanDuration(now.Sub(s.StartedAt)), h)
		}
		return fmt.Sprintf("Up %s", humanDuration(now.Sub(s.StartedAt)))
	}
	if s.RemovalInProgress {
		return "Removal In Progress"
	}
	if s.Dead {
		return "Dead"
	}
	if s.StartedAt.IsZero() {
		return "Created"
	}
	if s.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, humanDuration(now.Sub(s.FinishedAt)))
}

// humanDuration renders d the way docker's STATUS and CREATED columns do
// (the thresholds of go-units' HumanDuration): whole seconds below a
// minute, "About a minute", minutes below an hour, hours rounded below two
// days, then days, weeks, months and years.
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return fmt.Sprintf("%d seconds", seconds)
	}
	minutes := int(d.Minutes())
	switch {
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return fmt.Sprintf("%d minutes", minutes)
	}
	hours := int(d.Hours() + 0.5)
	switch {
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// SetRunning records that the container's process pid runs. initial is
// false when reattaching to a process that was already running (live
// restore), which keeps StartedAt.
func (s *State) SetRunning(pid int, initial bool) {
	s.Error = ""
	s.Running = true
	s.Paused = false
	s.Restarting = false
	s.ExitCode = 0
	s.OOMKilled = false
	s.Pid = pid
	if initial {
		s.StartedAt = time.Now().UTC()
	}
}

// SetStopped records the exit of the container's process and wakes the
// not-running and next-exit waiters with its exit code.
func (s *State) SetStopped(exit ExitStatus) { s.SetStoppedLater(exit)() }

// SetStoppedLater records the exit as SetStopped does but returns the
// wake-up of the waiters instead of doing it. The exit handler saves the
// record first and wakes them after, so a client told of the exit (the
// CLI's `docker run` returns on it) finds it in every view, `docker ps`
// included. wake must be called with the lock held, as SetStopped is.
func (s *State) SetStoppedLater(exit ExitStatus) (wake func()) {
	s.Running = false
	s.Paused = false
	s.Restarting = false
	s.Pid = 0
	s.setFinished(exit)
	return s.wakeStopWaiters
}

// SetRestarting records an exit after which the restart policy will start
// the container again. It stays Running (dockerd's rule, so stop and rm see
// it as live), and the exit wakes the waiters as SetStopped does.
func (s *State) SetRestarting(exit ExitStatus) { s.SetRestartingLater(exit)() }

// SetRestartingLater is SetRestarting with the wake-up of the waiters
// returned, as SetStoppedLater.
func (s *State) SetRestartingLater(exit ExitStatus) (wake func()) {
	s.Running = true
	s.Restarting = true
	s.Paused = false
	s.Pid = 0
	s.setFinished(exit)
	return s.wakeStopWaiters
}

func (s *State) setFinished(exit ExitStatus) {
	if exit.ExitedAt.IsZero() {
		s.FinishedAt = time.Now().UTC()
	} else {
		s.FinishedAt = exit.ExitedAt.UTC()
	}
	s.ExitCode = exit.ExitCode
	if exit.OOMKilled {
		s.OOMKilled = true
	}
}

// SetPaused records that the container's processes are frozen.
func (s *State) SetPaused() { s.Paused = true }

// SetUnpaused records that the container's processes are thawed.
func (s *State) SetUnpaused() { s.Paused = false }

// SetError records the last error of a start, stop or remove (inspect's
// State.Error); nil clears it.
func (s *State) SetError(err error) {
	s.Error = ""
	if err != nil {
		s.Error = err.Error()
	}
}

// Err returns the recorded error, or nil.
func (s *State) Err() error {
	if s.Error == "" {
		return nil
	}
	return errors.New(s.Error)
}

// SetRemovalInProgress marks the container as being removed. It fails with
// dockerd's 409 when a removal is already under way; ref is the name or ID
// the client used, which the message repeats.
func (s *State) SetRemovalInProgress(ref string) error {
	if s.RemovalInProgress {
		return errdefs.Conflict(fmt.Errorf("removal of container %s is already in progress", ref))
	}
	s.RemovalInProgress = true
	return nil
}

// ResetRemovalInProgress clears the mark after a removal that failed.
func (s *State) ResetRemovalInProgress() { s.RemovalInProgress = false }

// SetDead marks a container whose removal failed half way: it can only be
// removed again.
func (s *State) SetDead() { s.Dead = true }

// SetRemoved records that the container is gone and wakes every waiter,
// removed and not-running alike. Store.Delete calls it.
func (s *State) SetRemoved() {
	s.removed = true
	s.notify(&s.removeWaiters)
	s.wakeStopWaiters()
}

// SetRemovalFailed records err, the reason a removal failed, and wakes
// the removed waiters with it, as dockerd's SetRemovalError: `docker run
// --rm` waits for the removal, and would otherwise wait forever on a
// container its start failed to create and its removal failed to clear.
// The container stays; a later removal that succeeds wakes later waiters.
func (s *State) SetRemovalFailed(err error) {
	s.SetError(err)
	s.notify(&s.removeWaiters)
}

// IsRemoved reports whether SetRemoved was called.
func (s *State) IsRemoved() bool { return s.removed }

// wakeStopWaiters wakes the not-running and next-exit waiters and closes
// the channel Stopped handed out.
func (s *State) wakeStopWaiters() {
	s.notify(&s.stopWaiters)
	if s.stopped != nil {
		close(s.stopped)
		s.stopped = nil
	}
	fns := s.afterStopped
	s.afterStopped = nil
	for a := range fns {
		a.ran.Store(true)
		a.fn()
	}
}

// afterStop is one AfterStopped registration. ran is set before fn runs:
// a cancel that comes after has nothing to do and needs no lock.
type afterStop struct {
	fn  func()
	ran atomic.Bool
}

// AfterStopped arranges for fn to run when stopped, a channel Stopped
// returned, is closed: at once, on this goroutine, if it is already;
// otherwise at the exit or removal that closes it, with the container's
// lock held, so fn must be quick and must not take the lock. It is Stopped
// for a waiter without a goroutine (a logs follower, issue 13). cancel
// forgets fn if it has not run; it takes the lock only then. AfterStopped
// must be called without the lock.
func (s *State) AfterStopped(stopped <-chan struct{}, fn func()) (cancel func()) {
	s.mu.Lock()
	select {
	case <-stopped:
		s.mu.Unlock()
		fn()
		return func() {}
	default:
	}
	// Not closed: stopped is the current s.stopped, which is closed only
	// with the lock held.
	a := &afterStop{fn: fn}
	if s.afterStopped == nil {
		s.afterStopped = map[*afterStop]struct{}{}
	}
	s.afterStopped[a] = struct{}{}
	s.mu.Unlock()
	return func() {
		// Once fn has run there is nothing to forget, and the exit
		// handler that ran it may hold the lock for a while yet (it
		// unmounts the container and ends its shim): a logs -f stream
		// ended at the exit waited for that.
		if a.ran.Load() {
			return
		}
		s.mu.Lock()
		delete(s.afterStopped, a)
		s.mu.Unlock()
	}
}

// Stopped returns a channel closed at the container's next exit (a restart's
// included) or at its removal, or already closed when it is not running.
// It is Wait's not-running condition for callers that need no exit status
// and may stop listening at any time: every caller shares one channel, and
// nothing is registered per caller that would need a goroutine to drop it
// (a logs follower paid two goroutines for Wait, issue 13). Stopped must be
// called without the lock.
func (s *State) Stopped() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.Running || s.removed {
		c := make(chan struct{})
		close(c)
		return c
	}
	if s.stopped == nil {
		s.stopped = make(chan struct{})
	}
	return s.stopped
}

func (s *State) notify(waiters *[]chan<- StateStatus) {
	st := StateStatus{ExitCode: s.ExitCode, Err: s.Err()}
	for _, c := range *waiters {
		c <- st // buffered, never blocks
	}
	*waiters = nil
}

// Wait returns a channel that delivers one StateStatus when condition is met:
//
//   - not-running (or ""): at once if the container is not running, created
//     ones included (dockerd's rule), else at the next exit;
//   - next-exit: at the next exit or restart, even if it is not running now,
//     which is how `docker run` waits before it starts the container;
//   - removed: when the container is removed.
//
// Removal also ends not-running and next-exit waits. When ctx ends first the
// status is ExitCode -1 with ctx's error. An unknown condition delivers an
// InvalidParameter error at once. Wait must be called without the lock; the
// channel is buffered, so nobody has to read it.
func (s *State) Wait(ctx context.Context, condition types.WaitCondition) <-chan StateStatus {
	result := make(chan StateStatus, 1)
	s.mu.Lock()
	defer s.mu.Unlock()

	var waiters *[]chan<- StateStatus
	switch condition {
	case "", types.WaitConditionNotRunning:
		if !s.Running || s.removed {
			result <- StateStatus{ExitCode: s.ExitCode, Err: s.Err()}
			return result
		}
		waiters = &s.stopWaiters
	case types.WaitConditionNextExit:
		if s.removed {
			result <- StateStatus{ExitCode: s.ExitCode, Err: s.Err()}
			return result
		}
		waiters = &s.stopWaiters
	case types.WaitConditionRemoved:
		if s.removed {
			result <- StateStatus{ExitCode: s.ExitCode, Err: s.Err()}
			return result
		}
		waiters = &s.removeWaiters
	default:
		result <- StateStatus{ExitCode: -1, Err: errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", condition))}
		return result
	}

	if ctx.Done() == nil {
		// Nothing can cancel this wait: let the notification land in the
		// result channel directly, without a forwarding goroutine.
		*waiters = append(*waiters, result)
		return result
	}
	met := make(chan StateStatus, 1)
	*waiters = append(*waiters, met)
	go func() {
		select {
		case st := <-met:
			result <- st
		case <-ctx.Done():
			s.mu.Lock()
			s.dropWaiter(met)
			s.mu.Unlock()
			// The condition may have been met while we took the lock.
			select {
			case st := <-met:
				result <- st
			default:
				result <- StateStatus{ExitCode: -1, Err: ctx.Err()}
			}
		}
	}()
	return result
}

// dropWaiter forgets a waiter whose context ended, so that abandoned waits
// (docker run -d drops its wait after start) do not pile up on a container
// that runs for months.
func (s *State) dropWaiter(c chan<- StateStatus) {
	for _, list := range []*[]chan<- StateStatus{&s.stopWaiters, &s.removeWaiters} {
		for i, w := range *list {
			if w == c {
				*list = append((*list)[:i:i], (*list)[i+1:]...)
				return
			}
		}
	}
}

// Inspect returns the state as container inspect shows it.
func (s *State) Inspect() *types.ContainerState {
	var h *types.Health
	if s.Health != nil {
		c := *s.Health
		h = &c
	}
	return &types.ContainerState{
		Status:     s.Status(),
		Running:    s.Running,
		Paused:     s.Paused,
		Restarting: s.Restarting,
		OOMKilled:  s.OOMKilled,
		Dead:       s.Dead,
		Pid:        s.Pid,
		ExitCode:   s.ExitCode,
		Error:      s.Error,
		StartedAt:  s.StartedAt.UTC().Format(time.RFC3339Nano),
		FinishedAt: s.FinishedAt.UTC().Format(time.RFC3339Nano),
		Health:     h,
	}
}
