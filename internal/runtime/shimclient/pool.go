package shimclient

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/runtime/shim"
	"skiffd/internal/sys"
)

// poolSize is how many fresh pre-started shims wait for a container when
// the shared shim has no room left to spare. One covers `docker run` after
// `docker run`; a burst of concurrent starts finds the pool empty and
// starts shims as before. While the shared shim can take two more, none
// waits: the next container goes there, and a shim started for nothing
// would cost its memory (a container that cannot share starts one then).
const poolSize = 1

// shareMax is how many containers one shim process takes in its life. A
// shim serves many containers in one process (see shim's supervisor):
// one more container costs its state, a process of its own some 0.9 MiB
// more. The cap bounds what one shim's crash takes down (the containers
// it serves lose their log capture and exit reporting: the daemon finds
// them orphaned and kills them) and how long one process lives under a
// churn of short containers; after it, the shim takes no more and exits
// with its last container.
const shareMax = 16

// pool keeps pre-started shims (`skiffd shim -`): the sealed binary
// already exec'd and its Go runtime up, each waiting on its control
// socket for the containers it is to run. A start then pays only the
// hand-over. Containers that may share a shim go to the shared one while
// it has room; the others, and the shareable one after the shared shim
// is full, take a fresh one. A waiting shim holds no container state; a
// shim exits once its control socket has ended (when it is full, the
// pool is closed or the daemon stops or dies: the kernel closes the
// daemon's end) and its containers are gone, so none is left behind.
//
// Lock order: pool.mu is a leaf.
type pool struct {
	// start starts a shim; background ones start at a low priority.
	start func(background bool) (*warmShim, error)

	mu      sync.Mutex
	idle    []*warmShim
	shared  *warmShim // takes shareable containers; nil: the next one starts it
	closed  bool
	filling bool
	fills   sync.WaitGroup
}

// warmShim is a started shim.
type warmShim struct {
	p *os.Process
	// ctl is the daemon's end of the shim's control socket (fd 4 in the
	// shim, SOCK_SEQPACKET): each container goes out as one message.
	ctl    *net.UnixConn
	exited chan struct{}
	// idle: started under SCHED_IDLE (startIdle).
	idle bool

	// Under pool.mu: taken counts the containers handed to it, users
	// the hand-overs under way; once retired, it takes no more, and ctl
	// is closed when the last hand-over is done.
	taken, users int
	retired      bool
}

func (w *warmShim) hasExited() bool {
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

// discard ends a shim that got no container and waits for it to go.
func (w *warmShim) discard(timeout time.Duration) {
	w.ctl.Close()
	select {
	case <-w.exited:
	case <-time.After(timeout):
		w.p.Kill()
	}
}

// get returns the shim to hand a container to: the shared one for a
// shareable container while it has room, else a waiting one, or one
// started now when none waits (which, for a shareable container, becomes
// the shared one). The caller hands the container over and then calls
// put, or drop if the shim turned out dead.
func (p *pool) get(shareable bool) (*warmShim, error) {
	p.mu.Lock()
	if w := p.shared; shareable && w != nil {
		if !w.hasExited() {
			p.takeLocked(w, true)
			p.mu.Unlock()
			return w, nil
		}
		p.shared = nil
		p.retireLocked(w)
	}
	var w *warmShim
	for len(p.idle) > 0 && w == nil {
		w = p.idle[0]
		p.idle = p.idle[1:]
		if w.hasExited() {
			// Died waiting (killed by someone): take the next.
			w.ctl.Close()
			w = nil
		}
	}
	p.mu.Unlock()
	if w == nil {
		var err error
		if w, err = p.start(false); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	p.takeLocked(w, shareable)
	p.mu.Unlock()
	return w, nil
}

// takeLocked counts a hand-over to w, making it the shared shim (or
// keeping it so) when shareable and it has room, and retiring it when it
// is not to take more.
func (p *pool) takeLocked(w *warmShim, shareable bool) {
	w.users++
	w.taken++
	if !shareable || p.closed || w.taken >= shareMax {
		if p.shared == w {
			p.shared = nil
		}
		w.retired = true
		return
	}
	if p.shared != w {
		if old := p.shared; old != nil {
			p.retireLocked(old)
		}
		p.shared = w
	}
}

// retireLocked has w take no more containers: its control socket is
// closed now, or by the last hand-over under way (put).
func (p *pool) retireLocked(w *warmShim) {
	w.retired = true
	if w.users == 0 {
		w.ctl.Close()
	}
}

// put ends a hand-over to w.
func (p *pool) put(w *warmShim) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.users--
	if w.retired && w.users == 0 {
		w.ctl.Close()
	}
}

// drop ends a hand-over to a shim that did not take it: it is dead, or
// dying; it takes no more.
func (p *pool) drop(w *warmShim) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shared == w {
		p.shared = nil
	}
	w.users--
	p.retireLocked(w)
}

