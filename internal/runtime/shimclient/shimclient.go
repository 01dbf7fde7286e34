// Package shimclient is the daemon's side of the container runtime: it
// seals the skiffd binary once, spawns shims from the seal (one serves
// several containers, see pool), talks to shims over their control sockets, and finds them again
// after a daemon restart (proving each init's identity by pid, start time
// and pidfd).
//
//	rt, err := shimclient.New(shimclient.Options{Root: "/run/skiffd/containers"})
//	c, err := rt.Create(ctx, s)  // shim + init up to "ready": namespaces exist,
//	                             // the entrypoint has not run (set up networking now,
//	                             // or in CreateOptions.Wire, while init sets up)
//	st, err := c.Attach(ctx, shimclient.AttachOptions{Stdout: true, Stderr: true})
//	go st.Copy(stdout, stderr)   // frames demultiplexed; nil at the end
//	err = c.Start(ctx)           // errors keep runc's wording (exit 126/127)
//	exit, err := c.Wait(ctx)     // exit.Code (128+n after signal n), exit.OOMKilled
//	err = c.Delete(ctx)          // shim gone, cgroups and state removed
//
// Running containers: Signal, Resize, Pause/Resume/Paused, Stats, Pids,
// Update, State; Exec(ctx, id, process) returns a Process with Attach,
// Start, Signal, Resize, Wait and Delete. After a restart: List, then
// Load(ctx, id) for each (a container whose shim died is reported stopped,
// its init killed through its pidfd), and Container.Process(id) for execs.
//
// Errors carry errdefs kinds: not found, conflict (not running, paused,
// running on delete), invalid parameter (a start error the user caused).
package shimclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/exeseal"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// Options configure a Runtime.
type Options struct {
	// Root is the exec root: one directory per container holds its spec,
	// state file, control socket and shim log.
	Root string
	// Exe is the binary that provides the hidden roles; "" is this
	// process's own binary.
	Exe string
	// Trace, if set, hears how long each phase of a Create took (the
	// daemon logs them as debug spans).
	Trace func(name string, d time.Duration)
}

// Runtime starts and finds containers.
type Runtime struct {
	root  string
	seal  *exeseal.Exe
	trace func(name string, d time.Duration)
	// pool holds and starts the shims containers are handed to.
	pool *pool
	// progs are the containers' device programs, loaded once each.
	progs *cgroups.Programs
	// pidfds: the kernel has pidfd_open, which shared shims need.
	pidfds bool
}

// New seals the executable and returns a Runtime. One seal serves every
// shim the Runtime starts.
func New(opts Options) (*Runtime, error) {
	if opts.Root == "" {
		return nil, errors.New("shimclient: no root")
	}
	if err := os.MkdirAll(opts.Root, 0o711); err != nil {
		return nil, err
	}
	// Whatever the daemon inherited without close-on-exec (a shell's pipe,
	// systemd's LISTEN_FDS, which stay open and usable) must not reach
	// the shims: os.StartProcess passes every such fd on.
	if err := sys.CloseExecFrom(3); err != nil {
		return nil, err
	}
	seal, err := exeseal.Seal(opts.Exe)
	if err != nil {
		return nil, err
	}
	trace := opts.Trace
	if trace == nil {
		trace = func(string, time.Duration) {}
	}
	r := &Runtime{root: opts.Root, seal: seal, trace: trace, progs: cgroups.NewPrograms(), pidfds: sys.PidfdsWork()}
	r.pool = &pool{start: r.startShim}
	r.pool.refill()
	return r, nil
}

// SealKind reports how the executable was sealed (for /info).
func (r *Runtime) SealKind() string { return r.seal.Kind() }

// Close ends the pre-started shims that have no container yet, waiting for
// them to exit, and releases the seal. Running shims are not affected.
func (r *Runtime) Close() error {
	if r.pool != nil {
		r.pool.close()
	}
	r.progs.Close()
	return r.seal.Close()
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.root, id) }

