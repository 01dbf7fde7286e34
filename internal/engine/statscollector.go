package engine

import (
	"sync"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
)

// statsCollector samples, once a second, every container that has stats
// streams open, on one goroutine, and hands each sample to all the streams
// of its container, as dockerd's stats collector does. Forty streams of one
// container read its cgroup once a tick instead of forty times, the host's
// CPU counters are read once a tick for all containers, and the blocking
// reads of cgroup files happen on one goroutine instead of one per stream,
// which made the runtime start an OS thread per concurrent reader (issue
// 13, memory per stream: 40 stats streams cost the daemon 10 threads and
// their samples' garbage).
//
// The goroutine runs only while a stream is subscribed. The zero value is
// ready.
type statsCollector struct {
	mu      sync.Mutex
	subs    map[*statsSub]struct{}
	running bool
}

// statsSub is one stream's subscription: the latest sample of its
// container, replaced if the stream has not taken the previous one yet.
type statsSub struct {
	c  *container.Container
	ch chan *types.StatsJSON // capacity 1; nil when fn is set
	// fn, when set, is given each sample on the collector's goroutine,
	// instead of ch: a detached stream sends it without a goroutine of
	// its own. It must not block.
	fn func(*types.StatsJSON)
}

// subscribe registers a stream of c's samples; the caller calls cancel
// (once) when it stops reading.
func (sc *statsCollector) subscribe(c *container.Container, sample func(cs map[*container.Container]bool) map[*container.Container]*types.StatsJSON) (*statsSub, func()) {
	return sc.add(&statsSub{c: c, ch: make(chan *types.StatsJSON, 1)}, sample)
}

// subscribeFunc registers fn to be given each sample of c, on the
// collector's goroutine; the caller calls cancel (once) to stop, which fn
// may do itself.
func (sc *statsCollector) subscribeFunc(c *container.Container, sample func(cs map[*container.Container]bool) map[*container.Container]*types.StatsJSON, fn func(*types.StatsJSON)) (cancel func()) {
	_, cancel = sc.add(&statsSub{c: c, fn: fn}, sample)
	return cancel
}

func (sc *statsCollector) add(sub *statsSub, sample func(cs map[*container.Container]bool) map[*container.Container]*types.StatsJSON) (*statsSub, func()) {
	sc.mu.Lock()
	if sc.subs == nil {
		sc.subs = map[*statsSub]struct{}{}
	}
	sc.subs[sub] = struct{}{}
	if !sc.running {
		sc.running = true
		go sc.run(sample)
	}
	sc.mu.Unlock()
	return sub, func() {
		sc.mu.Lock()
		delete(sc.subs, sub)
		sc.mu.Unlock()
	}
}

// run samples the subscribed containers every second until none is left.
func (sc *statsCollector) run(sample func(cs map[*container.Container]bool) map[*container.Container]*types.StatsJSON) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range tick.C {
		sc.mu.Lock()
		if len(sc.subs) == 0 {
			sc.running = false
			sc.mu.Unlock()
			return
		}
		want := make(map[*container.Container]bool, len(sc.subs))
		for sub := range sc.subs {
			want[sub.c] = true
		}
		sc.mu.Unlock()

		samples := sample(want)

		var calls []*statsSub
		sc.mu.Lock()
		for sub := range sc.subs {
			s := samples[sub.c]
			if s == nil {
				continue // subscribed after the containers were chosen
			}
			if sub.fn != nil {
				calls = append(calls, sub)
				continue
			}
			// The latest sample wins: drop one the stream has not
			// taken yet.
			select {
			case <-sub.ch:
			default:
			}
			sub.ch <- s
		}
		sc.mu.Unlock()
		// Outside the lock: fn may cancel its subscription.
		for _, sub := range calls {
			sub.fn(samples[sub.c])
		}
	}
}
