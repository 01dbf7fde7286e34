package events

import (
	"fmt"
	"iter"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/filters"
)

// epoch is a since that selects all of history.
var epoch = time.Unix(0, 0)

// at publishes an event with a fixed time (nanoseconds since the epoch) and
// its number as the actor ID.
func at(b *Bus, nano int64, typ string) {
	b.PublishMessage(types.EventMessage{
		Type: typ, Action: "create", Scope: "local",
		Actor: types.EventActor{ID: strconv.FormatInt(nano, 10)},
		Time:  nano / int64(time.Second), TimeNano: nano,
	})
}

// ids returns the actor IDs of msgs.
func ids(msgs []types.EventMessage) string {
	s := ""
	for i, m := range msgs {
		if i > 0 {
			s += ","
		}
		s += m.Actor.ID
	}
	return s
}

// mustFilter builds a Filter from a filters parameter.
func mustFilter(t *testing.T, param string) *Filter {
	t.Helper()
	args, err := filters.FromParam(param)
	if err != nil {
		t.Fatal(err)
	}
	return NewFilter(args)
}

func TestLog(t *testing.T) {
	attrs := map[string]string{"image": "busybox", "name": "trace-ev"}
	tests := []struct {
		typ                string
		wantStatus, wantID string
		wantFrom           string
	}{
		{types.ContainerEventType, "start", ctrID, "busybox"},
		{types.ImageEventType, "start", ctrID, ""},
		{types.VolumeEventType, "", "", ""},
		{types.NetworkEventType, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			b := New()
			before := time.Now()
			b.Log("start", tt.typ, types.EventActor{ID: ctrID, Attributes: attrs})
			after := time.Now()
			history, _, cancel := b.SubscribeTopic(epoch, time.Time{}, nil)
			cancel()
			if len(history) != 1 {
				t.Fatalf("history after one Log = %d events, want 1", len(history))
			}
			m := history[0]
			if m.Status != tt.wantStatus || m.ID != tt.wantID || m.From != tt.wantFrom {
				t.Errorf("legacy fields = %q/%q/%q, want %q/%q/%q", m.Status, m.ID, m.From, tt.wantStatus, tt.wantID, tt.wantFrom)
			}
			if m.Type != tt.typ || m.Action != "start" || m.Scope != "local" || m.Actor.ID != ctrID || m.Actor.Attributes["name"] != "trace-ev" {
				t.Errorf("Log message = %+v, want type %s, action start, scope local and the actor", m, tt.typ)
			}
			if m.TimeNano < before.UnixNano() || m.TimeNano > after.UnixNano() || m.Time != m.TimeNano/int64(time.Second) {
				t.Errorf("Log time = %d/%d, want between %d and %d, seconds matching", m.Time, m.TimeNano, before.UnixNano(), after.UnixNano())
			}
		})
	}
}

func TestLogCopiesAttributes(t *testing.T) {
	b := New()
	attrs := map[string]string{"name": "a"}
	b.Log("create", types.ContainerEventType, types.EventActor{ID: "x", Attributes: attrs})
	attrs["name"] = "changed"
	history, _, cancel := b.SubscribeTopic(epoch, time.Time{}, nil)
	defer cancel()
	if got := history[0].Actor.Attributes["name"]; got != "a" {
		t.Errorf("history attribute after the caller changed its map = %q, want %q", got, "a")
	}
}

func TestPublishMessage(t *testing.T) {
	b := New()
	b.PublishMessage(types.EventMessage{Type: "volume", Action: "mount", Actor: types.EventActor{ID: "v1"}})
	b.PublishMessage(types.EventMessage{Type: "volume", Action: "mount", Actor: types.EventActor{ID: "v2"}, Time: 100})
	b.PublishMessage(types.EventMessage{Type: "volume", Action: "mount", Actor: types.EventActor{ID: "v3"}, Time: 100, TimeNano: 100_000_000_123})
	history, _, cancel := b.SubscribeTopic(epoch, time.Time{}, nil)
	defer cancel()
	if len(history) != 3 {
		t.Fatalf("history = %d events, want 3", len(history))
	}
	if history[0].TimeNano == 0 || history[0].Scope != "" || history[0].Status != "" {
		t.Errorf("PublishMessage without time = %+v, want a stamped time and nothing else filled", history[0])
	}
	if history[1].TimeNano != 100_000_000_000 {
		t.Errorf("PublishMessage with Time only: TimeNano = %d, want %d", history[1].TimeNano, int64(100_000_000_000))
	}
	if history[2].TimeNano != 100_000_000_123 || history[2].Time != 100 {
		t.Errorf("PublishMessage with both times = %d/%d, want them kept", history[2].Time, history[2].TimeNano)
	}
}

