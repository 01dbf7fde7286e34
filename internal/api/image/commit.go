package image

import (
	"context"
	"net/http"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
)

// CommitBackend is what POST /commit needs from the engine.
type CommitBackend interface {
	// CommitContainer makes an image of the container's file system and
	// configuration and returns its ID ("sha256:...").
	CommitContainer(ctx context.Context, name string, opts types.CommitOptions) (string, error)
}

// Commit answers POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=
// with 201 {"Id": ...}. The body, a container configuration, may be empty.
// pause, absent or empty, is true, as dockerd has it from API 1.13.
func Commit(b CommitBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var cfg types.Config
		empty, err := wire.DecodeJSON(r, &cfg)
		if err != nil {
			return err
		}
		opts := types.CommitOptions{
			Repo:    q.Get("repo"),
			Tag:     q.Get("tag"),
			Comment: q.Get("comment"),
			Author:  q.Get("author"),
			Pause:   q.Get("pause") == "" || wire.BoolValue(r, "pause"),
			Changes: q["changes"],
		}
		if !empty {
			opts.Config = &cfg
		}
		id, err := b.CommitContainer(r.Context(), q.Get("container"), opts)
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusCreated, types.IDResponse{ID: id})
	}
}
