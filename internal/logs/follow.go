package logs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// logFile is one open file of a log's set.
type logFile struct {
	f    *os.File
	name string
	ino  uint64
	size int64 // when opened
}

func (f *logFile) close() { f.f.Close() }

// openFile opens name and records its identity and size.
func openFile(name string) (*logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &logFile{f: f, name: name, ino: inode(st), size: st.Size()}, nil
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// statIno returns the inode at name, or 0 if there is none.
func statIno(name string) uint64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return inode(fi)
}

// rotatedName is the name of the n-th rotated file (0 is the live one).
func rotatedName(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}

// openSet opens the live log at path and its rotated files, and returns them
// oldest first, the live file last.
//
// The shim rotates without telling anyone, so the set is checked after
// opening: every name must still name the file opened under it, or a
// rotation ran meanwhile and the set is opened again. The shim renames
// <path>.N-1 to <path>.N one at a time, leaving at most one gap, so the
// probe stops only at two missing names in a row. A live file missing
// while <path>.1 exists is the moment between the shim's rename and create.
func openSet(path string) ([]*logFile, error) {
	const attempts = 100
	var lastErr error
	for range attempts {
		set, err := tryOpenSet(path)
		if err == nil {
			return set, nil
		}
		lastErr = err
		if errors.Is(err, errSetChanged) {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && statIno(rotatedName(path, 1)) != 0 {
			time.Sleep(time.Millisecond) // the shim is about to create it
			continue
		}
		return nil, err
	}
	return nil, lastErr
}

var errSetChanged = errors.New("log files rotated while being opened")

func tryOpenSet(path string) ([]*logFile, error) {
	live, err := openFile(path)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	set := []*logFile{live}
	closeAll := func() {
		for _, f := range set {
			f.close()
		}
	}
	for n, missing := 1, 0; missing < 2; n++ {
		f, err := openFile(rotatedName(path, n))
		if errors.Is(err, fs.ErrNotExist) {
			missing++
			continue
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open rotated log: %w", err)
		}
		missing = 0
		set = append(set, f)
	}
	for _, f := range set {
		if statIno(f.name) != f.ino {
			closeAll()
			return nil, errSetChanged
		}
	}
	seen := make(map[uint64]bool, len(set))
	for _, f := range set {
		if seen[f.ino] {
			closeAll()
			return nil, errSetChanged
		}
		seen[f.ino] = true
	}
	// Oldest first.
	for i, j := 0, len(set)-1; i < j; i, j = i+1, j-1 {
		set[i], set[j] = set[j], set[i]
	}
	return set, nil
}

// successor finds the file the shim wrote after cur, once cur has been
// rotated away: the next newer file of the set, or, if cur is gone from the
// set (rotated out), the oldest one, so as little as possible is lost. It
// returns nil if cur is still the live file.
func successor(path string, cur *logFile) (*logFile, error) {
	set, err := openSet(path)
	if err != nil {
		return nil, err
	}
	next := set[0]
	for i, f := range set {
		if f.ino == cur.ino {
			if i == len(set)-1 {
				next = nil
			} else {
				next = set[i+1]
			}
			break
		}
	}
	for _, f := range set {
		if f != next {
			f.close()
		}
	}
	return next, nil
}

// follow sends records as they are appended to the live file, moving on to
// the next file at each rotation. It returns when stopped, after sending
// what was written; c is the cursor after the history.
func (r *reader) follow(ctx context.Context, c *cursor, w *watcher, stop <-chan struct{}) error {
	var untilC <-chan time.Time
	if !r.opts.Until.IsZero() {
		t := time.NewTimer(time.Until(r.opts.Until))
		defer t.Stop()
		untilC = t.C
	}
	notify, tick := w.changed()
	stopping := false
	// busy is set when the last drain found records: the writer is
	// writing, and the next wake-up waits coalesceDelay so that one drain
	// takes many records rather than one each (issue 13: a wake-up, read
	// and flush per record held a follower to a fifth of the writer's
	// rate).
	busy := false
	var coalesce *time.Timer
	defer func() {
		if coalesce != nil {
			coalesce.Stop()
		}
	}()
	for {
		off := c.off
		if err := c.drain(ctx, -1); err != nil {
			return err
		}
		busy = c.off != off
		st, err := c.f.f.Stat()
		if err != nil {
			return fmt.Errorf("follow log: %w", err)
		}
		if st.Size() < c.off {
			// Truncated in place (max-file 1): start over.
			c.reset()
			continue
		}
		if statIno(r.path) != c.f.ino {
			// Rotated: the shim closed the file before renaming it, so
			// one more drain gets all of it. An incomplete record left
			// then is a torn write and is dropped.
			if err := c.drain(ctx, -1); err != nil {
				return err
			}
			next, err := successor(r.path, c.f)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// No live file yet; wait for its creation.
			case err != nil:
				return fmt.Errorf("follow log after rotation: %w", err)
			case next != nil:
				c.f.close()
				*c = cursor{r: r, f: next, buf: c.buf[:0]}
				continue
			}
		}
		if stopping {
			return nil
		}
		if r.opts.Idle != nil {
			if err := r.opts.Idle(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			stopping, stop = true, nil
		case <-untilC:
			stopping, untilC = true, nil
		case <-notify:
			if busy && r.coalesceDelay > 0 {
				if coalesce == nil {
					coalesce = time.NewTimer(r.coalesceDelay)
				} else {
					coalesce.Reset(r.coalesceDelay)
				}
				select {
				case <-coalesce.C:
				case <-stop:
					stopping, stop = true, nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		case <-tick:
		}
	}
}
