package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// savedImage is an image chosen for a save, with the tags to record.
type savedImage struct {
	img  *Image
	tags []reference.Named
}

// blob is one file under blobs/sha256 of a saved archive.
type blob struct {
	data  []byte // small blobs (configs, manifests)
	chain string // layers, streamed from the layer store
	path  string // layers of unknown tar size, spilled to learn it
	size  int64
	mtime time.Time
}

// Save writes the images refs name as one archive in the format of
// docker 25+ "docker save": blobs/sha256/<hex> holding configs, OCI
// manifests and uncompressed layer tars (each once, however many images
// share it), manifest.json, the legacy repositories file, oci-layout and
// index.json. Output is deterministic: images in the order refs first name
// them, blobs sorted, fixed modification times.
//
// As in dockerd, a name with a tag or digest saves that image with that tag
// (a digest adds no tag), a bare name saves every image of the repository
// with its tags, and an ID or ID prefix saves the image without tags.
// All refs are resolved before the first byte is written, so lookup errors
// reach the caller before any output. Layers are streamed from the layer
// store, never held in memory.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string) error {
	images, err := s.selectImages(refs)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.tmpDir(), "save-")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer os.RemoveAll(dir)

	blobs := make(map[string]*blob)
	var manifest []manifestItem
	var index []ociDescriptor
	legacy := make(map[string]map[string]string)
	epoch := time.Unix(0, 0)

	for _, si := range images {
		img := si.img
		created := epoch
		if img.Config.Created != nil {
			created = *img.Config.Created
		}
		if _, ok := blobs[img.ID]; !ok {
			blobs[img.ID] = &blob{data: img.RawConfig, size: int64(len(img.RawConfig)), mtime: created}
		}
		m := ociManifest{
			SchemaVersion: 2,
			MediaType:     mediaTypeOCIManifest,
			Config: ociDescriptor{
				MediaType: mediaTypeOCIConfig,
				Digest:    img.ID,
				Size:      int64(len(img.RawConfig)),
				Platform:  platformOf(&img.Config),
			},
			Layers: []ociDescriptor{},
		}
		item := manifestItem{Config: blobPath(img.ID)}
		for i, diffID := range img.Config.RootFS.DiffIDs {
			b, ok := blobs[diffID]
			if !ok {
				b, err = s.layerBlob(ctx, dir, img.ChainIDs[i], diffID)
				if err != nil {
					return err
				}
				b.mtime = created
				blobs[diffID] = b
			}
			m.Layers = append(m.Layers, ociDescriptor{MediaType: mediaTypeOCILayer, Digest: diffID, Size: b.size})
			item.Layers = append(item.Layers, blobPath(diffID))
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		mdigest := digestOf(mb)
		blobs[mdigest] = &blob{data: mb, size: int64(len(mb)), mtime: epoch}
		desc := ociDescriptor{MediaType: mediaTypeOCIManifest, Digest: mdigest, Size: int64(len(mb)), Platform: m.Config.Platform}
		for _, t := range si.tags {
			item.RepoTags = append(item.RepoTags, t.FamiliarString())
			d := desc
			d.Annotations = map[string]string{annotationContainerdName: t.String(), annotationRefName: t.Tag()}
			index = append(index, d)
			if diffIDs := img.Config.RootFS.DiffIDs; len(diffIDs) > 0 {
				if legacy[t.FamiliarName()] == nil {
					legacy[t.FamiliarName()] = make(map[string]string)
				}
				legacy[t.FamiliarName()][t.Tag()] = strings.TrimPrefix(diffIDs[len(diffIDs)-1], "sha256:")
			}
		}
		if len(si.tags) == 0 {
			index = append(index, desc)
		}
		manifest = append(manifest, item)
	}

	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	names := make([]string, 0, len(blobs))
	for d := range blobs {
		names = append(names, d)
	}
	slices.Sort(names)
	for _, d := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b := blobs[d]; b.chain != "" {
			if err := s.streamLayer(ctx, tw, d, b); err != nil {
				return err
			}
		} else if err := writeBlob(tw, blobPath(d), b); err != nil {
			return err
		}
	}
	var files []struct {
		name string
		data []byte
	}
	add := func(name string, v any) error {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(v); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		files = append(files, struct {
			name string
			data []byte
		}{name, buf.Bytes()})
		return nil
	}
	if index == nil {
		index = []ociDescriptor{}
	}
	if manifest == nil {
		manifest = []manifestItem{}
	}
	if err := add(indexFileName, ociIndex{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: index}); err != nil {
		return err
	}
	if err := add(manifestFileName, manifest); err != nil {
		return err
	}
	files = append(files, struct {
		name string
		data []byte
	}{ociLayoutFileName, []byte(`{"imageLayoutVersion": "1.0.0"}`)})
	if len(legacy) > 0 {
		if err := add(legacyReposFileName, legacy); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeBlob(tw, f.name, &blob{data: f.data, size: int64(len(f.data)), mtime: epoch}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func blobPath(digest string) string {
	return path.Join("blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func platformOf(c *Config) *ociPlatform {
	return &ociPlatform{Architecture: c.Architecture, OS: c.OS, OSVersion: c.OSVersion, OSFeatures: c.OSFeatures, Variant: c.Variant}
}

func writeBlob(tw *tar.Writer, name string, b *blob) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: b.size, ModTime: b.mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if b.path == "" {
		if _, err := tw.Write(b.data); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		return nil
	}
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if n != b.size {
		return fmt.Errorf("save: layer %s changed size while saving", name)
	}
	return nil
}

// layerBlob describes the layer blob of chain. The layer store records the
// size of the tar it gives back, so the blob is streamed straight from it;
// a layer without that size is first copied to a temporary file.
func (s *Store) layerBlob(ctx context.Context, dir, chain, diffID string) (*blob, error) {
	l, err := s.layers.Get(chain)
	if err != nil {
		return nil, fmt.Errorf("save layer %s: %w", diffID, err)
	}
	if l.TarSize > 0 {
		return &blob{chain: chain, size: l.TarSize}, nil
	}
	return s.spillLayer(ctx, dir, chain, diffID)
}

// streamLayer writes the layer blob b, checking that the layer store gives
// back the promised size and the diff ID. A failure midway leaves a
// truncated archive, which the caller must abort.
func (s *Store) streamLayer(ctx context.Context, tw *tar.Writer, diffID string, b *blob) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: blobPath(diffID), Mode: 0o644, Size: b.size, ModTime: b.mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(tw, h)}
	if err := s.layers.WriteTar(ctx, b.chain, cw); err != nil {
		return fmt.Errorf("save layer %s: %w", diffID, err)
	}
	if cw.n != b.size {
		return fmt.Errorf("save layer %s: layer store wrote %d bytes, want %d", diffID, cw.n, b.size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return fmt.Errorf("save layer %s: layer store returned content with digest %s", diffID, got)
	}
	return nil
}

// spillLayer copies the tar of the layer chain to a temporary file, since
// a tar header needs its size up front, checking it still has its diff ID.
func (s *Store) spillLayer(ctx context.Context, dir, chain, diffID string) (*blob, error) {
	f, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	err = s.layers.WriteTar(ctx, chain, cw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("save layer %s: %w", diffID, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return nil, fmt.Errorf("save layer %s: layer store returned content with digest %s", diffID, got)
	}
	return &blob{path: f.Name(), size: cw.n}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// selectImages resolves the names given to Save, as dockerd's save does.
func (s *Store) selectImages(refs []string) ([]savedImage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []savedImage
	pos := make(map[string]int)
	add := func(id string, tag reference.Named) error {
		img := s.images[id]
		if img == nil {
			return errdefs.NotFound(fmt.Errorf("No such image: %s", id))
		}
		i, ok := pos[id]
		if !ok {
			i = len(out)
			pos[id] = i
			out = append(out, savedImage{img: img.clone()})
		}
		if tag.IsZero() || tag.Digest() != "" {
			return nil
		}
		tag = reference.TagNameOnly(tag)
		if !slices.Contains(out[i].tags, tag) {
			out[i].tags = append(out[i].tags, tag)
		}
		return nil
	}
	byPrefix := func(name, prefix string) error {
		full, err := s.ids.Get(prefix)
		if err != nil {
			return errdefs.NotFound(fmt.Errorf("No such image: %s", name))
		}
		return add("sha256:"+full, reference.Named{})
	}
	for _, name := range refs {
		if reference.IsFullID(name) {
			if err := add("sha256:"+name, reference.Named{}); err != nil {
				return nil, err
			}
			continue
		}
		if d, err := reference.ParseDigest(name); err == nil {
			if err := add(string(d), reference.Named{}); err != nil {
				return nil, err
			}
			continue
		}
		n, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, err
		}
		if n.FamiliarName() == digestDirName {
			if err := byPrefix(name, strings.TrimPrefix(name, "sha256:")); err != nil {
				return nil, err
			}
			continue
		}
		if reference.IsNameOnly(n) {
			assocs := s.refsByName(n.FamiliarName())
			for _, a := range assocs {
				if err := add(s.repos[a.FamiliarName()][a.FamiliarString()], a); err != nil {
					return nil, err
				}
			}
			if len(assocs) == 0 {
				if !reference.IsIDPrefix(name) {
					return nil, errdefs.NotFound(fmt.Errorf("No such image: %s", name))
				}
				if err := byPrefix(name, name); err != nil {
					return nil, err
				}
			}
			continue
		}
		ref := reference.DockerRef(n)
		id, ok := s.lookupRef(ref)
		if !ok {
			return nil, errdefs.NotFound(fmt.Errorf("No such image: %s", n.FamiliarString()))
		}
		if err := add(id, n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// refsByName returns the references of one repository, sorted by their
// full string form.
func (s *Store) refsByName(familiarName string) []reference.Named {
	var out []reference.Named
	for str := range s.repos[familiarName] {
		n, err := reference.ParseNormalizedNamed(str)
		if err != nil {
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b reference.Named) int { return strings.Compare(a.String(), b.String()) })
	return out
}
