// Package shim is the containers' supervisor, the `skiffd shim -` role.
// For each container it is handed, it starts the container's init in new
// namespaces, owns its stdio (pipes or the pty master) and the json-file
// log, reaps its children, records exits atomically in dir/state.json
// before reporting them, and serves a versioned control protocol on
// dir/shim.sock. It is detached from the daemon (own session, child
// subreaper, no parent-death signal), so containers and their logs live on
// while the daemon restarts. One process serves several containers, each
// as a *shim of its own (see supervisor).
//
// The shim never uses os/exec or os.Process.Wait: either would reap
// statuses the reaper must see. Children are started with syscall.ForkExec
// and registered under a lock; an exit that arrives before its pid is
// registered waits in a small map.
//
// Its fds on entry: 0, 1 and 2 /dev/null, 3 the sealed executable it was
// started from (closed at once: its own /proc/self/exe is that seal, and
// children are exec'd through it), 4 its control socket, on which
// containers come (supervisor). Each container comes with its own socket
// to the daemon, on which the shim writes one JSON line when the container
// is created or failed (ReadyMessage), and its directory, locked.
//
// A shim is started before its containers exist, so that a start pays
// only the hand-over, not the exec and the Go runtime's start-up. Until
// the first comes it holds nothing of any container, and it exits when
// the socket ends (the daemon closed its pool, stopped or died) with no
// container left. Once handed a container's dir, it opens dir/shim.log
// (the first container's is also its stderr), names dir in its command
// line, and goes on as above; it reads the spec while the daemon makes
// the container's cgroups, and waits for the line CgroupsReady before it
// uses them. While it waits for its next container it makes the
// container's network, IPC and UTS namespaces ahead on a thread of its
// own, which init is forked from (nsThread).
package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/fluentd"
	"skiffd/internal/runtime/gelf"
	"skiffd/internal/runtime/journald"
	"skiffd/internal/runtime/jsonlog"
	"skiffd/internal/runtime/nsinit"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// Fds the daemon passes to the shim.
const (
	SealFD  = 3
	ReadyFD = 4
)

// ReadyMessage is the line the shim writes on the ready pipe.
type ReadyMessage struct {
	Error string `json:"error,omitempty"`
	// Pid is init's pid (in the daemon's pid namespace), which stays
	// the entrypoint's after the start.
	Pid int `json:"pid,omitempty"`
	// Spans are how long the phases of the create took in the shim, in
	// nanoseconds by name, for the daemon's debug trace.
	Spans map[string]int64 `json:"spans,omitempty"`
	// Forked marks the line the shim writes before the ready one, as
	// soon as init exists in its namespaces (Pid is init's): the daemon
	// wires the container's network meanwhile, while init sets up its
	// root file system. The ready line (or the error) follows.
	Forked bool `json:"forked,omitempty"`
}

// shim is one running shim.
type shim struct {
	dir  string
	spec *spec.Spec
	log  *jsonlog.Writer
	// logOpts are what log was opened with, the connections of the
	// drivers that send elsewhere (syslog, gelf, fluentd, journald)
	// among them.
	logOpts jsonlog.Options
	cg      cgroups.Manager
	cgMode  string
	cgfd    int
	sigchld chan os.Signal
	// perChild: children are reaped one by one through pidfds, not
	// by the SIGCHLD loop (see startReaper).
	perChild bool
	spans    map[string]int64 // create's phases (ReadyMessage.Spans)
	sup      *supervisor      // the process's supervisor
	// ready is the container's socket to the daemon: the ready lines
	// (ReadyMessage) go out on it; handover reads it for the line
	// CgroupsReady, which the daemon sends once it has made the
	// container's cgroups (while the shim reads the spec), and then for
	// an abort of the create.
	ready    net.Conn
	handover *bufio.Reader
	// dirLock is the container's directory, exclusively flocked for as
	// long as the shim serves it (State.DirLock).
	dirLock *os.File
	// stderr is the container's shim.log.
	stderr *os.File
	// nst is a pre-started shim's thread in prepared namespaces, until
	// init is forked from it; nil without one.
	nst *nsThread

	mu    sync.Mutex
	state State
	init  *proc
	execs map[string]*proc
	pids  map[int]*proc // children to reap; nil value: discard the status
	early map[int]syscall.WaitStatus
	// inflight counts starts whose child pid is not registered yet; only
	// then is an unknown exit kept in early (else it is an orphan's).
	inflight int
	pidfd    int
	syncc    *nsinit.Conn // init's sync channel until it execs
	// cancelled: the daemon gave the create up (Abort).
	cancelled bool
	// watching: watchAbort reads ready, and closes it when the daemon
	// does.
	watching bool

	conns sync.WaitGroup
}

// Pooled is the argument that starts a pre-started shim: `skiffd shim -`.
const Pooled = "-"

// CgroupsReady is the line with which the daemon tells a pre-started shim
// that the container's cgroups exist.
const CgroupsReady = "cgroups"

