package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// LayerInfo describes one registered layer; it has the shape of layer.Layer.
type LayerInfo struct {
	ChainID string // "sha256:<hex>"
	DiffID  string // "sha256:<hex>" of the uncompressed tar
	Parent  string // parent ChainID, "" for a base layer
	Size    int64  // bytes of content unpacked
}

// LayerStore is what the image store needs from the content-addressed layer
// store (internal/layer): register verified layers, look them up, stream them
// back, and drop the ones no image uses any more.
type LayerStore interface {
	// Register unpacks the layer tar r (plain or compressed) on top of
	// parent, verifying its diff ID when want is not empty. An existing
	// chain is returned as it is.
	Register(ctx context.Context, r io.Reader, parent, want string) (LayerInfo, error)
	// Get returns the layer with that chain ID, or errdefs.NotFound.
	Get(chainID string) (LayerInfo, error)
	// WriteTar writes the layer's original uncompressed tar.
	WriteTar(ctx context.Context, chainID string, w io.Writer) error
	// Remove deletes the layer; the caller guarantees nothing uses it.
	Remove(chainID string) error
}

// chainID computes the OCI chain ID of diffID on top of the chain parent.
func chainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	sum := sha256.Sum256([]byte(parent + " " + diffID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// chainIDs returns the chain ID of every prefix of diffIDs, base first.
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	parent := ""
	for i, d := range diffIDs {
		parent = chainID(parent, d)
		out[i] = parent
	}
	return out
}
