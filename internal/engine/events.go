package engine

import (
	"context"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/events"
	"skiffd/internal/filters"
)

// SubscribeToEvents answers GET /events: buffered events in [since, until]
// that match ef, and a live feed of later ones until cancel is called.
func (e *Engine) SubscribeToEvents(ctx context.Context, since, until time.Time, ef filters.Args) ([]types.EventMessage, types.EventFeed, func(), error) {
	if err := events.ValidateFilters(ef); err != nil {
		return nil, nil, nil, err
	}
	history, live, cancel := e.events.SubscribeTopic(since, until, events.NewFilter(ef))
	end := e.streams.begin()
	return history, live, func() { cancel(); end() }, nil
}

// eventListeners is the number of /events subscribers (Info.NEventsListener).
func (e *Engine) eventListeners() int { return e.events.SubscriberCount() }

// EventsDropped is how many /events subscribers were dropped for falling
// behind (metrics, issue 12).
func (e *Engine) EventsDropped() uint64 { return e.events.Dropped() }

// LogDaemonEvent publishes a daemon event, such as "reload" after SIGHUP,
// with the daemon's ID as actor, as dockerd does.
func (e *Engine) LogDaemonEvent(action string, attrs map[string]string) {
	e.events.Log(action, types.DaemonEventType, types.EventActor{ID: e.id, Attributes: attrs})
}

// EventCounts is how many events were published, by type and action
// (metrics: container starts, exits, OOMs).
func (e *Engine) EventCounts() map[[2]string]uint64 { return e.events.Counts() }