// Main runs a pre-started shim (args[0] == Pooled, the only form): it
// waits for containers on its control socket and returns once that has
// ended and the containers it took are gone (see supervisor).
func Main(args []string) error {
	if len(args) != 1 || args[0] != Pooled {
		return errors.New("usage: skiffd shim -")
	}
	// Whatever else the daemon leaked to us (an fd it inherited without
	// close-on-exec, say a pipe of the shell that started it) would stay
	// open for the containers' lifetime; close it.
	if err := sys.CloseFrom(ReadyFD + 1); err != nil {
		return err
	}
	syscall.CloseOnExec(ReadyFD)
	syscall.Close(SealFD)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	if err := sys.Prctl(sys.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	return supervise()
}

// closeDrivers closes the log drivers' connections opts holds.
func closeDrivers(opts jsonlog.Options) {
	if opts.Syslog != nil {
		opts.Syslog.Close()
	}
	if opts.Gelf != nil {
		opts.Gelf.Close()
	}
	if opts.Fluentd != nil {
		opts.Fluentd.Close()
	}
	if opts.Journald != nil {
		opts.Journald.Close()
	}
}

// newShim makes the shim of the container in dir, handed over with its
// socket to the daemon (ready lines out, CgroupsReady in) and the
// directory's locked fd.
func newShim(dir string, conn net.Conn, lock *os.File, sup *supervisor) *shim {
	s := &shim{
		dir:      dir,
		sup:      sup,
		cgMode:   sup.cgMode,
		execs:    map[string]*proc{},
		pids:     map[int]*proc{},
		early:    map[int]syscall.WaitStatus{},
		pidfd:    -1,
		cgfd:     -1,
		sigchld:  make(chan os.Signal, 1),
		spans:    map[string]int64{},
		ready:    conn,
		handover: bufio.NewReader(conn),
		dirLock:  lock,
	}
	if f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o600); err == nil {
		s.stderr = f
	}
	return s
}

// run takes the container from its create to its end: it creates it,
// reports on the ready connection and serves it until it is gone.
func (s *shim) run() {
	defer s.release()
	ln, err := s.create()
	if s.nst != nil {
		// Unused (the create failed before the fork): end the thread,
		// and its namespaces with it.
		s.nst.close()
		s.nst = nil
	}
	msg := ReadyMessage{Spans: s.spans}
	if err == nil {
		msg.Pid = s.init.pid
	}
	if err != nil {
		// Leave nothing running behind a failed create.
		s.abort(err)
		msg.Error = err.Error()
	}
	b, _ := json.Marshal(msg)
	// A write that fails means the daemon died during the create: the
	// container is served all the same, and found by the next one.
	s.ready.Write(append(b, '\n'))
	if !s.watching {
		s.ready.Close() // else watchAbort closes it
	}
	go s.sup.prepareNext()
	s.sup.touch()
	if err != nil {
		s.logf("%v", err)
		return
	}
	s.serve(ln)
}

// release lets go of what the container held in the shim, the directory's
// lock last: a daemon waiting for it (Shutdown) then removes the
// directory and the cgroups.
func (s *shim) release() {
	s.mu.Lock()
	procs := make([]*proc, 0, 1+len(s.execs))
	if s.init != nil {
		procs = append(procs, s.init)
	}
	for _, p := range s.execs {
		procs = append(procs, p)
	}
	s.execs = nil
	if s.syncc != nil {
		s.syncc.Close()
		s.syncc = nil
	}
	if s.pidfd >= 0 {
		syscall.Close(s.pidfd)
		s.pidfd = -1
	}
	s.mu.Unlock()
	for _, p := range procs {
		p.closeFiles()
	}
	if s.cgfd >= 0 {
		syscall.Close(s.cgfd)
		s.cgfd = -1
	}
	if s.log != nil {
		s.log.Close() // a second close after serve's does nothing
	}
	closeDrivers(s.logOpts)
	if s.stderr != nil {
		s.stderr.Close()
	}
	s.dirLock.Close()
}

// logf writes a line to the container's shim.log.
func (s *shim) logf(format string, args ...any) {
	if s.stderr != nil {
		fmt.Fprintf(s.stderr, "skiffd shim: "+format+"\n", args...)
	}
}

// restorePriority gives every thread the normal scheduling policy back,
// for a shim started under SCHED_IDLE for the pool. The daemon did so
// before the hand-over; this catches threads started since, twice over
// for threads started by one still idle during the first pass.
func restorePriority() {
	for range 2 {
		sys.SchedSetschedulerAll(0, sys.SCHED_OTHER)
	}
}

// abort cleans up after a failed create: kill init if it is still there,
// wait for its exit and record it.
func (s *shim) abort(cause error) {
	if s.init == nil || s.init.pid == 0 {
		return
	}
	s.mu.Lock()
	s.state.Error = cause.Error()
	s.mu.Unlock()
	syscall.Kill(s.init.pid, syscall.SIGKILL)
	<-s.init.exited
}

// span records how long a phase of the create took and starts the next.
func (s *shim) span(name string, t0 *time.Time) {
	now := time.Now()
	s.spans[name] = int64(now.Sub(*t0))
	*t0 = now
}