func TestHistoryBound(t *testing.T) {
	b := New()
	const total = HistorySize + 44
	for i := int64(1); i <= total; i++ {
		at(b, i, "container")
	}
	history, _, cancel := b.SubscribeTopic(epoch, time.Time{}, nil)
	defer cancel()
	if len(history) != HistorySize {
		t.Fatalf("history after %d events = %d, want %d", total, len(history), HistorySize)
	}
	for i, m := range history {
		if want := strconv.Itoa(total - HistorySize + 1 + i); m.Actor.ID != want {
			t.Fatalf("history[%d] = event %s, want %s (oldest first, oldest forgotten)", i, m.Actor.ID, want)
		}
	}
}

func TestHistoryWindow(t *testing.T) {
	b := New()
	for _, n := range []int64{10, 20, 30, 40} {
		at(b, n*int64(time.Second), "container")
	}
	at(b, 25*int64(time.Second), "image")
	sec := func(n int64) time.Time { return time.Unix(n, 0) }
	tests := []struct {
		name         string
		since, until time.Time
		filter       string
		want         string
	}{
		{"neither bound: no history", time.Time{}, time.Time{}, "", ""},
		{"since epoch: all", epoch, time.Time{}, "", "10000000000,20000000000,30000000000,40000000000,25000000000"},
		{"since is inclusive", sec(30), time.Time{}, "", "30000000000,40000000000"},
		{"until is inclusive", time.Time{}, sec(20), "", "10000000000,20000000000"},
		{"window", sec(15), sec(30), "", "20000000000,30000000000,25000000000"},
		{"window filtered", sec(15), sec(30), `{"type":["image"]}`, "25000000000"},
		{"since in the future", sec(50), time.Time{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *Filter
			if tt.filter != "" {
				f = mustFilter(t, tt.filter)
			}
			history, _, cancel := b.SubscribeTopic(tt.since, tt.until, f)
			defer cancel()
			if got := ids(history); got != tt.want {
				t.Errorf("SubscribeTopic(%v, %v, %s) history = %s, want %s", tt.since, tt.until, tt.filter, got, tt.want)
			}
		})
	}
}

func TestLiveFilterAndUntil(t *testing.T) {
	b := New()
	_, live, cancel := b.SubscribeTopic(time.Time{}, time.Unix(100, 0), mustFilter(t, `{"type":["container"]}`))
	defer cancel()
	at(b, 50*int64(time.Second), "image")      // filtered out
	at(b, 60*int64(time.Second), "container")  // delivered
	at(b, 100*int64(time.Second), "container") // until is inclusive
	at(b, 101*int64(time.Second), "container") // after until
	cancel()
	var got []types.EventMessage
	for m := range drainAll(live) {
		got = append(got, m)
	}
	if want := "60000000000,100000000000"; ids(got) != want {
		t.Errorf("live events = %s, want %s", ids(got), want)
	}
}

