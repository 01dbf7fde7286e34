// Package logs reads a container's json-file log for GET
// /containers/{id}/logs: the live file written by the shim
// (internal/runtime/jsonlog) and its rotated predecessors <path>.1,
// <path>.2, ..., oldest first, with dockerd's tail, since and until
// semantics, and follows it as it grows and rotates.
//
//	err := logs.Read(ctx, logPath, logs.ReadOptions{Tail: 10, Follow: true}, exited,
//		func(m logs.Message) error {
//			return frame(m.Stream, m.Line)
//		})
//
// Each record of the file becomes one Message, as in dockerd: a line longer
// than 16 KiB arrives in pieces marked Partial, which the API sends as they
// are and the docker CLI joins. Records that do not decode are skipped, as
// dockerd skips them; an incomplete last record is waited for while
// following and ignored otherwise.
package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Message is one record of the log.
type Message struct {
	Stream string // "stdout" or "stderr"
	// Line is the output, with its newline unless Partial. Each Message has
	// its own Line, which fn may keep, unless ReadOptions.Borrow.
	Line []byte
	Time time.Time
	// Partial reports that Line is a piece of a longer line (the writer
	// splits lines at 16 KiB) or the unterminated end of the output.
	Partial bool
}

// ReadOptions selects what Read delivers.
type ReadOptions struct {
	// Since, if not zero, skips records older than it (records at exactly
	// Since are sent).
	Since time.Time
	// Until, if not zero, ends the read at the first record newer than it.
	// When following, reaching Until on the clock ends the read too, once
	// what is already written has been delivered.
	Until time.Time
	// Tail is how many records to send from the end of the log, counted
	// before Since and Until are applied, as dockerd does; -1 sends all.
	Tail int
	// Follow keeps reading after the end of the log.
	Follow bool
	// Idle, if set, is called while following each time everything
	// written so far has been sent, before waiting for more: a caller
	// that batches its output sends the batch then. An error ends Read.
	Idle func() error
	// Borrow lets Message.Line point into Read's buffers: fn must not
	// keep it after it returns. It saves a copy of every line.
	Borrow bool
	// Watchers, if set, is the inotify instance a follower watches the
	// log through, shared with other followers; without it each follower
	// makes its own.
	Watchers *Watchers
	// Following, if set, is called with the Follower once the history
	// has been sent, before it first waits for the log: the caller can
	// arrange for Stop and Resume then.
	Following func(*Follower)
}

// Read sends the log at path (with its rotated files, oldest first) to fn,
// in order. With Tail >= 0 only the last Tail records are sent, found by
// reading the files backwards from the end in blocks. With Follow, records
// appended later are sent as the shim writes them; rotations are followed
// without losing or repeating records, as long as a rotated file is still
// there when Read gets to it.
//
// Read returns when the log has been sent (not following), when Until is
// passed, when fn returns an error (which Read returns), when ctx is done
// (returning ctx.Err()), or, when following, once stop is closed and what
// was written before has been sent. stop may be nil.
//
// A missing log file is an error that matches fs.ErrNotExist.
//
// While following, fn and Idle are called on the goroutines the Follower
// runs on (one at a time), not on the caller's; Follow does the same
// without blocking.
func Read(ctx context.Context, path string, opts ReadOptions, stop <-chan struct{}, fn func(Message) error) error {
	return newReader(path, opts, fn).run(ctx, stop)
}

func newReader(path string, opts ReadOptions, fn func(Message) error) *reader {
	r := &reader{path: path, opts: opts, fn: fn, pollInterval: defaultPollInterval, coalesceDelay: defaultCoalesceDelay}
	r.dec.borrow, r.dec.inPlace = opts.Borrow, true
	return r
}

// defaultPollInterval is how often a follower without inotify looks at the
// file.
const defaultPollInterval = 250 * time.Millisecond

// defaultCoalesceDelay is how long a follower of a log being written lets
// records gather after a wake-up before reading them: a bound on the added
// latency, and on wake-ups to 500 a second.
const defaultCoalesceDelay = 2 * time.Millisecond

// blockSize is how much is read at a time, forwards or backwards.
const blockSize = 32 * 1024

// readBufs holds read buffers of blockSize bytes, as *[]byte, for readers
// to take when they start reading a run of records and give back when
// they have caught up or ended.
var readBufs sync.Pool

// takeBuf returns an empty buffer of capacity blockSize.
func (r *reader) takeBuf() []byte {
	if bp, ok := readBufs.Get().(*[]byte); ok {
		b := *bp
		*bp, r.box = nil, bp
		return b[:0]
	}
	return make([]byte, 0, blockSize)
}

