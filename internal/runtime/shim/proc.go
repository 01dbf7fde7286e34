package shim

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"skiffd/internal/runtime/jsonlog"
	"skiffd/internal/runtime/pty"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// proc is init or an exec'd process: its stdio, attached clients and exit.
type proc struct {
	id   string
	spec spec.Process
	pid  int
	log  *jsonlog.Writer // init only: exec output is not logged

	started bool        // exec: start was asked for (under shim.mu)
	child   *childStdio // the child's ends of stdio until it has started

	// The shim's ends of the process's stdio.
	stdinW  *os.File // nil without OpenStdin
	outputs []output
	master  *os.File // with a terminal

	// amu guards the set of attachers and stdin; it is held only briefly,
	// so that a drain cut short can disconnect a client whose write is
	// blocked. wmu orders the frames of the output streams: a frame is
	// written whole before the next starts.
	amu       sync.Mutex
	attachers map[*attacher]struct{}
	isDrained bool
	stdinUsed bool
	wmu       sync.Mutex

	// delivered is when output was last read and passed on (UnixNano):
	// a drain after the exit goes on while output keeps flowing.
	delivered atomic.Int64
	// quiet, when set, is told that an output stream went quiet (the
	// supervisor's trimmer).
	quiet func()

	running  chan struct{} // its stdio is final (the pty master, if any, is here)
	drained  chan struct{} // the output reached EOF and was delivered
	exited   chan struct{}
	exitOnce sync.Once
	exit     ExitStatus
}

// output is one output stream of a process.
type output struct {
	f      *os.File
	stream byte
	name   string
	// buf is the copier's read buffer, made by startCopiers (see
	// readBuffer).
	buf    []byte
	mapped bool // buf is a sys.MapBuffer buffer
}

// childStdio are the child's ends of a process's stdio; the shim closes
// them once the child has them.
type childStdio struct {
	stdin, stdout, stderr *os.File
	others                []*os.File
}

func (c *childStdio) close() {
	for _, f := range append([]*os.File{c.stdin, c.stdout, c.stderr}, c.others...) {
		if f != nil {
			f.Close()
		}
	}
}

// newProc makes a process and its stdio, so that clients can attach before
// it starts.
func newProc(id string, ps *spec.Process, log *jsonlog.Writer) (*proc, *childStdio, error) {
	p := &proc{
		id:        id,
		spec:      *ps,
		log:       log,
		attachers: map[*attacher]struct{}{},
		running:   make(chan struct{}),
		drained:   make(chan struct{}),
		exited:    make(chan struct{}),
	}
	c, err := p.openStdio()
	return p, c, err
}

// openStdio makes the process's stdio: pipes, or /dev/null all round when
// the process opens a terminal itself (the master arrives later).
func (p *proc) openStdio() (*childStdio, error) {
	c := &childStdio{}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	c.others = append(c.others, null)
	if p.spec.Terminal {
		c.stdin, c.stdout, c.stderr = null, null, null
		c.others = nil
		return c, nil
	}
	c.stdin = null
	if p.spec.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			c.close()
			return nil, err
		}
		c.stdin, p.stdinW = r, w
	}
	for _, o := range []struct {
		stream byte
		name   string
		dst    **os.File
	}{{StreamStdout, "stdout", &c.stdout}, {StreamStderr, "stderr", &c.stderr}} {
		r, w, err := os.Pipe()
		if err != nil {
			c.close()
			return nil, err
		}
		growPipe(r)
		*o.dst = w
		p.outputs = append(p.outputs, output{f: r, stream: o.stream, name: o.name})
	}
	return c, nil
}

// pipeSize is the capacity asked for an output pipe (the default is 64
// KiB): a process writing fast goes on while the shim logs what it read,
// and the shim takes its output in big reads. The kernel allocates a
// pipe's pages only as they fill; what a quiet big pipe costs is its ring
// of 256 slots, about 10 KiB of kernel memory (16 slots by default).
const pipeSize = 1 << 20

// growPipe asks for a pipeSize pipe; where the kernel refuses (an
// unprivileged user over its pipe quota), the pipe keeps its size.
func growPipe(f *os.File) {
	// Not f.Fd(): that would make the pipe blocking, out of the poller.
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			sys.Fcntl(int(fd), sys.F_SETPIPE_SZ, pipeSize)
		})
	}
}

// setMaster adopts the pty master sent by init or the helper.
func (p *proc) setMaster(f *os.File) {
	// Received fds are blocking; make it pollable so reads do not pin a
	// thread each.
	syscall.SetNonblock(int(f.Fd()), true)
	p.master = os.NewFile(f.Fd(), "ptmx")
	p.outputs = []output{{f: p.master, stream: StreamStdout, name: "stdout"}}
}

