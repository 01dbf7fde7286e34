package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shimclient"
)

// execRetention is how long an exec that has exited stays inspectable
// while its container keeps running. dockerd's collector drops such execs
// after five to ten minutes; a loop of docker exec must not grow the
// daemon without bound.
const execRetention = 10 * time.Minute

// execResizeWait bounds how long a resize waits for the exec's start, as
// dockerd's does: the CLI sends the first resize while the start is still
// on its way.
const execResizeWait = 10 * time.Second

// execRecord is one exec instance. Like dockerd's, it lives in memory
// only: created by exec create, run by exec start. One never started is
// forgotten when its container's run ends; one that ran stays
// inspectable for execRetention after its exit.
type execRecord struct {
	id          string
	containerID string
	// run is the runtime container the exec was created in; once the
	// container's current run is another one (it stopped or restarted)
	// the exec belongs to a run that is gone.
	run *shimclient.Container

	entrypoint string
	args       []string
	env        []string
	user       string
	workdir    string
	tty        bool
	privileged bool
	openStdin  bool
	openStdout bool
	openStderr bool
	// keys is the exec's detach sequence, parsed; nil: the default one.
	keys        []byte
	consoleSize *[2]uint

	// startDone is closed once a start has been tried, whatever came of
	// it (startOnce guards the close).
	startDone chan struct{}
	startOnce sync.Once
	// done is closed once the exit is recorded (or the engine closed).
	done chan struct{}

	mu       sync.Mutex
	running  bool
	tried    bool // start was called
	exitCode *int
	exitedAt time.Time
	pid      int
	proc     *shimclient.Process
}

// commandLine is the exec's command as dockerd puts it in event actions:
// the entrypoint, a space, the arguments joined by spaces.
func (x *execRecord) commandLine() string {
	return x.entrypoint + " " + strings.Join(x.args, " ")
}

// startTried wakes the resizes waiting for the start.
func (x *execRecord) startTried() {
	x.startOnce.Do(func() { close(x.startDone) })
}

// setExit records how the exec ended.
func (x *execRecord) setExit(code int) {
	x.mu.Lock()
	x.running = false
	x.exitCode = &code
	x.exitedAt = time.Now()
	x.mu.Unlock()
}

// execStore holds an engine's exec instances by ID.
type execStore struct {
	mu    sync.Mutex
	execs map[string]*execRecord
}

func newExecStore() *execStore { return &execStore{execs: map[string]*execRecord{}} }

// currentRun returns the runtime container of the container's current run,
// nil when it has none; unlike state it creates no in-memory state for a
// container that is gone.
func (e *Engine) currentRun(id string) *shimclient.Container {
	e.ctrMu.Lock()
	cs := e.ctrs[id]
	e.ctrMu.Unlock()
	if cs == nil {
		return nil
	}
	return cs.run()
}

// execGone reports whether an exec is to be forgotten: its container is
// gone, or it never started and its run ended (dockerd drops those when
// the container stops), or it exited more than execRetention ago. A
// started exec stays until its exit is recorded, which its watcher does
// soon after the container stops.
func (e *Engine) execGone(x *execRecord, now time.Time) bool {
	x.mu.Lock()
	exited := x.exitCode != nil
	exitedAt := x.exitedAt
	started := x.proc != nil
	x.mu.Unlock()
	if _, err := e.containers.Get(x.containerID); err != nil {
		return true
	}
	switch {
	case exited:
		return now.Sub(exitedAt) > execRetention
	case started:
		return false
	}
	return e.currentRun(x.containerID) != x.run
}

// sweepExecs forgets the execs that are gone.
func (e *Engine) sweepExecs() {
	s := e.execs
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, x := range s.execs {
		if e.execGone(x, now) {
			delete(s.execs, id)
		}
	}
}

// getExec finds an exec that still exists.
func (e *Engine) getExec(id string) (*execRecord, error) {
	s := e.execs
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.execs[id]
	if x != nil && e.execGone(x, time.Now()) {
		delete(s.execs, id)
		x = nil
	}
	if x == nil {
		return nil, errExecNotFound(id)
	}
	return x, nil
}

func errExecNotFound(id string) error {
	return errdefs.NotFound(fmt.Errorf("No such exec instance: %s", id))
}

// containerExecIDs lists the execs of a container that have not exited,
// for the ExecIDs of its inspect (nil when none, as dockerd's null).
func (e *Engine) containerExecIDs(id string) []string {
	e.sweepExecs()
	s := e.execs
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, x := range s.execs {
		x.mu.Lock()
		live := x.exitCode == nil
		x.mu.Unlock()
		if x.containerID == id && live {
			ids = append(ids, x.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// activeRun checks that c can run an exec and returns its current run;
// ref is the reference the client used, which dockerd puts in the paused
// message of exec create. c's lock is held.
func (e *Engine) activeRun(c *container.Container, ref string) (*shimclient.Container, error) {
	switch {
	case !c.State.Running:
		return nil, notRunning(c)
	case c.State.Paused:
		return nil, errdefs.Conflict(fmt.Errorf("Container %s is paused, unpause the container before exec", ref))
	case c.State.Restarting:
		return nil, errdefs.Conflict(fmt.Errorf("Container %s is restarting, wait until the container is running", c.ID))
	}
	rc := e.currentRun(c.ID)
	if rc == nil {
		return nil, notRunning(c)
	}
	return rc, nil
}
