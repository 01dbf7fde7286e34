package distribution

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// testImage is an image made in the test: blobs and a manifest.
type testImage struct {
	config   []byte
	layers   [][]byte
	manifest []byte
	desc     ImageManifest
}

func newTestImage(t *testing.T, arch string, layerSizes ...int) testImage {
	t.Helper()
	var img testImage
	img.config, _ = json.Marshal(map[string]any{"architecture": arch, "os": "linux", "rootfs": map[string]any{"type": "layers"}})
	img.desc = ImageManifest{SchemaVersion: 2, MediaType: MediaTypeDockerManifest,
		Config: Descriptor{MediaType: MediaTypeDockerConfig, Digest: reference.DigestOf(img.config), Size: int64(len(img.config))}}
	for _, n := range layerSizes {
		b := make([]byte, n)
		rand.Read(b)
		img.layers = append(img.layers, b)
		img.desc.Layers = append(img.desc.Layers, Descriptor{MediaType: MediaTypeDockerLayer, Digest: reference.DigestOf(b), Size: int64(n)})
	}
	img.manifest, _ = json.Marshal(img.desc)
	return img
}

func (img testImage) blobs() map[reference.Digest][]byte {
	m := map[reference.Digest][]byte{img.desc.Config.Digest: img.config}
	for i, l := range img.desc.Layers {
		m[l.Digest] = img.layers[i]
	}
	return m
}

