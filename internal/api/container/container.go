package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/stdcopy"
	"skiffd/internal/timestamp"
)

// Create answers POST /containers/create?name=.
func Create(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req types.CreateRequest
		empty, err := wire.DecodeJSON(r, &req)
		if err != nil {
			return err
		}
		if empty || req.Config == nil {
			return errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
		}
		if req.HostConfig == nil {
			req.HostConfig = &types.HostConfig{}
		}
		req.Platform = r.URL.Query().Get("platform")
		if err := mountsForVersion(r.Context(), req.HostConfig.Mounts); err != nil {
			return err
		}
		macWarning, err := migrateMACAddress(r.Context(), &req)
		if err != nil {
			return err
		}
		resp, err := b.ContainerCreate(r.Context(), r.URL.Query().Get("name"), &req)
		if err != nil {
			return err
		}
		wire.Annotate(r.Context(), "container", resp.ID, "")
		if macWarning != "" {
			resp.Warnings = append(resp.Warnings, macWarning)
		}
		if resp.Warnings == nil {
			resp.Warnings = []string{}
		}
		return wire.WriteJSON(w, http.StatusCreated, resp)
	}
}

// mountsForVersion applies dockerd's API version rules to a create's
// mounts: BindOptions.NonRecursive is ignored before 1.40, and
// ReadOnlyForceRecursive (1.44) and image mounts (1.48) are refused
// before they existed.
func mountsForVersion(ctx context.Context, mounts []types.Mount) error {
	for i := range mounts {
		m := &mounts[i]
		if bo := m.BindOptions; bo != nil {
			if wire.VersionLess(ctx, "1.40") {
				bo.NonRecursive = false
			}
			if bo.ReadOnlyForceRecursive && m.Type == types.MountTypeBind && wire.VersionLess(ctx, "1.44") {
				return errdefs.InvalidParameter(errors.New("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"))
			}
		}
		if m.Type == types.MountTypeImage && wire.VersionLess(ctx, "1.48") {
			return errdefs.InvalidParameter(errors.New(`Mount type "Image" needs API v1.48 or newer`))
		}
	}
	return nil
}

// noContent answers 204, what dockerd sends for start, stop, kill and the like.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Start answers POST /containers/{id}/start (204; 304 when already running).
func Start(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		wire.Annotate(r.Context(), "container", r.PathValue("id"), "")
		if err := b.ContainerStart(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		return noContent(w)
	}
}

// stopParams reads ?t= and, from API 1.42, ?signal=.
func stopParams(r *http.Request) (string, *int, error) {
	var timeout *int
	if t := r.URL.Query().Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return "", nil, errdefs.InvalidParameter(fmt.Errorf("invalid value for t: %s", t))
		}
		timeout = &n
	}
	signal := ""
	if !wire.VersionLess(r.Context(), "1.42") {
		signal = r.URL.Query().Get("signal")
	}
	return signal, timeout, nil
}

