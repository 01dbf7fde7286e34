// Package system serves the daemon-wide endpoints: /_ping, /version, /info,
// /events and /system/df.
package system

import (
	"context"
	"net/http"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
)

// Backend is what the system endpoints need from the engine.
type Backend interface {
	SystemInfo(ctx context.Context) (*types.Info, error)
	SystemVersion(ctx context.Context) types.Version
	SystemDiskUsage(ctx context.Context) (*types.DiskUsage, error)
}

// Ping answers GET and HEAD /_ping as dockerd does: "OK" (empty for HEAD),
// never cached, with the headers clients read to negotiate. The API-Version
// header itself comes from the version middleware.
func Ping() wire.HandlerFunc {
	cacheControl := []string{"no-cache, no-store, must-revalidate"}
	noCache := []string{"no-cache"}
	plain := []string{"text/plain; charset=utf-8"}
	inactive := []string{"inactive"}
	return func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		// Direct assignment of shared, canonical-keyed slices: /_ping is the
		// hottest endpoint (every CLI invocation starts with it).
		h["Cache-Control"] = cacheControl
		h["Pragma"] = noCache
		h["Swarm"] = inactive
		h["Content-Type"] = plain
		if r.Method == http.MethodHead {
			h["Content-Length"] = []string{"0"}
			w.WriteHeader(http.StatusOK)
			return nil
		}
		_, err := w.Write([]byte("OK"))
		return err
	}
}

// Version answers GET /version.
func Version(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, b.SystemVersion(r.Context()))
	}
}

// Info answers GET /info.
func Info(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		info, err := b.SystemInfo(r.Context())
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, info)
	}
}

// DiskUsage answers GET /system/df.
func DiskUsage(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		du, err := b.SystemDiskUsage(r.Context())
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, du)
	}
}