// create reads the spec, starts init and waits until it is ready.
func (s *shim) create() (*net.UnixListener, error) {
	t0 := time.Now()
	b, err := os.ReadFile(filepath.Join(s.dir, SpecFile))
	if err != nil {
		return nil, err
	}
	sp := new(spec.Spec)
	if err := json.Unmarshal(b, sp); err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	s.spec = sp
	if err := s.startReaper(); err != nil {
		return nil, err
	}
	start, _ := sys.StartTime(os.Getpid())
	s.state = State{Version: ProtocolVersion, ID: sp.ID, ShimPid: os.Getpid(), ShimStart: start, Status: StatusCreated, DirLock: true}
	if sp.Log.Path != "" {
		opts := jsonlog.Options{MaxSize: sp.Log.MaxSize, MaxFiles: sp.Log.MaxFiles, Compress: sp.Log.Compress, Attrs: sp.Log.Attrs}
		if sp.Log.Syslog != nil {
			if opts.Syslog, err = dialSyslog(sp.Log.Syslog); err != nil {
				return nil, fmt.Errorf("failed to initialize logging driver: %w", err)
			}
		}
		if g := sp.Log.Gelf; g != nil {
			extra := make(map[string]any, len(g.Extra))
			for k, v := range g.Extra {
				extra[k] = v
			}
			if opts.Gelf, err = gelf.Dial(gelf.Config{Proto: g.Proto, Address: g.Address, Compression: g.Compression, Level: g.Level, Host: g.Host, Extra: extra}); err != nil {
				closeDrivers(opts)
				return nil, fmt.Errorf("failed to initialize logging driver: %w", err)
			}
		}
		if f := sp.Log.Fluentd; f != nil {
			if opts.Fluentd, err = fluentd.Dial(fluentd.Config{Network: f.Network, Address: f.Address, Tag: f.Tag, Record: f.Record,
				SubSecond: f.SubSecond, RequestAck: f.RequestAck, Async: f.Async, BufferLimit: int(f.BufferLimit),
				RetryWait: time.Duration(f.RetryWait), MaxRetries: f.MaxRetries, ReconnectInterval: time.Duration(f.ReconnectInterval),
				WriteTimeout: time.Duration(f.WriteTimeout), ReadTimeout: time.Duration(f.ReadTimeout)}); err != nil {
				closeDrivers(opts)
				return nil, fmt.Errorf("failed to initialize logging driver: %w", err)
			}
		}
		if j := sp.Log.Journald; j != nil {
			if opts.Journald, err = journald.Dial(j.Socket, j.Vars); err != nil {
				closeDrivers(opts)
				return nil, fmt.Errorf("failed to initialize logging driver: %w", err)
			}
		}
		if s.log, err = jsonlog.OpenWith(sp.Log.Path, opts); err != nil {
			closeDrivers(opts)
			return nil, err
		}
		s.logOpts = opts
	}
	s.span("shim.prepare", &t0)
	// The shim's work so far is off a start's critical path when this
	// wait is not nil.
	line, err := s.handover.ReadString('\n')
	if err != nil || line != CgroupsReady+"\n" {
		return nil, fmt.Errorf("waiting for the container's cgroups: %q, %v", line, err)
	}
	s.watching = true
	go s.watchAbort()
	s.span("shim.wait-cgroups", &t0)
	if s.cg = OpenCgroup(sp); s.cg != nil {
		if s.cgfd, err = s.cg.CgroupFD(); err != nil {
			return nil, err
		}
	}
	if err := s.startInit(&t0); err != nil {
		return nil, err
	}
	// The socket and the state file are made while init sets up: a
	// client that connects meanwhile waits in the backlog until serve.
	ln, err := s.listen()
	if err != nil {
		return nil, err
	}
	s.span("shim.listen+state", &t0)
	if err := s.awaitInit(&t0); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Abort is the line with which the daemon gives up a create it handed
// over (its request was cancelled, or it could not make the cgroups):
// the shim kills init, and the create fails.
const Abort = "abort"

// watchAbort waits for Abort on the container's socket, which the daemon
// closes once the create is over for it. An abort that comes after the
// ready line still kills init: the daemon has given the container up and
// removes what is left of it. The daemon's end closing is no abort: a
// daemon that dies during a create leaves the container to be found by
// the next one.
func (s *shim) watchAbort() {
	defer s.ready.Close()
	line, err := s.handover.ReadString('\n')
	if err != nil || line != Abort+"\n" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelled = true
	if s.pidfd >= 0 {
		sys.PidfdSendSignal(s.pidfd, syscall.SIGKILL)
	} else if s.state.InitPid > 0 && s.state.Status != StatusStopped {
		// No pidfd (an old kernel): by pid, while it is not reaped.
		syscall.Kill(s.state.InitPid, syscall.SIGKILL)
	}
}

// listen binds the control socket and writes the state file.
func (s *shim) listen() (*net.UnixListener, error) {
	addr, release, err := SocketAddr(s.dir)
	if err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(s.dir, SocketFile))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	release()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// The listener was bound through a /proc path when the real one is
	// too long; unlink by the real path on close.
	ln.SetUnlinkOnClose(false)
	s.mu.Lock()
	err = s.writeStateLocked()
	s.mu.Unlock()
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// childEnv is the environment of init and the exec helper (the process
// they exec gets its own, from its config). One P: each lives for a few
// milliseconds of sequential work on every start and exec, and a Go
// runtime told its GOMAXPROCS skips reading its cgroup limits
// (/proc/self/cgroup, mountinfo) and starts fewer threads, whose
// creation costs TLB shootdowns on every CPU.
var childEnv = []string{"GOMAXPROCS=1"}

// startInit forks `skiffd init` into the new namespaces, tells the daemon
// (the Forked line) and sends init its config; awaitInit then runs the
// handshake up to init's ready.
func (s *shim) startInit(t0 *time.Time) error {
	p, child, err := newProc("", &s.spec.Process, s.log)
	if p != nil {
		p.quiet = s.sup.touch
	}
	if err != nil {
		return err
	}
	defer child.close()
	parent, syncChild, err := nsinit.Socketpair()
	if err != nil {
		return err
	}
	defer syncChild.Close()
	s.syncc = nsinit.NewConn(parent)
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   childEnv,
		Files: []uintptr{child.stdin.Fd(), child.stdout.Fd(), child.stderr.Fd(), syncChild.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: nsinit.CloneFlags(s.spec, s.cgMode),
			PidFD:      &pidfd,
		},
	}
	if s.cgfd >= 0 {
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, s.cgfd
	}
	s.init = p
	// init is born in its cgroups when nothing there could stop init
	// itself: the v2 one through CgroupFD, the v1 ones because the thread
	// that forks it has entered them (a thread moving itself costs no RCU
	// grace period, where migrating init afterwards cost one per
	// hierarchy and stalled init's own thread starts meanwhile: several
	// milliseconds of every start on a v1 host). A container with a pids
	// or memory limit joins only once init is ready, as before: init's own
	// threads and memory must not count against limits meant for the
	// container (--pids-limit 5 would leave init's Go runtime no thread to
	// start). Its cgroup namespace is made only after go (nsinit), rooted
	// at the cgroup.
	early := s.cg != nil && joinEarly(s.spec)
	left, err := s.forkInit(p, attr, early)
	if err != nil {
		if left != nil {
			<-left
		}
		return fmt.Errorf("start init: %w", err)
	}
	s.mu.Lock()
	s.pidfd = pidfd
	cancelled := s.cancelled
	s.mu.Unlock()
	if cancelled {
		// The abort came before init's pid was known: through the
		// pidfd, which names init even if it has died and been reaped.
		if pidfd >= 0 {
			sys.PidfdSendSignal(pidfd, syscall.SIGKILL)
		} else {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	s.span("shim.fork-init", t0)
	child.close()
	syncChild.Close()
	initStart, _ := sys.StartTime(p.pid)
	s.mu.Lock()
	s.state.InitPid, s.state.InitStart = p.pid, initStart
	s.mu.Unlock()
	cfg := nsinit.InitConfig{Spec: s.spec, CgroupMode: s.cgMode}
	if s.cg != nil && s.cgMode != nsinit.CgroupV2 {
		cfg.CgroupMounts, cfg.CgroupLinks = cgroupMounts(s.cg)
	}
	err = s.syncc.Send(cfg, nil)
	<-left
	if err != nil {
		return err
	}
	// A write that fails means the daemon is gone; the ready line will
	// fail the same way.
	b, _ := json.Marshal(ReadyMessage{Pid: p.pid, Forked: true})
	s.ready.Write(append(b, '\n'))
	return nil
}

// awaitInit runs init's handshake up to its ready.
func (s *shim) awaitInit(t0 *time.Time) error {
	p := s.init
	late := s.cg != nil && !joinEarly(s.spec)
	for {
		var m nsinit.Message
		fd, err := s.syncc.Recv(&m)
		if err == io.EOF {
			return errors.New("container init exited before it was ready")
		}
		if err != nil {
			return err
		}
		switch m.Type {
		case nsinit.MsgPty:
			if fd == nil {
				return errors.New("init sent no terminal")
			}
			p.setMaster(fd)
		case nsinit.MsgError:
			return errors.New(m.Error)
		case nsinit.MsgReady:
			s.span("shim.init-setup", t0)
			for name, d := range m.Spans {
				s.spans[name] = d
			}
			if late {
				if err := s.cg.Apply(p.pid); err != nil {
					return err
				}
				s.span("shim.cgroup-apply", t0)
			}
			p.startCopiers()
			return nil
		default:
			return fmt.Errorf("unexpected message %q from init", m.Type)
		}
	}
}

// joinEarly reports whether init may join the container's cgroups while it
// sets up: when no limit there could stop init itself (pids, memory).
func joinEarly(sp *spec.Spec) bool {
	if sp.Cgroup == nil {
		return true
	}
	r := sp.Cgroup.Resources
	return r.PidsLimit <= 0 && r.Memory <= 0 && r.MemorySwap <= 0
}

// forkInit starts init. Namespaces the container joins (a Path in the
// spec: --network container:x and the like) and, with enterCgroups, the
// container's v1 cgroups are entered first by a locked thread, which then
// forks init into them; that thread is never unlocked, so the runtime
// retires it instead of reusing it elsewhere. A pre-started shim forks
// from its prepared thread (nsThread), whose namespaces init inherits.
//
// A shim thread left in the container's v1 cgroups would list the shim
// among its processes. The prepared thread ends right after the fork,
// which takes it out of them (within microseconds of left being closed,
// long before init is ready); another thread, which may be the main one
// (the runtime cannot end that), moves back out after the fork, while
// init starts and is sent its config, and left is closed once it has.
// init's start is reported only after left.
func (s *shim) forkInit(p *proc, attr *syscall.ProcAttr, enterCgroups bool) (left <-chan struct{}, err error) {
	leftc := make(chan struct{})
	var joins []*os.File
	defer func() {
		for _, f := range joins {
			f.Close()
		}
	}()
	for _, n := range s.spec.Namespaces {
		if n.Path == "" {
			continue
		}
		f, err := os.Open(n.Path)
		if err != nil {
			return nil, fmt.Errorf("open %s namespace: %w", n.Type, err)
		}
		joins = append(joins, f)
	}
	nst := s.nst
	s.nst = nil
	if nst == nil && len(joins) == 0 && !enterCgroups {
		close(leftc)
		_, err := s.fork(p, "init", attr)
		return leftc, err
	}
	errc := make(chan error, 1)
	work := func() {
		defer close(leftc)
		leave, err := s.forkInitLocked(p, attr, nst, joins, enterCgroups)
		errc <- err
		if leave != nil && nst == nil {
			if err := leave(); err != nil {
				s.logf("%v", err)
			}
		}
	}
	if nst != nil {
		nst.run(work)
	} else {
		go func() {
			runtime.LockOSThread()
			work()
		}()
	}
	return leftc, <-errc
}

// forkInitLocked is forkInit's work on its locked thread. It returns how
// to leave the cgroups it entered.
func (s *shim) forkInitLocked(p *proc, attr *syscall.ProcAttr, nst *nsThread, joins []*os.File, enterCgroups bool) (leave func() error, err error) {
	t0 := time.Now()
	if nst != nil {
		kept, err := nst.fit(s.spec)
		if err != nil {
			return nil, err
		}
		attr.Sys.Cloneflags &^= kept
	}
	if enterCgroups {
		if leave, err = s.cg.EnterThread(); err != nil {
			return nil, err
		}
		s.span("shim.enter-cgroups", &t0)
	}
	for _, f := range joins {
		if err := sys.Setns(int(f.Fd()), 0); err != nil {
			return leave, fmt.Errorf("join namespace %s: %w", f.Name(), err)
		}
	}
	_, err = s.fork(p, "init", attr)
	s.span("shim.clone", &t0)
	return leave, err
}

// forkExecHelper starts the exec helper in the container's cgroups, which
// the target it forks inherits: v2 through CgroupFD, v1 because the
// forking thread enters them for the fork (see forkInit).
func (s *shim) forkExecHelper(attr *syscall.ProcAttr) (int, error) {
	if s.cg == nil {
		return s.fork(nil, "exec-helper", attr)
	}
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		leave, err := s.cg.EnterThread()
		if err != nil {
			ch <- result{0, err}
			return
		}
		pid, err := s.fork(nil, "exec-helper", attr)
		if lerr := leave(); lerr != nil {
			s.logf("%v", lerr)
		}
		ch <- result{pid, err}
	}()
	r := <-ch
	return r.pid, r.err
}

// fork starts the sealed binary (our own /proc/self/exe) in role and
// registers the child for the reaper before it can be reaped unnoticed.
func (s *shim) fork(p *proc, role string, attr *syscall.ProcAttr) (int, error) {
	s.beginStart()
	defer s.endStart()
	// argv[0] is what ps -ef shows until the user's process is exec'd.
	argv0 := "skiffd-init"
	if role != "init" {
		argv0 = "skiffd-exec"
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{argv0, role}, attr)
	if err != nil {
		return 0, err
	}
	if p != nil {
		p.pid = pid
	}
	s.register(pid, p)
	return pid, nil
}

// beginStart and endStart bracket the start of a child until its pid is
// registered. Exits of unknown pids are kept for registration only while
// a start is under way; when none is, the early exits are orphans' (they
// were re-parented to the subreaper) and are dropped, so that a stale one
// cannot be matched to a later child that reuses its pid.
func (s *shim) beginStart() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

func (s *shim) endStart() {
	s.mu.Lock()
	s.inflight--
	if s.inflight == 0 {
		clear(s.early)
	}
	s.mu.Unlock()
}

// register hands pid's exit to p (nil: discard it), at once if the
// reaper already collected it.
func (s *shim) register(pid int, p *proc) {
	s.mu.Lock()
	ws, early := s.early[pid]
	if early {
		delete(s.early, pid)
	} else {
		s.pids[pid] = p
	}
	s.mu.Unlock()
	if early && p != nil {
		s.exited(p, ws)
	}
	if !early && s.perChild {
		s.watchChild(pid)
	}
}

// exited records a process's exit: for init, in the state file first,
// then wakes the waiters.
func (s *shim) exited(p *proc, ws syscall.WaitStatus) {
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	st := ExitStatus{Code: code, ExitedAt: time.Now().UTC()}
	if p == s.init {
		if s.cg != nil {
			st.OOMKilled, _ = s.cg.OOMKilled()
		}
		s.mu.Lock()
		s.state.Status = StatusStopped
		s.state.ExitCode = st.Code
		s.state.OOMKilled = st.OOMKilled
		s.state.FinishedAt = st.ExitedAt
		st.Error = s.state.Error
		if s.pidfd >= 0 {
			syscall.Close(s.pidfd)
			s.pidfd = -1
		}
		if err := s.writeStateLocked(); err != nil {
			s.logf("record exit: %v", err)
		}
		// Execs never started now never will (startExec needs the pidfd
		// closed above): fail them, which releases their waiters and
		// attached clients. A daemon that died between attaching to an
		// exec and starting it left such a client behind.
		type unstarted struct {
			p     *proc
			child *childStdio
		}
		var never []unstarted
		for _, x := range s.execs {
			if !x.started && x.child != nil {
				never = append(never, unstarted{x, x.child})
				x.child = nil
			}
		}
		s.mu.Unlock()
		p.setExit(st)
		for _, x := range never {
			x.child.close()
			x.p.fail(errors.New("the container exited before the exec started"))
		}
		return
	}
	p.setExit(st)
}

// writeStateLocked records s.state for the daemon; s.mu is held. The file
// is replaced atomically, so a daemon that restarts reads the old state or
// the new, but not fsync'ed: it describes processes, which do not outlive
// the kernel (the exec root is tmpfs on a normal host), and a state file
// lost or torn by a power loss reads as a container whose shim is gone.
func (s *shim) writeStateLocked() error {
	b, err := json.Marshal(&s.state)
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(s.dir, StateFile), b, 0o600)
}

