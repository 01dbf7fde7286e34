package container

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"skiffd/internal/api/types"
)

// TestStatsEncoderShares: streams of a container that took the collector's
// previous sample share one encoding of each tick's sample, whatever order
// the collector calls them in and however the streams of two containers
// interleave; a stream out of step (just opened, or it missed a tick) gets
// its own. Every line is what encoding the sample with the stream's own
// previous sample as precpu_stats gives.
func TestStatsEncoderShares(t *testing.T) {
	e := &statsEncoder{}
	sample := func(id string, tick int) *types.StatsJSON {
		s := &types.StatsJSON{ID: id, Name: "/" + id}
		s.Read = time.Unix(int64(1000+tick), 0).UTC()
		s.CPUStats.CPUUsage.TotalUsage = uint64(tick * 1000)
		return s
	}
	type stream struct {
		id   string
		prev *types.StatsJSON
		skip int // a tick it misses (its client was behind)
	}
	var streams []*stream
	open := func(id string, tick, skip int) {
		e.open(id)
		streams = append(streams, &stream{id: id, prev: sample(id, tick), skip: skip})
	}
	for range 5 {
		open("a", 0, -1)
		open("b", 0, -1)
	}
	for tick := 1; tick <= 6; tick++ {
		if tick == 3 {
			open("a", 2, -1) // opens between ticks: out of step once
		}
		if tick == 2 {
			streams[0].skip = 4
		}
		cur := map[string]*types.StatsJSON{"a": sample("a", tick), "b": sample("b", tick)}
		before := e.encodes
		for _, i := range rand.Perm(len(streams)) {
			st := streams[i]
			if st.skip == tick {
				continue
			}
			s := cur[st.id]
			line, err := e.encode(s, st.prev)
			if err != nil {
				t.Fatal(err)
			}
			want := *s
			want.PreCPUStats, want.PreRead = st.prev.CPUStats, st.prev.Read
			wb, _ := json.Marshal(&want)
			if string(line) != string(wb)+"\n" {
				t.Fatalf("tick %d, stream %d: %s\nwant %s", tick, i, line, wb)
			}
			st.prev = s
		}
		// Tick 1: every stream's previous sample is its own first one.
		// Then one encoding a container, plus one for each stream out of
		// step: tick 3 the stream opened at 2, tick 5 the one that
		// skipped tick 4.
		want := map[int]int{1: 10, 2: 2, 3: 3, 4: 2, 5: 3, 6: 2}[tick]
		if got := e.encodes - before; got != want {
			t.Errorf("tick %d: %d encodings, want %d", tick, got, want)
		}
	}
	for _, st := range streams {
		e.close(st.id)
	}
	if len(e.byID) != 0 {
		t.Errorf("%d containers' state left after every stream closed", len(e.byID))
	}
}
