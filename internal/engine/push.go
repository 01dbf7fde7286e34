package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/distribution"
	"skiffd/internal/errdefs"
	"skiffd/internal/image"
	"skiffd/internal/reference"
)

// PushImage answers POST /images/{name}/push (issue 11): for the tag given,
// or every tag of the repository when none is, it uploads the layers the
// registry lacks (gzip-compressed on the fly into a temporary file, at most
// max-concurrent-uploads at once), the config, then a Docker v2 schema 2
// manifest put by tag. The digest it reports is the one a later pull
// reports, and it is recorded as a RepoDigest of the image, as dockerd does.
func (e *Engine) PushImage(ctx context.Context, opts types.ImagePushOptions, progress func(types.ProgressMessage)) error {
	out := progressFunc(progress)
	auth, err := distribution.DecodeAuthConfig(opts.RegistryAuth)
	if err != nil {
		return err
	}
	named, err := reference.ParseNormalizedNamed(opts.Name)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	var refs []reference.Named
	switch {
	case opts.Tag != "":
		r, err := reference.WithTag(reference.TrimNamed(named), opts.Tag)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		refs = append(refs, r)
	case named.Tag() != "":
		refs = append(refs, named)
	default:
		refs = e.repositoryTags(named)
		if len(refs) == 0 {
			return errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", named.FamiliarName()))
		}
	}
	imgs := make([]*image.Image, len(refs))
	for i, r := range refs {
		img, err := e.images.Get(r.String())
		if err != nil {
			return errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", r.FamiliarName()))
		}
		imgs[i] = img
	}
	repo, err := e.reg.client.Repository(ctx, refs[0], auth, distribution.ActionPush, distribution.ActionPull)
	if err != nil {
		return err
	}
	out(types.ProgressMessage{Status: "The push refers to repository [" + refs[0].Name() + "]"})
	for i, r := range refs {
		if err := e.pushTag(ctx, repo, r, imgs[i], out); err != nil {
			return err
		}
		name := r.FamiliarString()
		e.events.Log("push", types.ImageEventType, types.EventActor{ID: name, Attributes: map[string]string{"name": name}})
	}
	return nil
}

