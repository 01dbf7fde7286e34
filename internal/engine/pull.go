package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/archive"
	"skiffd/internal/distribution"
	"skiffd/internal/errdefs"
	"skiffd/internal/image"
	"skiffd/internal/layer"
	"skiffd/internal/reference"
)

// maxConfigSize bounds an image config read from a registry.
const maxConfigSize = 16 << 20

// PullImage answers POST /images/create?fromImage= (issue 11): it resolves
// the manifest (selecting the platform from a manifest list or OCI index),
// then downloads the missing layers, at most max-concurrent-downloads at
// once, each verified and unpacked as it arrives, and stores the image
// config and its references only once every layer is registered: a crash
// at any moment leaves the image whole or absent (the layers of an absent
// one are removed at the next start). Errors before the first progress
// message (an unknown manifest, refused credentials) are returned as they
// are, so that they become the HTTP status; later ones the caller sends in
// band.
func (e *Engine) PullImage(ctx context.Context, opts types.ImagePullOptions, progress func(types.ProgressMessage)) error {
	out := progressFunc(progress)
	auth, err := distribution.DecodeAuthConfig(opts.RegistryAuth)
	if err != nil {
		return err
	}
	ref, err := pullReference(opts.FromImage, opts.Tag)
	if err != nil {
		return err
	}
	want := distribution.DefaultPlatform()
	if opts.Platform != "" {
		if want, err = parsePlatform(opts.Platform); err != nil {
			return err
		}
	}
	repo, err := e.reg.client().Repository(ctx, ref, auth, distribution.ActionPull)
	if err != nil {
		return err
	}
	top, err := repo.GetManifest(ctx, ref)
	if err != nil {
		return err
	}
	m := top
	if m.IsIndex() {
		d, err := distribution.SelectPlatform(m.Index.Manifests, want)
		if err != nil {
			return err
		}
		if m, err = repo.GetManifestDigest(ctx, d.Digest); err != nil {
			return err
		}
		if m.IsIndex() {
			return errdefs.InvalidParameter(fmt.Errorf("manifest %s is an index inside an index", d.Digest))
		}
	}
	tagOrDigest := ref.Tag()
	if tagOrDigest == "" {
		tagOrDigest = ref.Digest()
	}
	out(types.ProgressMessage{Status: "Pulling from " + ref.Path(), ID: tagOrDigest})

	rawConfig, err := readConfigBlob(ctx, repo, m.Image.Config)
	if err != nil {
		return err
	}
	cfg, err := image.ParseConfig(rawConfig)
	if err != nil {
		return err
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return errdefs.InvalidParameter(fmt.Errorf("image operating system %q cannot be used on this platform", cfg.OS))
	}
	var diffIDs []string
	if cfg.RootFS != nil {
		diffIDs = cfg.RootFS.DiffIDs
	}
	if len(diffIDs) != len(m.Image.Layers) {
		return errdefs.InvalidParameter(fmt.Errorf("invalid manifest: %d layers but %d diff IDs in the image config", len(m.Image.Layers), len(diffIDs)))
	}

	id := string(reference.DigestOf(rawConfig))
	if _, err := e.images.Get(id); err != nil {
		if err := e.pullLayers(ctx, repo, m.Image.Layers, diffIDs, out); err != nil {
			return err
		}
	}
	img, err := e.images.Create(ctx, rawConfig, "")
	if err != nil {
		return err
	}

	// References last: the digest one (of what was asked for, the index
	// when there was one), then the tag. Whether the tag moved decides
	// dockerd's closing status.
	canonical, err := reference.WithDigest(reference.TrimNamed(ref), top.Digest)
	if err != nil {
		return err
	}
	upToDate := false
	if old, err := e.images.Get(ref.String()); err == nil && old.ID == img.ID {
		upToDate = true
	}
	if err := e.images.Tag(img.ID, canonical); err != nil && errdefs.KindOf(err) != errdefs.ErrConflict {
		return err
	}
	if ref.Tag() != "" && !upToDate {
		if err := e.images.Tag(img.ID, ref); err != nil {
			return err
		}
	}
	out(types.ProgressMessage{Status: "Digest: " + string(top.Digest)})
	name := ref.FamiliarString()
	if upToDate {
		out(types.ProgressMessage{Status: "Status: Image is up to date for " + name})
	} else {
		out(types.ProgressMessage{Status: "Status: Downloaded newer image for " + name})
	}
	e.events.Log("pull", types.ImageEventType, types.EventActor{ID: name, Attributes: map[string]string{"name": name}})
	return nil
}

