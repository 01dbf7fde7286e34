package distribution

import (
	"slices"
	"strings"
	"testing"
	"time"

	"skiffd/internal/errdefs"
)

// TestRegistryTokenAuth runs the real registry with token auth against the
// token server of the test: alice pushes with a token fetched with basic
// credentials for "push,pull"; an anonymous client pulls with an anonymous
// pull token and may not push; tokens are cached per scope and fetched again
// once expired; login returns the refresh token as identity token, and a
// client holding it gets tokens with the OAuth2 refresh_token grant.
func TestRegistryTokenAuth(t *testing.T) {
	ctx := testCtx(t)
	ts := newTokenServer(t, map[string]string{"alice": "secret"})
	addr := startRegistry(t, registryOpts{token: ts})
	c := NewClient(Config{})
	clock := time.Now()
	c.now = func() time.Time { return clock }

	ref := mustRef(t, addr+"/lib/app:1")
	alice := AuthConfig{Username: "alice", Password: "secret"}
	push, err := c.Repository(ctx, ref, alice, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	img := newTestImage(t, "amd64", 4096, 70000)
	d := pushImage(ctx, t, push, img, "1")
	log := ts.log()
	if len(log) != 1 {
		t.Fatalf("token requests for a push = %d, want 1 (cached): %+v", len(log), log)
	}
	if got := log[0]; got.Method != "GET" || got.Account != "alice" || got.Service != tokenService ||
		!slices.Equal(got.Scopes, []string{"repository:lib/app:push,pull"}) {
		t.Fatalf("push token request = %+v", got)
	}

	anon, err := c.Repository(ctx, ref, AuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := anon.GetManifest(ctx, ref); err != nil || m.Digest != d {
		t.Fatalf("anonymous GetManifest = %v, want %s", err, d)
	}
	readBlob(ctx, t, anon, img.desc.Layers[1])
	log = ts.log()
	if got := log[len(log)-1]; got.Account != "" || !slices.Equal(got.Scopes, []string{"repository:lib/app:pull"}) || len(log) != 2 {
		t.Fatalf("anonymous token requests = %+v, want one pull-scoped", log[1:])
	}

	// An anonymous push is refused by the registry (the token grants pull
	// only): the error is the registry's, with an errdefs kind.
	anonPush, err := c.Repository(ctx, mustRef(t, addr+"/lib/other"), AuthConfig{}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	err = anonPush.PushBlob(ctx, img.desc.Config, strings.NewReader(string(img.config)))
	if err == nil || errdefs.KindOf(err) != errdefs.ErrForbidden || err.Error() != "denied: requested access to the resource is denied" {
		t.Fatalf("anonymous push = %v (kind %v), want denied: requested access to the resource is denied (forbidden)", err, errdefs.KindOf(err))
	}
	if !HasCode(err, CodeUnauthorized) {
		t.Errorf("the registry's own UNAUTHORIZED entry was lost: %#v", err)
	}

	// Expiry: past expires_in the cached pull token is replaced.
	before := len(ts.log())
	anon.GetManifest(ctx, ref)
	if n := len(ts.log()); n != before {
		t.Fatalf("a cached token was fetched again (%d -> %d requests)", before, n)
	}
	clock = clock.Add(301 * time.Second)
	if _, err := anon.GetManifest(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.log()); n != before+1 {
		t.Fatalf("token requests after expiry = %d, want %d", n, before+1)
	}

	// Login: scope-less token with offline access; the refresh token comes
	// back as identity token.
	clock = time.Now()
	status, idToken, err := c.Login(ctx, addr, alice)
	if err != nil || status != LoginSucceeded || !strings.HasPrefix(idToken, "refresh-alice-") {
		t.Fatalf("Login = %q, %q, %v", status, idToken, err)
	}
	if got := ts.log()[len(ts.log())-1]; !got.Offline || len(got.Scopes) != 0 || got.Account != "alice" {
		t.Fatalf("login token request = %+v, want offline, no scope", got)
	}
	_, _, err = c.Login(ctx, addr, AuthConfig{Username: "alice", Password: "nope"})
	want := `Get "https://` + addr + `/v2/": unauthorized: incorrect username or password`
	if err == nil || errdefs.KindOf(err) != errdefs.ErrUnauthorized {
		t.Fatalf("Login(wrong) = %v, want unauthorized", err)
	}
	// Loopback is insecure: https fails first, and the login that reaches
	// the registry is the one over http.
	want = strings.Replace(want, "https://", "http://", 1)
	if err.Error() != want {
		t.Fatalf("Login(wrong) = %q, want %q", err, want)
	}

	idClient := NewClient(Config{})
	withID, err := idClient.Repository(ctx, ref, AuthConfig{IdentityToken: idToken}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := withID.BlobExists(ctx, img.desc.Layers[0].Digest); !ok || err != nil {
		t.Fatalf("BlobExists with identity token = %v, %v", ok, err)
	}
	if got := ts.log()[len(ts.log())-1]; got.Method != "POST" || got.Grant != "refresh_token" || !slices.Equal(got.Scopes, []string{"repository:lib/app:push,pull"}) {
		t.Fatalf("identity-token request = %+v, want POST refresh_token", got)
	}
}
