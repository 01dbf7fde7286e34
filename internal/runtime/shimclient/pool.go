package shimclient

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/runtime/shim"
	"skiffd/internal/sys"
)

// poolSize is how many pre-started shims wait for a container. One covers
// `docker run` after `docker run`; a burst of concurrent starts finds the
// pool empty and starts shims as before.
const poolSize = 1

// pool keeps pre-started shims (`skiffd shim -`): the sealed binary
// already exec'd and its Go runtime up, each waiting on a socket for the
// directory of the container it is to run. A start then pays only the
// hand-over. A waiting shim holds no container state; it exits when its
// socket ends, that is when the pool is closed or the daemon stops or
// dies (the kernel closes the daemon's end), so none is left behind.
//
// Lock order: pool.mu is a leaf.
type pool struct {
	// start starts a shim; background ones start at a low priority.
	start func(background bool) (*warmShim, error)

	mu      sync.Mutex
	idle    []*warmShim
	closed  bool
	filling bool
	fills   sync.WaitGroup
}

// warmShim is a started shim waiting for its container.
type warmShim struct {
	p *os.Process
	// conn is the daemon's end of the shim's socket (fd 4 in the shim):
	// the directory goes out on it, the ready line comes back.
	conn   *os.File
	exited chan struct{}
	// idle: started under SCHED_IDLE (startIdle).
	idle bool
}

// discard ends a shim that got no container and waits for it to go.
func (w *warmShim) discard(timeout time.Duration) {
	w.conn.Close()
	select {
	case <-w.exited:
	case <-time.After(timeout):
		w.p.Kill()
	}
}

// get returns a waiting shim, or starts one when none waits, and has the
// pool refilled by the caller's refill once its start is done.
func (p *pool) get() (*warmShim, error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		w := p.idle[0]
		p.idle = p.idle[1:]
		select {
		case <-w.exited:
			// Died waiting (killed by someone): take the next.
			w.conn.Close()
			continue
		default:
		}
		p.mu.Unlock()
		return w, nil
	}
	p.mu.Unlock()
	return p.start(false)
}

// refill starts shims in the background until the pool is full again.
func (p *pool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.filling || len(p.idle) >= poolSize {
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

// close ends the waiting shims and waits for them to exit.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
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
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	// Our end is non-blocking, so that the poller serves it and closing
	// it ends a read in progress.
	syscall.SetNonblock(fds[0], true)
	conn, child := os.NewFile(uintptr(fds[0]), "shim"), os.NewFile(uintptr(fds[1]), "shim")
	defer child.Close()
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
	w := &warmShim{p: p, conn: conn, exited: make(chan struct{}), idle: background}
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