// pullReference reads fromImage and tag as dockerd does: the tag parameter
// is a tag or a digest; a bare name means ":latest".
func pullReference(fromImage, tag string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(fromImage)
	if err != nil {
		return reference.Named{}, errdefs.InvalidParameter(err)
	}
	if tag != "" {
		if d, derr := reference.ParseDigest(tag); derr == nil {
			ref, err = reference.WithDigest(reference.TrimNamed(ref), d)
		} else {
			ref, err = reference.WithTag(reference.TrimNamed(ref), tag)
		}
		if err != nil {
			return reference.Named{}, errdefs.InvalidParameter(err)
		}
	}
	return reference.TagNameOnly(ref), nil
}

// parsePlatform reads "os[/arch[/variant]]".
func parsePlatform(s string) (distribution.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return distribution.Platform{}, errdefs.InvalidParameter(fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s))
	}
	p := distribution.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	} else {
		p.Architecture = distribution.DefaultPlatform().Architecture
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return distribution.NormalizePlatform(p), nil
}

// readConfigBlob fetches and verifies the image config.
func readConfigBlob(ctx context.Context, repo *distribution.Repository, d distribution.Descriptor) ([]byte, error) {
	if d.Size > maxConfigSize {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image config %s is too large (%d bytes)", d.Digest, d.Size))
	}
	rc, err := repo.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
}

