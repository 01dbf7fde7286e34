package system

import (
	"context"
	"encoding/json"
	"net/http"
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
		defer cancel()

		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
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
