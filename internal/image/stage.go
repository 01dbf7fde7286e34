package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path"
	"strings"

	"skiffd/internal/layer"
	"skiffd/internal/reference"
	"skiffd/internal/zstd"
)

// stagedLayer is a layer unpacked before its parent chain is known
// (*layer.Staged): Commit gives it its chain, Discard drops it.
type stagedLayer interface {
	DiffID() string
	Commit(parent string) (layer.Layer, error)
	Discard() error
}

// layerStager is what Load needs, beyond LayerStore, to read every layer of
// an archive once, straight from the stream: staging (a docker save
// archive names the layers' order only in manifest.json, its last member)
// and the list of registered layers, to skip content it already has.
// *layer.Store provides it through realStager; a LayerStore without it
// gets its layers spilled to temporary files first.
type layerStager interface {
	Stage(ctx context.Context, r io.Reader) (stagedLayer, error)
	List() []layer.Layer
}

// realStager adapts *layer.Store, whose Stage returns the concrete type.
type realStager struct{ *layer.Store }

func (r realStager) Stage(ctx context.Context, rd io.Reader) (stagedLayer, error) {
	st, err := r.Store.Stage(ctx, rd)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// stagerOf returns the staging side of layers, or nil.
func stagerOf(layers LayerStore) layerStager {
	switch ls := layers.(type) {
	case *layer.Store:
		if ls != nil {
			return realStager{ls}
		}
	case layerStager:
		return ls
	}
	return nil
}

// tarBlockSize is the size of a tar header block.
const tarBlockSize = 512

// looksLikeLayer reports whether a member starting with head (its first
// bytes, up to a tar block) is a layer tar: gzip, bzip2 or zstd data, or
// a tar header, whose magic and version field ("ustar\x0000" or GNU's
// "ustar  \x00") hold a NUL byte that no JSON document can contain.
func looksLikeLayer(head []byte) bool {
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}) || bytes.HasPrefix(head, []byte("BZh")) || zstd.IsZstd(head) {
		return true
	}
	if len(head) < tarBlockSize {
		return false
	}
	magic := string(head[257:265])
	return magic == "ustar\x0000" || magic == "ustar  \x00"
}

// digestName returns the digest a member named "blobs/sha256/<hex>" claims
// for its content.
func digestName(name string) (string, bool) {
	hexPart, ok := strings.CutPrefix(name, "blobs/sha256/")
	if !ok || path.Base(name) != hexPart || !reference.IsFullID(hexPart) {
		return "", false
	}
	return "sha256:" + hexPart, true
}

// errCopied ends the pipe of a layer copy once the reader is done.
var errCopied = errors.New("layer copy finished")

// copyLayer registers the content of the registered layer from on top of
// parent, expecting diff ID diffID: how a layer staged once for one chain
// also becomes part of another. The content streams from one layer to the
// other through a pipe.
func (s *Store) copyLayer(ctx context.Context, from, parent, diffID string) (layer.Layer, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(s.layers.WriteTar(ctx, from, pw))
	}()
	l, err := s.layers.Register(ctx, pr, parent, diffID)
	// Register may stop reading early (an error, or a chain that appeared
	// meanwhile); closing the pipe then stops the writer.
	pr.CloseWithError(errCopied)
	<-done
	return l, err
}