// giveBuf gives b back to readBufs if it is one of its size; nothing may
// use b afterwards.
func (r *reader) giveBuf(b []byte) {
	if cap(b) != blockSize {
		return
	}
	bp := r.box
	if bp == nil {
		bp = new([]byte)
	}
	r.box = nil
	*bp = b[:0]
	readBufs.Put(bp)
}

// errUntil ends a read at the first record past Until.
var errUntil = errors.New("past until")

// reader is one call to Read.
type reader struct {
	path string
	opts ReadOptions
	fn   func(Message) error

	// noInotify makes a follower poll; tests set it.
	noInotify    bool
	pollInterval time.Duration
	// coalesceDelay: see defaultCoalesceDelay.
	coalesceDelay time.Duration
	// bytesRead counts the bytes read from log files, for tests that check
	// a tail reads only the end.
	bytesRead int64
	// corrupt counts records that did not decode.
	corrupt int
	// dec decodes the records.
	dec decoder
	// box is the readBufs entry the buffer being read into came in, kept
	// to give it back in.
	box *[]byte
	// followed, if set, is called when following begins; tests use it.
	followed func()
}

func (r *reader) run(ctx context.Context, stop <-chan struct{}) error {
	if r.opts.Follow {
		done := make(chan error, 1)
		f, err := r.start(ctx, nil, func(err error) { done <- err })
		if err != nil || f == nil {
			return err
		}
		select {
		case err := <-done:
			return err
		case <-stop:
			f.Stop()
		}
		return <-done
	}
	set, err := openSet(r.path)
	if err != nil {
		return err
	}
	cur, err := r.history(ctx, set)
	for _, f := range set {
		f.close()
	}
	if err == nil {
		r.giveBuf(cur.buf)
		cur.buf = nil
	}
	if errors.Is(err, errUntil) {
		return nil
	}
	return err
}

// history sends what the files held when they were opened, from the tail
// start on, and returns a cursor at the end of the live file, holding any
// incomplete last record.
func (r *reader) history(ctx context.Context, set []*logFile) (*cursor, error) {
	starts := make([]int64, len(set))
	if r.opts.Tail >= 0 {
		if err := r.tailStarts(ctx, set, starts); err != nil {
			return nil, err
		}
	}
	var buf []byte
	for i, f := range set {
		c := &cursor{r: r, f: f, off: starts[i], buf: buf}
		if err := c.drain(ctx, f.size); err != nil {
			return nil, err
		}
		if i == len(set)-1 {
			return c, nil
		}
		// A rotated file ends with its last complete record; anything
		// after it is a torn write, dropped as dockerd drops it.
		buf = c.buf[:0]
	}
	panic("unreachable: openSet returns at least the live file")
}

// tailStarts sets starts[i] to where reading file i begins so that only the
// last Tail complete records of the whole set are read. Records are counted
// by their newlines, scanning backwards, as dockerd's tail reader does;
// the bytes after the live file's last newline are an incomplete record
// and are not counted.
func (r *reader) tailStarts(ctx context.Context, set []*logFile, starts []int64) error {
	need := r.opts.Tail
	for i := len(set) - 1; i >= 0; i-- {
		if need == 0 && i < len(set)-1 {
			starts[i] = set[i].size // nothing from this file
			continue
		}
		_, start, found, err := r.scanBack(ctx, set[i], set[i].size, need)
		if err != nil {
			return err
		}
		starts[i] = start
		need -= found
	}
	return nil
}

// scanBack reads f[0:size) backwards in blocks. It returns end, the offset
// just past the last newline (0 if none), and start, where the last n
// complete records before end begin, with found, how many there are (< n
// only when the file holds fewer).
func (r *reader) scanBack(ctx context.Context, f *logFile, size int64, n int) (end, start int64, found int, err error) {
	end = -1
	// Start small and double: a tail of a few lines (tail=0 for a
	// follower) needs only the end of the file, and each stream opened
	// would otherwise leave a 32 KiB block behind (issue 13).
	buf := make([]byte, min(blockSize, 4096))
	for pos := size; pos > 0; {
		if err := ctx.Err(); err != nil {
			return 0, 0, 0, err
		}
		k := int64(len(buf))
		if pos < k {
			k = pos
		}
		pos -= k
		b := buf[:k]
		if err := r.readFull(f, b, pos); err != nil {
			return 0, 0, 0, err
		}
		if len(buf) < blockSize {
			buf = make([]byte, 2*len(buf))
		}
		for {
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				break
			}
			b = b[:i]
			nl := pos + int64(i)
			if end < 0 {
				end = nl + 1
				if n == 0 {
					return end, end, 0, nil
				}
				continue
			}
			// The newline at nl ends the record before the one
			// starting at nl+1, which is therefore complete.
			found++
			if found == n {
				return end, nl + 1, found, nil
			}
		}
	}
	if end < 0 {
		return 0, 0, 0, nil
	}
	// The first record of the file starts at 0.
	return end, 0, found + 1, nil
}