func decodeState(b []byte) (*State, error) {
	st := new(State)
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("read shim state: %w", err)
	}
	return st, nil
}

// serve answers control requests until the container is gone: init has
// exited, its output is logged and delivered, and no exec'd process is
// left; or a created container was deleted.
func (s *shim) serve(ln *net.UnixListener) error {
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer s.conns.Done()
				s.handle(c)
			}()
		}
	}()
	watch := s.watchDir()
	defer func() {
		// In the background: closing an inotify instance waits for the
		// kernel to destroy its marks, a grace period that no one waiting
		// for the container's release should wait for.
		if watch != nil {
			go watch.Close()
		}
	}()
	<-s.init.exited
	if s.cg != nil && !s.ownPidNamespace() {
		// In a pid namespace of its own, the container's processes die
		// with its init. Sharing one (--pid host, --pid container:x),
		// they would live on and hold the output pipes: kill them, as
		// containerd does.
		if err := s.cg.Kill(); err != nil {
			s.logf("kill the processes left after init: %v", err)
		}
	}
	s.init.waitDrained(drainIdle, drainMax)
	s.mu.Lock()
	execs := make([]*proc, 0, len(s.execs))
	for _, p := range s.execs {
		execs = append(execs, p)
	}
	s.mu.Unlock()
	// Execs died with the container's processes (or, never started,
	// failed when init exited); what they wrote is passed on as init's
	// is. One that escaped both is left behind rather than waited for.
	t := time.NewTimer(drainMax)
	defer t.Stop()
	for _, p := range execs {
		select {
		case <-p.exited:
			p.waitDrained(drainIdle, drainMax)
		case <-t.C:
		}
	}
	ln.Close()
	os.Remove(filepath.Join(s.dir, SocketFile))
	// The exit is recorded; the requests in flight (waits for it above
	// all) get a moment to answer. A client that sent no request, or an
	// attached one that does not read, does not keep the shim.
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drainIdle):
	}
	if s.log != nil {
		s.log.Close()
	}
	return nil
}