// roomyLocked reports whether the shared shim can take two more
// containers: the next one, and the one after, while a fresh shim starts.
func (p *pool) roomyLocked() bool {
	w := p.shared
	return w != nil && !w.hasExited() && shareMax-w.taken >= 2
}

// refill starts shims in the background until the pool is full again.
func (p *pool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.filling || len(p.idle) >= poolSize || p.roomyLocked() {
		return
	}
	p.filling = true
	p.fills.Add(1)
	go func() {
		defer p.fills.Done()
		for {
			w, err := p.start(true)
			p.mu.Lock()
			if err != nil || p.closed {
				p.filling = false
				p.mu.Unlock()
				if w != nil {
					w.discard(5 * time.Second)
				}
				return
			}
			p.idle = append(p.idle, w)
			if len(p.idle) >= poolSize {
				p.filling = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
	}()
}

// close ends the waiting shims and waits for them to exit; the shared
// one takes no more containers and goes on serving those it has.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	if w := p.shared; w != nil {
		p.shared = nil
		p.retireLocked(w)
	}
	p.mu.Unlock()
	p.fills.Wait()
	for _, w := range idle {
		w.discard(5 * time.Second)
	}
}

// startShim starts `skiffd shim -` from the seal, detached, with the
// shim's environment; it waits on fd 4 for its container. A background
// one, for the pool, starts at a low priority (see startLowPriority).
func (r *Runtime) startShim(background bool) (*warmShim, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	child := os.NewFile(uintptr(fds[1]), "shim")
	defer child.Close()
	cf := os.NewFile(uintptr(fds[0]), "shim")
	c, err := net.FileConn(cf)
	cf.Close()
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	conn := c.(*net.UnixConn)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer null.Close()
	attr := &os.ProcAttr{
		Dir:   "/",
		Env:   shimEnv,
		Files: []*os.File{null, null, null, r.seal.File(), child},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	path, argv := "/proc/self/fd/"+fmt.Sprint(shim.SealFD), []string{"skiffd-shim", "shim", shim.Pooled}
	var p *os.Process
	if background {
		p, err = startIdle(path, argv, attr)
	} else {
		p, err = os.StartProcess(path, argv, attr)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start shim: %w", err)
	}
	w := &warmShim{p: p, ctl: conn, exited: make(chan struct{}), idle: background}
	// The shim outlives us; reap it if it exits while we are around.
	reapWhenExited(p, w.exited)
	return w, nil
}

// reapWhenExited reaps p, our child, once it exits and then closes
// exited. It waits on a pidfd through the runtime's poller, so a shim
// that runs for weeks holds no OS thread of the daemon: os.Process.Wait
// blocks a thread in waitid for as long (issue 13: 50 running
// containers kept 50 daemon threads, some 125 KiB of the daemon's memory
// each with their stacks). Where pidfds are missing, a blocking wait.
func reapWhenExited(p *os.Process, exited chan struct{}) {
	go func() {
		sys.WaitChild(p.Pid)
		close(exited)
	}()
}

// startIdle starts a process under SCHED_IDLE: a shim starting up for the
// pool must not compete with the start it follows, nor on a small machine
// with the exit that comes next; it uses only time nobody else wants. A
// scheduling policy belongs to a thread and a child inherits its forking
// thread's, so a locked thread takes SCHED_IDLE for the fork, and all the
// child's threads have it from the start. The hand-over takes it away
// again (boost). A daemon that does not run under SCHED_OTHER starts its
// shims as it runs.
func startIdle(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if pol, err := sys.SchedGetscheduler(0); err != nil || pol != sys.SCHED_OTHER || sys.SchedSetscheduler(0, sys.SCHED_IDLE) != nil {
			runtime.UnlockOSThread()
			p, err := os.StartProcess(path, argv, attr)
			ch <- result{p, err}
			return
		}
		p, err := os.StartProcess(path, argv, attr)
		// A thread that cannot get its policy back is not returned to the
		// runtime: it ends with this goroutine.
		if sys.SchedSetscheduler(0, sys.SCHED_OTHER) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// boost gives a shim started by startIdle the normal policy back before
// it is handed its container, so that the start does not wait for idle
// time; the shim does the same for threads this misses.
func (w *warmShim) boost() {
	if w.idle {
		sys.SchedSetschedulerAll(w.p.Pid, sys.SCHED_OTHER)
	}
}
