// Package events is the in-process event bus behind GET /events: the engine
// publishes what happens (container create, start, die, image pull, ...), and
// every /events request subscribes with its filters and time window.
//
// The engine logs:
//
//	bus.Log(types.EventActionStart, types.ContainerEventType, types.EventActor{
//		ID:         c.ID,
//		Attributes: map[string]string{"name": c.Name, "image": c.ImageName},
//	})
//
// and the handler streams:
//
//	since, until, err := timestamp.ParseSinceUntil(q.Get("since"), q.Get("until"), time.Now())
//	...
//	history, live, cancel := bus.SubscribeTopic(since, until, events.NewFilter(args))
//	defer cancel()
//	// write history, then take live's events each time live.Ready()
//	// fires, until Take reports the end, until passes or the client
//	// goes away.
//
// Like dockerd, the bus keeps the last HistorySize events for `since` and
// `until`; older events are gone.
package events

import (
	"maps"
	"sync"
	"time"

	"skiffd/internal/api/types"
)

// HistorySize is how many past events the bus keeps, as dockerd does.
const HistorySize = 256

// LiveBuffer is how many events a subscriber may fall behind before the bus
// gives up on it. The queue grows to it only when the subscriber falls
// behind: an idle subscriber holds no buffer (issue 13: a 1024-slot
// channel each cost an /events stream 136 KiB).
const LiveBuffer = 1024

// Bus fans events out to subscribers and remembers the most recent ones. It
// is safe for concurrent use; the zero Bus is not usable, call New.
type Bus struct {
	mu sync.Mutex
	// ring holds the history oldest first from start, count entries long.
	ring   [HistorySize]types.EventMessage
	start  int
	count  int
	subs   map[*Subscription]struct{}
	closed bool
	// dropped counts subscribers removed for falling behind (metrics).
	dropped uint64
	// counts counts published events by type and action (metrics).
	counts map[[2]string]uint64
}

// Subscription is one live listener: the events published since it
// subscribed that pass its filter, queued until it takes them. It
// implements types.EventFeed.
type Subscription struct {
	b      *Bus
	filter *Filter
	// untilNano, when non-zero, ends the interest of the subscriber: later
	// events are not sent to it.
	untilNano int64
	// ready holds a token while events wait or once the subscription
	// has ended.
	ready chan struct{}
	// queue (events not taken yet, oldest first) and ended (no more will
	// be queued: cancelled, dropped or the bus closed) are guarded by
	// b.mu.
	queue []types.EventMessage
	ended bool
	// notify, when set, is called (under b.mu) each time Ready would
	// fire (guarded by b.mu).
	notify func()
}

// OnReady makes the subscription call fn, instead of waiting readers being
// woken, each time events are queued or it ends, and once now if any
// wait already. fn is called with the bus locked: it must only schedule
// the reading (Take locks the bus), never read itself.
func (s *Subscription) OnReady(fn func()) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.notify = fn
	if len(s.ready) > 0 {
		<-s.ready
		fn()
	}
}

// Ready fires when events are waiting or the subscription has ended: the
// reader then calls Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take appends the waiting events to dst, oldest first, and returns it,
// with open false once the subscription has ended: the events returned
// then are the last (events queued before a cancel or a drop are still
// delivered).
func (s *Subscription) Take(dst []types.EventMessage) (events []types.EventMessage, open bool) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	dst = append(dst, s.queue...)
	clear(s.queue)
	if cap(s.queue) > 16 {
		s.queue = nil // a burst is over: give its queue back
	} else {
		s.queue = s.queue[:0]
	}
	return dst, !s.ended
}

