package container

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// ArchiveBackend is what docker cp, export and diff need from the engine.
// It is separate from Backend so that an engine can serve containers before
// it can copy files in and out of them. Names are as the client sent them;
// paths are container paths, resolved inside the container's root.
type ArchiveBackend interface {
	// ContainerStatPath describes the file at path without following a
	// symbolic link in its last component; errdefs.NotFound with
	// dockerd's "Could not find the file ..." when it does not exist.
	ContainerStatPath(ctx context.Context, name, path string) (*types.PathStat, error)
	// ContainerArchivePath returns a tar of the file or directory at path,
	// its top entry named after path's last component, and the file's
	// stat. The caller must close the stream.
	ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *types.PathStat, error)
	// ContainerExtractToDir unpacks the tar content (plain or compressed)
	// into the directory at path.
	ContainerExtractToDir(ctx context.Context, name, path string, opts types.ExtractOptions, content io.Reader) error
	// ContainerExport writes the container's whole file system as a tar.
	// Nothing is written to w before the container is found and its file
	// system is ready, so early errors can still become HTTP errors.
	ContainerExport(ctx context.Context, name string, w io.Writer) error
	// ContainerChanges lists what changed in the container's file system
	// relative to its image, in dockerd's order.
	ContainerChanges(ctx context.Context, name string) ([]types.Change, error)
}

// pathStatHeader is the header docker cp reads the stat from.
const pathStatHeader = "X-Docker-Container-Path-Stat"

// archivePath reads the path parameter, which dockerd requires (its
// message lacks a space, and clients may match it).
func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.InvalidParameter(errors.New("bad parameter: pathcannot be empty"))
	}
	return p, nil
}

func setPathStat(w http.ResponseWriter, st *types.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode path stat: %w", err)
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

// ArchiveHead answers HEAD /containers/{id}/archive?path=: 200 with the
// stat header and no body.
func ArchiveHead(b ArchiveBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		st, err := b.ContainerStatPath(r.Context(), r.PathValue("id"), p)
		if err != nil {
			return err
		}
		if err := setPathStat(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

// ArchiveGet answers GET /containers/{id}/archive?path=: the stat header
// and the tar of the path.
func ArchiveGet(b ArchiveBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		rc, st, err := b.ContainerArchivePath(r.Context(), r.PathValue("id"), p)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := setPathStat(w, st); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		if _, err := io.Copy(w, rc); err != nil {
			// The status is sent: a cut connection is the only signal
			// left, and it keeps the client from taking a short tar.
			panic(http.ErrAbortHandler)
		}
		return nil
	}
}

// ArchivePut answers PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=:
// the body is a tar to unpack into the directory path; 200 with no body.
func ArchivePut(b ArchiveBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		opts := types.ExtractOptions{
			NoOverwriteDirNonDir: wire.BoolValue(r, "noOverwriteDirNonDir"),
			CopyUIDGID:           wire.BoolValue(r, "copyUIDGID"),
		}
		if err := b.ContainerExtractToDir(r.Context(), r.PathValue("id"), p, opts, r.Body); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

// Export answers GET /containers/{id}/export with the container's file
// system as a tar.
func Export(b ArchiveBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return wire.StreamBody(w, "application/octet-stream", func(body io.Writer) error {
			return b.ContainerExport(r.Context(), r.PathValue("id"), body)
		})
	}
}

// Changes answers GET /containers/{id}/changes. Like dockerd it sends
// null when nothing changed.
func Changes(b ArchiveBackend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		changes, err := b.ContainerChanges(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, changes)
	}
}
