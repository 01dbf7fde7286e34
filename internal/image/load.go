package image

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"skiffd/internal/archive"
	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
	"skiffd/internal/reference"
)

// ProgressFunc receives the user-visible lines of a load as dockerd streams
// them, e.g. "Loaded image: busybox:latest", without trailing newline.
type ProgressFunc func(line string)

// loadItem is one image found in an archive, ready to register.
type loadItem struct {
	config []byte
	layers []*member
	tags   []reference.Named
	parent string // the manifest's Parent, an image ID in the same archive
}

// Load reads an image archive, as "docker save" writes it or as an OCI image
// layout, and stores its images. r may be gzip- or bzip2-compressed. The
// archive is read once, and so is every layer: a member that is a layer tar
// is unpacked (staged) into the layer store as it streams by, since only
// the chain it ends up in waits for manifest.json, the archive's last
// member; a layer named by a diff ID the layer store has is skipped. Small
// members are held in memory and anything else spilled under the store's
// tmp directory, so memory stays flat. Then each image's layers are
// committed in order with the diff IDs its config names (a mismatch stops
// the load before that image is created), the image is created and its
// tags move to it. Staged layers no image uses are discarded. progress gets dockerd's
// lines: "Loaded image: busybox:latest" per tag, "Loaded image ID: sha256:..."
// for an image without tags. Images loaded before an error stay.
func (s *Store) Load(ctx context.Context, r io.Reader, progress ProgressFunc) error {
	if progress == nil {
		progress = func(string) {}
	}
	rc, err := archive.DecompressStream(r)
	if err != nil {
		return err
	}
	defer rc.Close()
	dir, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(dir)

	files := newArchiveFiles(dir)
	defer files.close()
	if st := s.stager; st != nil {
		files.stage = st.Stage
		files.br = bufio.NewReaderSize(nil, 64<<10)
		files.known = s.knownLayers(st, files)
	}
	if err := files.read(ctx, rc); err != nil {
		return err
	}
	var items []loadItem
	switch {
	case files.has(manifestFileName):
		items, err = files.dockerItems()
	case files.has(indexFileName):
		items, err = files.ociItems()
	default:
		return errdefs.InvalidParameter(fmt.Errorf("failed to load image: open %s: %w", manifestFileName, syscall.ENOENT))
	}
	if err != nil {
		return err
	}

	loaded := make([]*Image, 0, len(items))
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := s.loadOne(ctx, files, it, progress)
		if err != nil {
			return err
		}
		loaded = append(loaded, img)
	}
	return s.linkParents(items, loaded)
}

func (s *Store) loadOne(ctx context.Context, files *archiveFiles, it loadItem, progress ProgressFunc) (*Image, error) {
	cfg, err := ParseConfig(it.config)
	if err != nil {
		return nil, err
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("cannot load %s image on %s", cfg.OS, runtime.GOOS))
	}
	if want, got := len(it.layers), len(cfg.RootFS.DiffIDs); want != got {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid manifest, layers length mismatch: expected %d, got %d", want, got))
	}
	// Layers read from the stream are checked before any is committed, so
	// that a mismatch leaves nothing of the image behind.
	for i, diffID := range cfg.RootFS.DiffIDs {
		m := it.layers[i]
		if m.stageErr != nil {
			return nil, fmt.Errorf("load layer %d (%s): %w", i, diffID, m.stageErr)
		}
		if m.diffID != "" && m.diffID != diffID {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid diffID for layer %d: expected %q, got %q", i, diffID, m.diffID))
		}
	}
	chains := chainIDs(cfg.RootFS.DiffIDs)
	release := s.holdChains(chains)
	defer release()
	parent := ""
	for i, diffID := range cfg.RootFS.DiffIDs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, err := s.registerMember(ctx, files, it.layers[i], parent, diffID)
		if err != nil {
			return nil, fmt.Errorf("load layer %d (%s): %w", i, diffID, err)
		}
		if l.ChainID != chains[i] || l.DiffID != diffID {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid diffID for layer %d: expected %q, got %q", i, diffID, l.DiffID))
		}
		parent = l.ChainID
	}
	img, err := s.Create(ctx, it.config, "")
	if err != nil {
		return nil, err
	}
	for _, t := range it.tags {
		moved := func(old string) {
			progress(fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string", t.FamiliarString(), old))
		}
		if err := s.tag(img.ID, t, false, moved); err != nil {
			return nil, err
		}
		progress("Loaded image: " + t.FamiliarString())
	}
	if len(it.tags) == 0 {
		progress("Loaded image ID: " + img.ID)
	}
	return img, nil
}

