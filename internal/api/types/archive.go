package types

import (
	"os"
	"time"
)

// ExtractOptions are the parameters of PUT /containers/{id}/archive, as
// the handler passes them to the engine (moby's
// api/types/container.CopyToContainerOptions).
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
