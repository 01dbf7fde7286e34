package container

import (
	"encoding/json"
	"sync"

	"skiffd/internal/api/types"
)

// statsEncoder encodes each of the stats collector's samples once for all
// the detached streams of its container that are in step (issue 13, memory
// per stream). A stream's sample carries the one it sent before as
// precpu_stats and preread, so every stream that took the collector's
// previous sample sends the same bytes; encoding them once per stream made
// each stream a sample's worth of garbage a second (forty streams: about a
// megabyte every seven seconds, kept until the next collection). A stream
// that is out of step (its first tick, or after it missed one) gets its own
// encoding, as before.
type statsEncoder struct {
	mu   sync.Mutex
	byID map[string]*sharedStats
	// encodes counts the samples marshalled, for tests.
	encodes int
}

// sharedStats is the state of one container's streams: the collector's
// sample of this tick and of the one before, and the bytes of this tick's
// sample for streams whose previous sample is last.
type sharedStats struct {
	streams   int
	cur, last *types.StatsJSON
	b         []byte
}

// open registers a stream of container id; close ends it.
func (e *statsEncoder) open(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byID == nil {
		e.byID = map[string]*sharedStats{}
	}
	x := e.byID[id]
	if x == nil {
		x = &sharedStats{}
		e.byID[id] = x
	}
	x.streams++
}

func (e *statsEncoder) close(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byID[id]; x != nil {
		if x.streams--; x.streams <= 0 {
			delete(e.byID, id)
		}
	}
}

// encode returns the JSON line of s (a sample the collector shares between
// the streams of s.ID, which must not be changed) with prev as its
// previous sample. The bytes may be shared: the caller must not change
// them.
func (e *statsEncoder) encode(s, prev *types.StatsJSON) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.byID[s.ID]
	if x != nil && s != x.cur {
		// The first stream of a new tick.
		x.last, x.cur, x.b = x.cur, s, nil
	}
	inStep := x != nil && x.last != nil && prev == x.last
	if inStep && x.b != nil {
		return x.b, nil
	}
	own := *s
	own.PreCPUStats, own.PreRead = prev.CPUStats, prev.Read
	b, err := json.Marshal(&own)
	if err != nil {
		return nil, err
	}
	e.encodes++
	b = append(b, '\n')
	if inStep {
		x.b = b
	}
	return b, nil
}