// How long the shim waits, after its container's exit, for output still on
// its way: drainIdle without any output moving, drainMax in all.
const (
	drainIdle = 2 * time.Second
	drainMax  = 30 * time.Second
)

// ownPidNamespace reports whether the container has a pid namespace of its
// own (not the host's nor another container's).
func (s *shim) ownPidNamespace() bool {
	for _, n := range s.spec.Namespaces {
		if n.Type == spec.PIDNamespace {
			return n.Path == ""
		}
	}
	return false
}

// watchDir kills the container when its directory is removed: nobody can
// reach, record or delete it any more (a daemon gone and its exec root
// wiped under it), and a shim and container left so would run for ever.
// The shim then leaves as after any exit.
//
// The parent directory is watched for the removal: the directory's own
// IN_DELETE_SELF comes only once nothing pins it, and our open shim.log
// (stderr) does until the shim exits.
//
// It returns the inotify instance, which the caller closes once the
// container is gone, or nil.
func (s *shim) watchDir() *os.File {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "inotify")
	go s.awaitDirGone(f, fd)
	return f
}

func (s *shim) awaitDirGone(f *os.File, fd int) {
	parent := filepath.Dir(filepath.Clean(s.dir))
	const mask = syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR
	gone := func() bool {
		_, err := os.Lstat(s.dir)
		return errors.Is(err, os.ErrNotExist)
	}
	if _, err := syscall.InotifyAddWatch(fd, parent, mask); err == nil {
		// Every event (another container's directory going, ours, the
		// parent's own end) is followed by a look at ours, so one event
		// a read is enough: the buffer, held for the container's
		// lifetime, fits the largest (issue 13).
		buf := make([]byte, syscall.SizeofInotifyEvent+syscall.NAME_MAX+1)
		for !gone() {
			if _, err := f.Read(buf); err != nil {
				return
			}
		}
	} else if !gone() {
		return
	}
	s.logf("%s was removed: killing the container", s.dir)
	s.mu.Lock()
	if s.pidfd >= 0 {
		sys.PidfdSendSignal(s.pidfd, syscall.SIGKILL)
	}
	s.mu.Unlock()
}

