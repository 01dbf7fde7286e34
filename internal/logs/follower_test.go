package logs

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFollowerBackpressure: a follower whose consumer is behind (its fn
// answers ErrPause) stops reading its log until Resume, however much is
// written and rotated meanwhile, and then delivers every record in order;
// while it waits, the shared watcher still wakes another follower, which
// gets its records at once. No goroutine is held by the paused follower
// (it is a struct until Resume).
func TestFollowerBackpressure(t *testing.T) {
	ws := &Watchers{}
	defer ws.Close()
	dir := t.TempDir()
	slowPath, fastPath := filepath.Join(dir, "slow-json.log"), filepath.Join(dir, "fast-json.log")
	size := int64(len(record(numbered(0))))
	slowW := openWriter(t, slowPath, 40*size, 10) // room for 400 records
	fastW := openWriter(t, fastPath, 0, 1)

	const limit, total = 10, 200
	var (
		mu      sync.Mutex
		backlog []entry // taken by the follower, not yet by the consumer
		most    int
	)
	slowDone := make(chan error, 1)
	var slow *Follower
	opts := ReadOptions{Tail: -1, Watchers: ws, Following: func(f *Follower) { slow = f }}
	err := Follow(context.Background(), slowPath, opts, func(m Message) error {
		mu.Lock()
		defer mu.Unlock()
		backlog = append(backlog, fromMessage(m))
		most = max(most, len(backlog))
		if len(backlog) >= limit {
			return ErrPause
		}
		return nil
	}, func(err error) { slowDone <- err })
	if err != nil || slow == nil {
		t.Fatalf("Follow = %v, follower %v", err, slow)
	}
	fastGot := make(chan entry, total)
	fastDone := make(chan error, 1)
	var fast *Follower
	opts.Following = func(f *Follower) { fast = f }
	if err := Follow(context.Background(), fastPath, opts, func(m Message) error {
		fastGot <- fromMessage(m)
		return nil
	}, func(err error) { fastDone <- err }); err != nil {
		t.Fatalf("Follow = %v", err)
	}
	taken := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(backlog)
	}

	write(t, slowW, numberedRange(0, total/2)...)
	for deadline := time.Now().Add(guard); taken() < limit; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("slow follower took %d records, want %d", taken(), limit)
		}
	}
	// Paused: more writes and rotations to its log change nothing, and
	// the other follower is served meanwhile.
	write(t, slowW, numberedRange(total/2, total)...)
	for i := range 5 {
		write(t, fastW, numbered(i))
		select {
		case e := <-fastGot:
			if w := numbered(i); e != w {
				t.Fatalf("fast follower got %v, want %v", e, w)
			}
		case <-time.After(guard):
			t.Fatalf("fast follower got nothing while the slow one was paused")
		}
	}
	slow.mu.Lock()
	paused, state := slow.paused, slow.state
	slow.mu.Unlock()
	if !paused || state != idle {
		t.Errorf("slow follower: paused %v, state %d; want paused and idle (no goroutine)", paused, state)
	}
	if n := taken(); n != limit {
		t.Fatalf("slow follower took %d records while paused, want %d", n, limit)
	}

	// The consumer catches up, a batch at a time.
	var got []entry
	for deadline := time.Now().Add(guard); len(got) < total; {
		mu.Lock()
		got = append(got, backlog...)
		backlog = backlog[:0]
		mu.Unlock()
		slow.Resume()
		if time.Now().After(deadline) {
			t.Fatalf("slow follower delivered %d records, want %d", len(got), total)
		}
		time.Sleep(time.Millisecond)
	}
	checkEntries(t, "slow follower", got, numberedRange(0, total))
	// A Resume that comes while the follower runs lets it take one more
	// record: it cannot tell it from one answering the pause that
	// follows, and waiting for a Resume already come would hang.
	mu.Lock()
	if most > limit+1 {
		t.Errorf("slow follower's backlog reached %d, want at most %d", most, limit+1)
	}
	mu.Unlock()

	slow.Stop()
	fast.Stop()
	for _, done := range []chan error{slowDone, fastDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("follower ended with %v, want nil", err)
			}
		case <-time.After(guard):
			t.Fatal("follower did not end after Stop")
		}
	}
}

