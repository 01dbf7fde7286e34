package logs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"skiffd/internal/runtime/jsonlog"
	"testing"
	"time"
)

// guard bounds every wait of these tests; it is never what synchronises
// them.
const guard = 20 * time.Second

// follower is a Read running in the background; every message goes to got.
type follower struct {
	got  chan entry
	done chan error
	// following is closed when Read has sent the history and follows.
	following chan struct{}
	stop      chan struct{}
	cancel    context.CancelFunc
}

// followMode is how a follower learns of changes.
type followMode int

const (
	inotifyMode followMode = iota // an inotify instance of its own
	sharedMode                    // a Watchers shared with other followers
	pollMode                      // a ticker
)

// modes runs f with inotify (own and shared) and with polling.
func modes(t *testing.T, f func(t *testing.T, poll followMode)) {
	for _, m := range []followMode{inotifyMode, sharedMode, pollMode} {
		name := [...]string{"inotify", "shared", "poll"}[m]
		t.Run(name, func(t *testing.T) { f(t, m) })
	}
}

func startFollow(t *testing.T, path string, opts ReadOptions, mode followMode) *follower {
	t.Helper()
	opts.Follow = true
	if mode == sharedMode {
		ws := &Watchers{}
		t.Cleanup(func() { ws.Close() })
		opts.Watchers = ws
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl := &follower{got: make(chan entry, 1000), done: make(chan error, 1), following: make(chan struct{}),
		stop: make(chan struct{}), cancel: cancel}
	r := &reader{path: path, opts: opts, noInotify: mode == pollMode, pollInterval: time.Millisecond, fn: func(m Message) error {
		fl.got <- fromMessage(m)
		return nil
	}}
	r.followed = func() { close(fl.following) }
	go func() { fl.done <- r.run(ctx, fl.stop) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-fl.done:
		case <-time.After(guard):
			t.Error("Read did not return after cancel")
		}
	})
	return fl
}

// expect receives want, in order.
func (fl *follower) expect(t *testing.T, want ...entry) {
	t.Helper()
	for i, w := range want {
		var e entry
		select {
		case e = <-fl.got:
		case err := <-fl.done:
			fl.done <- err // for the cleanup
			// Read may have returned after sending the rest.
			select {
			case e = <-fl.got:
			default:
				t.Fatalf("Read returned %v while waiting for %v", err, w)
			}
		case <-time.After(guard):
			t.Fatalf("no message %d (%v) after %v", i, w, guard)
		}
		if e.stream != w.stream || e.line != w.line || !e.time.Equal(w.time) {
			t.Fatalf("message %d = %v, want %v", i, e, w)
		}
	}
}

// finish closes stop and returns Read's error and what was still sent.
func (fl *follower) finish(t *testing.T) ([]entry, error) {
	t.Helper()
	close(fl.stop)
	var err error
	select {
	case err = <-fl.done:
		fl.done <- err // for the cleanup
	case <-time.After(guard):
		t.Fatal("Read did not return after stop")
	}
	var rest []entry
	for {
		select {
		case e := <-fl.got:
			rest = append(rest, e)
		default:
			return rest, err
		}
	}
}

func TestFollowAppendAndRotate(t *testing.T) {
	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		size := int64(len(record(numbered(0))))
		// Three entries a file, five files: a burst of five entries
		// rotates once or twice while the follower may be behind.
		w := openWriter(t, path, 3*size, 5)
		write(t, w, numberedRange(0, 2)...)
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		fl.expect(t, numberedRange(0, 2)...)
		for from := 2; from < 52; from += 5 {
			write(t, w, numberedRange(from, from+5)...)
			fl.expect(t, numberedRange(from, from+5)...)
		}
		rest, err := fl.finish(t)
		if err != nil || len(rest) != 0 {
			t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
		}
	})
}

func TestFollowOneAtATimeRotations(t *testing.T) {
	// Every entry rotates the file (max-size 1) and only two files are
	// kept, so the follower must move on at each one without waiting.
	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		w := openWriter(t, path, 1, 2)
		write(t, w, numbered(0))
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		fl.expect(t, numbered(0))
		for i := 1; i < 30; i++ {
			write(t, w, numbered(i))
			fl.expect(t, numbered(i))
		}
		if rest, err := fl.finish(t); err != nil || len(rest) != 0 {
			t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
		}
	})
}

