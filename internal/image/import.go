package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// ImportOptions are the parameters of "docker import" (POST /images/create
// with fromSrc).
type ImportOptions struct {
	// Ref, when not nil or zero, is tagged on the new image.
	Ref *reference.Named
	// Message is the image's comment; empty means "Imported from <Source>".
	Message string
	// Source is what the client imported from: "-" (the request body,
	// also the default) or the URL it gave.
	Source string
	// Changes are Dockerfile instructions applied to the image's config
	// (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
	// STOPSIGNAL, USER, VOLUME, WORKDIR).
	Changes []string
	// Platform is "os[/arch[/variant]]"; empty means linux on the host's
	// architecture.
	Platform string
	// DockerVersion is recorded in the config as docker_version.
	DockerVersion string
}

// Import turns the rootfs tarball r (plain, gzip or bzip2) into a one-layer
// image, as dockerd's import does: a config for the platform with the
// changes applied, created now, with one history entry carrying the
// message. The new image is tagged with opts.Ref when given. Bad changes
// or platform are errdefs.InvalidParameter and are found before r is read.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	osName, arch, variant, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	runConfig, err := ApplyChanges(&ContainerConfig{}, opts.Changes)
	if err != nil {
		return nil, err
	}
	source := opts.Source
	if source == "" {
		source = "-"
	}
	msg := opts.Message
	if msg == "" {
		msg = "Imported from " + source
	}

	l, err := s.layers.Register(ctx, r, "", "")
	if err != nil {
		return nil, err
	}
	created := time.Now().UTC()
	raw, err := json.Marshal(&Config{
		Comment:       msg,
		Created:       &created,
		DockerVersion: opts.DockerVersion,
		Config:        runConfig,
		Architecture:  arch,
		Variant:       variant,
		OS:            osName,
		RootFS:        &RootFS{Type: "layers", DiffIDs: []string{l.DiffID}},
		History:       []History{{Created: &created, Comment: msg}},
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	img, err := s.Create(ctx, raw, "")
	if err != nil {
		s.removeIfUnused(l.ChainID)
		return nil, err
	}
	if opts.Ref != nil && !opts.Ref.IsZero() {
		if err := s.Tag(img.ID, *opts.Ref); err != nil {
			return nil, err
		}
		return s.Get(img.ID)
	}
	return img, nil
}

// removeIfUnused drops a layer that no image or load in progress uses, after
// a failure left it registered for nothing.
func (s *Store) removeIfUnused(chain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[chain] > 0 {
		return
	}
	for _, img := range s.images {
		for _, c := range img.ChainIDs {
			if c == chain {
				return
			}
		}
	}
	// Best effort: the layer is complete and content-addressed, so
	// leaving it behind wastes space but breaks nothing.
	_ = s.layers.Remove(chain)
}

// parsePlatform splits "os/arch/variant", defaulting to linux on the host
// architecture. Only linux images can run on skiffd.
func parsePlatform(p string) (osName, arch, variant string, err error) {
	osName, arch = "linux", runtime.GOARCH
	if p == "" {
		return osName, arch, "", nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	if len(parts) > 3 || parts[0] == "" {
		return "", "", "", errdefs.InvalidParameter(fmt.Errorf("%q: unknown operating system or architecture: invalid argument", p))
	}
	if parts[0] != "linux" {
		return "", "", "", errdefs.InvalidParameter(errors.New("operating system is not supported"))
	}
	if len(parts) > 1 && parts[1] != "" {
		arch = parts[1]
	}
	if len(parts) > 2 {
		variant = parts[2]
	}
	return osName, arch, variant, nil
}