// Stop answers POST /containers/{id}/stop (204; 304 when not running).
func Stop(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		signal, timeout, err := stopParams(r)
		if err != nil {
			return err
		}
		wire.Annotate(r.Context(), "container", r.PathValue("id"), "")
		if err := b.ContainerStop(r.Context(), r.PathValue("id"), signal, timeout); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Restart answers POST /containers/{id}/restart.
func Restart(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		signal, timeout, err := stopParams(r)
		if err != nil {
			return err
		}
		wire.Annotate(r.Context(), "container", r.PathValue("id"), "")
		if err := b.ContainerRestart(r.Context(), r.PathValue("id"), signal, timeout); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Kill answers POST /containers/{id}/kill?signal=.
func Kill(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		wire.Annotate(r.Context(), "container", r.PathValue("id"), "")
		if err := b.ContainerKill(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal")); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Pause answers POST /containers/{id}/pause.
func Pause(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := b.ContainerPause(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Unpause answers POST /containers/{id}/unpause.
func Unpause(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := b.ContainerUnpause(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Rename answers POST /containers/{id}/rename?name=.
func Rename(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := b.ContainerRename(r.Context(), r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Remove answers DELETE /containers/{id}?force=&v=&link=, and
// DELETE /containers/{parent}/{alias}?link=1 (a legacy link's name).
func Remove(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if alias := r.PathValue("alias"); alias != "" {
			id += "/" + alias // a link name, /parent/alias
		}
		wire.Annotate(r.Context(), "container", id, "")
		if wire.BoolValue(r, "link") {
			if err := b.ContainerRemoveLink(r.Context(), id); err != nil {
				return err
			}
			return noContent(w)
		}
		if err := b.ContainerRemove(r.Context(), id, wire.BoolValue(r, "force"), wire.BoolValue(r, "v")); err != nil {
			return err
		}
		return noContent(w)
	}
}

// Inspect answers GET /containers/{id}/json?size=.
func Inspect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := b.ContainerInspect(r.Context(), r.PathValue("id"), wire.BoolValue(r, "size"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, c)
	}
}

// List answers GET /containers/json.
func List(b Backend) wire.HandlerFunc {
	// entries recycles the engine's list entries; a pool drops what it
	// holds at the next collections, so an idle daemon keeps none.
	var entries sync.Pool
	var last listCache
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query() // once: each parse allocates
		ef, err := filters.FromParam(q.Get("filters"))
		if err != nil {
			return err
		}
		limit, err := wire.QueryInt64OrDefault(q, "limit", 0)
		if err != nil {
			return err
		}
		buf, _ := entries.Get().(*[]types.ContainerListEntry)
		if buf == nil {
			buf = new([]types.ContainerListEntry)
		}
		defer entries.Put(buf)
		list, err := b.ContainerList(r.Context(), types.ContainerListOptions{All: wire.QueryBool(q, "all"), Limit: int(limit), Size: wire.QueryBool(q, "size"), Filters: ef}, (*buf)[:0])
		*buf = list
		if err != nil {
			clear(list)
			return err
		}
		ans := last.answer(list)
		// The entries point into the engine's snapshots: let them go.
		clear(list)
		w.Header()["Content-Type"] = jsonContentType
		// A length instead of a chunked body, in one write: the client
		// is woken once and knows where the answer ends.
		return wire.WriteWhole(w, r, ans.length, ans.body)
	}
}

var jsonContentType = []string{"application/json"}

// listCache holds the last answers List made, each kept while it is in use
// and until the next collection (weak pointers): clients poll the list, and
// between two changes the answer is the same, byte for byte (issue 13,
// list rate); a few are kept for clients that poll with different queries
// (docker ps, docker ps -a). An answer is a function of its entries alone
// (appendEntries): each Summary is shared by every list of a container's
// same saved state and its pointer changes exactly when its content does,
// and the entry's other fields are compared, so any change a list can show
// — a new saved state (rename, start, stop, update, ...), a container added
// or removed, the status text moving with the clock, an image reference
// naming another image, the sizes — makes the next list encode anew.
// Holding the entries holds their snapshots, so no pointer compared can be
// reused by another.
type listCache struct {
	mu   sync.Mutex
	last [4]weak.Pointer[listAnswer]
	next int // the slot the next new answer takes
}

// listAnswer is the JSON of a list and the entries it encodes.
type listAnswer struct {
	entries []types.ContainerListEntry
	body    []byte
	length  []string // Content-Length
}

// answer returns the answer for entries: a kept one when it encodes the
// same entries, else a new one, which is kept in place of the oldest.
func (c *listCache) answer(entries []types.ContainerListEntry) *listAnswer {
	c.mu.Lock()
	for i := range len(c.last) {
		// The newest first.
		slot := (c.next - 1 - i + 2*len(c.last)) % len(c.last)
		if a := c.last[slot].Value(); a != nil && sameEntries(a.entries, entries) {
			c.mu.Unlock()
			return a
		}
	}
	c.mu.Unlock()
	// About 700 bytes a container; appendEntries is WriteJSON's
	// encoding without reflection, and mostly copies.
	body := appendEntries(make([]byte, 0, 1024+768*len(entries)), entries)
	a := &listAnswer{entries: slices.Clone(entries), body: body, length: []string{strconv.Itoa(len(body))}}
	for i := range a.entries {
		a.entries[i].Cache = nil // only the encoding needs it
	}
	c.mu.Lock()
	c.last[c.next] = weak.Make(a)
	c.next = (c.next + 1) % len(c.last)
	c.mu.Unlock()
	return a
}

// sameEntries reports whether a and b encode to the same JSON: the same
// summaries (by pointer, see types.ContainerListEntry) with the same status
// texts, images shown and sizes.
func sameEntries(a, b []types.ContainerListEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Summary != y.Summary || x.Status != y.Status || x.ImageIsID != y.ImageIsID || x.SizeRw != y.SizeRw || x.SizeRootFs != y.SizeRootFs {
			return false
		}
	}
	return true
}

// Top answers GET /containers/{id}/top?ps_args=.
func Top(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		top, err := b.ContainerTop(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, top)
	}
}

// Resize answers POST /containers/{id}/resize?h=&w= with an empty 200.
func Resize(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h, err := strconv.Atoi(r.URL.Query().Get("h"))
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid resize height %q: %w", r.URL.Query().Get("h"), err))
		}
		wd, err := strconv.Atoi(r.URL.Query().Get("w"))
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid resize width %q: %w", r.URL.Query().Get("w"), err))
		}
		if h < 0 || wd < 0 || h > 65535 || wd > 65535 {
			return errdefs.InvalidParameter(errors.New("invalid resize dimensions"))
		}
		if err := b.ContainerResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

// Update answers POST /containers/{id}/update.
func Update(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var cfg types.UpdateConfig
		if _, err := wire.DecodeJSON(r, &cfg); err != nil {
			return err
		}
		resp, err := b.ContainerUpdate(r.Context(), r.PathValue("id"), &cfg)
		if err != nil {
			return err
		}
		if resp.Warnings == nil {
			resp.Warnings = []string{}
		}
		return wire.WriteJSON(w, http.StatusOK, resp)
	}
}

// Prune answers POST /containers/prune.
func Prune(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return err
		}
		report, err := b.ContainersPrune(r.Context(), ef)
		if err != nil {
			return err
		}
		if report.ContainersDeleted == nil {
			report.ContainersDeleted = []string{}
		}
		return wire.WriteJSON(w, http.StatusOK, report)
	}
}

// Wait answers POST /containers/{id}/wait?condition=. The headers go out at
// once, before the container has even started: `docker run` registers its
// wait before start and needs that answer to proceed (API < 1.30 ignores
// the condition).
func Wait(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		cond := types.WaitCondition(r.URL.Query().Get("condition"))
		if wire.VersionLess(r.Context(), "1.30") {
			cond = ""
		}
		switch cond {
		case "", types.WaitConditionNotRunning, types.WaitConditionNextExit, types.WaitConditionRemoved:
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", cond))
		}
		if cond == "" {
			cond = types.WaitConditionNotRunning
		}
		ch, err := b.ContainerWait(r.Context(), r.PathValue("id"), cond)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		wire.Flush(w)
		select {
		case resp, ok := <-ch:
			if !ok {
				resp = types.WaitResponse{Error: &types.WaitExitError{Message: "wait ended without a result"}}
			}
			return json.NewEncoder(w).Encode(resp)
		case <-r.Context().Done():
			return nil
		case <-wire.StreamsDone(r.Context()):
			return nil
		}
	}
}

