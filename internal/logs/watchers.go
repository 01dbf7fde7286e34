package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Watchers is one inotify instance shared by every follower that names it
// in ReadOptions: one fd, one goroutine and one read buffer for the whole
// daemon instead of one of each per follower. It calls each follower's
// wake func for the events that concern its log; an idle follower has no
// goroutine of its own (issue 13, memory per stream). Closing an inotify instance
// waits for an RCU grace period, so a burst of followers ending at once
// each held an OS thread in close(2); the runtime keeps those threads for
// good (issue 13: 120 streams closed left the daemon 19 threads more).
//
// The zero value is ready; the instance is made at the first watch. Close
// ends it. Followers that cannot watch through it (inotify unavailable or
// exhausted) poll, as without it.
type Watchers struct {
	mu     sync.Mutex
	f      *os.File // the inotify instance, nil before the first watch
	closed bool
	done   chan struct{}
	// dirs are the watched directories by watch descriptor; each is
	// removed with its last subscriber.
	dirs map[int32]*watchedDir
	// runs runs the reads of the followers started by Follow.
	runs runQueue
}

type watchedDir struct {
	subs map[*subscription]struct{}
}

// subscription is one follower's interest in one log (base and its
// rotated files base.N) in a watched directory.
type subscription struct {
	wd   int32
	base string
	// wake is the follower's: called with ws.mu held, it must be quick
	// (it schedules the follower's read, never does it).
	wake func()
}

// watchPoll is how often every follower is woken once reading the shared
// instance failed for any reason but Close.
const watchPoll = time.Second

// subscribe watches path's directory for changes to path and its rotated
// files, calling wake for each batch of events that concerns them.
func (ws *Watchers) subscribe(path string, wake func()) (*subscription, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return nil, fs.ErrClosed
	}
	if ws.f == nil {
		fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("inotify_init1: %w", err)
		}
		// Non-blocking, so the runtime poller handles it and Close ends
		// a pending Read.
		ws.f = os.NewFile(uintptr(fd), "inotify")
		ws.dirs = map[int32]*watchedDir{}
		ws.done = make(chan struct{})
		go ws.readEvents(ws.f)
	}
	raw, err := ws.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var wd int
	var werr error
	if err := raw.Control(func(fd uintptr) {
		wd, werr = syscall.InotifyAddWatch(int(fd), filepath.Dir(path), inotifyMask)
	}); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, fmt.Errorf("inotify_add_watch: %w", werr)
	}
	// Watching a directory watched already returns its descriptor.
	d := ws.dirs[int32(wd)]
	if d == nil {
		d = &watchedDir{subs: map[*subscription]struct{}{}}
		ws.dirs[int32(wd)] = d
	}
	sub := &subscription{wd: int32(wd), base: filepath.Base(path), wake: wake}
	d.subs[sub] = struct{}{}
	return sub, nil
}

// unsubscribe forgets sub, and the directory's watch with its last
// subscriber.
func (ws *Watchers) unsubscribe(sub *subscription) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	d := ws.dirs[sub.wd]
	if d == nil {
		return
	}
	delete(d.subs, sub)
	if len(d.subs) > 0 || ws.closed {
		return
	}
	delete(ws.dirs, sub.wd)
	if raw, err := ws.f.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { syscall.InotifyRmWatch(int(fd), uint32(sub.wd)) })
	}
}

// Close ends the instance; followers still watching through it are not
// woken any more, so close it after they have ended.
func (ws *Watchers) Close() error {
	ws.mu.Lock()
	ws.closed = true
	f, done := ws.f, ws.done
	ws.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f.Close()
	<-done
	return err
}

// readEvents wakes the subscribers an event concerns. If reading fails
// for any reason but Close, it wakes every subscriber each watchPoll
// instead.
func (ws *Watchers) readEvents(f *os.File) {
	defer close(ws.done)
	// An event is 16 bytes and a name of at most NAME_MAX+1; a 4 KiB read
	// holds at least 15 of them.
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			ws.dispatch(buf[:n])
		}
		if errors.Is(err, fs.ErrClosed) {
			return
		}
		if err != nil {
			break
		}
	}
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for range t.C {
		ws.mu.Lock()
		if ws.closed {
			ws.mu.Unlock()
			return
		}
		for _, d := range ws.dirs {
			for sub := range d.subs {
				sub.wake()
			}
		}
		ws.mu.Unlock()
	}
}

// dispatch wakes the subscribers of the events in b: those whose log (or
// one of its rotated files) the event names, every subscriber of a
// directory whose watch went away, and everyone after an overflow, which
// may have dropped events.
func (ws *Watchers) dispatch(b []byte) {
	const header = 16 // wd, mask, cookie, len
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for len(b) >= header {
		wd := int32(binary.NativeEndian.Uint32(b[0:4]))
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := int(binary.NativeEndian.Uint32(b[12:16]))
		if mask&syscall.IN_Q_OVERFLOW != 0 || n > len(b)-header {
			for _, d := range ws.dirs {
				for sub := range d.subs {
					sub.wake()
				}
			}
			return
		}
		name := b[header : header+n]
		b = b[header+n:]
		d := ws.dirs[wd]
		if d == nil {
			continue
		}
		for sub := range d.subs {
			if mask&syscall.IN_IGNORED != 0 || namesLog(name, sub.base) {
				sub.wake()
			}
		}
	}
}