// startCopiers starts one goroutine per output stream: each chunk goes to
// the log (init) and to every attached client. When all streams are done
// the attached clients are disconnected.
func (p *proc) startCopiers() {
	close(p.running)
	// The last copier to finish ends the output; no goroutine waits for
	// them (one stack less for the process's lifetime, issue 13).
	var left atomic.Int32
	left.Store(int32(len(p.outputs)))
	for i := range p.outputs {
		o := &p.outputs[i]
		o.buf, o.mapped = readBuffer()
		go func() {
			p.copyOutput(o)
			if o.f != p.master {
				o.f.Close()
			}
			if o.mapped {
				sys.UnmapBuffer(o.buf)
			}
			if left.Add(-1) == 0 {
				p.outputDone()
			}
		}()
	}
	if len(p.outputs) == 0 {
		p.outputDone()
	}
}

// outputDone disconnects the attached clients once every output stream
// has ended (or, for an exec that never ran, at once); a second call does
// nothing.
func (p *proc) outputDone() {
	p.amu.Lock()
	defer p.amu.Unlock()
	p.isDrained = true
	for a := range p.attachers {
		a.close()
		delete(p.attachers, a)
	}
	select {
	case <-p.drained:
	default:
		close(p.drained)
	}
}

// An output stream is read maxRead bytes at a time, so a busy one takes
// its output in big chunks, logged with one write each (issue 13);
// attached clients get it in minRead pieces. After quietAfter without
// output the pages a burst wrote into the read buffer and the log's
// batch go back to the system.
const (
	minRead    = 16 << 10
	maxRead    = 256 << 10
	quietAfter = time.Second
)

// readBuffer makes a copier's read buffer: maxRead bytes outside the Go
// heap, of which only what reads write is ever resident, and which
// sys.DropPages empties when the stream goes quiet; no garbage collection
// is involved (issue 13: a shim's first collections cost it some 600 KiB
// of runtime metadata, more than a burst's buffers, and a quiet stream
// used to hold 16 KiB of heap). Where the system refuses the mapping it
// is minRead bytes of heap, kept.
func readBuffer() ([]byte, bool) {
	if b, err := sys.MapBuffer(maxRead); err == nil {
		return b, true
	}
	return make([]byte, minRead), false
}

// copyOutput copies one output stream until it ends.
func (p *proc) copyOutput(o *output) {
	var ls *jsonlog.Stream
	if p.log != nil {
		ls = p.log.Stream(o.name)
	}
	buf := o.buf
	active := false // output came since the stream was last quiet
	for {
		if active {
			// The deadline only ends the wait, losing nothing; a file
			// the poller does not handle refuses it, and its stream
			// keeps its buffers.
			o.f.SetReadDeadline(time.Now().Add(quietAfter))
		}
		n, err := o.f.Read(buf)
		if n > 0 {
			if ls != nil {
				ls.Write(buf[:n])
			}
			// Attached clients get minRead pieces, as before reads
			// grew: the daemon's relay holds a buffer of the largest.
			for b := buf[:n]; len(b) > 0; b = b[min(len(b), minRead):] {
				p.broadcast(o.stream, b[:min(len(b), minRead)])
			}
			p.delivered.Store(time.Now().UnixNano())
			active = true
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if o.mapped {
				sys.DropPages(buf)
			}
			if ls != nil {
				ls.Release()
			}
			if p.quiet != nil {
				p.quiet()
			}
			o.f.SetReadDeadline(time.Time{})
			active = false
			continue
		}
		if err != nil {
			// EIO on a pty master means the last slave closed.
			break
		}
	}
	if ls != nil {
		ls.Flush()
	}
}

// broadcast writes one chunk to every attached client that wants the
// stream. A client that cannot take it is dropped. Writes are synchronous,
// like dockerd's: an attached client that does not read holds up the
// process's output (until the drain after the exit gives up on it).
func (p *proc) broadcast(stream byte, b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.amu.Lock()
	to := make([]*attacher, 0, len(p.attachers))
	for a := range p.attachers {
		if a.wants(stream) {
			to = append(to, a)
		}
	}
	p.amu.Unlock()
	for _, a := range to {
		if err := WriteFrame(a.c, stream, b); err != nil {
			a.close()
			p.amu.Lock()
			delete(p.attachers, a)
			p.amu.Unlock()
		}
	}
}

// abandonOutput ends a drain that takes too long: the read ends of the
// process's output are closed (a process outside the container's pid
// namespace may hold the write ends for ever) and attached clients that
// do not read are disconnected, which lets the copiers finish.
func (p *proc) abandonOutput() {
	for _, o := range p.outputs {
		o.f.Close()
	}
	p.amu.Lock()
	for a := range p.attachers {
		a.close()
		delete(p.attachers, a)
	}
	p.amu.Unlock()
}

