package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/runtime/jsonlog"
)

// followSink is a LogFollowSink that keeps the lines and reports the end.
type followSink struct {
	mu    sync.Mutex
	lines []string
	ended chan error
}

func (s *followSink) Begin(bool) {}
func (s *followSink) Record(stream string, line []byte, t time.Time) error {
	s.mu.Lock()
	s.lines = append(s.lines, string(line))
	s.mu.Unlock()
	return nil
}
func (s *followSink) Idle() error      { return nil }
func (s *followSink) Following(func()) {}
func (s *followSink) End(err error)    { s.ended <- err }

// TestLogsFollowEndsAtStop: a `logs -f` stream ends as soon as the exit is
// recorded, after the last record, while the exit handler still holds the
// container's lock for the rest of its work (the shim's shutdown, the
// unmounts: tens to hundreds of milliseconds on a busy host). Issue 13: the
// follower's end took the lock to cancel its stop, which had already run,
// and so waited for all of that.
func TestLogsFollowEndsAtStop(t *testing.T) {
	e, err := New(context.Background(), Options{DataRoot: filepath.Join(t.TempDir(), "data"), ExecRoot: filepath.Join(t.TempDir(), "exec"), Build: BuildInfo{Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := jsonlog.Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.waitRestored() // the restore would find this running container's shim missing
	c := container.New(strings.Repeat("ef", 32))
	c.Config = &types.Config{Image: "busybox"}
	c.HostConfig = &types.HostConfig{}
	c.LogPath = path
	c.State.SetRunning(os.Getpid(), true)
	if err := e.containers.Add(c); err != nil {
		t.Fatal(err)
	}
	sink := &followSink{ended: make(chan error, 1)}
	if err := e.ContainerLogs(context.Background(), c.ID, types.ContainerLogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1}, sink); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	if err := w.WriteEntry("stdout", []byte("last words\n"), ts); err != nil {
		t.Fatal(err)
	}
	// The exit handler: the exit is recorded and the waiters woken with
	// the lock held, which it keeps for a while.
	c.Lock()
	c.State.SetStopped(container.ExitStatus{ExitCode: 0, ExitedAt: ts})
	var endErr error
	ended := false
	select {
	case endErr = <-sink.ended:
		ended = true
	case <-time.After(10 * time.Second):
	}
	c.Unlock()
	if !ended {
		<-sink.ended
		t.Fatal("the stream did not end while the exit handler held the container's lock")
	}
	if endErr != nil {
		t.Errorf("End(%v), want End(nil)", endErr)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if got := strings.Join(sink.lines, ""); got != "last words\n" {
		t.Errorf("the stream sent %q, want %q", got, "last words\n")
	}
}
