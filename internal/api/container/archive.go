package container

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

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
	ContainerStatPath(ctx context.Context, name, path string) (*PathStat, error)
	// ContainerArchivePath returns a tar of the file or directory at path,
	// its top entry named after path's last component, and the file's
	// stat. The caller must close the stream.
	ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *PathStat, error)
	// ContainerExtractToDir unpacks the tar content (plain or compressed)
	// into the directory at path.
	ContainerExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, content io.Reader) error
	// ContainerExport writes the container's whole file system as a tar.
	// Nothing is written to w before the container is found and its file
	// system is ready, so early errors can still become HTTP errors.
	ContainerExport(ctx context.Context, name string, w io.Writer) error
	// ContainerChanges lists what changed in the container's file system
	// relative to its image, in dockerd's order.
	ContainerChanges(ctx context.Context, name string) ([]Change, error)
}

// ExtractOptions are the parameters of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives every extracted file the container user's uid and
	// gid (docker cp -a) instead of the ones the archive records.
	CopyUIDGID bool
}

// PathStat is the X-Docker-Container-Path-Stat header's content: Mode is
// a Go os.FileMode (a directory carries 1<<31), LinkTarget the fully
// resolved container path of a symbolic link.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	Mtime      time.Time   `json:"mtime"`
	LinkTarget string      `json:"linkTarget"`
}

// ChangeKind is the kind of a file system change, as GET changes reports it.
type ChangeKind uint8

// The change kinds, with dockerd's numbers (docker diff shows C, A, D).
const (
	ChangeModify ChangeKind = 0
	ChangeAdd    ChangeKind = 1
	ChangeDelete ChangeKind = 2
)

// Change is one entry of GET /containers/{id}/changes.
type Change struct {
	Path string     `json:"Path"`
	Kind ChangeKind `json:"Kind"`
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

func setPathStat(w http.ResponseWriter, st *PathStat) error {
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
		opts := ExtractOptions{
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
		lw := &lazyStream{w: w, contentType: "application/octet-stream"}
		if err := b.ContainerExport(r.Context(), r.PathValue("id"), lw); err != nil {
			if !lw.started {
				return err
			}
			panic(http.ErrAbortHandler)
		}
		if !lw.started {
			lw.start()
		}
		return nil
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

// lazyStream sends the status and headers on the first write, so errors
// found before any output still become HTTP errors.
type lazyStream struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyStream) start() {
	l.started = true
	l.w.Header().Set("Content-Type", l.contentType)
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyStream) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}