func TestFollowStopDrains(t *testing.T) {
	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		size := int64(len(record(numbered(0))))
		w := openWriter(t, path, 4*size, 10)
		write(t, w, numbered(0))
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		fl.expect(t, numbered(0))
		// Written, with two rotations, before the engine closes stop:
		// all of it must still arrive.
		write(t, w, numberedRange(1, 12)...)
		rest, err := fl.finish(t)
		if err != nil {
			t.Fatalf("Read = %v after stop, want nil", err)
		}
		checkEntries(t, "after stop", rest, numberedRange(1, 12))
	})
}

func TestFollowCancel(t *testing.T) {
	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		write(t, openWriter(t, path, 0, 1), numbered(0))
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		fl.expect(t, numbered(0))
		fl.cancel()
		select {
		case err := <-fl.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Read after cancel = %v, want context.Canceled", err)
			}
			fl.done <- err
		case <-time.After(guard):
			t.Fatal("Read did not return after cancel")
		}
	})
}

func TestFollowTornLine(t *testing.T) {
	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		b, c := record(numbered(1)), record(numbered(2))
		// The shim was mid-write when Read started.
		appendRaw(t, path, record(numbered(0))+b[:10])
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		fl.expect(t, numbered(0))
		appendRaw(t, path, b[10:30])
		appendRaw(t, path, b[30:]+c)
		fl.expect(t, numbered(1), numbered(2))
		if rest, err := fl.finish(t); err != nil || len(rest) != 0 {
			t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
		}
	})
}

func TestFollowTornLineAtTail(t *testing.T) {
	// With --tail 1 the incomplete record is not part of the tail but is
	// the first thing followed.
	path := filepath.Join(t.TempDir(), "c-json.log")
	b := record(numbered(2))
	appendRaw(t, path, record(numbered(0))+record(numbered(1))+b[:5])
	fl := startFollow(t, path, ReadOptions{Tail: 1}, inotifyMode)
	fl.expect(t, numbered(1))
	appendRaw(t, path, b[5:])
	fl.expect(t, numbered(2))
	if rest, err := fl.finish(t); err != nil || len(rest) != 0 {
		t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
	}
}

func TestFollowTail0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := openWriter(t, path, 0, 1)
	write(t, w, numberedRange(0, 3)...)
	fl := startFollow(t, path, ReadOptions{Tail: 0}, inotifyMode)
	select {
	case <-fl.following:
	case <-time.After(guard):
		t.Fatal("Read did not start following")
	}
	write(t, w, numbered(3))
	fl.expect(t, numbered(3))
	if rest, err := fl.finish(t); err != nil || len(rest) != 0 {
		t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
	}
}

func TestFollowTruncated(t *testing.T) {
	// With max-file 1 the writer truncates the file in place.
	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		size := int64(len(record(numbered(0))))
		w := openWriter(t, path, 3*size, 1)
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		for i := range 10 {
			write(t, w, numbered(i))
			fl.expect(t, numbered(i))
		}
		if rest, err := fl.finish(t); err != nil || len(rest) != 0 {
			t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
		}
	})
}

func TestFollowUntil(t *testing.T) {
	t.Run("record past until", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		w := openWriter(t, path, 0, 1)
		write(t, w, numbered(0))
		// Until is far ahead on the clock; the record's time passes it.
		until := time.Now().Add(time.Hour)
		fl := startFollow(t, path, ReadOptions{Tail: -1, Until: until}, inotifyMode)
		fl.expect(t, numbered(0))
		write(t, w, entry{"stdout", "in time\n", until, false}, entry{"stdout", "late\n", until.Add(1), false})
		fl.expect(t, entry{"stdout", "in time\n", until, false})
		select {
		case err := <-fl.done:
			fl.done <- err
			if err != nil {
				t.Errorf("Read = %v, want nil", err)
			}
		case e := <-fl.got:
			t.Errorf("got %v past until", e)
		case <-time.After(guard):
			t.Fatal("Read did not return past until")
		}
	})
	t.Run("until already passed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		write(t, openWriter(t, path, 0, 1), numberedRange(0, 2)...)
		fl := startFollow(t, path, ReadOptions{Tail: -1, Until: time.Now().Add(-time.Second)}, inotifyMode)
		fl.expect(t, numberedRange(0, 2)...)
		select {
		case err := <-fl.done:
			fl.done <- err
			if err != nil {
				t.Errorf("Read = %v, want nil", err)
			}
		case <-time.After(guard):
			t.Fatal("Read kept following past until")
		}
	})
}

