package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"skiffd/internal/api/types"
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
	repo, err := e.reg.client().Repository(ctx, refs[0], auth, distribution.ActionPush, distribution.ActionPull)
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
	// Compressed while it uploads: the digest is only known at the end,
	// so the upload is one streamed PATCH closed by the digest, and
	// nothing touches the disk.
	l, err := e.layers.Get(chain)
	if err != nil {
		return distribution.Descriptor{}, err
	}
	pr, pw := io.Pipe()
	compressed := make(chan struct{})
	go func() {
		defer close(compressed)
		zw := gzip.NewWriter(pw)
		counted := &progressWriter{w: zw, total: l.TarSize, report: func(n, total int64) { out.bytes(id, "Pushing", n, total) }}
		err := e.layers.WriteTar(ctx, chain, counted)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	desc, err := repo.PushBlobStream(ctx, distribution.MediaTypeDockerLayer, pr)
	pr.CloseWithError(errPushDone)
	<-compressed // no progress may follow the response
	if err != nil {
		return distribution.Descriptor{}, err
	}
	out.step(id, "Pushed")
	e.reg.sources.add(diffID, desc, target.Name())
	return desc, nil
}

// errPushDone stops a layer's compressor once its upload has ended.
var errPushDone = errors.New("layer upload ended")

// progressWriter reports the bytes written through it, as progressReader
// does for reads.
type progressWriter struct {
	w        io.Writer
	n, total int64
	last     time.Time
	report   func(n, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if n > 0 && (p.last.IsZero() || time.Since(p.last) >= progressInterval || p.n == p.total) {
		p.last = time.Now()
		p.report(p.n, p.total)
	}
	return n, err
}
