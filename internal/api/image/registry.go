package image

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// RegistryBackend is what the registry endpoints need from the engine:
// pull, push, login, search and distribution inspect (issue 11).
type RegistryBackend interface {
	DistributionInspect(ctx context.Context, name, authHeader string) (*types.DistributionInspect, error)
	PullImage(ctx context.Context, opts types.ImagePullOptions, progress func(types.ProgressMessage)) error
	PushImage(ctx context.Context, opts types.ImagePushOptions, progress func(types.ProgressMessage)) error
	Login(ctx context.Context, ac types.AuthConfig) (*types.AuthResponse, error)
	SearchImages(ctx context.Context, term string, limit int, authHeader string) ([]types.SearchResult, error)
}

// registryAuthHeader is the header carrying the client's credentials.
const registryAuthHeader = "X-Registry-Auth"

// pull answers POST /images/create?fromImage=. Like dockerd it writes
// nothing until the first progress message, so that an error found before
// (an unknown manifest, refused credentials, a bad reference) is an HTTP
// status; later errors go in band.
func pull(b RegistryBackend, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := wire.NewProgress(w)
	err := b.PullImage(r.Context(), types.ImagePullOptions{
		FromImage:    q.Get("fromImage"),
		Tag:          q.Get("tag"),
		Platform:     q.Get("platform"),
		RegistryAuth: r.Header.Get(registryAuthHeader),
	}, func(m types.ProgressMessage) { p.WriteValue(m) })
	return p.End(err)
}

// Push answers POST /images/{name}/push?tag=.
func Push(b RegistryBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := wire.NewProgress(w)
		err := b.PushImage(r.Context(), types.ImagePushOptions{
			Name:         r.PathValue("name"),
			Tag:          r.URL.Query().Get("tag"),
			RegistryAuth: r.Header.Get(registryAuthHeader),
		}, func(m types.ProgressMessage) { p.WriteValue(m) })
		return p.End(err)
	}
}

// Auth answers POST /auth (docker login).
func Auth(b RegistryBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var ac types.AuthConfig
		if _, err := wire.DecodeJSON(r, &ac); err != nil {
			return err
		}
		res, err := b.Login(r.Context(), ac)
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, res)
	}
}

// Search answers GET /images/search?term=&limit=.
func Search(b RegistryBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit := 0
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return errdefs.InvalidParameter(errors.New("invalid limit: " + s))
			}
			limit = n
		}
		res, err := b.SearchImages(r.Context(), q.Get("term"), limit, r.Header.Get(registryAuthHeader))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, res)
	}
}

// DistributionInspect answers GET /distribution/{name}/json.
func DistributionInspect(b RegistryBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		res, err := b.DistributionInspect(r.Context(), r.PathValue("name"), r.Header.Get(registryAuthHeader))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, res)
	}
}
