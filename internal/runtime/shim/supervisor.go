package shim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/memtrim"
	"skiffd/internal/sys"
)

// A pre-started shim is a supervisor: the daemon hands it containers, one
// message each on its control socket (fd 4, SOCK_SEQPACKET), and it runs
// each as a shim of its own (a *shim) in the one process, until the
// daemon closes the socket; it exits once the last of them is gone. One
// Go process per container cost some 0.9 MiB each before the container
// did anything (the runtime, its threads, the binary's writable data),
// where one more container in a running process costs its own state only
// (issue 13).
//
// The daemon decides how many containers a supervisor takes: only those
// whose orphans cannot come to us (a pid namespace of their own, reaped
// child by child through pidfds, see startReaper) are put together, and
// at most a few at a time, which bounds what a crash of one supervisor
// takes down. A container sharing a pid namespace gets one for itself.
//
// Each container keeps what the daemon and a daemon restarted later talk
// to: its own control socket, state file, log and shim.log in its
// directory, and an exclusive flock on the directory for as long as it is
// served (State.DirLock), taken by the daemon before the hand-over and
// passed along with it, so that it is held without a gap.
type supervisor struct {
	ctl    *net.UnixConn
	cgMode string
	pidfds bool // the kernel has pidfd_open (startReaper)

	mu sync.Mutex
	// nst is the thread prepared for the next container (nil: none
	// ready; that container's init gets the namespaces at the fork).
	nst       *nsThread
	preparing bool
	taken     int  // containers handed over so far
	exclusive bool // a container that needs the process for itself is here
	dirs      []string
	args      sys.ArgArea
	wg        sync.WaitGroup

	// quiet drops the binary's pages from the process's page tables
	// once a second has passed without a request, a create or output
	// (memtrim: a supervisor mostly sleeps, and what its start-up and its
	// last piece of work touched stayed mapped, some 8 MiB, though it
	// runs a few pages while it waits). It never forces a collection:
	// a shim's first ones cost more runtime metadata than they return.
	quiet *memtrim.Trimmer
}

// shimQuiet is how long a supervisor waits after its last piece of work
// before it drops the binary's pages.
const shimQuiet = time.Second

// handoverMsg is one container sent on the control socket: the directory
// as the message, the container's own socket and the locked directory as
// its rights, in that order.
const handoverFDs = 2

// supervise runs a pre-started shim: it waits for containers on fd 4 and
// returns once the socket has ended and every container it took is gone.
func supervise() error {
	f := os.NewFile(ReadyFD, "control")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	ctl, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return errors.New("control socket: not a unix socket")
	}
	sup := &supervisor{ctl: ctl, cgMode: CgroupMode(), pidfds: sys.PidfdsWork(),
		quiet: &memtrim.Trimmer{Quiet: shimQuiet, Reclaimable: func() uint64 { return 0 }}}
	defer sup.quiet.Stop()
	// Warm up what does not depend on the container.
	warmJSON()
	pol, _ := sys.SchedGetscheduler(0)
	idle := pol == sys.SCHED_IDLE
	// Where the kernel refuses, init gets them at the fork.
	sup.nst, _ = prepareNamespaces()
	sup.quiet.Touch()
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(handoverFDs*4))
	for {
		n, oobn, _, _, err := ctl.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			break // the daemon closed the socket, or is gone
		}
		dir := string(buf[:n])
		conn, lock, err := handoverRights(oob[:oobn])
		if err != nil {
			// Nobody to tell: the daemon sees the container's
			// socket end without a ready line.
			continue
		}
		if !filepath.IsAbs(dir) {
			conn.Write([]byte(fmt.Sprintf(`{"error":"container directory %q is not absolute"}`+"\n", dir)))
			conn.Close()
			lock.Close()
			continue
		}
		sup.mu.Lock()
		first := sup.taken == 0
		sup.taken++
		sup.mu.Unlock()
		if first && idle {
			restorePriority()
		}
		s := newShim(dir, conn, lock, sup)
		if first {
			// Where the runtime's own last words (a panic) go.
			if s.stderr != nil {
				syscall.Dup3(int(s.stderr.Fd()), 2, 0)
			}
		}
		s.nst = sup.takeThread()
		sup.add(dir)
		sup.wg.Add(1)
		go func() {
			defer sup.wg.Done()
			s.run()
			sup.remove(dir)
		}()
	}
	ctl.Close()
	if t := sup.takeThread(); t != nil {
		t.close()
	}
	sup.wg.Wait()
	return nil
}

