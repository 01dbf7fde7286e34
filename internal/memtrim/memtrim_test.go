package memtrim

import (
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// TestTrimAfterQuietBurst: a trim runs once a quiet period follows, when
// enough can be given back; a quiet period with too little to give back
// does not trim, nor does a burst still touching.
func TestTrimAfterQuietBurst(t *testing.T) {
	var frees atomic.Int32
	var reclaim atomic.Uint64
	tr := &Trimmer{Quiet: 20 * time.Millisecond, MinReclaim: 1000, Free: func() { frees.Add(1); reclaim.Store(0) }, Reclaimable: reclaim.Load,
		DropImage: func() {}}
	defer tr.Stop()
	wait := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for frees.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := frees.Load(); got != want {
			t.Fatalf("frees = %d, want %d", got, want)
		}
	}
	// Small work, then quiet: the timer fires and finds too little.
	tr.Touch()
	reclaim.Add(999)
	tr.Touch()
	// waitFires waits until n quiet periods have ended.
	waitFires := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			tr.mu.Lock()
			f := tr.fires
			tr.mu.Unlock()
			if f >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d quiet periods ended, want %d", f, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFires(1)
	if got := frees.Load(); got != 0 {
		t.Fatalf("frees after 999 bytes = %d, want 0", got)
	}
	// Enough work: one trim once quiet.
	reclaim.Add(1)
	tr.Touch()
	wait(1)
	// The trim reset the count: quiet again after little work, no trim.
	tr.Touch()
	reclaim.Add(10)
	waitFires(3)
	if got := frees.Load(); got != 1 {
		t.Fatalf("frees = %d, want 1", got)
	}
}

// TestTrimReleasesMemory: the real trim collects 4 MiB of garbage and
// releases the pages it held (what the test's other goroutines allocate
// meanwhile may leave a few free).
func TestTrimReleasesMemory(t *testing.T) {
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, 64<<10))
	}
	garbage = nil
	trim()
	if free := heapFree(); free > 1<<20 {
		t.Errorf("free heap pages after a trim: %d bytes, want them released", free)
	}
}

func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestQuietDropsImage: every quiet period ends with the executable's pages
// dropped, whether or not the heap had enough to give back.
func TestQuietDropsImage(t *testing.T) {
	drops := make(chan struct{}, 4)
	var frees atomic.Int32
	tr := &Trimmer{Quiet: 10 * time.Millisecond, MinReclaim: 1000,
		Free: func() { frees.Add(1) }, Reclaimable: func() uint64 { return 0 },
		DropImage: func() { drops <- struct{}{} }}
	defer tr.Stop()
	for i := range 2 {
		tr.Touch()
		select {
		case <-drops:
		case <-time.After(10 * time.Second):
			t.Fatalf("quiet period %d ended without the image's pages dropped", i+1)
		}
	}
	if n := frees.Load(); n != 0 {
		t.Errorf("heap trims with nothing to give back: %d", n)
	}
}