// registerMember registers the layer member m on top of parent, expecting
// diff ID diffID (checked already for a layer read from the stream).
func (s *Store) registerMember(ctx context.Context, files *archiveFiles, m *member, parent, diffID string) (layer.Layer, error) {
	if m.staged != nil {
		l, err := m.staged.Commit(parent)
		if err != nil {
			return l, err
		}
		m.staged = nil
		m.chain = l.ChainID
		// Later images may need the content again, on another parent.
		files.held = append(files.held, s.holdChains([]string{l.ChainID}))
		return l, nil
	}
	if m.chain != "" {
		// The content is in the layer store already; only a chain of it
		// on another parent needs a copy (a blob shared by images that
		// stack it differently, which is rare).
		if l, err := s.layers.Get(layer.ChainID(parent, diffID)); err == nil {
			return l, nil
		}
		return s.copyLayer(ctx, m.chain, parent, diffID)
	}
	rc, err := m.open()
	if err != nil {
		return layer.Layer{}, err
	}
	defer rc.Close()
	return s.layers.Register(ctx, rc, parent, diffID)
}

// knownLayers returns the function that finds a registered layer by diff
// ID for files, listing the layer store when first asked, and holds what
// it finds until files is closed.
func (s *Store) knownLayers(st layerStager, files *archiveFiles) func(string) (string, bool) {
	var byDiffID map[string]string
	return func(diffID string) (string, bool) {
		if byDiffID == nil {
			byDiffID = make(map[string]string)
			for _, l := range st.List() {
				byDiffID[l.DiffID] = l.ChainID
			}
		}
		chain, ok := byDiffID[diffID]
		if !ok {
			return "", false
		}
		// Held first, then checked: a Delete that got in between the
		// listing and the hold has removed it, and none can after.
		release := s.holdChains([]string{chain})
		if _, err := s.layers.Get(chain); err != nil {
			release()
			delete(byDiffID, diffID)
			return "", false
		}
		files.held = append(files.held, release)
		return chain, true
	}
}

// linkParents records the parents that manifest.json names, when the parent
// is another image of the same archive whose history this one extends by
// one step, as dockerd checks.
func (s *Store) linkParents(items []loadItem, loaded []*Image) error {
	byID := make(map[string]*Image, len(loaded))
	for _, img := range loaded {
		byID[img.ID] = img
	}
	for i, it := range items {
		if it.parent == "" || it.parent == loaded[i].ID {
			continue
		}
		p := byID[normalizeID(it.parent)]
		if p == nil {
			continue
		}
		if !extendsHistory(loaded[i].Config.History, p.Config.History) {
			return errdefs.InvalidParameter(fmt.Errorf("image %s is not a valid parent for %s", p.ID, loaded[i].ID))
		}
		if err := s.setParent(loaded[i].ID, p.ID); err != nil {
			return err
		}
	}
	return nil
}

// extendsHistory reports whether child's history is parent's plus one step.
func extendsHistory(child, parent []History) bool {
	if len(child) == 0 && len(parent) == 0 {
		return true
	}
	if len(child)-len(parent) != 1 {
		return false
	}
	for i, p := range parent {
		c := child[i]
		if (p.Created == nil) != (c.Created == nil) || (p.Created != nil && !p.Created.Equal(*c.Created)) {
			return false
		}
		if p.Author != c.Author || p.CreatedBy != c.CreatedBy || p.Comment != c.Comment || p.EmptyLayer != c.EmptyLayer {
			return false
		}
	}
	return true
}
