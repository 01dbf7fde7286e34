package logs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// watcher tells a follower when the log may have changed: through inotify
// on the log's directory (which sees writes, truncations and the renames
// and creation of a rotation), or, where inotify is unavailable (for
// example when fs.inotify.max_user_instances is used up), by ticking.
//
// It only wakes the follower up; the follower then looks at the files
// itself, so a spurious or coalesced wake-up is harmless.
type watcher struct {
	notify  chan struct{} // inotify: a change, coalesced
	shared  *Watchers     // set when sub is on a shared instance
	sub     *subscription
	tick    <-chan time.Time // polling
	ticker  *time.Ticker
	f       *os.File // the inotify instance
	closing chan struct{}
	done    chan struct{}
}

// inotifyMask selects the events that can matter to a follower.
const inotifyMask = syscall.IN_MODIFY | syscall.IN_CLOSE_WRITE | syscall.IN_CREATE |
	syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_DELETE

func newWatcher(path string, shared *Watchers, noInotify bool, poll time.Duration) *watcher {
	if shared != nil && !noInotify {
		if sub, err := shared.subscribe(path); err == nil {
			return &watcher{notify: sub.notify, shared: shared, sub: sub}
		}
	}
	w := &watcher{notify: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	if !noInotify {
		if err := w.startInotify(path, poll); err == nil {
			return w
		}
	}
	close(w.done)
	w.ticker = time.NewTicker(poll)
	w.tick = w.ticker.C
	return w
}

func (w *watcher) startInotify(path string, poll time.Duration) error {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify_init1: %w", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, filepath.Dir(path), inotifyMask); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("inotify_add_watch: %w", err)
	}
	// Non-blocking, so the runtime poller handles it and Close ends a
	// pending Read.
	w.f = os.NewFile(uintptr(fd), "inotify")
	go w.readEvents(filepath.Base(path), poll)
	return nil
}

// readEvents turns inotify events about the log's files into wake-ups. If
// reading fails for any reason but close, it keeps waking the follower up
// every poll interval instead.
func (w *watcher) readEvents(base string, poll time.Duration) {
	defer close(w.done)
	// An event is 16 bytes and a name of at most NAME_MAX+1; a 4 KiB read
	// holds at least 15 of them, and coalescing means only the first
	// matters. A larger buffer (it was 64 KiB) is memory every idle
	// follower pays (issue 13).
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		if n > 0 && relevant(buf[:n], base) {
			w.wake()
		}
		if errors.Is(err, fs.ErrClosed) {
			return
		}
		if err != nil {
			break
		}
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		w.wake()
		select {
		case <-w.closing:
			return
		case <-t.C:
		}
	}
}

func (w *watcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// relevant reports whether a batch of inotify events concerns the log
// (base or base.N) or was an overflow that may have dropped such events.
func relevant(b []byte, base string) bool {
	const header = 16 // wd, mask, cookie, len
	for len(b) >= header {
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := int(binary.NativeEndian.Uint32(b[12:16]))
		if mask&(syscall.IN_Q_OVERFLOW|syscall.IN_IGNORED) != 0 {
			return true
		}
		if n > len(b)-header {
			return true
		}
		if namesLog(b[header:header+n], base) {
			return true
		}
		b = b[header+n:]
	}
	return false
}

// namesLog reports whether an event's name (NUL-padded) is the log, base,
// or one of its rotated files, base.N.
func namesLog(name []byte, base string) bool {
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return string(name) == base || (len(name) > len(base) && string(name[:len(base)]) == base && name[len(base)] == '.')
}

// changed returns the channels that signal a possible change; one is nil.
func (w *watcher) changed() (<-chan struct{}, <-chan time.Time) {
	return w.notify, w.tick
}

func (w *watcher) close() {
	if w.shared != nil {
		w.shared.unsubscribe(w.sub)
		return
	}
	if w.ticker != nil {
		w.ticker.Stop()
	}
	close(w.closing)
	if w.f != nil {
		w.f.Close()
	}
	<-w.done
}