// handle serves one connection: one request, one response, and for
// attach the streams.
func (s *shim) handle(c *net.UnixConn) {
	defer c.Close()
	defer s.sup.touch()
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(c, &Response{Error: "bad request: " + err.Error(), Kind: KindInvalid})
		return
	}
	if req.Version > ProtocolVersion {
		writeResponse(c, &Response{Error: fmt.Sprintf("shim protocol version %d is not supported (shim speaks %d)", req.Version, ProtocolVersion), Kind: KindInvalid})
		return
	}
	switch req.Op {
	case OpState:
		s.mu.Lock()
		st := s.state
		s.mu.Unlock()
		writeResponse(c, &Response{State: &st})
	case OpStart:
		pid, err := s.start(req.Exec)
		writeResponse(c, errResponse(err, &Response{Pid: pid}))
	case OpExec:
		writeResponse(c, errResponse(s.addExec(req.Exec, req.Process), &Response{}))
	case OpAttach:
		p, err := s.lookup(req.Exec)
		if err != nil {
			writeResponse(c, errResponse(err, nil))
			return
		}
		p.attach(c, r, req.Stdin, req.Stdout, req.Stderr)
	case OpKill:
		writeResponse(c, errResponse(s.kill(req.Exec, syscall.Signal(req.Signal)), &Response{}))
	case OpWait:
		p, err := s.lookup(req.Exec)
		if err != nil {
			writeResponse(c, errResponse(err, nil))
			return
		}
		<-p.exited
		// The exit is answered once the output is in the log and sent to
		// the attached clients, as dockerd reports an exit once its
		// copiers are done (waiting as long as it does, two seconds, for
		// output a leftover process keeps open): a logs -f follower
		// ends at the exit, and a docker logs after docker wait reads
		// the log.
		p.awaitOutput(drainIdle)
		st := p.exitStatus()
		writeResponse(c, &Response{Exit: &st})
	case OpResize:
		p, err := s.lookup(req.Exec)
		if err == nil {
			err = p.resize(req.Height, req.Width)
		}
		writeResponse(c, errResponse(err, &Response{}))
	case OpDelete:
		writeResponse(c, errResponse(s.delete(req.Exec), &Response{}))
	default:
		writeResponse(c, &Response{Error: "unknown operation " + req.Op, Kind: KindInvalid})
	}
}

