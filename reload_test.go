package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"skiffd/internal/config"
	"skiffd/internal/sdnotify"
)

type fakeEvents struct{ actions []string }

func (f *fakeEvents) LogDaemonEvent(action string, attrs map[string]string) {
	f.actions = append(f.actions, action+" "+attrs["log-level"])
}

// TestReloadLogLevel: a SIGHUP reload changes the level of the running
// logger, emits the reload event, and refuses a bad level or a failing
// hook without changing anything.
func TestReloadLogLevel(t *testing.T) {
	file := filepath.Join(t.TempDir(), "daemon.json")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"log-level": "warn"}`)
	args := []string{"--config-file", file}
	cfg, err := config.Parse(args, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
	ev := &fakeEvents{}
	rl := &reloader{args: args, getenv: func(string) string { return "" }, logger: logger, level: level,
		cors: new(atomic.Pointer[string]), obs: &observer{}, eng: ev, notify: sdnotify.New(func(string) string { return "" })}
	hookFails := false
	committed := 0
	rl.addHook(reloadHook{Name: "authz", Prepare: func(*config.Config) (func(), error) {
		if hookFails {
			return nil, errors.New("plugin missing")
		}
		return func() { committed++ }, nil
	}})

	logger.Info("before")
	write(`{"log-level": "info", "labels": ["a=b"]}`)
	rl.reload()
	logger.Info("after")
	if level.Level() != slog.LevelInfo || !strings.Contains(buf.String(), "msg=after") || strings.Contains(buf.String(), "msg=before") {
		t.Fatalf("level %v, log:\n%s", level.Level(), buf.String())
	}
	if len(ev.actions) != 1 || ev.actions[0] != "reload info" || committed != 1 {
		t.Fatalf("events %v, commits %d", ev.actions, committed)
	}
	if l := rl.obs.labels.Load(); l == nil || strings.Join(*l, ",") != "a=b" {
		t.Fatalf("labels %v", l)
	}

	write(`{"log-level": "loud"}`)
	rl.reload()
	hookFails = true
	write(`{"log-level": "error"}`)
	rl.reload()
	if level.Level() != slog.LevelInfo || len(ev.actions) != 1 || committed != 1 {
		t.Fatalf("a refused reload changed something: level %v, events %v, commits %d", level.Level(), ev.actions, committed)
	}
	if n := strings.Count(buf.String(), "reload failed"); n != 2 {
		t.Fatalf("%d refusals logged, want 2:\n%s", n, buf.String())
	}
}