func TestRelevant(t *testing.T) {
	event := func(mask uint32, name string) []byte {
		n := (len(name) + 1 + 15) / 16 * 16
		b := make([]byte, 16+n)
		binary.NativeEndian.PutUint32(b[4:], mask)
		binary.NativeEndian.PutUint32(b[12:], uint32(n))
		copy(b[16:], name)
		return b
	}
	for _, tc := range []struct {
		events [][]byte
		want   bool
	}{
		{[][]byte{event(2, "c-json.log")}, true},
		{[][]byte{event(2, "c-json.log.3")}, true},
		{[][]byte{event(2, "hostname"), event(2, "c-json.log.1")}, true},
		{[][]byte{event(2, "c-json.logx")}, false},
		{[][]byte{event(2, "config.v2.json")}, false},
		{[][]byte{event(0x4000, "")}, true}, // IN_Q_OVERFLOW
		{[][]byte{{1, 2, 3}}, false},
	} {
		var b []byte
		for _, e := range tc.events {
			b = append(b, e...)
		}
		if got := relevant(b, "c-json.log"); got != tc.want {
			t.Errorf("relevant(%q) = %v, want %v", b, got, tc.want)
		}
	}
}

// TestOpenSetOrder checks the set is oldest first, past a gap left by a
// rotation in progress.
func TestOpenSetOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	for _, name := range []string{path, path + ".1", path + ".3"} {
		if err := os.WriteFile(name, []byte(filepath.Base(name)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	set, err := openSet(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range set {
		names = append(names, filepath.Base(f.name))
		f.close()
	}
	if got, want := fmt.Sprint(names), "[c-json.log.3 c-json.log.1 c-json.log]"; got != want {
		t.Errorf("openSet = %s, want %s", got, want)
	}
}

func TestFollowAlreadyStopped(t *testing.T) {
	// The container exited before the request: follow sends all and ends.
	path := filepath.Join(t.TempDir(), "c-json.log")
	write(t, openWriter(t, path, 0, 1), numberedRange(0, 3)...)
	stop := make(chan struct{})
	close(stop)
	var got []entry
	err := Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true}, stop, func(m Message) error {
		got = append(got, fromMessage(m))
		return nil
	})
	if err != nil {
		t.Fatalf("Read = %v, want nil", err)
	}
	checkEntries(t, "Read", got, numberedRange(0, 3))
}

func TestWatcherUsesInotify(t *testing.T) {
	// The inotify runs of the follow tests must not be polling in disguise.
	nop := func() {}
	w := newWatcher(filepath.Join(t.TempDir(), "c-json.log"), nil, false, time.Hour, nop)
	defer w.close()
	if w.sub == nil || !w.own || w.timer != nil {
		t.Fatal("newWatcher fell back to polling")
	}
	ws := &Watchers{}
	defer ws.Close()
	w = newWatcher(filepath.Join(t.TempDir(), "c-json.log"), ws, false, time.Hour, nop)
	defer w.close()
	if w.sub == nil || w.own || w.timer != nil {
		t.Fatal("newWatcher with Watchers fell back to polling")
	}
}

// testWatcher is a watcher whose wake-ups go to a channel.
type testWatcher struct {
	*watcher
	notify chan struct{}
}

func newTestWatcher(path string, ws *Watchers) testWatcher {
	notify := make(chan struct{}, 1)
	w := newWatcher(path, ws, false, time.Hour, func() {
		select {
		case notify <- struct{}{}:
		default:
		}
	})
	return testWatcher{w, notify}
}

// TestWatchersShared: followers of logs in one directory and in another
// share one inotify instance and one goroutine; each is woken by a write
// to its own log (or one of its rotated files) only, and a directory's
// watch goes with its last follower.
func TestWatchersShared(t *testing.T) {
	ws := &Watchers{}
	defer ws.Close()
	dir1, dir2 := t.TempDir(), t.TempDir()
	a := newTestWatcher(filepath.Join(dir1, "a-json.log"), ws)
	a2 := newTestWatcher(filepath.Join(dir1, "a-json.log"), ws)
	b := newTestWatcher(filepath.Join(dir1, "b-json.log"), ws)
	c := newTestWatcher(filepath.Join(dir2, "c-json.log"), ws)
	if a.sub == nil || a2.sub == nil || b.sub == nil || c.sub == nil {
		t.Fatal("a follower fell back to polling")
	}
	if a.sub.wd != b.sub.wd || a.sub.wd == c.sub.wd {
		t.Errorf("watch descriptors a %d, b %d, c %d: want a and b's directory watched once, c's apart", a.sub.wd, b.sub.wd, c.sub.wd)
	}
	woken := func(w testWatcher) bool {
		select {
		case <-w.notify:
			return true
		case <-time.After(guard):
			return false
		}
	}
	quiet := func(w testWatcher) bool {
		select {
		case <-w.notify:
			return false
		default:
			return true
		}
	}
	if err := os.WriteFile(filepath.Join(dir1, "a-json.log.1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !woken(a) || !woken(a2) {
		t.Fatal("a write to a rotated a-json.log.1 did not wake a's followers")
	}
	// c's directory saw nothing and b's log did not change. The write to
	// c below comes after the one to a: once c is woken, every event of
	// the first write has been dispatched.
	if err := os.WriteFile(filepath.Join(dir2, "c-json.log"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !woken(c) {
		t.Fatal("a write to c-json.log did not wake c's follower")
	}
	if !quiet(b) {
		t.Error("a write to a's log woke b's follower")
	}
	for _, w := range []testWatcher{a, a2, b, c} {
		w.close()
	}
	ws.mu.Lock()
	n := len(ws.dirs)
	ws.mu.Unlock()
	if n != 0 {
		t.Errorf("%d directories still watched after every follower closed", n)
	}
}

// TestCompressedRotated: with compress=true the rotated files from
// <path>.2 on are gzipped; reading finds them oldest first with tail,
// since and until as without compression, and a follower goes on from
// the file it was reading however many rotations and compressions ran
// meanwhile, losing and repeating nothing.
func TestCompressedRotated(t *testing.T) {
	size := int64(len(record(numbered(0))))
	open := func(t *testing.T, path string, perFile int64, files int) *jsonlog.Writer {
		t.Helper()
		w, err := jsonlog.OpenWith(path, jsonlog.Options{MaxSize: perFile * size, MaxFiles: files, Compress: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := open(t, path, 2, 4)
	write(t, w, numberedRange(0, 10)...)
	for _, name := range []string{path, path + ".1", path + ".2.gz", path + ".3.gz"} {
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("the writer did not rotate and compress as expected: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want []entry
	}{
		{"all", ReadOptions{Tail: -1}, numberedRange(2, 10)},
		{"tail 5 across files", ReadOptions{Tail: 5}, numberedRange(5, 10)},
		{"since in the oldest file", ReadOptions{Tail: -1, Since: at(3)}, numberedRange(3, 10)},
		{"until in a compressed file", ReadOptions{Tail: -1, Until: at(4)}, numberedRange(2, 5)},
	} {
		got, _ := readAll(t, path, tc.opts)
		checkEntries(t, tc.name, got, tc.want)
	}

	modes(t, func(t *testing.T, poll followMode) {
		path := filepath.Join(t.TempDir(), "c-json.log")
		w := open(t, path, 3, 6)
		write(t, w, numberedRange(0, 2)...)
		fl := startFollow(t, path, ReadOptions{Tail: -1}, poll)
		fl.expect(t, numberedRange(0, 2)...)
		// Bursts of ten entries rotate three or four times while the
		// follower may be behind: it must find its file compressed.
		for from := 2; from < 102; from += 10 {
			write(t, w, numberedRange(from, from+10)...)
			fl.expect(t, numberedRange(from, from+10)...)
		}
		if rest, err := fl.finish(t); err != nil || len(rest) != 0 {
			t.Errorf("after stop: Read = %v, extra messages %v; want nil, none", err, rest)
		}
	})
}
