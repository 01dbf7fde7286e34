// Package memtrim gives a mostly idle process's memory back to the system
// once a burst of work is over. The Go runtime collects when the heap
// doubles (at 4 MiB at the least) and returns freed pages slowly, so a
// daemon that imported an image or served a burst of requests and then
// went quiet keeps megabytes of garbage and free pages for minutes: what a
// long-running host sees is that, not the fresh start's figure (issue 13).
//
//	t := &memtrim.Trimmer{}
//	defer t.Stop()
//	... after each piece of work:
//	t.Touch()
//
// Once nothing has touched the trimmer for Quiet, and the heap holds at
// least MinReclaim bytes that a collection and a release would give back
// (garbage allocated since the last collection, and free pages not yet
// released), it collects and releases every free page (a few milliseconds
// for a daemon's heap). Every quiet period also takes the executable's
// code and read-only data out of the process's page tables
// (sys.DropImagePages: some 100 µs), so that what stays mapped is what the
// next work uses, not all that start-up and the burst touched. Nothing
// runs on a timer while nothing touches it.
package memtrim

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"skiffd/internal/sys"
)

// Defaults of the zero Trimmer.
const (
	DefaultQuiet      = 5 * time.Second
	DefaultMinReclaim = 1 << 20
)

// Trimmer trims after a quiet period, when there is enough to give back.
// The zero value is ready.
type Trimmer struct {
	// Quiet is how long no Touch must come before a trim; 0 is
	// DefaultQuiet.
	Quiet time.Duration
	// MinReclaim is how many bytes a trim must be able to give back to
	// be worth it; 0 is DefaultMinReclaim.
	MinReclaim uint64
	// Free replaces the trim (a collection and a release of every free
	// page); for tests.
	Free func()
	// Reclaimable replaces the estimate of what a trim gives back; for
	// tests.
	Reclaimable func() uint64
	// DropImage replaces sys.DropImagePages, run at the end of every
	// quiet period; for tests.
	DropImage func()
	// Trimmed, if set, is called after each trim with the estimate of
	// what it gave back (for a debug log).
	Trimmed func(reclaimable uint64)

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	fires   int // quiet periods that ended, for tests
}

// Touch records activity: it (re)starts the quiet period.
func (t *Trimmer) Touch() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if t.timer != nil {
		t.timer.Reset(t.quiet())
		return
	}
	t.timer = time.AfterFunc(t.quiet(), t.fire)
}

// Stop ends the trimmer; a trim under way finishes.
func (t *Trimmer) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
}

func (t *Trimmer) fire() {
	t.mu.Lock()
	t.fires++
	if t.stopped {
		t.mu.Unlock()
		return
	}
	min := t.MinReclaim
	if min == 0 {
		min = DefaultMinReclaim
	}
	reclaimable := t.Reclaimable
	if reclaimable == nil {
		reclaimable = heapReclaimable
	}
	free := t.Free
	if free == nil {
		free = trim
	}
	drop := t.DropImage
	if drop == nil {
		drop = dropImage
	}
	trimmed := t.Trimmed
	t.mu.Unlock()
	if r := reclaimable(); r >= min {
		free()
		if trimmed != nil {
			trimmed(r)
		}
	}
	drop()
}

// dropImage is sys.DropImagePages; a failure (no /proc) leaves the pages
// mapped, which is what they were.
func dropImage() {
	sys.DropImagePages()
}

func (t *Trimmer) quiet() time.Duration {
	if t.Quiet == 0 {
		return DefaultQuiet
	}
	return t.Quiet
}

// heapReclaimable estimates what a trim gives back: the heap objects
// beyond what the last collection found live (garbage, mostly), and the
// free pages not yet released.
func heapReclaimable() uint64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	for _, v := range s {
		if v.Value.Kind() != metrics.KindUint64 {
			return 0
		}
	}
	var garbage uint64
	if objects, live := s[0].Value.Uint64(), s[1].Value.Uint64(); objects > live {
		garbage = objects - live
	}
	return garbage + s[2].Value.Uint64()
}

// trim collects twice, so that what sync.Pools held (kept one collection
// in their victim cache) is freed too, and releases every free page.
func trim() {
	runtime.GC()
	debug.FreeOSMemory()
}

// Trim gives back at once all that a Trimmer's quiet period would: the
// heap's garbage and free pages, and the binary's mapped pages. For work
// whose end no request marks (streams detached from their handlers).
func Trim() {
	trim()
	dropImage()
}