// signal makes Ready fire.
func (s *Subscription) signal() {
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// New returns an empty Bus.
func New() *Bus {
	return &Bus{subs: map[*Subscription]struct{}{}}
}

// Log publishes an event of the local engine, stamped with the current time
// and scope "local". For container events it also fills the legacy fields
// status (the action), id (the actor ID) and from (the "image" attribute); for
// image events status and id; exactly as dockerd does for old clients.
// The attributes are copied, so the caller may reuse its map.
func (b *Bus) Log(action, eventType string, actor types.EventActor) {
	m := types.EventMessage{
		Type:   eventType,
		Action: action,
		Actor:  types.EventActor{ID: actor.ID, Attributes: maps.Clone(actor.Attributes)},
		Scope:  "local",
	}
	switch eventType {
	case types.ContainerEventType:
		m.Status, m.ID, m.From = action, actor.ID, actor.Attributes["image"]
	case types.ImageEventType:
		m.Status, m.ID = action, actor.ID
	}
	b.publish(m, true)
}

// PublishMessage publishes m as built by the caller. Only when m carries no
// time at all (Time and TimeNano zero) does the bus stamp the current time; a
// message with only Time gets TimeNano from it, since the time windows
// compare TimeNano. Nothing else is filled in. The attributes are copied.
func (b *Bus) PublishMessage(m types.EventMessage) {
	m.Actor.Attributes = maps.Clone(m.Actor.Attributes)
	if m.TimeNano == 0 && m.Time != 0 {
		m.TimeNano = m.Time * int64(time.Second)
	}
	b.publish(m, m.Time == 0 && m.TimeNano == 0)
}

// publish records m and hands it to every interested subscriber. The time is
// stamped under the lock so that history stays in time order even with
// concurrent publishers, and every subscriber sees events in the same order.
//
// Queueing never blocks: a subscriber with LiveBuffer events waiting is
// removed and ended, so the /events stream of a client that stopped reading
// ends instead of stalling the engine or silently skipping events. (dockerd instead waits up to 100ms per slow subscriber and then
// skips the event for it.)
func (b *Bus) publish(m types.EventMessage, stamp bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if stamp {
		now := time.Now().UTC()
		m.Time, m.TimeNano = now.Unix(), now.UnixNano()
	}
	b.record(m)
	if b.counts == nil {
		b.counts = map[[2]string]uint64{}
	}
	b.counts[[2]string{m.Type, m.Action}]++
	for s := range b.subs {
		if s.untilNano != 0 && m.TimeNano > s.untilNano {
			continue
		}
		if !s.filter.Include(m) {
			continue
		}
		if len(s.queue) >= LiveBuffer {
			b.dropped++
			b.dropLocked(s)
			continue
		}
		s.queue = append(s.queue, m)
		s.signal()
	}
}

// record appends m to the history ring, forgetting the oldest event when the
// ring is full.
func (b *Bus) record(m types.EventMessage) {
	if b.count < HistorySize {
		b.ring[(b.start+b.count)%HistorySize] = m
		b.count++
		return
	}
	b.ring[b.start] = m
	b.start = (b.start + 1) % HistorySize
}

// dropLocked removes and ends s; b.mu must be held.
func (b *Bus) dropLocked(s *Subscription) {
	delete(b.subs, s)
	s.ended = true
	s.signal()
}

// SubscribeTopic registers a listener and returns, atomically with respect to
// publishers (no event is both in history and live, none falls in between):
//
//   - history: the remembered events that pass f (nil means all) with
//     since <= time, and time <= until when until is set, oldest first. As in
//     dockerd, when both since and until are zero there is no history: a plain
//     `docker events` shows only what happens next.
//   - live: later events that pass f and, when until is set, are not after
//     until. It ends (Take reports !open, after the events queued before)
//     when cancel is called, when the bus is closed, or when the subscriber
//     falls LiveBuffer events behind (see publish); the reader should end
//     its stream then.
//   - cancel: unsubscribes and ends live; safe to call more than once and
//     from any goroutine. Callers must call it, also when until has passed.
//
// SubscribeTopic does not end the stream at until; the handler does that with
// a timer, as dockerd's does.
func (b *Bus) SubscribeTopic(since, until time.Time, f *Filter) (history []types.EventMessage, live *Subscription, cancel func()) {
	s := &Subscription{b: b, ready: make(chan struct{}, 1), filter: f}
	if !until.IsZero() {
		s.untilNano = until.UnixNano()
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if !since.IsZero() || !until.IsZero() {
		history = b.historyLocked(since, until, f)
	}
	if b.closed {
		s.ended = true
		s.signal()
		return history, s, func() {}
	}
	b.subs[s] = struct{}{}
	cancel = func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.dropLocked(s)
	}
	return history, s, cancel
}

// historyLocked returns the remembered events in the window that pass f;
// b.mu must be held.
func (b *Bus) historyLocked(since, until time.Time, f *Filter) []types.EventMessage {
	var sinceNano, untilNano int64
	if !since.IsZero() {
		sinceNano = since.UnixNano()
	}
	if !until.IsZero() {
		untilNano = until.UnixNano()
	}
	var out []types.EventMessage
	for i := range b.count {
		m := b.ring[(b.start+i)%HistorySize]
		if m.TimeNano < sinceNano || (untilNano != 0 && m.TimeNano > untilNano) {
			continue
		}
		if f.Include(m) {
			out = append(out, m)
		}
	}
	return out
}

// Dropped is how many subscribers were dropped for falling LiveBuffer
// events behind.
func (b *Bus) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Counts returns how many events were published, by type and action.
// Actions carrying arguments ("exec_start: sh") are counted as given.
func (b *Bus) Counts() map[[2]string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.counts)
}

// SubscriberCount returns the number of live subscribers, the
// NEventsListener of /info.
func (b *Bus) SubscriberCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close ends every subscription, ending their streams, for daemon
// shutdown. Later subscribers get an ended one at once; publishing still
// records history. Close is idempotent.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.dropLocked(s)
	}
}
