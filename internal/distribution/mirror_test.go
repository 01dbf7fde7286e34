package distribution

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"skiffd/internal/reference"
)

// TestRegistryMirrorFallback pulls docker.io references through
// registry-mirrors: a mirror that fails (here: manifest unknown) hands the
// pull to the next endpoint, as dockerd does, and a mirror that has the
// image serves it without Docker Hub ever being asked. "Docker Hub" is the
// real registry on loopback (Config.hubURL), the failing mirror a fake.
func TestRegistryMirrorFallback(t *testing.T) {
	ctx := testCtx(t)
	addr := startRegistry(t, registryOpts{})
	img := newTestImage(t, "amd64", 3000)
	hubRef := mustRef(t, addr+"/library/busybox:1")
	push, err := NewClient(Config{}).Repository(ctx, hubRef, AuthConfig{}, ActionPush, ActionPull)
	if err != nil {
		t.Fatal(err)
	}
	d := pushImage(ctx, t, push, img, "1")

	var mu sync.Mutex
	var mirrorHits []string
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		mirrorHits = append(mirrorHits, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}}})
	}))
	t.Cleanup(bad.Close)
	unusedHub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("Docker Hub asked for %s though the mirror has the image", r.URL)
	}))
	t.Cleanup(unusedHub.Close)

	ref := mustRef(t, "busybox:1") // docker.io/library/busybox:1
	for _, tc := range []struct {
		name    string
		mirrors []string
		hub     string
	}{
		{"failing mirror falls back to hub", []string{bad.URL}, "http://" + addr},
		{"mirror serves", []string{"http://" + addr}, unusedHub.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub, _ := url.Parse(tc.hub)
			c := NewClient(Config{Mirrors: tc.mirrors, hubURL: hub})
			repo, err := c.Repository(ctx, ref, AuthConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if !repo.Endpoint().Mirror {
				t.Fatalf("first endpoint %s is not the mirror", repo.Endpoint().URL)
			}
			m, err := repo.GetManifest(ctx, ref)
			if err != nil || m.Digest != d {
				t.Fatalf("GetManifest = %v, want %s", err, d)
			}
			if got := readBlob(ctx, t, repo, img.desc.Layers[0]); len(got) != 3000 {
				t.Fatalf("blob of %d bytes", len(got))
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(mirrorHits) != 2 || !strings.Contains(mirrorHits[1], "/v2/library/busybox/manifests/1") {
		t.Fatalf("failing mirror saw %q, want the ping and the manifest request", mirrorHits)
	}
}

// TestTokenProtocols covers token servers that speak only one protocol:
// one refusing GET (405) gets the OAuth2 password grant by POST and answers
// access_token; the registry's User-Agent and a proxy are used for every
// request.
func TestTokenProtocols(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Method+" "+r.UserAgent())
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		r.ParseForm()
		if r.PostForm.Get("grant_type") != "password" || r.PostForm.Get("username") != "bob" || r.PostForm.Get("password") != "pw" ||
			r.PostForm.Get("client_id") != "docker" || r.PostForm.Get("scope") != "repository:lib/blob:pull" || r.PostForm.Get("service") != "svc" {
			http.Error(w, "bad form "+r.PostForm.Encode(), http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"access_token":"oauth-tok","expires_in":10}`))
	}))
	t.Cleanup(tokenSrv.Close)
	var regUA string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		regUA = r.UserAgent()
		if r.Header.Get("Authorization") != "Bearer oauth-tok" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokenSrv.URL+`/token",service="svc"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/v2/" {
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	var proxied []string
	c := NewClient(Config{UserAgent: "skiffd/test", Proxy: func(r *http.Request) (*url.URL, error) {
		mu.Lock()
		proxied = append(proxied, r.URL.Host)
		mu.Unlock()
		return nil, nil // recorded, then direct: the test sends nothing off loopback
	}})
	repo := fakeRepo(t, srv, c, AuthConfig{Username: "bob", Password: "pw"})
	ok, err := repo.BlobExists(testCtx(t), reference0())
	if err != nil || !ok {
		t.Fatalf("BlobExists = %v, %v", ok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "GET skiffd/test,POST skiffd/test" || regUA != "skiffd/test" {
		t.Fatalf("token requests %q, registry User-Agent %q", seen, regUA)
	}
	if len(proxied) < 3 {
		t.Fatalf("Proxy consulted for %q, want every connection", proxied)
	}
}

func reference0() reference.Digest { return reference.DigestOf(nil) }
