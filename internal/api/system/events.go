package system

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/filters"
	"skiffd/internal/timestamp"
)

// EventsBackend is what GET /events needs: the buffered events in
// [since, until] that match ef, and a live feed of later ones. The engine
// validates ef (unknown keys are an invalid-parameter error).
type EventsBackend interface {
	SubscribeToEvents(ctx context.Context, since, until time.Time, ef filters.Args) (history []types.EventMessage, live types.EventFeed, cancel func(), err error)
}

// Events streams GET /events: headers at once, then one JSON object per
// event, each flushed as its own chunk. With an `until` in the past only
// buffered events are sent; with one in the future the stream ends then;
// without one it lasts until the client goes away or the daemon stops.
func Events(b EventsBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		now := time.Now()
		q := r.URL.Query()
		since, until, err := timestamp.ParseSinceUntil(q.Get("since"), q.Get("until"), now)
		if err != nil {
			return err
		}
		ef, err := filters.FromParam(q.Get("filters"))
		if err != nil {
			return err
		}
		history, live, cancel, err := b.SubscribeToEvents(r.Context(), since, until, ef)
		if err != nil {
			return err
		}

		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if until.IsZero() || until.After(now) {
			if ds, err := wire.Detach(w, r); err == nil {
				detachEvents(ds, history, live, cancel, until.Sub(now), !until.IsZero())
				return nil
			}
		}
		defer cancel()
		wire.Flush(w)
		enc := json.NewEncoder(w)
		for _, m := range history {
			if err := enc.Encode(m); err != nil {
				return nil // client gone; nothing more to say
			}
		}
		wire.Flush(w)
		var deadline <-chan time.Time
		if !until.IsZero() {
			if !until.After(now) {
				return nil
			}
			t := time.NewTimer(until.Sub(now))
			defer t.Stop()
			deadline = t.C
		}
		var batch []types.EventMessage
		for {
			select {
			case <-live.Ready():
				var open bool
				batch, open = live.Take(batch[:0])
				for _, m := range batch {
					if err := enc.Encode(m); err != nil {
						return nil
					}
				}
				wire.Flush(w)
				if !open {
					return nil // dropped as a slow subscriber, or shut down
				}
				clear(batch)
				if cap(batch) > 16 {
					batch = nil
				}
			case <-deadline:
				return nil
			case <-r.Context().Done():
				return nil
			case <-wire.StreamsDone(r.Context()):
				return nil
			}
		}
	}
}

// detachedBacklog is how much of a slow client's events a detached stream
// queues before it stops taking them from the bus: the bus then queues
// them, and drops the subscriber at events.LiveBuffer, as it does for a
// handler stuck writing.
const detachedBacklog = 64 << 10

// detachEvents serves an /events stream with no goroutine while no event
// comes (issue 13, memory per stream): the history now, then each batch
// the bus queues, encoded and sent by a goroutine that runs only while
// there is a batch to send. The stream ends at until (when set), when the
// feed ends (dropped as a slow subscriber, or the daemon stops), or when
// the client goes away.
func detachEvents(ds *wire.DetachedStream, history []types.EventMessage, live types.EventFeed, cancel func(), wait time.Duration, hasUntil bool) {
	ds.OnClose(cancel)
	if hasUntil {
		t := time.AfterFunc(wait, ds.End)
		ds.OnClose(func() { t.Stop() })
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, m := range history {
		enc.Encode(m)
	}
	if ds.Send(buf.Bytes()) != nil {
		return
	}
	// running is set while a goroutine drains the feed; again when the
	// feed had more while it ran.
	var running, again atomic.Bool
	var drain func()
	drain = func() {
		for {
			again.Store(false)
			if ds.Backlog() > detachedBacklog {
				// The writer calls drain again once the client has
				// caught up.
				running.Store(false)
				return
			}
			batch, open := live.Take(nil)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			for _, m := range batch {
				enc.Encode(m)
			}
			if ds.Send(buf.Bytes()) != nil {
				running.Store(false)
				return
			}
			if !open {
				ds.End() // dropped as a slow subscriber, or shut down
				running.Store(false)
				return
			}
			running.Store(false)
			if !again.Load() || !running.CompareAndSwap(false, true) {
				return
			}
		}
	}
	kick := func() {
		again.Store(true)
		if running.CompareAndSwap(false, true) {
			go drain()
		}
	}
	ds.OnIdle(kick)
	live.OnReady(kick)
}
