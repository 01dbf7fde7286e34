package sys

import (
	"sync"
	"syscall"
)

// epollET is EPOLLET, which package syscall declares as a negative int.
const epollET = 1 << 31

// hangupWatcher is one epoll instance, shared by the whole process, that
// tells when the peers of sockets hang up. Each socket is watched through
// a duplicate of its fd, edge-triggered and with no event asked for: epoll
// always reports EPOLLHUP and EPOLLERR, and a peer's half-close (EPOLLIN,
// EPOLLRDHUP) then wakes nobody.
type hangupWatcher struct {
	epfd int

	mu      sync.Mutex
	gen     int32
	waiters map[hangupKey]*hangupWaiter
}

// hangupKey names one watch: the duplicate fd and a generation, so that an
// event still in flight for a closed duplicate cannot reach a later watch
// that reuses its number.
type hangupKey struct{ fd, gen int32 }

type hangupWaiter struct {
	c     chan struct{} // closed on a hang-up, or nil when fn is set
	fn    func()        // called once on a hang-up, from its own goroutine
	fired bool
}

var hangups hangupsOnce

type hangupsOnce struct {
	once sync.Once
	w    *hangupWatcher
	err  error
}

func (h *hangupsOnce) start() {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		h.err = err
		return
	}
	h.w = &hangupWatcher{epfd: epfd, waiters: map[hangupKey]*hangupWaiter{}}
	go h.w.loop()
}

// WatchHangup returns a channel that is closed when the peer of socket fd
// has hung up: it closed its end or shut down both directions, or the
// connection failed (reset). A peer that only half-closes (shutdown for
// writing, as the docker CLI does when it has no input to send) has not
// hung up. stop ends the watch; the caller calls it once, when it is done
// with the socket, whether or not the channel was closed.
//
// On a unix socket a peer's close is a hang-up at once. On TCP it looks
// like a half-close until the connection is reset, which happens only once
// something is written to it: a TCP peer that closed is not noticed until
// then.
func WatchHangup(fd int) (hup <-chan struct{}, stop func(), err error) {
	hangups.once.Do(hangups.start)
	if hangups.err != nil {
		return nil, nil, hangups.err
	}
	wt := &hangupWaiter{c: make(chan struct{})}
	stop, err = hangups.w.watch(fd, wt, 0)
	if err != nil {
		return nil, nil, err
	}
	return wt.c, stop, nil
}

// OnPeerGone calls fn, once and on a goroutine of its own, when the peer
// of socket fd has gone: a hang-up as WatchHangup defines it, or also a
// half-close (the peer shut down its writing side, or sent anything more).
// It is for streams that expect nothing more from their client once the
// request is read, as net/http's background read does for an ordinary
// response, but without a goroutine per socket. stop ends the watch; the
// caller calls it once, when it is done with the socket.
func OnPeerGone(fd int, fn func()) (stop func(), err error) {
	hangups.once.Do(hangups.start)
	if hangups.err != nil {
		return nil, hangups.err
	}
	return hangups.w.watch(fd, &hangupWaiter{fn: fn}, syscall.EPOLLIN|syscall.EPOLLRDHUP)
}

func (w *hangupWatcher) watch(fd int, wt *hangupWaiter, events uint32) (func(), error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return nil, e
	}
	dup := int(r)
	w.mu.Lock()
	w.gen++
	key := hangupKey{int32(dup), w.gen}
	w.waiters[key] = wt
	w.mu.Unlock()
	ev := syscall.EpollEvent{Events: epollET | events, Fd: key.fd, Pad: key.gen}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, dup, &ev); err != nil {
		w.mu.Lock()
		delete(w.waiters, key)
		w.mu.Unlock()
		syscall.Close(dup)
		return nil, err
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.waiters, key)
			w.mu.Unlock()
			syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, dup, nil)
			syscall.Close(dup)
		})
	}
	return stop, nil
}

// loop waits for hang-ups for the life of the process, on one thread.
func (w *hangupWatcher) loop() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			wt := w.waiters[hangupKey{ev.Fd, ev.Pad}]
			if wt == nil || wt.fired {
				continue
			}
			if wt.fn == nil && ev.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
				continue // a half-close is not a hang-up
			}
			wt.fired = true
			if wt.fn != nil {
				// Its own goroutine: fn may stop its watch, which
				// takes w.mu, and must never hold up this loop.
				go wt.fn()
			} else {
				close(wt.c)
			}
		}
		w.mu.Unlock()
	}
}
