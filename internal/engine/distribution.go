package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/distribution"
	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// DistributionInspect answers GET /distribution/{name}/json (docker-py's
// get_registry_data, compose's digest resolution): the descriptor of the
// manifest or index name stands for in its registry, a tag ("latest" when
// there is none) resolved there, and the platforms it is for. As dockerd:
// an index's entries give them, a Docker image manifest its image
// config's, an OCI image manifest none; credentials come from
// X-Registry-Auth and unreadable ones are ignored, as for a search.
func (e *Engine) DistributionInspect(ctx context.Context, name, authHeader string) (*types.DistributionInspect, error) {
	if reference.IsFullID(strings.TrimPrefix(name, "sha256:")) {
		return nil, errors.New("no manifest found for full image ID")
	}
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	auth, _ := distribution.DecodeAuthConfig(authHeader)
	repo, err := e.reg.client().Repository(ctx, ref, auth, distribution.ActionPull)
	if err != nil {
		return nil, err
	}
	m, err := repo.GetManifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &types.DistributionInspect{Descriptor: types.DistributionDescriptor{MediaType: m.MediaType, Digest: string(m.Digest), Size: int64(len(m.Raw))}}
	switch {
	case m.IsIndex():
		for _, d := range m.Index.Manifests {
			var p types.Platform
			if d.Platform != nil {
				p = types.Platform(*d.Platform)
			}
			out.Platforms = append(out.Platforms, p)
		}
	case m.MediaType == distribution.MediaTypeDockerManifest:
		// A config that cannot be read leaves the platforms out, as in
		// dockerd: the descriptor is the answer.
		if raw, err := readConfigBlob(ctx, repo, m.Image.Config); err == nil {
			var p types.Platform
			if json.Unmarshal(raw, &p) == nil && (p.OS != "" || p.Architecture != "") {
				out.Platforms = append(out.Platforms, p)
			}
		}
	}
	return out, nil
}