// Container is a handle on one container's shim.
type Container struct {
	r    *Runtime
	id   string
	dir  string
	spec *spec.Spec
	// initPid is init's pid as the shim reported it when ready (Create),
	// 0 for a container found by Load.
	initPid int
	// shutDown is set once Shutdown has succeeded: its shim is gone and
	// its cgroups removed, only its directory is left.
	shutDown bool
}

// ID returns the container's id.
func (c *Container) ID() string { return c.id }

// Spec returns the container's spec.
func (c *Container) Spec() *spec.Spec { return c.spec }

// InitPid returns the pid of the init Create started (the entrypoint's
// once started), without asking the shim; 0 for a container found by
// Load, whose State has it.
func (c *Container) InitPid() int { return c.initPid }

// CreateOptions are the optional parts of a create.
type CreateOptions struct {
	// Wire, if set, is called with init's pid as soon as init exists in
	// its namespaces, and runs while init sets up its root file system
	// and process (the daemon wires the container's network then).
	// Create returns only once Wire has returned, even when init fails.
	// If Wire fails, Create deletes the container and returns Wire's
	// error as it is. Wire is not called if init cannot be started.
	Wire func(pid int) error
}

// Create writes the spec, creates the cgroups and starts the container's
// shim, which starts init and returns once init is ready to exec the
// entrypoint. Errors from init carry runc's wording.
func (r *Runtime) Create(ctx context.Context, s *spec.Spec) (*Container, error) {
	return r.CreateWith(ctx, s, CreateOptions{})
}

