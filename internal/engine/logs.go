package engine

import (
	"context"
	"errors"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/logs"
)

// ContainerLogs answers GET /containers/{id}/logs from the json-file log
// the shim writes, calling out for each record. Following ends when the
// container stops (after what it wrote has been sent) or when ctx ends.
//
// A plain LogSink is called on this goroutine, and ContainerLogs returns
// when the read ends. A LogFollowSink that follows is sent the history on
// this goroutine; then ContainerLogs returns, the follower's reads run on
// the shared log watcher's goroutines when the log changes, and out.End
// reports the end (issue 13: no goroutine per open `logs -f`).
func (e *Engine) ContainerLogs(ctx context.Context, name string, opts types.ContainerLogsOptions, out types.LogSink) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.InvalidParameter(errors.New("You must choose at least one stream"))
	}
	c.Lock()
	tty := c.Config.Tty
	path := e.logFile(c)
	noLog := c.HostConfig.LogConfig.Type == "none" || path == ""
	c.Unlock()
	if noLog {
		return errdefs.InvalidParameter(errors.New(`configured logging driver does not support reading`))
	}
	var stop <-chan struct{}
	if opts.Follow {
		// Stop following at the container's next exit (or removal), or
		// at once when it does not run.
		stop = c.State.Stopped()
	}
	endStream := e.streams.begin()
	out.Begin(tty)
	ro := logs.ReadOptions{Since: opts.Since, Until: opts.Until, Tail: opts.Tail, Follow: opts.Follow, Idle: out.Idle, Borrow: true, Watchers: &e.logWatch}
	fn := func(m logs.Message) error {
		if (m.Stream == "stdout" && !opts.Stdout) || (m.Stream == "stderr" && !opts.Stderr) {
			return nil
		}
		return out.Record(m.Stream, m.Line, m.Time)
	}
	if fs, ok := out.(types.LogFollowSink); ok && opts.Follow {
		// No goroutine waits: the follower runs on the log watcher's
		// wake-ups, and the container's exit stops it.
		ro.Idle = func() error { return pausing(out.Idle()) }
		ro.Following = func(f *logs.Follower) {
			fs.Following(f.Resume)
			f.OnEnd(c.State.AfterStopped(stop, f.Stop))
		}
		err = logs.Follow(ctx, path, ro, func(m logs.Message) error { return pausing(fn(m)) }, func(err error) {
			endStream()
			fs.End(logsError(ctx, err))
		})
		if err != nil {
			endStream()
		}
		return logsError(ctx, err)
	}
	defer endStream()
	return logsError(ctx, logs.Read(ctx, path, ro, stop, fn))
}

// pausing turns a sink's ErrSinkFull into the follower's ErrPause.
func pausing(err error) error {
	if err != nil && errors.Is(err, types.ErrSinkFull) {
		return logs.ErrPause
	}
	return err
}

// logsError is what ContainerLogs reports for err: nothing when the log is
// gone (the container was removed) or the client went away.
func logsError(ctx context.Context, err error) error {
	if err != nil && (isNotExist(err) || ctx.Err() != nil) {
		return nil
	}
	return err
}
