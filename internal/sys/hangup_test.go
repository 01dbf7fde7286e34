package sys

import (
	"syscall"
	"testing"
	"time"
)

// TestWatchHangup: a peer's half-close is not a hang-up, its close is.
func TestWatchHangup(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, peer := fds[0], fds[1]
	defer syscall.Close(ours)
	hup, stop, err := WatchHangup(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	if err := syscall.Shutdown(peer, syscall.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	// An absence cannot be awaited: give a wrong report a moment to come.
	select {
	case <-hup:
		t.Fatal("a half-close was reported as a hang-up")
	case <-time.After(200 * time.Millisecond):
	}
	syscall.Close(peer)
	select {
	case <-hup:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer's close was not reported")
	}
}

// TestWatchHangupStop: watches stopped before a hang-up release their
// duplicate fd, and a later watch on a reused fd number is not woken by
// the earlier one.
func TestWatchHangupStop(t *testing.T) {
	for range 100 {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, stop, err := WatchHangup(fds[0])
		if err != nil {
			t.Fatal(err)
		}
		stop()
		stop()
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	hup, stop, err := WatchHangup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	select {
	case <-hup:
		t.Fatal("a live peer was reported gone")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestOnPeerGone: for a stream that expects nothing more from its peer, a
// half-close is the peer going away too, and fn runs once; a watch
// stopped before runs nothing.
func TestOnPeerGone(t *testing.T) {
	for _, how := range []string{"half-close", "close"} {
		t.Run(how, func(t *testing.T) {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours, peer := fds[0], fds[1]
			defer syscall.Close(ours)
			gone := make(chan struct{}, 2)
			stop, err := OnPeerGone(ours, func() { gone <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if how == "close" {
				syscall.Close(peer)
			} else {
				defer syscall.Close(peer)
				if err := syscall.Shutdown(peer, syscall.SHUT_WR); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatalf("the peer's %s was not reported", how)
			}
		})
	}
}