// Logs answers GET /containers/{id}/logs: framed with stdcopy unless the
// container has a TTY (then the lines are written raw, as dockerd does).
//
// The backend calls a logWriter for each record on its own goroutine; the
// frames are appended to a batch written and flushed at logBatch bytes,
// bulkBatch without follow (issue 13: one write and flush per 44-byte line held the API to 19 MB/s,
// and a channel hand-off per line to 36 MB/s). A batch also goes out
// whenever the reader has caught up with the log, so a follower sees each
// line as soon as the daemon has it.
func Logs(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		opts := types.ContainerLogsOptions{
			Stdout: wire.BoolValue(r, "stdout"), Stderr: wire.BoolValue(r, "stderr"),
			Follow: wire.BoolValue(r, "follow"), Timestamps: wire.BoolValue(r, "timestamps"), Tail: -1,
		}
		if !opts.Stdout && !opts.Stderr {
			return errdefs.InvalidParameter(errors.New("Bad parameters: you must choose at least one stream"))
		}
		if tail := q.Get("tail"); tail != "" && tail != "all" {
			if n, err := strconv.Atoi(tail); err == nil && n >= 0 {
				opts.Tail = n
			}
		}
		var err error
		if opts.Since, opts.Until, err = timestamp.ParseSinceUntil(q.Get("since"), q.Get("until"), time.Now()); err != nil {
			return err
		}
		lw := &logWriter{w: w, r: r, timestamps: opts.Timestamps, details: wire.BoolValue(r, "details"), frame: -1, batch: logBatch,
			merge: strings.HasPrefix(r.UserAgent(), "Docker-Client/")}
		if !opts.Follow {
			lw.batch = bulkBatch
		}
		if opts.Follow && wire.CanDetach(r) {
			return followDetached(r, b, opts, lw)
		}
		err = b.ContainerLogs(r.Context(), r.PathValue("id"), opts, lw)
		if !lw.begun {
			return err
		}
		lw.finish(err)
		return nil
	}
}

