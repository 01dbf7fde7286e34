package image

import (
	"context"
	"io"

	"skiffd/internal/layer"
)

// LayerStore is what the image store needs from the content-addressed layer
// store (*layer.Store satisfies it): register verified layers, look them up,
// stream them back, and drop the ones no image uses any more.
type LayerStore interface {
	// Register unpacks the layer tar r (plain or compressed) on top of
	// parent, verifying its diff ID when want is not empty. An existing
	// chain is returned as it is.
	Register(ctx context.Context, r io.Reader, parent, want string) (layer.Layer, error)
	// Get returns the layer with that chain ID, or errdefs.NotFound.
	Get(chainID string) (layer.Layer, error)
	// WriteTar writes the layer's original uncompressed tar, TarSize bytes.
	WriteTar(ctx context.Context, chainID string, w io.Writer) error
	// Remove deletes the layer; the caller guarantees nothing uses it.
	Remove(chainID string) error
}

var _ LayerStore = (*layer.Store)(nil)

// chainIDs returns the chain ID of every prefix of diffIDs, base first.
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	parent := ""
	for i, d := range diffIDs {
		parent = layer.ChainID(parent, d)
		out[i] = parent
	}
	return out
}