// readFull reads exactly len(b) bytes of f at off.
func (r *reader) readFull(f *logFile, b []byte, off int64) error {
	n, err := f.f.ReadAt(b, off)
	r.bytesRead += int64(n)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		// Only a truncation (max-file 1) shrinks a file we hold.
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read log %s: %w", f.name, err)
}

// cursor reads records from one file forwards.
type cursor struct {
	r   *reader
	f   *logFile
	off int64 // next byte of the file to read into buf
	buf []byte
	pos int // start of the unread bytes in buf
	// skip drops the bytes up to the next newline: the rest of an
	// overlong record.
	skip bool
}

// maxRecord bounds the bytes held for one record. The writer's longest is a
// 16 KiB piece of control bytes or invalid UTF-8, six bytes each once
// escaped: under 100 KiB.
const maxRecord = 1 << 20

// drain sends every complete record between the cursor and limit (the end
// of the file if limit < 0). It keeps an incomplete last record for later.
func (c *cursor) drain(ctx context.Context, limit int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.records(); err != nil {
			return err
		}
		// Keep the incomplete record at the front and read more after it.
		rest := copy(c.buf, c.buf[c.pos:])
		c.buf, c.pos = c.buf[:rest], 0
		if len(c.buf) > maxRecord {
			// No writer makes records this long: this is not a log.
			// Drop bytes up to the next newline rather than hold them.
			c.r.corrupt++
			c.buf, c.skip = c.buf[:0], true
		}
		if room := cap(c.buf) - len(c.buf); room == 0 || (room < blockSize/2 && cap(c.buf) >= blockSize) {
			size := 2*cap(c.buf) + blockSize
			if cap(c.buf) == 0 && limit < 0 {
				// A follower woken up by a few records: a buffer the
				// size of what is there, not a bulk one (issue 13:
				// 32 KiB a wake-up made each follower of a chatty
				// container cost the daemon 100 KiB).
				if st, err := c.f.f.Stat(); err == nil && st.Size()-c.off < blockSize {
					size = int(max(st.Size()-c.off, 0)) + 512
				}
			}
			var grown []byte
			if size == blockSize {
				grown = c.r.takeBuf()
			} else {
				grown = make([]byte, 0, size)
			}
			grown = append(grown, c.buf...)
			c.buf = grown
		}
		room := c.buf[len(c.buf):cap(c.buf)]
		if limit >= 0 && int64(len(room)) > limit-c.off {
			room = room[:max(limit-c.off, 0)]
		}
		if len(room) == 0 {
			return nil
		}
		n, err := c.f.f.ReadAt(room, c.off)
		c.r.bytesRead += int64(n)
		c.off += int64(n)
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil && err != io.EOF {
			return fmt.Errorf("read log %s: %w", c.f.name, err)
		}
		if n == 0 {
			if len(c.buf) == 0 && cap(c.buf) > 0 {
				// Caught up with nothing held: a follower waits
				// without a read buffer (issue 13: idle streams
				// held 64 KiB and more each); the next read
				// takes one again, from a pool shared by all
				// readers (a new one each time made a busy
				// follower the daemon's main allocator).
				c.r.giveBuf(c.buf)
				c.buf = nil
				c.r.dec.slab = nil
			}
			return nil
		}
	}
}

// records sends the complete records in buf.
func (c *cursor) records() error {
	for {
		i := bytes.IndexByte(c.buf[c.pos:], '\n')
		if i < 0 {
			if c.skip {
				c.pos = len(c.buf)
			}
			return nil
		}
		if c.skip {
			c.pos += i + 1
			c.skip = false
			continue
		}
		rec := c.buf[c.pos : c.pos+i]
		c.pos += i + 1
		if err := c.r.send(rec); err != nil {
			return err
		}
	}
}

// reset forgets the file's content read so far, after a truncation.
func (c *cursor) reset() {
	c.off, c.buf, c.pos, c.skip = 0, c.buf[:0], 0, false
}

// send decodes one record and hands it to fn, applying Since and Until.
func (r *reader) send(rec []byte) error {
	m, err := r.dec.decode(rec)
	if err != nil {
		if !errors.Is(err, errEmptyRecord) {
			r.corrupt++
		}
		return nil
	}
	if !r.opts.Since.IsZero() && m.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && m.Time.After(r.opts.Until) {
		return errUntil
	}
	return r.fn(m)
}