// repositoryTags lists the tagged references of the repository of named.
func (e *Engine) repositoryTags(named reference.Named) []reference.Named {
	var out []reference.Named
	for _, img := range e.images.List() {
		for _, r := range e.images.References(img.ID) {
			if r.Name() == named.Name() && r.Tag() != "" {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b reference.Named) int {
		if a.String() < b.String() {
			return -1
		}
		return 1
	})
	return out
}

// schema2Manifest is a Docker v2 schema 2 manifest as dockerd writes it.
type schema2Manifest struct {
	SchemaVersion int                       `json:"schemaVersion"`
	MediaType     string                    `json:"mediaType"`
	Config        distribution.Descriptor   `json:"config"`
	Layers        []distribution.Descriptor `json:"layers"`
}

func (e *Engine) pushTag(ctx context.Context, repo *distribution.Repository, ref reference.Named, img *image.Image, out progressFunc) error {
	var diffIDs []string
	if img.Config.RootFS != nil {
		diffIDs = img.Config.RootFS.DiffIDs
	}
	chains := img.ChainIDs
	if len(chains) != len(diffIDs) {
		return errdefs.System(fmt.Errorf("image %s: %d layers for %d diff IDs", img.ID, len(chains), len(diffIDs)))
	}
	release := e.images.HoldChains(chains)
	defer release()

	// dockerd lists the layers top first.
	for i := len(diffIDs) - 1; i >= 0; i-- {
		out.step(shortID(diffIDs[i]), "Preparing")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	descs := make([]distribution.Descriptor, len(diffIDs))
	errs := make([]error, len(diffIDs))
	done := make(chan int, len(diffIDs))
	for i := len(diffIDs) - 1; i >= 0; i-- {
		go func() {
			descs[i], errs[i] = e.pushLayer(ctx, repo, chains[i], diffIDs[i], out)
			if errs[i] != nil {
				cancel()
			}
			done <- i
		}()
	}
	for range diffIDs {
		<-done
	}
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

	cfgDesc := distribution.Descriptor{MediaType: distribution.MediaTypeDockerConfig, Digest: reference.DigestOf(img.RawConfig), Size: int64(len(img.RawConfig))}
	exists, err := repo.BlobExists(ctx, cfgDesc.Digest)
	if err != nil {
		return err
	}
	if !exists {
		if err := repo.PushBlob(ctx, cfgDesc, bytes.NewReader(img.RawConfig)); err != nil {
			return err
		}
	}
	raw, err := json.MarshalIndent(schema2Manifest{SchemaVersion: 2, MediaType: distribution.MediaTypeDockerManifest, Config: cfgDesc, Layers: descs}, "", "   ")
	if err != nil {
		return err
	}
	d, err := repo.PutManifest(ctx, ref.Tag(), distribution.MediaTypeDockerManifest, raw)
	if err != nil {
		return err
	}
	if canonical, err := reference.WithDigest(reference.TrimNamed(ref), d); err == nil {
		// Best effort, as in dockerd: the push succeeded either way.
		if err := e.images.Tag(img.ID, canonical); err != nil {
			e.logger.Warn("recording the pushed digest", "ref", canonical.String(), "error", err)
		}
	}
	out(types.ProgressMessage{Status: fmt.Sprintf("%s: digest: %s size: %d", ref.Tag(), d, len(raw))})
	out(types.ProgressMessage{ProgressDetail: &types.ProgressDetail{}, Aux: types.PushResult{Tag: ref.Tag(), Digest: string(d), Size: len(raw)}})
	return nil
}

// pushLayer compresses one layer into a temporary file (hashing it on the
// way), then uploads it unless the registry has it already.
func (e *Engine) pushLayer(ctx context.Context, repo *distribution.Repository, chain, diffID string, out progressFunc) (distribution.Descriptor, error) {
	id := shortID(diffID)
	if err := acquire(ctx, e.reg.uploads, func() { out.step(id, "Waiting") }); err != nil {
		return distribution.Descriptor{}, err
	}
	defer func() { <-e.reg.uploads }()
	target := repo.Named()
	for _, src := range e.reg.sources.sources(diffID) {
		from, err := reference.ParseNormalizedNamed(src.Repository)
		if err != nil || from.Domain() != target.Domain() {
			continue
		}
		desc := distribution.Descriptor{MediaType: src.MediaType, Digest: src.Digest, Size: src.Size}
		if from.Name() == target.Name() {
			if ok, err := repo.BlobExists(ctx, src.Digest); err == nil && ok {
				out.step(id, "Layer already exists")
				return desc, nil
			}
			continue
		}
		if ok, err := repo.MountBlob(ctx, src.Digest, from.Path()); err == nil && ok {
			out.step(id, "Mounted from "+from.Path())
			e.reg.sources.add(diffID, desc, target.Name())
			return desc, nil
		}
	}
	f, err := os.CreateTemp(e.opts.DataRoot, atomicfile.TempPrefix+"push-")
	if err != nil {
		return distribution.Descriptor{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	cw := &countingHashWriter{w: f, h: h}
	zw := gzip.NewWriter(cw)
	if err := e.layers.WriteTar(ctx, chain, zw); err != nil {
		return distribution.Descriptor{}, fmt.Errorf("compress layer %s: %w", diffID, err)
	}
	if err := zw.Close(); err != nil {
		return distribution.Descriptor{}, err
	}
	desc := distribution.Descriptor{MediaType: distribution.MediaTypeDockerLayer,
		Digest: reference.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), Size: cw.n}
	exists, err := repo.BlobExists(ctx, desc.Digest)
	if err != nil {
		return desc, err
	}
	if exists {
		out.step(id, "Layer already exists")
		e.reg.sources.add(diffID, desc, target.Name())
		return desc, nil
	}
	rs := &progressReadSeeker{f: f, total: desc.Size, report: func(n, total int64) { out.bytes(id, "Pushing", n, total) }}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return desc, err
	}
	if err := repo.PushBlob(ctx, desc, rs); err != nil {
		return desc, err
	}
	out.step(id, "Pushed")
	e.reg.sources.add(diffID, desc, target.Name())
	return desc, nil
}

type countingHashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingHashWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// progressReadSeeker reports upload progress and stays seekable, so that
// the client can send the body again on a redirect or retry.
type progressReadSeeker struct {
	f      *os.File
	pr     *progressReader
	total  int64
	report func(n, total int64)
}

func (p *progressReadSeeker) Read(b []byte) (int, error) {
	if p.pr == nil {
		p.pr = &progressReader{r: p.f, total: p.total, report: p.report}
	}
	return p.pr.Read(b)
}

func (p *progressReadSeeker) Seek(off int64, whence int) (int64, error) {
	n, err := p.f.Seek(off, whence)
	if err == nil && p.pr != nil {
		p.pr.n = n
	}
	return n, err
}