// TestFollowerWakeAllocatesLittle: a follower woken up by one short line (a
// container that ticks) allocates about that line's worth, not a bulk
// read's buffers: every idle follower of a chatty container starts from
// nothing at each wake-up, and a hundred of them made the daemon a
// megabyte and a half of garbage a second, which it keeps until the next
// collection (issue 13, memory per stream).
func TestFollowerWakeAllocatesLittle(t *testing.T) {
	ws := &Watchers{}
	defer ws.Close()
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := openWriter(t, path, 0, 1)
	got := make(chan Message, 1)
	done := make(chan error, 1)
	var f *Follower
	opts := ReadOptions{Tail: 0, Borrow: true, Watchers: ws, Following: func(fl *Follower) { f = fl }}
	if err := Follow(context.Background(), path, opts, func(m Message) error {
		got <- m
		return nil
	}, func(err error) { done <- err }); err != nil || f == nil {
		t.Fatalf("Follow = %v, follower %v", err, f)
	}
	wake := func() {
		write(t, w, numbered(1))
		select {
		case <-got:
		case <-time.After(guard):
			t.Fatal("the follower did not deliver the line")
		}
	}
	wake() // the first wake-up sets up what every later one reuses
	const wakes = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range wakes {
		wake()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / wakes; per > 4<<10 {
		t.Errorf("a wake-up for one line allocated %d bytes, want at most 4 KiB", per)
	}
	f.Stop()
	<-done
}

// TestFollowerBurstsAllocateLittle: a follower of a busy log reads each
// burst into a read buffer shared through a pool, not a new one each time
// it has caught up (issue 13: with the frame buffers, new read and batch
// buffers made the daemon collect garbage a hundred times a follow of 200
// MB). The log is written a burst at a time, each in one write.
func TestFollowerBurstsAllocateLittle(t *testing.T) {
	ws := &Watchers{}
	defer ws.Close()
	path := filepath.Join(t.TempDir(), "c-json.log")
	const perBurst, bursts = 1000, 20
	var burst strings.Builder
	for i := range perBurst {
		burst.WriteString(record(numbered(i)))
	}
	appendRaw(t, path, "")
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	data := []byte(burst.String())
	var got atomic.Int64
	done := make(chan error, 1)
	var f *Follower
	opts := ReadOptions{Tail: 0, Borrow: true, Watchers: ws, Following: func(fl *Follower) { f = fl }}
	if err := Follow(context.Background(), path, opts, func(Message) error {
		got.Add(1)
		return nil
	}, func(err error) { done <- err }); err != nil || f == nil {
		t.Fatalf("Follow = %v, follower %v", err, f)
	}
	send := func(n int) {
		if _, err := out.Write(data); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(guard); got.Load() < int64(n*perBurst); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the follower delivered %d records, want %d", got.Load(), n*perBurst)
			}
		}
	}
	send(1) // the first burst fills the pool that the later ones reuse
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for n := 2; n <= bursts; n++ {
		send(n)
	}
	runtime.ReadMemStats(&after)
	// A new read buffer is blockSize bytes; with the race detector a
	// quarter of the pooled ones are dropped, so some runs take a new one.
	limit := uint64(8 << 10)
	if raceEnabled {
		limit = blockSize
	}
	if per := (after.TotalAlloc - before.TotalAlloc) / (bursts - 1); per > limit {
		t.Errorf("a burst of %d KB allocated %d bytes, want at most %d", len(data)>>10, per, limit)
	}
	f.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.Load() != bursts*perBurst {
		t.Errorf("%d records delivered, want %d", got.Load(), bursts*perBurst)
	}
}