func mustRef(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pushImage pushes img's blobs (the config monolithic, layers chunked in
// 100 KiB pieces) and its manifest under tag; it returns the digest.
func pushImage(ctx context.Context, t *testing.T, repo *Repository, img testImage, tag string) reference.Digest {
	t.Helper()
	if err := repo.PushBlob(ctx, img.desc.Config, bytes.NewReader(img.config)); err != nil {
		t.Fatalf("PushBlob(config): %v", err)
	}
	for i, l := range img.desc.Layers {
		// A plain io.Reader (not a ReadSeeker) for the chunked path.
		if err := repo.PushBlobChunked(ctx, l, io.MultiReader(bytes.NewReader(img.layers[i])), 100<<10); err != nil {
			t.Fatalf("PushBlobChunked(layer %d): %v", i, err)
		}
	}
	d, err := repo.PutManifest(ctx, tag, MediaTypeDockerManifest, img.manifest)
	if err != nil {
		t.Fatalf("PutManifest(%s): %v", tag, err)
	}
	return d
}

func readBlob(ctx context.Context, t *testing.T, repo *Repository, desc Descriptor) []byte {
	t.Helper()
	rc, err := repo.OpenBlob(ctx, desc)
	if err != nil {
		t.Fatalf("OpenBlob(%s): %v", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read blob %s: %v", desc.Digest, err)
	}
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestRegistryPushPullRoundTrip pushes an image to the real registry over
// plain HTTP (loopback is insecure by default: HTTPS fails, HTTP follows),
// pulls it back by tag and by digest with identical digests and bytes, and
// mounts its blobs into a second repository.
func TestRegistryPushPullRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	addr := startRegistry(t, registryOpts{})
	c := NewClient(Config{UserAgent: "skiffd-test"})
	img := newTestImage(t, "amd64", 300<<10, 1234)

	ref := mustRef(t, addr+"/lib/app:1.0")
	push, err := c.Repository(ctx, ref, AuthConfig{}, ActionPush, ActionPull)
	if err != nil {
		t.Fatalf("Repository: %v", err)
	}
	if got := push.Endpoint().URL.Scheme; got != "http" {
		t.Errorf("endpoint scheme = %q, want http (loopback insecure, no TLS there)", got)
	}
	if ok, err := push.BlobExists(ctx, img.desc.Layers[0].Digest); ok || err != nil {
		t.Fatalf("BlobExists before push = %v, %v; want false, nil", ok, err)
	}
	d := pushImage(ctx, t, push, img, "1.0")
	if want := reference.DigestOf(img.manifest); d != want {
		t.Fatalf("PutManifest digest = %s, want %s", d, want)
	}
	for _, l := range img.desc.Layers {
		if ok, err := push.BlobExists(ctx, l.Digest); !ok || err != nil {
			t.Fatalf("BlobExists(%s) after push = %v, %v", l.Digest, ok, err)
		}
	}

	pull, err := c.Repository(ctx, ref, AuthConfig{}, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []reference.Named{ref, mustRef(t, addr+"/lib/app@"+string(d))} {
		m, err := pull.GetManifest(ctx, r)
		if err != nil {
			t.Fatalf("GetManifest(%s): %v", r, err)
		}
		if m.Digest != d || !bytes.Equal(m.Raw, img.manifest) || m.MediaType != MediaTypeDockerManifest || m.Image == nil {
			t.Fatalf("GetManifest(%s) = %s %s, want %s %s", r, m.Digest, m.MediaType, d, MediaTypeDockerManifest)
		}
		for dg, want := range img.blobs() {
			var desc Descriptor
			for _, l := range append([]Descriptor{m.Image.Config}, m.Image.Layers...) {
				if l.Digest == dg {
					desc = l
				}
			}
			if got := readBlob(ctx, t, pull, desc); !bytes.Equal(got, want) {
				t.Fatalf("blob %s: got %d bytes, want %d", dg, len(got), len(want))
			}
		}
	}

	// Cross-repository mount into team/app, then the manifest by digest.
	other, err := c.Repository(ctx, mustRef(t, addr+"/team/app"), AuthConfig{}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	for dg := range img.blobs() {
		mounted, err := other.MountBlob(ctx, dg, "lib/app")
		if err != nil || !mounted {
			t.Fatalf("MountBlob(%s) = %v, %v; want true", dg, mounted, err)
		}
	}
	if d2, err := other.PutManifest(ctx, string(d), MediaTypeDockerManifest, img.manifest); err != nil || d2 != d {
		t.Fatalf("PutManifest by digest = %s, %v; want %s", d2, err, d)
	}

	// A missing tag reads as dockerd's pull error.
	_, err = pull.GetManifest(ctx, mustRef(t, addr+"/lib/app:nope"))
	want := "manifest for " + addr + "/lib/app:nope not found: manifest unknown: manifest unknown"
	if err == nil || err.Error() != want || errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Fatalf("GetManifest(missing) = %v, want %q (not found)", err, want)
	}
}

// TestRegistryIndexPlatformSelection pushes two platform images and an OCI
// index naming both, then selects each platform from the pulled index.
func TestRegistryIndexPlatformSelection(t *testing.T) {
	ctx := testCtx(t)
	addr := startRegistry(t, registryOpts{})
	c := NewClient(Config{})
	ref := mustRef(t, addr+"/multi/app:1")
	repo, err := c.Repository(ctx, ref, AuthConfig{}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	amd := newTestImage(t, "amd64", 1000)
	arm := newTestImage(t, "arm64", 2000)
	amdD := pushImage(ctx, t, repo, amd, "amd64")
	armD := pushImage(ctx, t, repo, arm, "arm64")
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: []Descriptor{
		{MediaType: MediaTypeDockerManifest, Digest: amdD, Size: int64(len(amd.manifest)), Platform: &Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: MediaTypeDockerManifest, Digest: armD, Size: int64(len(arm.manifest)), Platform: &Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}}
	raw, _ := json.Marshal(idx)
	if _, err := repo.PutManifest(ctx, "1", MediaTypeOCIIndex, raw); err != nil {
		t.Fatal(err)
	}
	m, err := repo.GetManifest(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsIndex() || m.MediaType != MediaTypeOCIIndex || len(m.Index.Manifests) != 2 {
		t.Fatalf("GetManifest = %s index=%v, want an OCI index of 2", m.MediaType, m.IsIndex())
	}
	for _, tc := range []struct {
		want Platform
		d    reference.Digest
		cfg  []byte
	}{
		{Platform{OS: "linux", Architecture: "arm64"}, armD, arm.config},
		{Platform{OS: "linux", Architecture: "aarch64", Variant: "8"}, armD, arm.config},
		{Platform{OS: "linux", Architecture: "x86_64"}, amdD, amd.config},
	} {
		desc, err := SelectPlatform(m.Index.Manifests, tc.want)
		if err != nil || desc.Digest != tc.d {
			t.Fatalf("SelectPlatform(%+v) = %s, %v; want %s", tc.want, desc.Digest, err, tc.d)
		}
		pm, err := repo.GetManifestDigest(ctx, desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if got := readBlob(ctx, t, repo, pm.Image.Config); !bytes.Equal(got, tc.cfg) {
			t.Fatalf("config of %s = %s, want %s", desc.Digest, got, tc.cfg)
		}
	}
	_, err = SelectPlatform(m.Index.Manifests, Platform{OS: "linux", Architecture: "s390x"})
	if err == nil || err.Error() != "no matching manifest for linux/s390x in the manifest list entries" || errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Fatalf("SelectPlatform(s390x) = %v", err)
	}
}

// TestRegistryTLSHtpasswdLogin runs the registry with TLS (a test CA, read
// from certs.d as dockerd reads it, client certificates required) and
// htpasswd auth: login succeeds with the right password, fails with
// dockerd's 401 text with a wrong one, and pull needs the credentials.
func TestRegistryTLSHtpasswdLogin(t *testing.T) {
	ctx := testCtx(t)
	ca := newTestCA(t)
	addr := startRegistry(t, registryOpts{tls: ca, clientCAs: true, htpasswd: map[string]string{"alice": "secret"}})
	c := NewClient(Config{CertsDir: ca.certsDir(t, addr, true), secureLoopback: true})

	status, tok, err := c.Login(ctx, addr, AuthConfig{Username: "alice", Password: "secret"})
	if err != nil || status != "Login Succeeded" || tok != "" {
		t.Fatalf("Login = %q, %q, %v; want Login Succeeded", status, tok, err)
	}
	_, _, err = c.Login(ctx, "https://"+addr, AuthConfig{Username: "alice", Password: "wrong"})
	want := "login attempt to https://" + addr + "/v2/ failed with status: 401 Unauthorized"
	if err == nil || err.Error() != want || errdefs.KindOf(err) != errdefs.ErrUnauthorized {
		t.Fatalf("Login(wrong password) = %v, want %q (unauthorized)", err, want)
	}

	ref := mustRef(t, addr+"/lib/app:1")
	repo, err := c.Repository(ctx, ref, AuthConfig{Username: "alice", Password: "secret"}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	if repo.Endpoint().URL.Scheme != "https" || repo.Endpoint().TLS.InsecureSkipVerify {
		t.Fatalf("endpoint %s insecure=%v, want verified https", repo.Endpoint().URL, repo.Endpoint().TLS.InsecureSkipVerify)
	}
	img := newTestImage(t, "amd64", 5000)
	d := pushImage(ctx, t, repo, img, "1")

	anon, err := c.Repository(ctx, ref, AuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.GetManifest(ctx, ref); err == nil || !strings.Contains(err.Error(), "no basic auth credentials") {
		t.Fatalf("anonymous GetManifest = %v, want no basic auth credentials", err)
	}
	// Credentials from the X-Registry-Auth header.
	ac, err := DecodeAuthConfig(EncodeAuthConfig(AuthConfig{Auth: "YWxpY2U6c2VjcmV0", ServerAddress: addr}))
	if err != nil {
		t.Fatal(err)
	}
	pull, err := c.Repository(ctx, ref, ac)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := pull.GetManifest(ctx, ref); err != nil || m.Digest != d {
		t.Fatalf("GetManifest with auth = %v, want %s", err, d)
	}

	// Without the CA in certs.d the certificate is refused.
	bare := NewClient(Config{CertsDir: t.TempDir(), secureLoopback: true})
	var uerr *tls.CertificateVerificationError
	if _, _, err := bare.Login(ctx, addr, AuthConfig{Username: "alice", Password: "secret"}); !errors.As(err, &uerr) {
		t.Fatalf("Login without CA = %v, want a certificate verification error", err)
	}
}

// TestRegistryPushBlobStream streams a blob of unknown digest and size to
// the real registry: the descriptor returned names what the registry
// stored, and reading it back verifies.
func TestRegistryPushBlobStream(t *testing.T) {
	addr := startRegistry(t, registryOpts{})
	ctx := context.Background()
	c := NewClient(Config{})
	repo, err := c.Repository(ctx, mustRef(t, addr+"/lib/stream"), AuthConfig{}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("streamed layer bytes "), 100000)
	desc, err := repo.PushBlobStream(ctx, MediaTypeDockerLayer, io.MultiReader(bytes.NewReader(content[:1000]), bytes.NewReader(content[1000:])))
	if err != nil {
		t.Fatal(err)
	}
	if want := reference.DigestOf(content); desc.Digest != want || desc.Size != int64(len(content)) || desc.MediaType != MediaTypeDockerLayer {
		t.Fatalf("PushBlobStream = %+v, want digest %s size %d", desc, want, len(content))
	}
	rc, err := repo.OpenBlob(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("reading the streamed blob back: %v (%d bytes)", err, len(got))
	}
}
