// Package image serves the image endpoints: import, load, save, list,
// inspect, history, tag, remove and prune.
package image

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// Backend is what the image endpoints need from the engine.
type Backend interface {
	ImportImage(ctx context.Context, src io.Reader, repo, tag, message string, changes []string) (id string, err error)
	ImportImageURL(ctx context.Context, src, repo, tag, message string, changes []string, progress func(types.ProgressMessage)) (id string, err error)
	LoadImage(ctx context.Context, src io.Reader, progress func(line string)) error
	ExportImages(ctx context.Context, names []string, w io.Writer) error
	Images(ctx context.Context, all, digests bool, ef filters.Args) ([]*types.ImageSummary, error)
	ImageInspect(ctx context.Context, name string) (*types.ImageInspect, error)
	ImageHistory(ctx context.Context, name string) ([]*types.ImageHistoryItem, error)
	TagImage(ctx context.Context, name, repo, tag string) error
	ImageDelete(ctx context.Context, name string, force, prune bool) ([]types.ImageDeleteItem, error)
	ImagesPrune(ctx context.Context, ef filters.Args) (*types.ImagesPruneReport, error)
}

// ByName routes /images/{name...}/{action}: image names contain slashes
// ("localhost:5000/a/b:1"), so ServeMux cannot put a wildcard before the
// action. The last path segment picks the handler; the rest is the name,
// available as r.PathValue("name").
func ByName(actions map[string]wire.HandlerFunc) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rest := r.PathValue("name")
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			wire.PageNotFound(w)
			return nil
		}
		h, ok := actions[rest[i+1:]]
		if !ok {
			wire.PageNotFound(w)
			return nil
		}
		r.SetPathValue("name", rest[:i])
		return h(w, r)
	}
}

// Create answers POST /images/create: a pull from a registry (fromImage),
// an import from the request body (fromSrc=-) or from a URL the daemon
// downloads (fromSrc=http://...).
func Create(b Backend, rb RegistryBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		if q.Get("fromImage") != "" {
			return pull(rb, w, r)
		}
		src := q.Get("fromSrc")
		if src == "" {
			return errdefs.InvalidParameter(errors.New("fromImage or fromSrc is required"))
		}
		p := wire.NewProgress(w)
		if src != "-" {
			defer p.Finish(r)
			id, err := b.ImportImageURL(r.Context(), src, q.Get("repo"), q.Get("tag"), q.Get("message"), q["changes"],
				func(m types.ProgressMessage) { p.WriteValue(m) })
			if err != nil {
				return p.End(err)
			}
			wire.Annotate(r.Context(), "image", id, "")
			p.Status(id)
			return nil
		}
		defer p.Finish(r)
		id, err := b.ImportImage(r.Context(), r.Body, q.Get("repo"), q.Get("tag"), q.Get("message"), q["changes"])
		if err != nil {
			return p.End(err)
		}
		wire.Annotate(r.Context(), "image", id, "")
		p.Status(id)
		return nil
	}
}

// Load answers POST /images/load. Errors after the stream started (a bad
// archive) are sent in band, as dockerd does; the CLI prints them.
func Load(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		wire.Annotate(r.Context(), "image", "", "")
		p := wire.NewProgress(w)
		defer p.Finish(r)
		p.Start()
		err := b.LoadImage(r.Context(), r.Body, func(line string) {
			p.Stream(line + "\n")
		})
		if err != nil {
			p.Error(err)
		}
		return nil
	}
}

// Save answers GET /images/get?names=... and GET /images/{name}/get.
func Save(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		names := r.URL.Query()["names"]
		if name := r.PathValue("name"); name != "" {
			names = []string{name}
		}
		return wire.StreamBody(w, "application/x-tar", func(body io.Writer) error {
			return b.ExportImages(r.Context(), names, body)
		})
	}
}

// List answers GET /images/json.
func List(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return err
		}
		// API < 1.41 clients may still send the old "filter" parameter.
		if name := r.URL.Query().Get("filter"); name != "" {
			ef.Add("reference", name)
		}
		list, err := b.Images(r.Context(), wire.BoolValue(r, "all"), wire.BoolValue(r, "digests"), ef)
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, list)
	}
}

// Inspect answers GET /images/{name}/json.
func Inspect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		img, err := b.ImageInspect(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, img)
	}
}

// History answers GET /images/{name}/history.
func History(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h, err := b.ImageHistory(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, h)
	}
}

// Tag answers POST /images/{name}/tag with 201 and no body.
func Tag(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		wire.Annotate(r.Context(), "image", r.PathValue("name"), q.Get("repo")+":"+q.Get("tag"))
		if err := b.TagImage(r.Context(), r.PathValue("name"), q.Get("repo"), q.Get("tag")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	}
}

// Delete answers DELETE /images/{name}.
func Delete(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if strings.TrimSpace(name) == "" {
			return errdefs.InvalidParameter(errors.New("image name cannot be blank"))
		}
		wire.Annotate(r.Context(), "image", name, "")
		list, err := b.ImageDelete(r.Context(), name, wire.BoolValue(r, "force"), !wire.BoolValue(r, "noprune"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, list)
	}
}

// Prune answers POST /images/prune.
func Prune(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return err
		}
		report, err := b.ImagesPrune(r.Context(), ef)
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, report)
	}
}