// followDetached serves logs -f with no goroutine of its own once the
// headers are sent (issue 13, memory per stream): the stream is detached
// from net/http in Begin, the backend sends the history on this goroutine
// and hands the follower to the log's watcher (Following), and this
// handler returns; the follower's wake-ups send what is new, without
// blocking on the client (Send, with a bounded backlog that holds the
// follower back), and End ends the stream. An error found before the
// headers is an ordinary HTTP answer, as without follow. The follower
// stops when the client goes away (the shared epoll closes the stream,
// which cancels its context), when the container stops, or at daemon
// shutdown.
func followDetached(r *http.Request, b Backend, opts types.ContainerLogsOptions, lw *logWriter) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	lw.detaching, lw.cancel = true, cancel
	err := b.ContainerLogs(ctx, r.PathValue("id"), opts, lw)
	if !lw.begun {
		cancel()
		return err // an ordinary HTTP answer
	}
	if !lw.following {
		// The backend did not follow (an error, or it sent everything
		// itself): End will not come.
		lw.End(err)
	}
	return nil
}

// Following switches the writer to sending without blocking: the follower
// no longer runs on a goroutine of the request's, and a slow client holds
// it back through ErrSinkFull instead.
func (l *logWriter) Following(resume func()) {
	l.following = true
	if l.ds != nil {
		l.ds.OnIdle(resume)
	}
}

// End ends a detached stream after the last record, reporting err in band;
// later calls do nothing (a follower that ended before following began
// ends the stream from inside ContainerLogs).
func (l *logWriter) End(err error) {
	if l.ended {
		return
	}
	l.ended = true
	l.finish(err)
	if l.ds != nil {
		l.ds.End()
	}
	l.cancel()
}

// finish reports err in band after what was sent, and sends the rest.
func (l *logWriter) finish(err error) {
	if err != nil && l.werr == nil {
		msg := fmt.Appendf(nil, "Error grabbing logs: %v\n", err)
		if l.tty {
			l.buf = append(l.buf, msg...)
		} else {
			l.buf = stdcopy.AppendFrame(l.buf, stdcopy.Systemerr, msg)
		}
	}
	l.send()
}

// logWriter frames log records into batches for one logs response.
//
// For the docker CLI, consecutive records of one stream within a batch
// share a frame (up to mergedFrame bytes): several lines in one frame is
// valid stdcopy framing, and the CLI's demultiplexer pays a write and a
// move of its buffer per frame (issue 13: one frame per 44-byte line held
// `docker logs` to 45 MB/s). Other clients get dockerd's frame per record:
// docker-py's and bollard's streams hand each frame to the caller as one
// log line.
type logWriter struct {
	w                   http.ResponseWriter
	r                   *http.Request
	timestamps, details bool
	tty, begun          bool
	merge               bool
	buf                 []byte
	box                 *[]byte // the batchBufs entry buf came in, or nil
	batch               int     // the size at which buf is sent
	// frame is where the open frame's header is in buf, or -1: the
	// next record of the same stream may join it.
	frame int
	// werr is the first failed write: the client is gone.
	werr error
	// detaching: Begin detaches the stream (followDetached) as ds;
	// following: the follower sends without blocking (Following).
	detaching, following, ended bool
	cancel                      context.CancelFunc
	ds                          *wire.DetachedStream
}

func (l *logWriter) Begin(tty bool) {
	l.tty, l.begun = tty, true
	if !wire.VersionLess(l.r.Context(), "1.42") {
		l.w.Header().Set("Content-Type", wire.StreamMediaType(l.r.Context(), tty))
	}
	l.w.WriteHeader(http.StatusOK)
	if !l.detaching {
		wire.Flush(l.w)
		return
	}
	// The last use of the request and its ResponseWriter.
	ds, err := wire.Detach(l.w, l.r)
	if err != nil {
		l.werr = err
	} else {
		l.ds = ds
		ds.OnClose(l.cancel) // the client went away: stop following
	}
	l.w, l.r = nil, nil
}

func (l *logWriter) Record(stream string, line []byte, t time.Time) error {
	if l.buf == nil && l.following {
		l.grow()
	}
	if l.timestamps || l.details {
		return l.record(stream, line, t)
	}
	// The common case, framed in place.
	switch {
	case l.tty:
		l.buf = append(l.buf, line...)
	case l.merge:
		hdr := l.openFrame(stream, len(line))
		l.buf = append(l.buf, line...)
		binary.BigEndian.PutUint32(l.buf[hdr+4:], uint32(len(l.buf)-hdr-8))
	case stream == "stderr":
		l.buf = stdcopy.AppendFrame(l.buf, stdcopy.Stderr, line)
	default:
		l.buf = stdcopy.AppendFrame(l.buf, stdcopy.Stdout, line)
	}
	if len(l.buf) >= l.batch {
		return l.send()
	}
	return nil
}

