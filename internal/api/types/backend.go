package types

import (
	"errors"
	"io"
	"sync"
	"time"

	"skiffd/internal/filters"
)

// The types below are not on the wire: they are the options and results
// the handlers in internal/api/<module> pass to the engine and get back,
// as moby's api/types/backend. They live here so that the engine depends
// only on internal/api/types, never on a handler package.

// ContainerListOptions are the parameters of GET /containers/json.
type ContainerListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters filters.Args
}

// ContainerListEntry is one container of GET /containers/json as the
// engine lists it for the list handler, which keeps what it derives from a
// summary (its JSON) in Cache: listing is the request clients poll most,
// and between two changes of a container only its status text moves
// (issue 13, list rate).
type ContainerListEntry struct {
	// Summary is shared by every list of the container's same saved
	// state, so its pointer changes exactly when its content does; it
	// must not be modified. Its Status is empty and its sizes are zero:
	// the fields below hold them.
	Summary *ContainerSummary
	// Status is the status text as of the request ("Up 2 minutes").
	Status string
	// ImageIsID reports that Image shows Summary.ImageID, not
	// Summary.Image: the reference the container was created from no
	// longer names its image, as dockerd answers.
	ImageIsID bool
	// SizeRw and SizeRootFs are set with size=1 only.
	SizeRw, SizeRootFs int64
	// Cache lives as long as Summary: one per saved state of the
	// container. The engine only hands it over.
	Cache *ListCache
}

// ListCache holds one value that a consumer derives from a
// ContainerListEntry's Summary, made once.
type ListCache struct {
	once sync.Once
	v    any
}

// Get returns the cached value, calling make to make it the first time.
func (c *ListCache) Get(make func() any) any {
	c.once.Do(func() { c.v = make() })
	return c.v
}

// ContainerLogsOptions are the parameters of GET /containers/{id}/logs.
type ContainerLogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Since, Until   time.Time
	Tail           int // -1 = all
}

// LogMessage is one log entry, or the error that ended the stream.
type LogMessage struct {
	Stream string // "stdout" or "stderr"
	Line   []byte
	Time   time.Time
	Err    error
}

// EventFeed is a live /events subscription: the events queued for it,
// taken in batches.
type EventFeed interface {
	// Ready fires when events are waiting or the feed has ended.
	Ready() <-chan struct{}
	// Take appends the waiting events to dst, oldest first; open is
	// false once the feed has ended (the events returned then are the
	// last).
	Take(dst []EventMessage) (events []EventMessage, open bool)
	// OnReady replaces Ready with a call of fn, made with the feed's
	// publisher locked: fn only schedules the Take.
	OnReady(fn func())
}

// LogSink receives a container's log from the backend, on the backend's
// goroutine, so that records go straight into the response's batch without
// a hand-off per line (issue 13: a 64-slot channel of messages held the API
// to ~36 MB/s).
type LogSink interface {
	// Begin is called once, after the request has been validated and
	// before any record, with whether the container has a TTY.
	Begin(tty bool)
	// Record is called for each record, in order. line is valid only
	// during the call. An error ends the read and is returned.
	Record(stream string, line []byte, t time.Time) error
	// Idle is called when everything written so far has been delivered
	// and the reader is about to wait for more (following only).
	Idle() error
}

// LogFollowSink is a LogSink that follows without a goroutine (issue 13,
// memory per stream): with Follow, the backend's ContainerLogs sends the
// history, calls Following, and returns nil, leaving the follower to the
// log's watcher; Record and Idle are then called from whatever goroutine
// the follower runs on, one at a time, and End once, when following has
// ended. An error ContainerLogs returns means End is not called.
type LogFollowSink interface {
	LogSink
	// Following is called when the history has been sent. From then on
	// Record and Idle must not block on a slow client: once its backlog
	// is full they return ErrSinkFull (the record was taken) and the
	// sink calls resume when the backlog has been sent, and perhaps at
	// other times.
	Following(resume func())
	// End is called once following has ended, with the error that ended
	// it (nil at the container's stop or Until).
	End(err error)
}

// ErrSinkFull is what a LogFollowSink's Record or Idle returns to hold the
// follower back until it calls resume: nothing is lost, reading stops.
var ErrSinkFull = errors.New("log sink full")

// AttachConfig describes an attach request.
type AttachConfig struct {
	Stdin, Stdout, Stderr bool
	Logs                  bool   // replay the log first
	Stream                bool   // then follow live output
	DetachKeys            string // e.g. "ctrl-p,ctrl-q"
	// GetStreams takes over the connection, after the engine validated the
	// request. tty says whether output goes unframed. stdin reads the
	// client's input until it half-closes; closing it ends the connection.
	GetStreams func(tty bool) (stdin io.ReadCloser, stdout, stderr io.Writer, err error)
}

// ExecStartConfig describes an exec start request.
type ExecStartConfig struct {
	Detach      bool
	Tty         bool
	ConsoleSize *[2]uint
	// GetStreams takes over the connection; nil when Detach is set. stdin
	// is nil when the exec did not ask for it.
	GetStreams func(tty bool) (stdin io.ReadCloser, stdout, stderr io.Writer, err error)
}

// CommitOptions are the parameters of POST /commit.
type CommitOptions struct {
	// Repo and Tag, when Repo is set, name the new image (the CLI sends
	// the repository normalised: "docker.io/library/x").
	Repo, Tag string
	Comment   string
	Author    string
	// Pause freezes a running container while its file system is read.
	Pause bool
	// Changes are Dockerfile instructions applied to the new config.
	Changes []string
	// Config, when not nil, is the run configuration of the new image in
	// place of the container's; what it leaves out comes from the
	// container's.
	Config *Config
}
