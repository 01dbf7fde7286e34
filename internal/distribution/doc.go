// Package distribution is skiffd's client for the Registry HTTP API v2 (the
// CNCF distribution protocol spoken by Docker Hub, GHCR, Quay, ECR-style
// registries and private registries): ping, authentication (bearer tokens and
// basic auth), manifests with platform selection, streaming verified blobs,
// and push. It is a leaf package: it knows nothing about image or layer
// stores, progress JSON or the Engine API; the engine drives it (issue 11).
//
// A pull, in outline:
//
//	c := distribution.NewClient(distribution.Config{UserAgent: "skiffd/1.0"})
//	auth, err := distribution.DecodeAuthConfig(r.Header.Get("X-Registry-Auth"))
//	if err != nil {
//		return err // errdefs.InvalidParameter, dockerd's text
//	}
//	ref, _ := reference.ParseNormalizedNamed("127.0.0.1:5000/lib/app:1.0")
//	repo, err := c.Repository(ctx, ref, auth, distribution.ActionPull)
//	if err != nil {
//		return err
//	}
//	m, err := repo.GetManifest(ctx, ref) // by ref's digest, else its tag
//	if err != nil {
//		return err // "manifest for ... not found: manifest unknown: manifest unknown"
//	}
//	if m.IsIndex() {
//		d, err := distribution.SelectPlatform(m.Index.Manifests, distribution.Platform{OS: "linux", Architecture: "arm64"})
//		if err != nil {
//			return err // "no matching manifest for linux/arm64/v8 in the manifest list entries"
//		}
//		m, err = repo.GetManifestDigest(ctx, d.Digest)
//	}
//	for _, l := range m.Image.Layers {
//		rc, err := repo.OpenBlob(ctx, l) // resumes with Range on a dropped connection
//		...
//		// Unpack from rc as bytes arrive; a read error (including a digest or
//		// size mismatch, reported in place of io.EOF) means: register nothing.
//		rc.Close()
//	}
//
// A push: BlobExists, then MountBlob (cross-repository) or PushBlob /
// PushBlobChunked, then PutManifest, which returns the manifest digest.
//
// Authentication follows the registry's answer to GET /v2/: a Bearer
// challenge makes the client fetch tokens from the realm (anonymous, with
// basic credentials, or with the OAuth2 form when an identity token is
// given), cached per scope until they expire; a Basic challenge sends the
// credentials. Credentials are only ever sent to the registry host itself:
// a redirect to another host (blob storage) loses the Authorization header.
//
// Endpoints are chosen as dockerd chooses them: docker.io goes to
// registry-1.docker.io after any registry mirrors; insecure registries
// (the configured list and CIDRs, loopback by default) are tried over HTTPS
// without verification, then plain HTTP; secure registries get the CA and
// client certificates of /etc/docker/certs.d/<host:port>/.
//
// Errors carry errdefs kinds and the texts dockerd shows.
package distribution