// record frames a record with its timestamp or details prefix.
func (l *logWriter) record(stream string, line []byte, t time.Time) error {
	id := stdcopy.Stdout
	if stream == "stderr" {
		id = stdcopy.Stderr
	}
	// The payload goes in place after a header whose length is set once
	// it is known (records are at most 1 MiB, far below a frame's limit).
	hdr := len(l.buf)
	if l.merge && !l.tty {
		hdr = l.openFrame(stream, len(line)+len(rfc3339NanoFixed)+2)
	} else if !l.tty {
		l.buf = append(l.buf, byte(id), 0, 0, 0, 0, 0, 0, 0)
	}
	start := hdr + 8
	if l.timestamps {
		l.buf = t.UTC().AppendFormat(l.buf, rfc3339NanoFixed)
		l.buf = append(l.buf, ' ')
	}
	if l.details {
		// dockerd puts the record's attributes (none in the json-file
		// records the shim writes) and a space first.
		l.buf = append(l.buf, ' ')
	}
	l.buf = append(l.buf, line...)
	if !l.tty {
		binary.BigEndian.PutUint32(l.buf[hdr+4:], uint32(len(l.buf)-start))
	}
	if len(l.buf) >= l.batch {
		return l.send()
	}
	return nil
}

// openFrame returns where the header of the frame that a record of n
// bytes on stream goes into is: the open frame if it is of the same stream
// and has room, otherwise a new one appended to the batch.
func (l *logWriter) openFrame(stream string, n int) int {
	id := stdcopy.Stdout
	if stream == "stderr" {
		id = stdcopy.Stderr
	}
	if l.frame >= 0 && l.buf[l.frame] == byte(id) && len(l.buf)-l.frame+n <= mergedFrame {
		return l.frame
	}
	l.frame = len(l.buf)
	l.buf = append(l.buf, byte(id), 0, 0, 0, 0, 0, 0, 0)
	return l.frame
}

// Idle sends what is batched before the reader waits, and lets go of a
// bulk buffer: an idle follower holds at most idleBatch. A batch buffer
// goes back to batchBufs, where the next run of a follower takes it (issue
// 13: a new one each time the follower caught up, grown by append, made
// its batches most of what the daemon allocated).
func (l *logWriter) Idle() error {
	err := l.send()
	if cap(l.buf) > idleBatch {
		if len(l.buf) == 0 && cap(l.buf) <= maxPooledBatch {
			bp := l.box
			if bp == nil {
				bp = new([]byte)
			}
			*bp = l.buf
			batchBufs.Put(bp)
		}
		l.buf, l.box = nil, nil
	}
	return err
}

// grow gives an empty buf a pooled batch buffer: the next batch is likely
// a bulk one (a follower woken by a busy log).
func (l *logWriter) grow() {
	if bp, ok := batchBufs.Get().(*[]byte); ok {
		l.buf, l.box = (*bp)[:0], bp
		*bp = nil
		return
	}
	l.buf = make([]byte, 0, l.batch+idleBatch)
}

// batchBufs holds batch buffers of followers that caught up, as *[]byte.
var batchBufs sync.Pool

// maxPooledBatch is the largest batch buffer kept in batchBufs.
const maxPooledBatch = 2 * logBatch

// send writes and flushes the batch.
func (l *logWriter) send() error {
	if l.werr != nil {
		return l.werr
	}
	if len(l.buf) == 0 {
		return nil
	}
	var err error
	if l.ds != nil && l.following {
		err = l.ds.Send(l.buf)
		l.buf, l.frame = l.buf[:0], -1
		if err == nil && l.ds.Backlog() > 0 {
			// The client is behind: the follower reads no more until
			// the backlog (at most this batch) has been sent. Reading
			// on would only move the log into memory, and copying a
			// growing backlog cost more than it saved (issue 13).
			return types.ErrSinkFull
		}
	} else if l.ds != nil {
		_, err = l.ds.Write(l.buf)
		l.buf, l.frame = l.buf[:0], -1
	} else {
		_, err = l.w.Write(l.buf)
		l.buf, l.frame = l.buf[:0], -1
		wire.Flush(l.w)
	}
	if err != nil {
		l.werr = err
	}
	return err
}

