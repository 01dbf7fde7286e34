// Package container serves the container endpoints: create, start, stop,
// restart, kill, wait, attach, logs, inspect, list, top, stats, resize,
// pause, unpause, rename, update, remove and prune.
package container

import (
	"context"

	"skiffd/internal/api/types"
	"skiffd/internal/filters"
)

// Backend is what the container endpoints need from the engine. Names are
// as the client sent them: full ID, name (with or without "/") or an
// unambiguous ID prefix. Errors carry errdefs kinds and dockerd's wording.
type Backend interface {
	// ContainerCreate creates a container; name may be empty (generated).
	ContainerCreate(ctx context.Context, name string, req *types.CreateRequest) (*types.CreateResponse, error)
	// ContainerStart starts it; errdefs.NotModified when already running.
	ContainerStart(ctx context.Context, name string) error
	// ContainerStop sends signal ("" = the container's stop signal) and
	// SIGKILL after timeout seconds (nil = the container's StopTimeout or
	// 10); errdefs.NotModified when not running.
	ContainerStop(ctx context.Context, name string, signal string, timeout *int) error
	ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error
	// ContainerKill sends signal (name or number; "" = SIGKILL);
	// errdefs.Conflict "Container X is not running" when it is not.
	ContainerKill(ctx context.Context, name string, signal string) error
	// ContainerWait validates the container and returns a channel that
	// delivers exactly one response when condition is met. The handler
	// flushes its headers before reading it.
	ContainerWait(ctx context.Context, name string, condition types.WaitCondition) (<-chan types.WaitResponse, error)
	ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error
	// ContainerRemoveLink removes the legacy link named "/parent/alias".
	ContainerRemoveLink(ctx context.Context, name string) error
	ContainerPause(ctx context.Context, name string) error
	ContainerUnpause(ctx context.Context, name string) error
	ContainerRename(ctx context.Context, name, newName string) error
	ContainerInspect(ctx context.Context, name string, size bool) (*types.ContainerJSON, error)
	// ContainerList appends the containers GET /containers/json lists to
	// dst (see types.ContainerListEntry).
	ContainerList(ctx context.Context, opts types.ContainerListOptions, dst []types.ContainerListEntry) ([]types.ContainerListEntry, error)
	ContainerTop(ctx context.Context, name, psArgs string) (*types.ContainerTopResponse, error)
	// ContainerStats validates the container, then calls emit with one
	// sample (stream false) or one per second until ctx ends (stream
	// true). oneShot skips the priming sample, so PreCPUStats stay zero.
	ContainerStats(ctx context.Context, name string, stream, oneShot bool, emit func(*types.StatsJSON) error) error
	// ContainerStatsFollow is the stream of ContainerStats for a stream
	// with no goroutine of its own: the first sample (nil: none, the
	// container is gone), and follow, which subscribes emit to the later
	// ones, given on the collector's goroutine (emit must neither block
	// nor change them; nil means the stream ends; false unsubscribes).
	ContainerStatsFollow(ctx context.Context, name string) (first *types.StatsJSON, follow func(emit func(*types.StatsJSON) bool) (stop func()), err error)
	ContainerResize(ctx context.Context, name string, height, width int) error
	ContainerUpdate(ctx context.Context, name string, cfg *types.UpdateConfig) (*types.ContainerUpdateResponse, error)
	ContainersPrune(ctx context.Context, ef filters.Args) (*types.ContainersPruneReport, error)
	// ContainerLogs validates (returning the error before calling
	// out.Begin), then calls out.Begin with whether the container has a
	// TTY (then the output is sent unframed) and out.Record for each
	// record until the end of the log, or, with Follow, until the
	// container stops or ctx ends. An error after Begin is one reading
	// the log (or out's own); the end of ctx is not an error.
	ContainerLogs(ctx context.Context, name string, opts types.ContainerLogsOptions, out types.LogSink) error
	// ContainerAttach validates, then calls cfg.GetStreams exactly once to
	// take over the connection, and copies until the container's output
	// ends (or the client detaches or goes away).
	ContainerAttach(ctx context.Context, name string, cfg *types.AttachConfig) error
}