func TestCancel(t *testing.T) {
	b := New()
	_, live1, cancel1 := b.SubscribeTopic(time.Time{}, time.Time{}, nil)
	_, _, cancel2 := b.SubscribeTopic(time.Time{}, time.Time{}, nil)
	if got := b.SubscriberCount(); got != 2 {
		t.Fatalf("SubscriberCount() = %d, want 2", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(cancel1) // concurrent and repeated cancels must not double-close
	}
	wg.Wait()
	if _, open := live1.Take(nil); open {
		t.Errorf("live subscription still open after cancel")
	}
	if got := b.SubscriberCount(); got != 1 {
		t.Errorf("SubscriberCount() after one cancel = %d, want 1", got)
	}
	at(b, 1, "container") // publishing after a cancel must not panic
	cancel2()
	cancel2()
	if got := b.SubscriberCount(); got != 0 {
		t.Errorf("SubscriberCount() after all cancels = %d, want 0", got)
	}
}

func TestClose(t *testing.T) {
	b := New()
	_, live, cancel := b.SubscribeTopic(time.Time{}, time.Time{}, nil)
	b.Close()
	b.Close()
	if _, open := live.Take(nil); open {
		t.Errorf("live subscription open after Close")
	}
	cancel() // after Close: still safe
	at(b, 5, "container")
	history, late, lateCancel := b.SubscribeTopic(epoch, time.Time{}, nil)
	defer lateCancel()
	if _, open := late.Take(nil); open {
		t.Errorf("subscription after Close got an open channel")
	}
	if ids(history) != "5" {
		t.Errorf("history after Close = %s, want 5 (publishing still records)", ids(history))
	}
	if got := b.SubscriberCount(); got != 0 {
		t.Errorf("SubscriberCount() after Close = %d, want 0", got)
	}
}

// TestSlowSubscriberCannotBlockLog subscribes a reader that never reads and
// shows that Log keeps going, the stalled subscriber is dropped with exactly
// its buffer delivered, and a subscriber that keeps up is unaffected.
func TestSlowSubscriberCannotBlockLog(t *testing.T) {
	b := New()
	_, stalled, cancelStalled := b.SubscribeTopic(time.Time{}, time.Time{}, nil)
	defer cancelStalled()
	_, images, cancelImages := b.SubscribeTopic(time.Time{}, time.Time{}, mustFilter(t, `{"type":["image"]}`))
	defer cancelImages()

	const total = LiveBuffer + 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			typ := types.ContainerEventType
			if i%100 == 0 {
				typ = types.ImageEventType
			}
			b.Log("create", typ, types.EventActor{ID: strconv.Itoa(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Log blocked behind a subscriber that does not read")
	}

	n := 0
	for m := range drainAll(stalled) {
		if m.Actor.ID != strconv.Itoa(n) {
			t.Fatalf("stalled subscriber event %d = %s, want %d (in order, no gaps before the drop)", n, m.Actor.ID, n)
		}
		n++
	}
	if n != LiveBuffer {
		t.Errorf("stalled subscriber got %d events before its channel closed, want %d", n, LiveBuffer)
	}
	if got := b.SubscriberCount(); got != 1 {
		t.Errorf("SubscriberCount() = %d, want 1 (only the image subscriber left)", got)
	}
	cancelImages()
	var got []string
	for m := range drainAll(images) {
		got = append(got, m.Actor.ID)
	}
	if want := (total + 99) / 100; len(got) != want {
		t.Errorf("image subscriber got %d events, want %d: %v", len(got), want, got)
	}
}

// TestHistoryThenLiveHasNoGap subscribes while a publisher runs and checks
// that each subscriber's history followed by its live events is one unbroken
// run ending at the last event: nothing lost or repeated at the seam.
func TestHistoryThenLiveHasNoGap(t *testing.T) {
	b := New()
	const total = 1000 // below LiveBuffer, so no reader is dropped
	type sub struct {
		history []types.EventMessage
		live    *Subscription
		cancel  func()
	}
	subs := make(chan sub, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); i <= total; i++ {
			at(b, i, "container")
		}
	})
	for range 16 {
		wg.Go(func() {
			h, l, c := b.SubscribeTopic(epoch, time.Time{}, nil)
			subs <- sub{h, l, c}
		})
	}
	wg.Wait()
	close(subs)
	for s := range subs {
		s.cancel()
		all := s.history
		for m := range drainAll(s.live) {
			all = append(all, m)
		}
		if len(all) == 0 {
			continue
		}
		first, _ := strconv.ParseInt(all[0].Actor.ID, 10, 64)
		for i, m := range all {
			if want := strconv.FormatInt(first+int64(i), 10); m.Actor.ID != want {
				t.Fatalf("event %d after subscribing = %s, want %s (history %d events)", i, m.Actor.ID, want, len(s.history))
			}
		}
		if last := all[len(all)-1].Actor.ID; last != strconv.Itoa(total) {
			t.Errorf("last event seen = %s, want %d", last, total)
		}
	}
}

// TestConcurrentPublishersAndSubscribers runs many publishers and readers at
// once (for -race) and checks that every reader sees each publisher's events
// in publication order, with none repeated, and all of them unless it was
// dropped for falling behind.
func TestConcurrentPublishersAndSubscribers(t *testing.T) {
	b := New()
	// 960 events fit in every subscriber's LiveBuffer, so no reader can be
	// dropped however the scheduler runs them: every one must see them all.
	const publishers, perPublisher, readers = 8, 120, 8
	type result struct {
		count   int
		dropped bool
		err     error
	}
	results := make(chan result, readers)
	var readersReady, readersDone sync.WaitGroup
	cancels := make([]func(), readers)
	for r := range readers {
		_, live, cancel := b.SubscribeTopic(time.Time{}, time.Time{}, nil)
		cancels[r] = cancel
		readersReady.Add(1)
		readersDone.Go(func() {
			readersReady.Done()
			last := map[string]int{}
			res := result{}
			for m := range drainAll(live) {
				pub, seqText, _ := strings.Cut(m.Actor.ID, "/")
				seq, _ := strconv.Atoi(seqText)
				if prev, ok := last[pub]; ok && seq <= prev && res.err == nil {
					res.err = fmt.Errorf("publisher %s: event %d after %d", pub, seq, prev)
				}
				last[pub] = seq
				res.count++
				if res.count == publishers*perPublisher {
					break
				}
			}
			res.dropped = res.count < publishers*perPublisher
			results <- res
		})
	}
	readersReady.Wait()

	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Go(func() {
			for i := range perPublisher {
				b.Log("create", types.ContainerEventType, types.EventActor{
					ID:         fmt.Sprintf("%d/%d", p, i),
					Attributes: map[string]string{"name": "c"},
				})
				_ = b.SubscriberCount()
			}
		})
	}
	pubs.Wait()
	for _, cancel := range cancels {
		cancel()
	}
	readersDone.Wait()
	close(results)
	complete := 0
	for res := range results {
		if res.err != nil {
			t.Error(res.err)
		}
		if !res.dropped {
			complete++
		}
	}
	if complete != readers {
		t.Errorf("%d of %d readers received all %d events, want all", complete, readers, publishers*perPublisher)
	}
	history, _, cancel := b.SubscribeTopic(epoch, time.Time{}, nil)
	cancel()
	if len(history) != HistorySize {
		t.Errorf("history after %d events = %d, want %d", publishers*perPublisher, len(history), HistorySize)
	}
	for i := 1; i < len(history); i++ {
		if history[i].TimeNano < history[i-1].TimeNano {
			t.Fatalf("history out of time order at %d: %d then %d", i, history[i-1].TimeNano, history[i].TimeNano)
		}
	}
}

