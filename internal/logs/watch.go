package logs

import (
	"bytes"
	"encoding/binary"
	"sync"
	"syscall"
	"time"
)

// watcher calls a follower's wake func when the log may have changed:
// through inotify on the log's directory (which sees writes, truncations
// and the renames and creation of a rotation), or, where inotify is
// unavailable (for example when fs.inotify.max_user_instances is used
// up), on a timer.
//
// It only wakes the follower up; the follower then looks at the files
// itself, so a spurious or coalesced wake-up is harmless. wake is called
// with the Watchers' lock held, so it must be quick and must not close a
// watcher. No goroutine waits for a watcher: the shared instance's reader
// calls wake, and a polling watcher's timer does.
type watcher struct {
	shared *Watchers     // set when sub is on an inotify instance
	sub    *subscription // nil when polling
	own    bool          // shared is this watcher's own instance

	mu     sync.Mutex
	timer  *time.Timer // polling
	closed bool
}

// inotifyMask selects the events that can matter to a follower.
const inotifyMask = syscall.IN_MODIFY | syscall.IN_CLOSE_WRITE | syscall.IN_CREATE |
	syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_DELETE

// newWatcher watches path through shared, or through an inotify instance
// of its own when shared is nil, or polls every poll when neither works
// (or noInotify).
func newWatcher(path string, shared *Watchers, noInotify bool, poll time.Duration, wake func()) *watcher {
	if !noInotify {
		own := shared == nil
		if own {
			shared = &Watchers{}
		}
		if sub, err := shared.subscribe(path, wake); err == nil {
			return &watcher{shared: shared, sub: sub, own: own}
		}
		if own {
			shared.Close()
		}
	}
	w := &watcher{}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(poll, func() {
		wake()
		w.mu.Lock()
		if !w.closed {
			w.timer.Reset(poll)
		}
		w.mu.Unlock()
	})
	return w
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

// close stops the wake-ups; wake is not called once close has returned,
// except by a polling timer already firing. It must not be called from
// wake.
func (w *watcher) close() {
	if w.sub != nil {
		w.shared.unsubscribe(w.sub)
		if w.own {
			w.shared.Close()
		}
		return
	}
	w.mu.Lock()
	w.closed = true
	w.timer.Stop()
	w.mu.Unlock()
}