// CreateWith is Create with options.
func (r *Runtime) CreateWith(ctx context.Context, s *spec.Spec, opts CreateOptions) (*Container, error) {
	if err := s.Validate(); err != nil {
		return nil, errdefs.InvalidParameter(&InitError{Msg: err.Error()})
	}
	t0 := time.Now()
	span := func(name string) {
		now := time.Now()
		r.trace(name, now.Sub(t0))
		t0 = now
	}
	dir := r.dir(s.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			// A previous run that was never deleted (docker start of a
			// stopped container): clear it, unless it still runs.
			old, lerr := r.Load(ctx, s.ID)
			if lerr == nil {
				if st, err := old.State(ctx); err == nil && st.Status != shim.StatusStopped {
					return nil, errdefs.Conflict(fmt.Errorf("container %s already has a shim", s.ID))
				}
				if err := old.Delete(ctx); err != nil {
					return nil, fmt.Errorf("remove the previous run of %s: %w", s.ID, err)
				}
			}
			os.RemoveAll(dir)
			err = os.Mkdir(dir, 0o700)
		}
		if err != nil {
			return nil, fmt.Errorf("create container %s: %w", s.ID, err)
		}
	}
	c := &Container{r: r, id: s.ID, dir: dir, spec: s}
	// The cgroups are made while the spec is written and the shim
	// handed the container, and while the shim reads the spec and opens
	// the log; it places nothing in them before it hears they exist. (Not
	// before the directory exists: the clearing of a previous run above
	// removes that run's cgroups, which have the same paths.)
	cg := c.cgroup()
	cgMade := make(chan error, 1)
	if cg != nil {
		go func() { cgMade <- cg.Create(Resources(s.Cgroup.Resources)) }()
	} else {
		cgMade <- nil
	}
	fail := func(err error) (*Container, error) {
		if <-cgMade == nil && cg != nil {
			cg.Destroy()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fail(err)
	}
	// Like the shim's state file, the spec lives as long as the shim and
	// is written without fsync (see shim's writeStateLocked).
	if err := atomicfile.Replace(filepath.Join(dir, shim.SpecFile), b, 0o600); err != nil {
		return fail(err)
	}
	span("runtime.spec")
	conn, err := r.handOver(dir, r.pidfds && ownPidNamespace(s))
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	span("runtime.handover")
	if err := <-cgMade; err != nil {
		abortCreate(conn, dir)
		os.RemoveAll(dir)
		return nil, err
	}
	span("runtime.cgroup")
	// A write that fails means the shim is gone, which awaitReady reports.
	conn.Write([]byte(shim.CgroupsReady + "\n"))
	pid, wireErr, err := r.awaitReady(ctx, conn, dir, opts.Wire)
	if err != nil {
		if ctx.Err() != nil {
			abortCreate(conn, dir)
		}
		if cg := c.cgroup(); cg != nil {
			cg.Kill()
			cg.Destroy()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	span("runtime.spawn")
	c.initPid = pid
	if wireErr != nil {
		c.Delete(ctx)
		return nil, wireErr
	}
	return c, nil
}

// shimEnv is the shim's whole environment. One P is plenty for a process
// that mostly waits, and every P or OS thread costs stacks the shim keeps
// for the container's lifetime (about 48 KiB per thread). init and the
// exec helper get an empty environment of their own.
var shimEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}

// ownPidNamespace reports whether the container has a pid namespace of its
// own. With pidfds (Runtime.pidfds), that lets it share its shim with others:
// nothing but its own processes can become the shim's children (its orphans
// go to its init), which the shim reaps one by one (see shim's
// startReaper).
func ownPidNamespace(s *spec.Spec) bool {
	p, ok := s.HasNamespace(spec.PIDNamespace)
	return ok && p == ""
}

// handOver hands the container in dir to a pre-started shim (one started
// now when none waits; see pool) and returns the container's socket to it:
// the ready lines come on it, CgroupsReady goes out on it.
func (r *Runtime) handOver(dir string, shareable bool) (*os.File, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	defer lock.Close() // the shim has its own copy once it is sent
	// Refilled in the background, under SCHED_IDLE: the new shim takes no
	// time this start wants.
	defer r.pool.refill()
	for attempt := 0; ; attempt++ {
		w, err := r.pool.get(shareable)
		if err != nil {
			return nil, err
		}
		w.boost()
		conn, err := w.send(dir, lock)
		if err == nil {
			r.pool.put(w)
			return conn, nil
		}
		// A shim that died (someone killed it): take another.
		r.pool.drop(w)
		w.p.Kill()
		if attempt > 0 {
			return nil, fmt.Errorf("start shim: hand over %s: %w", dir, err)
		}
	}
}

// send hands the container in dir to w: one message on w's control socket,
// the directory with, as rights, the shim's end of a new socket for the
// container and the locked directory. It returns the daemon's end of the
// container's socket, non-blocking, so that the poller serves it and
// closing it ends a read in progress.
func (w *warmShim) send(dir string, lock *os.File) (*os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fds[1])
	syscall.SetNonblock(fds[0], true)
	conn := os.NewFile(uintptr(fds[0]), "shim")
	if _, _, err := w.ctl.WriteMsgUnix([]byte(dir), syscall.UnixRights(fds[1], int(lock.Fd())), nil); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// abortCreate gives up a create handed to a shim: the shim kills init and
// fails the create; this waits (a while at most) until it has let go of
// the directory, which the caller then removes.
func abortCreate(conn *os.File, dir string) {
	conn.Write([]byte(shim.Abort + "\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitDirUnlocked(ctx, dir)
}

// awaitReady waits for the ready line of the shim handed dir and returns
// init's pid. The shim's Forked line comes first: wire, if not nil, runs
// from then on, concurrently with init's set-up, and its error is
// returned apart (wireErr) once it is done; awaitReady never returns
// before it.
func (r *Runtime) awaitReady(ctx context.Context, rd *os.File, dir string, wire func(pid int) error) (pid int, wireErr, err error) {
	type result struct {
		msg shim.ReadyMessage
		err error
	}
	ch := make(chan result, 2)
	go func() {
		br := bufio.NewReader(rd)
		for {
			line, err := br.ReadBytes('\n')
			var res result
			if err != nil {
				res.err = fmt.Errorf("shim exited before it was ready (see %s)", filepath.Join(dir, shim.LogFile))
			} else if err := json.Unmarshal(line, &res.msg); err != nil {
				res.err = err
			}
			ch <- res
			if res.err != nil || !res.msg.Forked {
				return
			}
		}
	}()
	var wired chan error
	waitWire := func() error {
		if wired == nil {
			return nil
		}
		return <-wired
	}
	for {
		select {
		case res := <-ch:
			if res.err == nil && res.msg.Forked {
				if wire != nil && wired == nil && res.msg.Pid > 0 {
					wired = make(chan error, 1)
					go func(pid int) { wired <- wire(pid) }(res.msg.Pid)
				}
				continue
			}
			werr := waitWire()
			if res.err != nil {
				return 0, nil, res.err
			}
			if res.msg.Error != "" {
				return 0, nil, startError(res.msg.Error)
			}
			if err := ctx.Err(); err != nil {
				// Given up while wire ran: undone as if before.
				return 0, nil, err
			}
			for name, d := range res.msg.Spans {
				r.trace(name, time.Duration(d))
			}
			return res.msg.Pid, werr, nil
		case <-ctx.Done():
			waitWire()
			return 0, nil, ctx.Err()
		}
	}
}

// startError classifies an error from init the way dockerd does, keeping
// its text: a missing executable or a permission problem is the caller's
// mistake, not the system's (runc's error, a 400 from dockerd). A user or
// group that is not in the container's files, or a working directory that
// is a file, is not: dockerd looks them up (makes it) itself and answers
// its plain error, a 500.
func startError(msg string) error {
	l := strings.ToLower(msg)
	if strings.Contains(l, "unable to find user") || strings.Contains(l, "unable to find group") || strings.HasPrefix(l, "cannot mkdir:") {
		return errors.New(msg)
	}
	err := &InitError{Msg: msg}
	if strings.Contains(l, "executable file not found") || strings.Contains(l, "no such file or directory") ||
		strings.Contains(l, "permission denied") || strings.Contains(l, "not a directory") {
		return errdefs.InvalidParameter(err)
	}
	return err
}

// InitError is what the runtime found wrong with the container as it set
// it up: the part of dockerd's start error that runc words (the engine
// puts containerd's around it).
type InitError struct{ Msg string }

func (e *InitError) Error() string { return e.Msg }

// request sends one request on a new connection and reads the response.
// It returns the connection too (for attach); the caller closes it.
func (c *Container) request(ctx context.Context, req shim.Request) (*shim.Response, *net.UnixConn, *bufio.Reader, error) {
	req.Version = shim.ProtocolVersion
	addr, release, err := shim.SocketAddr(c.dir)
	if err != nil {
		return nil, nil, nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", addr)
	release()
	if err != nil {
		return nil, nil, nil, errShimGone{err}
	}
	uc := conn.(*net.UnixConn)
	stop := context.AfterFunc(ctx, func() { uc.Close() })
	defer stop()
	b, _ := json.Marshal(&req)
	if _, err := uc.Write(append(b, '\n')); err != nil {
		uc.Close()
		return nil, nil, nil, errShimGone{err}
	}
	br := bufio.NewReader(uc)
	line, err := br.ReadBytes('\n')
	if err != nil {
		uc.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, errShimGone{err}
	}
	var resp shim.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		uc.Close()
		return nil, nil, nil, fmt.Errorf("shim response: %w", err)
	}
	if resp.Error != "" {
		uc.Close()
		return nil, nil, nil, kindErr(&resp)
	}
	return &resp, uc, br, nil
}

// call is request for requests without streams.
func (c *Container) call(ctx context.Context, req shim.Request) (*shim.Response, error) {
	resp, conn, _, err := c.request(ctx, req)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return resp, nil
}

// errShimGone means the shim's socket did not answer: the shim has exited
// (its container is stopped) or died.
type errShimGone struct{ err error }

func (e errShimGone) Error() string { return "shim not reachable: " + e.err.Error() }
func (e errShimGone) Unwrap() error { return e.err }

func kindErr(r *shim.Response) error {
	err := errors.New(r.Error)
	switch r.Kind {
	case shim.KindNotFound:
		return errdefs.NotFound(err)
	case shim.KindConflict:
		return errdefs.Conflict(err)
	case shim.KindInvalid:
		return errdefs.InvalidParameter(err)
	}
	return startError(r.Error)
}

// State returns the container's state: from its shim, or from the state
// file the shim left when it is gone.
func (c *Container) State(ctx context.Context) (*shim.State, error) {
	resp, err := c.call(ctx, shim.Request{Op: shim.OpState})
	var gone errShimGone
	if errors.As(err, &gone) {
		return c.stateFromFile()
	}
	if err != nil {
		return nil, err
	}
	return resp.State, nil
}

// afterStateRead, when set (tests), runs right after stateFromFile's first
// read of the state file: the moment a shim may record its exit and let go.
var afterStateRead func()

// stateFromFile reads the state file of a container whose shim is gone. A
// shim that died without recording its init's exit leaves a container
// that is either orphaned (init alive: it is killed) or lost; either way
// the file is brought up to date.
func (c *Container) stateFromFile() (*shim.State, error) {
	st, err := shim.ReadState(c.dir)
	if afterStateRead != nil {
		afterStateRead()
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("no such container: %s", c.id))
		}
		return nil, err
	}
	if st.Status == shim.StatusStopped {
		return st, nil
	}
	if shimServes(c.dir, st) {
		// The socket failed but the shim still serves the container: it
		// is shutting down after the exit it is recording; read again.
		if st2, err := shim.ReadState(c.dir); err == nil {
			st = st2
		}
		return st, nil
	}
	// No shim serves it now, but the state above may have been read
	// before the shim's last word: a shim records the exit, then lets go
	// of the directory, and both can fall between that read and the look
	// at the lock. What the file says now is final.
	if st2, err := shim.ReadState(c.dir); err == nil {
		if st2.Status == shim.StatusStopped {
			return st2, nil
		}
		st = st2
	}
	if fd, alive := initAlive(st); alive {
		// Orphaned: nobody owns its stdio or its exit any more.
		sys.PidfdSendSignal(fd, syscall.SIGKILL)
		syscall.Close(fd)
		st.ExitCode = 137
	} else {
		st.ExitCode = 255
	}
	st.Status = shim.StatusStopped
	st.Error = "the container's shim died"
	b, _ := json.Marshal(st)
	atomicfile.Replace(filepath.Join(c.dir, shim.StateFile), b, 0o600)
	return st, nil
}

// shimServes reports whether a shim still serves the container in dir:
// its lock on the directory, or for a shim of an older skiffd, which
// served one container, its process.
func shimServes(dir string, st *shim.State) bool {
	if st.DirLock {
		return dirLocked(dir)
	}
	return shimAlive(st)
}

// shimAlive checks the shim's pid and start time; a zombie (a killed shim
// its new parent has not reaped yet) is not alive.
func shimAlive(st *shim.State) bool {
	state, start, err := sys.ProcStat(st.ShimPid)
	return err == nil && start == st.ShimStart && state != 'Z' && state != 'X'
}

// initAlive proves that init is the recorded process: the start time
// matches before and after taking a pidfd, which closes the window in
// which the pid could be reused. It returns the pidfd.
func initAlive(st *shim.State) (int, bool) {
	if st.InitPid <= 0 {
		return -1, false
	}
	if state, start, err := sys.ProcStat(st.InitPid); err != nil || start != st.InitStart || state == 'Z' || state == 'X' {
		return -1, false
	}
	fd, err := sys.PidfdOpen(st.InitPid)
	if err != nil {
		return -1, false
	}
	if start, err := sys.StartTime(st.InitPid); err != nil || start != st.InitStart {
		syscall.Close(fd)
		return -1, false
	}
	return fd, true
}

// Load finds an existing container (after a daemon restart): it reads the
// spec and state, proves the init's identity, and checks that the shim
// answers. A container whose shim is gone is returned with its recorded
// (or reconstructed) exit.
func (r *Runtime) Load(ctx context.Context, id string) (*Container, error) {
	dir := r.dir(id)
	b, err := os.ReadFile(filepath.Join(dir, shim.SpecFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("no such container: %s", id))
		}
		return nil, err
	}
	s := new(spec.Spec)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	c := &Container{r: r, id: id, dir: dir, spec: s}
	st, err := shim.ReadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		st, err = waitCreating(ctx, dir)
	}
	if errors.Is(err, os.ErrNotExist) {
		// The shim never got as far as its state file (a create cut
		// short) and is gone: nothing runs; the handle is good for
		// Delete.
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	if st.Status != shim.StatusStopped {
		fd, alive := initAlive(st)
		if alive {
			syscall.Close(fd)
		}
		if _, err := c.State(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// List returns the ids of the containers under the root.
func (r *Runtime) List() ([]string, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(r.root, e.Name(), shim.SpecFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Start runs the container's entrypoint.
func (c *Container) Start(ctx context.Context) error {
	_, err := c.call(ctx, shim.Request{Op: shim.OpStart})
	return c.notRunning(err)
}

// Signal sends sig to the container's init.
func (c *Container) Signal(ctx context.Context, sig syscall.Signal) error {
	_, err := c.call(ctx, shim.Request{Op: shim.OpKill, Signal: int(sig)})
	return c.notRunning(err)
}

// Kill sends SIGKILL to the container's init and waits for the exit to be
// recorded, so that Delete can follow. Killing a stopped container is not
// an error.
func (c *Container) Kill(ctx context.Context) (shim.ExitStatus, error) {
	if err := c.Signal(ctx, syscall.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return shim.ExitStatus{}, err
	}
	return c.Wait(ctx)
}

// errNotRunning is dockerd's wording for operations on a stopped container.
func errNotRunning(id string) error {
	return errdefs.Conflict(fmt.Errorf("Container %s is not running", id))
}

// Resize sets the size of the container's terminal.
func (c *Container) Resize(ctx context.Context, height, width uint16) error {
	_, err := c.call(ctx, shim.Request{Op: shim.OpResize, Height: height, Width: width})
	return c.notRunning(err)
}

// Wait blocks until the container's init has exited and returns how. The
// exit is in the state file before the shim reports it, so it is also
// known after the shim is gone.
func (c *Container) Wait(ctx context.Context) (shim.ExitStatus, error) {
	resp, err := c.call(ctx, shim.Request{Op: shim.OpWait})
	var gone errShimGone
	if errors.As(err, &gone) {
		st, err := c.stateFromFile()
		if err != nil {
			return shim.ExitStatus{}, err
		}
		if st.Status != shim.StatusStopped {
			return shim.ExitStatus{}, fmt.Errorf("wait for container %s: %w", c.id, gone)
		}
		return shim.ExitStatus{Code: st.ExitCode, OOMKilled: st.OOMKilled, ExitedAt: st.FinishedAt, Error: st.Error}, nil
	}
	if err != nil {
		return shim.ExitStatus{}, err
	}
	return *resp.Exit, nil
}

// Delete ends the shim of a created or stopped container and removes its
// directory and cgroups. A running container must be stopped first (a
// conflict error otherwise); Kill then Delete removes one in any state.
func (c *Container) Delete(ctx context.Context) error {
	if !c.shutDown {
		if err := c.Shutdown(ctx); err != nil {
			return err
		}
	}
	t0 := time.Now()
	err := os.RemoveAll(c.dir)
	c.r.trace("runtime.rmdir", time.Since(t0))
	return err
}

// Shutdown is Delete but for the directory: the shim is gone and the
// cgroups removed, and the state file, with the exit, is kept for a
// daemon that restarts before it records the exit itself. Delete then
// removes the directory only. The daemon shuts a container down while it
// saves its exit, which must be durable before the state file goes.
func (c *Container) Shutdown(ctx context.Context) error {
	t0 := time.Now()
	span := func(name string) {
		now := time.Now()
		c.r.trace(name, now.Sub(t0))
		t0 = now
	}
	_, err := c.call(ctx, shim.Request{Op: shim.OpDelete})
	var gone errShimGone
	if err != nil && !errors.As(err, &gone) {
		return err
	}
	if err == nil {
		// Wait until the shim has recorded the exit and left.
		if _, err := c.Wait(ctx); err != nil {
			return err
		}
	}
	span("runtime.delete-call")
	// A shim that no longer answers may still be on its way out (it
	// closes its socket first): removing its directory and cgroups under
	// it would leave it behind, so wait for it to go.
	c.waitShimGone(ctx)
	span("runtime.shim-gone")
	if cg := c.cgroup(); cg != nil {
		// Processes of a container sharing the host's pid namespace can
		// outlive its init.
		if err := cg.Kill(); err != nil {
			return err
		}
		if err := cg.Destroy(); err != nil {
			return err
		}
	}
	span("runtime.cgroup-destroy")
	c.shutDown = true
	return nil
}

// waitShimGone waits until the shim no longer serves the container: it
// has let go of the directory (DirLock), or, a shim of an older skiffd,
// its process has exited (through a pidfd).
func (c *Container) waitShimGone(ctx context.Context) {
	st, err := shim.ReadState(c.dir)
	if err != nil {
		return
	}
	if st.DirLock {
		waitDirUnlocked(ctx, c.dir)
		return
	}
	if !shimAlive(st) {
		return
	}
	fd, err := sys.PidfdOpen(st.ShimPid)
	if err != nil {
		return
	}
	defer syscall.Close(fd)
	if !shimAlive(st) {
		return
	}
	// The timeout only lets ctx end the wait.
	fds := [1]sys.PollFd{{Fd: int32(fd), Events: sys.POLLIN}}
	for ctx.Err() == nil {
		n, err := sys.Ppoll(fds[:], syscall.NsecToTimespec(100e6))
		if err == nil && n > 0 {
			return
		}
	}
}

// AttachOptions choose the streams of an attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// Stream is an attached connection: Write feeds the process's stdin,
// CloseStdin ends it, and Copy delivers the output until it ends.
type Stream struct {
	conn *net.UnixConn
	r    *bufio.Reader
}

// Attach attaches to the container's init. Output written after Attach
// returns reaches the stream, including output right after Start.
func (c *Container) Attach(ctx context.Context, opts AttachOptions) (*Stream, error) {
	return c.attach(ctx, "", opts)
}

func (c *Container) attach(ctx context.Context, exec string, opts AttachOptions) (*Stream, error) {
	_, conn, r, err := c.request(ctx, shim.Request{Op: shim.OpAttach, Exec: exec, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr})
	if err != nil {
		return nil, c.notRunning(err)
	}
	return &Stream{conn: conn, r: r}, nil
}

// Write writes to the process's stdin.
func (s *Stream) Write(p []byte) (int, error) { return s.conn.Write(p) }

// CloseStdin signals EOF on the process's stdin.
func (s *Stream) CloseStdin() error { return s.conn.CloseWrite() }

// Close detaches.
func (s *Stream) Close() error { return s.conn.Close() }

// Copy writes the process's output to stdout and stderr (either may be
// nil; with a terminal everything is stdout) until it ends, and returns nil
// at its end.
func (s *Stream) Copy(stdout, stderr io.Writer) error {
	var buf []byte
	for {
		stream, p, err := shim.ReadFrame(s.r, buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		buf = p[:0]
		w := stdout
		if stream == shim.StreamStderr {
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
	}
}
