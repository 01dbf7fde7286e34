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
func (e *Engine) SubscribeToEvents(ctx context.Context, since, until time.Time, ef filters.Args) ([]types.EventMessage, <-chan types.EventMessage, func(), error) {
	if err := events.ValidateFilters(ef); err != nil {
		return nil, nil, nil, err
	}
	history, live, cancel := e.events.SubscribeTopic(since, until, events.NewFilter(ef))
	return history, live, cancel, nil
}

// eventListeners is the number of /events subscribers (Info.NEventsListener).
func (e *Engine) eventListeners() int { return e.events.SubscriberCount() }