// logBatch is the size at which a batch of log frames is written even if
// more messages are ready; idleBatch is the most a waiting follower keeps.
const (
	logBatch  = 64 << 10
	idleBatch = 4 << 10
	// bulkBatch is the batch of a read without follow: it ends with the
	// response, and each batch costs a chunk's writes and a flush.
	bulkBatch = 256 << 10
	// mergedFrame bounds a frame of merged records: the docker CLI's
	// demultiplexer starts with a 32 KiB buffer and grows it for a frame
	// that does not fit.
	mergedFrame = 32<<10 - 8
)

// rfc3339NanoFixed is the timestamp format of logs?timestamps=1: dockerd's
// jsonmessage.RFC3339NanoFixed, always nine fractional digits (Go's
// RFC3339Nano trims trailing zeros).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// Stats answers GET /containers/{id}/stats?stream=&one-shot=: one JSON
// object per sample, each flushed; a single one with stream=0.
func Stats(b Backend) wire.HandlerFunc {
	shared := &statsEncoder{}
	return func(w http.ResponseWriter, r *http.Request) error {
		stream := wire.BoolValueOrDefault(r, "stream", true)
		oneShot := !stream && wire.BoolValue(r, "one-shot")
		if stream && wire.CanDetach(r) {
			return detachStats(w, r, b, shared)
		}
		started := false
		enc := json.NewEncoder(w)
		err := b.ContainerStats(r.Context(), r.PathValue("id"), stream, oneShot, func(s *types.StatsJSON) error {
			if !started {
				started = true
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
			}
			if err := enc.Encode(s); err != nil {
				return err
			}
			wire.Flush(w)
			return nil
		})
		if err != nil && !started {
			return err
		}
		return nil
	}
}

// statsBufs holds the buffers stats samples are encoded in.
var statsBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// detachStats serves a stats stream with no goroutine of its own (issue
// 13, memory per stream): the first sample now, then the collector's, one
// a second, each sent by the collector (with this stream's previous sample
// as its precpu_stats) as the handler would, as one chunk; the streams of
// a container that are in step share one encoding of each sample
// (statsEncoder). A client that has not taken the previous sample yet
// misses this one (the latest sample wins, as before); the stream ends
// when the container is removed or the client goes away.
func detachStats(w http.ResponseWriter, r *http.Request, b Backend, shared *statsEncoder) error {
	first, follow, err := b.ContainerStatsFollow(r.Context(), r.PathValue("id"))
	if err != nil || first == nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	ds, err := wire.Detach(w, r)
	if err != nil {
		return nil // nothing more can be sent
	}
	// The first sample is this stream's own, encoded into a pooled buffer.
	buf := statsBufs.Get().(*bytes.Buffer)
	buf.Reset()
	err = json.NewEncoder(buf).Encode(first)
	if err == nil {
		err = ds.Send(buf.Bytes())
	}
	statsBufs.Put(buf)
	if err != nil {
		return nil
	}
	id := first.ID
	shared.open(id)
	// prev is the sample this stream sent last: after the first, one the
	// collector shares, never changed.
	prev := first
	stop := follow(func(s *types.StatsJSON) bool {
		if s == nil {
			ds.End()
			return false
		}
		if ds.Backlog() > 0 {
			return true // the client is behind: it gets a later one
		}
		line, err := shared.encode(s, prev)
		if err != nil {
			return false
		}
		prev = s
		return ds.Send(line) == nil
	})
	ds.OnClose(func() {
		stop()
		shared.close(id)
	})
	return nil
}

// Attach answers POST /containers/{id}/attach by taking over the connection
// once the engine has validated the request.
func Attach(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		st := wire.NewStreamTakeover(w, r, false)
		cfg := &types.AttachConfig{
			Stdin: wire.BoolValue(r, "stdin"), Stdout: wire.BoolValue(r, "stdout"), Stderr: wire.BoolValue(r, "stderr"),
			Logs: wire.BoolValue(r, "logs"), Stream: wire.BoolValue(r, "stream"), DetachKeys: q.Get("detachKeys"),
			GetStreams: st.Take,
		}
		err := b.ContainerAttach(r.Context(), r.PathValue("id"), cfg)
		if !st.Taken() {
			return err // nothing hijacked: an ordinary HTTP error
		}
		// The stream has begun: an error can only travel in band.
		st.Finish(err)
		return nil
	}
}