// drainAll yields s's events until it ends, waiting for them.
func drainAll(s *Subscription) iter.Seq[types.EventMessage] {
	return func(yield func(types.EventMessage) bool) {
		for {
			<-s.Ready()
			batch, open := s.Take(nil)
			for _, m := range batch {
				if !yield(m) {
					return
				}
			}
			if !open {
				return
			}
		}
	}
}

// TestIdleSubscriberIsSmall: an /events stream that has nothing to read
// holds no event buffer (issue 13: a 1024-slot channel made each one cost
// 136 KiB), and a subscriber that fell behind in a burst gives its queue
// back once it has caught up.
func TestIdleSubscriberIsSmall(t *testing.T) {
	b := New()
	const n = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cancels := make([]func(), n)
	for i := range n {
		_, _, cancels[i] = b.SubscribeTopic(time.Time{}, time.Time{}, nil)
	}
	runtime.ReadMemStats(&after)
	for _, cancel := range cancels {
		cancel()
	}
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 1024 {
		t.Errorf("an idle subscription allocates %d bytes, want at most 1 KiB", per)
	}

	_, live, cancel := b.SubscribeTopic(time.Time{}, time.Time{}, nil)
	defer cancel()
	for i := range 500 {
		b.Log("create", types.ContainerEventType, types.EventActor{ID: strconv.Itoa(i)})
	}
	if got, open := live.Take(nil); len(got) != 500 || !open {
		t.Fatalf("Take after a burst = %d events (open %v), want 500", len(got), open)
	}
	if c := cap(live.queue); c > 16 {
		t.Errorf("after the burst was taken the subscriber still holds a queue of %d", c)
	}
}
