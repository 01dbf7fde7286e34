// Package exec serves the exec endpoints: create, start (hijacked like
// attach, or detached), inspect and resize.
package exec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// Backend is what the exec endpoints need from the engine.
type Backend interface {
	// ContainerExecCreate registers an exec in a running container
	// (409 when it is not running or paused) and returns its ID.
	ContainerExecCreate(ctx context.Context, container string, cfg *types.ExecConfig) (string, error)
	// ContainerExecStart starts the exec. With cfg.Detach it returns once
	// the process runs; otherwise it calls cfg.GetStreams once, after
	// validating, and copies until the process's output ends.
	ContainerExecStart(ctx context.Context, execID string, cfg *types.ExecStartConfig) error
	ContainerExecInspect(ctx context.Context, execID string) (*types.ExecInspect, error)
	ContainerExecResize(ctx context.Context, execID string, height, width int) error
}

// Create answers POST /containers/{id}/exec with 201 {"Id": ...}.
func Create(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var cfg types.ExecConfig
		if _, err := wire.DecodeJSON(r, &cfg); err != nil {
			return err
		}
		if len(cfg.Cmd) == 0 {
			return errdefs.InvalidParameter(errors.New("No exec command specified"))
		}
		if wire.VersionLess(r.Context(), "1.42") {
			cfg.ConsoleSize = nil
		}
		wire.Annotate(r.Context(), "container", r.PathValue("id"), "")
		wire.AnnotateCmd(r.Context(), cfg.Cmd)
		id, err := b.ContainerExecCreate(r.Context(), r.PathValue("id"), &cfg)
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusCreated, types.IDResponse{ID: id})
	}
}

// Start answers POST /exec/{id}/start: hijacked (101, or the legacy 200
// stream) carrying the version headers as dockerd's exec does, or a plain
// 200 with an empty body for Detach.
func Start(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var chk types.ExecStartCheck
		if _, err := wire.DecodeJSON(r, &chk); err != nil {
			return err
		}
		wire.Annotate(r.Context(), "exec", r.PathValue("id"), "")
		cfg := &types.ExecStartConfig{Detach: chk.Detach, Tty: chk.Tty, ConsoleSize: chk.ConsoleSize}
		if wire.VersionLess(r.Context(), "1.42") {
			cfg.ConsoleSize = nil
		}
		if cfg.Detach {
			if err := b.ContainerExecStart(r.Context(), r.PathValue("id"), cfg); err != nil {
				return err
			}
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return nil
		}
		st := wire.NewStreamTakeover(w, r, true)
		cfg.GetStreams = st.Take
		err := b.ContainerExecStart(r.Context(), r.PathValue("id"), cfg)
		if !st.Taken() {
			return err
		}
		st.Finish(err)
		return nil
	}
}

// Inspect answers GET /exec/{id}/json; the CLI reads ExitCode from it.
func Inspect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ins, err := b.ContainerExecInspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, ins)
	}
}

// Resize answers POST /exec/{id}/resize?h=&w= with an empty 200 (201 in
// some dockerd versions; the CLI accepts both).
func Resize(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h, err1 := strconv.Atoi(r.URL.Query().Get("h"))
		wd, err2 := strconv.Atoi(r.URL.Query().Get("w"))
		if err1 != nil || err2 != nil || h < 0 || wd < 0 || h > 65535 || wd > 65535 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid resize dimensions h=%q w=%q", r.URL.Query().Get("h"), r.URL.Query().Get("w")))
		}
		if err := b.ContainerExecResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}