// touch tells the trimmer that work was done (nothing without one: tests'
// shims).
func (sup *supervisor) touch() {
	if sup != nil && sup.quiet != nil {
		sup.quiet.Touch()
	}
}

// handoverRights returns the fds that came with a hand-over.
func handoverRights(oob []byte) (conn net.Conn, lock *os.File, err error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, nil, err
	}
	var fds []int
	for _, m := range msgs {
		rights, err := syscall.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, rights...)
		}
	}
	if len(fds) != handoverFDs {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, nil, fmt.Errorf("hand-over with %d fds, want %d", len(fds), handoverFDs)
	}
	cf := os.NewFile(uintptr(fds[0]), "container")
	conn, err = net.FileConn(cf)
	cf.Close()
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return conn, os.NewFile(uintptr(fds[1]), "dir"), nil
}

// takeThread returns the prepared thread, if one is ready, for the next
// container.
func (sup *supervisor) takeThread() *nsThread {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	t := sup.nst
	sup.nst = nil
	return t
}

// prepareNext prepares a thread for the next container, unless one is
// ready or on its way. A shim calls it once a create is over (the ready
// line is out): the making (some 0.4 ms of a CPU for a network namespace)
// must not compete with a start. It is not made under SCHED_IDLE, as a
// fresh shim's first is: the thread holds the shim's one P while it runs,
// and starved on a busy host it would hold up every container the shim
// serves.
func (sup *supervisor) prepareNext() {
	sup.mu.Lock()
	if sup.nst != nil || sup.preparing || sup.exclusive {
		sup.mu.Unlock()
		return
	}
	sup.preparing = true
	sup.mu.Unlock()
	t, err := prepareNamespaces()
	sup.mu.Lock()
	sup.preparing = false
	if err == nil && sup.nst == nil && !sup.exclusive {
		sup.nst, t = t, nil
	}
	sup.mu.Unlock()
	if t != nil {
		t.close()
	}
}

// admit is asked by each container once it knows how its children are
// reaped: one whose orphans come to the shim reaps with wait4(-1), which
// would take the other containers' children, so it must be the only one.
func (sup *supervisor) admit(ownReaper bool) error {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	if sup.exclusive {
		return errors.New("the shim is taken by a container that shares a pid namespace")
	}
	if !ownReaper {
		if len(sup.dirs) > 1 {
			return errors.New("a container that shares a pid namespace needs a shim of its own")
		}
		sup.exclusive = true
	}
	return nil
}

// add and remove keep the command line naming the containers served:
// "skiffd-shim shim <dir>...", what ps -ef shows and what a daemon
// restarted by an older skiffd looks for.
func (sup *supervisor) add(dir string) {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	sup.dirs = append(sup.dirs, dir)
	sup.setCmdlineLocked()
}

func (sup *supervisor) remove(dir string) {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	for i, d := range sup.dirs {
		if d == dir {
			sup.dirs = append(sup.dirs[:i], sup.dirs[i+1:]...)
			break
		}
	}
	sup.setCmdlineLocked()
}

func (sup *supervisor) setCmdlineLocked() {
	args := append([]string{"skiffd-shim", "shim"}, sup.dirs...)
	if len(sup.dirs) == 0 {
		args = append(args, Pooled)
	}
	if err := sup.args.Set(args); err != nil {
		fmt.Fprintf(os.Stderr, "skiffd shim: %v\n", err)
	}
}