// waitDrained waits until the process's output has been delivered, or
// until no output has moved for idle, or at most max; then it abandons
// what is left. dockerd and containerd bound the same wait (two seconds
// for the streams of an exited process): output must not keep a process
// that has exited, or its shim, around for ever.
func (p *proc) waitDrained(idle, max time.Duration) {
	deadline := time.Now().Add(max)
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-p.drained:
			return
		case <-t.C:
		}
		now := time.Now()
		quiet := now.Sub(time.Unix(0, p.delivered.Load()))
		if quiet >= idle || !now.Before(deadline) {
			p.abandonOutput()
			<-p.drained
			return
		}
		t.Reset(min(idle-quiet, deadline.Sub(now)))
	}
}

// awaitOutput waits until the process's output has been delivered, at
// most max; unlike waitDrained it abandons nothing.
func (p *proc) awaitOutput(max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-p.drained:
	case <-t.C:
	}
}

// attacher is one attached client connection.
type attacher struct {
	c              *net.UnixConn
	stdout, stderr bool
	done           chan struct{}
	once           sync.Once
}

func (a *attacher) wants(stream byte) bool {
	return stream == StreamStdout && a.stdout || stream == StreamStderr && a.stderr
}

func (a *attacher) close() {
	a.once.Do(func() {
		a.c.Close()
		close(a.done)
	})
}

// attach answers an attach request and then serves it until the output
// ends or the client goes away. What the client sends after its request
// (already partly buffered in r) is the process's stdin.
func (p *proc) attach(c *net.UnixConn, r *bufio.Reader, stdin, stdout, stderr bool) {
	a := &attacher{c: c, stdout: stdout, stderr: stderr, done: make(chan struct{})}
	p.amu.Lock()
	if err := writeResponse(c, &Response{}); err != nil {
		p.amu.Unlock()
		return
	}
	if p.isDrained {
		p.amu.Unlock()
		return
	}
	p.attachers[a] = struct{}{}
	p.amu.Unlock()
	go func() {
		// Where stdin goes is known once the process runs: a pty master
		// arrives only then.
		var in io.Writer
		select {
		case <-p.running:
			p.amu.Lock()
			in = p.stdinTarget(stdin)
			p.amu.Unlock()
		case <-a.done:
		}
		if in != nil {
			io.Copy(in, r)
			if p.spec.StdinOnce && p.stdinW != nil {
				p.stdinW.Close()
			}
			return
		}
		// Without stdin, a read ending means the client hung up (or
		// half-closed, which changes nothing).
		io.Copy(io.Discard, r)
	}()
	<-a.done
}

// stdinTarget returns where an attached client's stdin goes, or nil. With
// StdinOnce only the first client gets it. amu is held.
func (p *proc) stdinTarget(want bool) io.Writer {
	if !want {
		return nil
	}
	if p.master != nil {
		return p.master
	}
	if p.stdinW == nil || (p.spec.StdinOnce && p.stdinUsed) {
		return nil
	}
	p.stdinUsed = true
	return p.stdinW
}

// resize sets the terminal size.
func (p *proc) resize(h, w uint16) error {
	// A process without a terminal has no size to set: nothing to do, as
	// containerd has it (dockerd answers 200; this answered 409 "is not
	// running" for a running container).
	if p.master == nil {
		return nil
	}
	return pty.Resize(p.master, h, w)
}

// setExit records the exit and wakes the waiters (once).
func (p *proc) setExit(st ExitStatus) {
	p.exitOnce.Do(func() {
		p.exit = st
		close(p.exited)
	})
}

// fail ends an exec'd process that never ran.
func (p *proc) fail(err error) {
	for _, o := range p.outputs {
		o.f.Close()
	}
	if p.stdinW != nil {
		p.stdinW.Close()
	}
	p.setExit(ExitStatus{Code: 126, ExitedAt: time.Now().UTC(), Error: err.Error()})
	select {
	case <-p.running:
	default:
		close(p.running)
	}
	p.outputDone()
}

// closeFiles closes what is left of the shim's ends of the process's
// stdio once the container is gone (the copiers close the output ends
// they read to EOF).
func (p *proc) closeFiles() {
	if p.stdinW != nil {
		p.stdinW.Close()
	}
	if p.master != nil {
		p.master.Close()
	}
	for _, o := range p.outputs {
		o.f.Close()
	}
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *proc) exitStatus() ExitStatus {
	<-p.exited
	return p.exit
}
