// Package partial numbers the pieces of long lines as dockerd's log
// copier does, for the drivers that send them elsewhere with that
// metadata (fluentd, journald): an entry without a newline at its end (a
// line cut at the log's 16 KiB, or the last output of a stream without
// one) is a piece of a line, not the last; the next entry of the same
// stream that has its newline is the last piece. The pieces of a line
// share a random ID and count from 1.
package partial

import (
	"crypto/rand"
	"encoding/hex"
)

// Meta is one entry's place in its line; the zero value is an entry that
// is a whole line.
type Meta struct {
	ID      string
	Ordinal int
	Last    bool
}

// Tracker follows the lines of a container's two streams. The zero value
// is ready; it is not safe for concurrent use.
type Tracker struct {
	groups [2]group // stdout, stderr
}

type group struct {
	id   string
	next int
}

// Next returns the metadata of the next entry of stream.
func (t *Tracker) Next(stream string, line []byte) Meta {
	g := &t.groups[0]
	if stream == "stderr" {
		g = &t.groups[1]
	}
	if len(line) == 0 {
		return Meta{} // nothing: no piece of anything
	}
	whole := line[len(line)-1] == '\n'
	if whole {
		if g.id == "" {
			return Meta{}
		}
		m := Meta{ID: g.id, Ordinal: g.next, Last: true}
		*g = group{}
		return m
	}
	if g.id == "" {
		var b [32]byte
		rand.Read(b[:])
		*g = group{id: hex.EncodeToString(b[:]), next: 1}
	}
	m := Meta{ID: g.id, Ordinal: g.next}
	g.next++
	return m
}