// pullLayers registers every layer of an image that the layer store lacks.
// Each missing layer is downloaded, verified and unpacked in one pass
// (staged: an unpacked layer does not depend on its parent), at most
// max-concurrent-downloads at once, then committed on top of its parent in
// order. The chains are held against deletion until the image exists; on
// failure the layers this pull registered are removed again.
func (e *Engine) pullLayers(ctx context.Context, repo *distribution.Repository, descs []distribution.Descriptor, diffIDs []string, out progressFunc) (err error) {
	chains := image.ChainIDs(diffIDs)
	release := e.images.HoldChains(chains)
	defer release()
	defer func() {
		if err != nil {
			release()
			release = func() {}
			e.images.RemoveIfUnused(chains)
		}
	}()

	missing := make([]bool, len(descs))
	for i, d := range descs {
		if _, gerr := e.layers.Get(chains[i]); gerr == nil {
			out.step(shortID(string(d.Digest)), "Already exists")
			continue
		}
		missing[i] = true
	}
	for i, d := range descs {
		if missing[i] {
			out.step(shortID(string(d.Digest)), "Pulling fs layer")
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make([]chan struct{}, len(descs))
	errs := make([]error, len(descs))
	for i := range descs {
		done[i] = make(chan struct{})
		if !missing[i] {
			close(done[i])
		}
	}
	for i := range descs {
		if !missing[i] {
			continue
		}
		parent, waitParent := "", func() error { return nil }
		if i > 0 {
			parent = chains[i-1]
			waitParent = func() error {
				select {
				case <-done[i-1]:
					if errs[i-1] != nil {
						return errs[i-1]
					}
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		go func() {
			defer close(done[i])
			id := shortID(string(descs[i].Digest))
			_, joined, err := e.reg.share(ctx, chains[i], func() (layer.Layer, error) {
				return e.fetchLayer(ctx, repo, descs[i], diffIDs[i], parent, waitParent, out)
			})
			if err == nil && joined {
				// Another pull downloaded it; this one only waited.
				out.step(id, "Download complete")
				out.step(id, "Pull complete")
			}
			if err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	for i := range descs {
		<-done[i]
	}
	// The first failure is the cause; later ones are mostly cancellations.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// fetchLayer downloads one layer blob and unpacks it as it arrives, then
// commits it on top of parent once waitParent says the parent is
// registered. The download slot is held while the blob streams, not while
// waiting for the parent, so no order of completion can deadlock.
func (e *Engine) fetchLayer(ctx context.Context, repo *distribution.Repository, d distribution.Descriptor, diffID, parent string, waitParent func() error, out progressFunc) (layer.Layer, error) {
	id := shortID(string(d.Digest))
	// A flight for this chain may have ended between this pull's check and
	// its joining: then the layer is here, and is not downloaded again.
	if l, err := e.layers.Get(layer.ChainID(parent, diffID)); err == nil {
		out.step(id, "Already exists")
		return l, nil
	}
	if err := acquire(ctx, e.reg.downloads, func() { out.step(id, "Waiting") }); err != nil {
		return layer.Layer{}, err
	}
	staged, err := e.downloadLayer(ctx, repo, d, out)
	<-e.reg.downloads
	if err != nil {
		return layer.Layer{}, err
	}
	defer staged.Discard()
	out.step(id, "Verifying Checksum")
	out.step(id, "Download complete")
	if staged.DiffID() != diffID {
		return layer.Layer{}, errdefs.InvalidParameter(fmt.Errorf("filesystem layer verification failed for digest %s: diff ID %s, the image config says %s", d.Digest, staged.DiffID(), diffID))
	}
	if err := waitParent(); err != nil {
		return layer.Layer{}, err
	}
	out.bytes(id, "Extracting", d.Size, d.Size)
	l, err := staged.Commit(parent)
	if err != nil {
		return layer.Layer{}, err
	}
	out.step(id, "Pull complete")
	e.reg.sources.add(diffID, d, repo.Named().Name())
	return l, nil
}

// downloadLayer streams the blob through the verifying reader, the
// decompressor and the layer store's unpacker; nothing is written but the
// unpacked files. A digest or size mismatch surfaces as the blob's read
// error at its end, and the staged copy is then discarded.
func (e *Engine) downloadLayer(ctx context.Context, repo *distribution.Repository, d distribution.Descriptor, out progressFunc) (*layer.Staged, error) {
	id := shortID(string(d.Digest))
	rc, err := repo.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	pr := &progressReader{r: rc, total: d.Size, report: func(n, total int64) { out.bytes(id, "Downloading", n, total) }}
	tarStream, closeDecomp, err := decompress(pr)
	if err != nil {
		return nil, err
	}
	defer closeDecomp()
	staged, err := e.layers.Stage(ctx, tarStream)
	if err != nil {
		// Corrupt bytes usually break the decompressor or the tar reader
		// before the blob's end, where the digest is checked. dockerd,
		// which verifies before unpacking, reports the digest; so does
		// skiffd when the rest of the blob proves it wrong.
		if ctx.Err() == nil {
			if _, verr := io.Copy(io.Discard, pr); verr != nil && errdefs.KindOf(verr) == errdefs.ErrInvalidParameter {
				return nil, verr
			}
		}
		return nil, err
	}
	// The decompressor may stop at the end of its data before the blob
	// reader has seen EOF, where the digest is checked: read the rest.
	if _, err := io.Copy(io.Discard, pr); err != nil {
		staged.Discard()
		return nil, err
	}
	if pr.n != d.Size {
		staged.Discard()
		return nil, errdefs.InvalidParameter(fmt.Errorf("layer %s: read %d bytes, the manifest says %d", d.Digest, pr.n, d.Size))
	}
	return staged, nil
}

// decompress returns the uncompressed tar stream of a layer blob and its
// closer. The content's magic decides, as dockerd's DecompressStream does,
// whatever the media type says: gzip, zstd, bzip2 or a plain tar.
func decompress(r io.Reader) (io.Reader, func() error, error) {
	rc, err := archive.DecompressStream(r)
	if err != nil {
		return nil, nil, err
	}
	return rc, rc.Close, nil
}