// kindError is an error with a protocol error kind.
type kindError struct {
	kind string
	msg  string
}

func (e *kindError) Error() string { return e.msg }

func errResponse(err error, ok *Response) *Response {
	if err == nil {
		if ok == nil {
			ok = &Response{}
		}
		return ok
	}
	r := &Response{Error: err.Error()}
	var ke *kindError
	if errors.As(err, &ke) {
		r.Kind = ke.kind
	}
	return r
}

func writeResponse(c net.Conn, r *Response) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

func (s *shim) lookup(exec string) (*proc, error) {
	if exec == "" {
		return s.init, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.execs[exec]
	if !ok {
		return nil, &kindError{KindNotFound, fmt.Sprintf("No such exec instance: %s", exec)}
	}
	return p, nil
}

// start starts init (exec == "") or an exec'd process and returns its pid.
func (s *shim) start(exec string) (int, error) {
	if exec != "" {
		return s.startExec(exec)
	}
	s.mu.Lock()
	if s.state.Status != StatusCreated || s.syncc == nil {
		s.mu.Unlock()
		return 0, &kindError{KindConflict, "container is already started"}
	}
	conn := s.syncc
	s.syncc = nil
	s.mu.Unlock()
	defer conn.Close()
	if err := conn.Send(nsinit.Message{Type: nsinit.MsgGo}, nil); err != nil {
		return 0, fmt.Errorf("start container: %w", err)
	}
	var m nsinit.Message
	_, err := conn.Recv(&m)
	if err == nil && m.Type == nsinit.MsgError {
		err = errors.New(m.Error)
	} else if err == io.EOF {
		err = nil // init exec'd: its end of the socket was close-on-exec
	}
	s.mu.Lock()
	if err != nil {
		s.state.Error = err.Error()
		s.mu.Unlock()
		syscall.Kill(s.init.pid, syscall.SIGKILL)
		<-s.init.exited
		return 0, err
	}
	if s.state.Status == StatusCreated {
		s.state.Status = StatusRunning
		s.state.StartedAt = time.Now().UTC()
		err = s.writeStateLocked()
	}
	s.mu.Unlock()
	return s.init.pid, err
}

// kill signals init (through its pidfd) or an exec'd process. A process
// not yet reaped keeps its pid, so signalling it by pid is safe while the
// reaper has not collected it.
func (s *shim) kill(exec string, sig syscall.Signal) error {
	p, err := s.lookup(exec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.pid == 0 || s.pids[p.pid] != p {
		if p == s.init {
			return &kindError{KindConflict, fmt.Sprintf("Container %s is not running", s.spec.ID)}
		}
		return &kindError{KindConflict, fmt.Sprintf("exec %s is not running", p.id)}
	}
	if p == s.init && s.pidfd >= 0 {
		return sys.PidfdSendSignal(s.pidfd, sig)
	}
	return syscall.Kill(p.pid, sig)
}

// delete removes an exec'd process, or ends the shim for a created or
// stopped container.
func (s *shim) delete(exec string) error {
	if exec != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		p, ok := s.execs[exec]
		if !ok {
			return &kindError{KindNotFound, fmt.Sprintf("No such exec instance: %s", exec)}
		}
		if p.started && !p.hasExited() {
			return &kindError{KindConflict, "exec process is running"}
		}
		if !p.started && p.child != nil {
			// (Without its child stdio it was failed when init exited.)
			p.child.close()
			p.child = nil
			p.fail(errors.New("deleted before it started"))
		}
		delete(s.execs, exec)
		return nil
	}
	s.mu.Lock()
	status := s.state.Status
	s.mu.Unlock()
	if status == StatusRunning && !s.init.hasExited() {
		return &kindError{KindConflict, "container is running: stop it before removing"}
	}
	if !s.init.hasExited() {
		syscall.Kill(s.init.pid, syscall.SIGKILL)
		<-s.init.exited
	}
	return nil
}

// addExec registers an exec'd process, to be started with start.
func (s *shim) addExec(id string, ps *spec.Process) error {
	if id == "" || ps == nil {
		return &kindError{KindInvalid, "exec needs an id and a process"}
	}
	if err := ps.Validate(); err != nil {
		return &kindError{KindInvalid, err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Status != StatusRunning || s.init.hasExited() {
		return &kindError{KindConflict, fmt.Sprintf("container %s is not running", s.spec.ID)}
	}
	if _, ok := s.execs[id]; ok {
		return &kindError{KindConflict, fmt.Sprintf("exec %s already exists", id)}
	}
	p, child, err := newProc(id, ps, nil)
	if p != nil {
		p.quiet = s.sup.touch
	}
	if err != nil {
		return err
	}
	p.child = child
	s.execs[id] = p
	return nil
}

// startExec runs the exec helper, which joins the container and forks the
// target as our child.
func (s *shim) startExec(id string) (int, error) {
	p, err := s.lookup(id)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if p.started {
		s.mu.Unlock()
		return 0, &kindError{KindConflict, fmt.Sprintf("exec %s is already running", id)}
	}
	if s.init.hasExited() || s.pidfd < 0 {
		s.mu.Unlock()
		return 0, &kindError{KindConflict, fmt.Sprintf("container %s is not running", s.spec.ID)}
	}
	p.started = true
	s.inflight++ // until the target's pid is registered (endStart below)
	child := p.child
	p.child = nil
	pidfd, err := syscall.Dup(s.pidfd)
	s.mu.Unlock()
	defer s.endStart()
	defer child.close()
	if err != nil {
		p.fail(err)
		return 0, err
	}
	defer syscall.Close(pidfd)
	parent, syncChild, err := nsinit.Socketpair()
	if err != nil {
		return 0, err
	}
	conn := nsinit.NewConn(parent)
	defer conn.Close()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   childEnv,
		Files: []uintptr{child.stdin.Fd(), child.stdout.Fd(), child.stderr.Fd(), syncChild.Fd(), uintptr(pidfd)},
		Sys:   &syscall.SysProcAttr{},
	}
	if s.cgfd >= 0 {
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, s.cgfd
	}
	_, err = s.forkExecHelper(attr)
	syncChild.Close()
	child.close()
	if err != nil {
		p.fail(err)
		return 0, fmt.Errorf("start exec helper: %w", err)
	}
	var nss []string
	for _, n := range s.spec.Namespaces {
		nss = append(nss, n.Type)
	}
	if err := conn.Send(nsinit.ExecConfig{Process: p.spec, Namespaces: nss, Seccomp: s.spec.Seccomp}, nil); err != nil {
		p.fail(err)
		return 0, err
	}
	for {
		var m nsinit.Message
		fd, err := conn.Recv(&m)
		if err == io.EOF {
			err = errors.New("exec helper exited")
		}
		if err != nil {
			p.fail(err)
			return 0, err
		}
		switch m.Type {
		case nsinit.MsgPty:
			if fd != nil {
				p.setMaster(fd)
			}
		case nsinit.MsgError:
			err := errors.New(m.Error)
			p.fail(err)
			return 0, err
		case nsinit.MsgPid:
			p.pid = m.Pid
			p.startCopiers()
			s.register(m.Pid, p)
			return m.Pid, nil
		}
	}
}
