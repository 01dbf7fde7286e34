// Package network serves the network endpoints: list, create, inspect,
// remove, prune, connect and disconnect (issue 14).
package network

import (
	"context"
	"fmt"
	"net/http"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// Backend is what the network endpoints need from the engine.
type Backend interface {
	Networks(ctx context.Context, ef filters.Args) ([]types.NetworkResource, error)
	NetworkCreate(ctx context.Context, req types.NetworkCreateRequest) (*types.NetworkCreateResponse, error)
	NetworkInspect(ctx context.Context, term string) (*types.NetworkResource, error)
	NetworkRemove(ctx context.Context, term string) error
	NetworksPrune(ctx context.Context, ef filters.Args) (*types.NetworksPruneReport, error)
	NetworkConnect(ctx context.Context, term, container string, ep *types.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, term, container string, force bool) error
}

// List answers GET /networks.
func List(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		list, err := b.Networks(r.Context(), ef)
		if err != nil {
			return err
		}
		if list == nil {
			list = []types.NetworkResource{}
		}
		return wire.WriteJSON(w, http.StatusOK, list)
	}
}

// Create answers POST /networks/create with 201.
func Create(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req types.NetworkCreateRequest
		if _, err := wire.DecodeJSON(r, &req); err != nil {
			return err
		}
		resp, err := b.NetworkCreate(r.Context(), req)
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusCreated, resp)
	}
}

// Inspect answers GET /networks/{id}.
func Inspect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		n, err := b.NetworkInspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, n)
	}
}

// Remove answers DELETE /networks/{id} with 204.
func Remove(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := b.NetworkRemove(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// Prune answers POST /networks/prune.
func Prune(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ef, err := filters.FromParam(r.URL.Query().Get("filters"))
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		rep, err := b.NetworksPrune(r.Context(), ef)
		if err != nil {
			return err
		}
		if rep.NetworksDeleted == nil {
			rep.NetworksDeleted = []string{}
		}
		return wire.WriteJSON(w, http.StatusOK, rep)
	}
}

// Connect answers POST /networks/{id}/connect.
func Connect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req types.NetworkConnectRequest
		if _, err := wire.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Container == "" {
			return errdefs.InvalidParameter(fmt.Errorf("no container specified"))
		}
		if err := b.NetworkConnect(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

// Disconnect answers POST /networks/{id}/disconnect.
func Disconnect(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req types.NetworkDisconnectRequest
		if _, err := wire.DecodeJSON(r, &req); err != nil {
			return err
		}
		if err := b.NetworkDisconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}
