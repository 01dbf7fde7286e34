package distribution

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// fakeRegistry is an httptest registry for the behaviours the real one
// cannot show (dropped connections, wrong bytes, redirects, schema 1): it
// answers /v2/ and hands /v2/<repo>/... to handle.
func fakeRegistry(t *testing.T, handle http.HandlerFunc) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			return
		}
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, NewClient(Config{})
}

func fakeRepo(t *testing.T, srv *httptest.Server, c *Client, auth AuthConfig) *Repository {
	t.Helper()
	ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/lib/blob")
	repo, err := c.Repository(testCtx(t), ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func randomBlob(n int) ([]byte, Descriptor) {
	b := make([]byte, n)
	rand.Read(b)
	return b, Descriptor{MediaType: MediaTypeDockerLayer, Digest: reference.DigestOf(b), Size: int64(n)}
}

// dropAfter writes the headers for the whole body and n bytes of it, then
// closes the connection: a connection dropped mid-blob.
func dropAfter(t *testing.T, w http.ResponseWriter, status int, h http.Header, body []byte, n int) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body[:n])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// TestBlobResumeWithRange drops the connection mid-blob; the reader asks for
// the rest with Range and, from a server that honours it (206 with
// Content-Range), continues there; from one that ignores it (200), it reads
// the body again and skips what it delivered. The bytes and the digest are
// whole either way.
func TestBlobResumeWithRange(t *testing.T) {
	for _, tc := range []struct {
		honourRange, failReopen bool
	}{{true, false}, {false, false}, {true, true}} {
		honourRange := tc.honourRange
		t.Run(fmt.Sprintf("range=%v,failReopen=%v", tc.honourRange, tc.failReopen), func(t *testing.T) {
			blob, desc := randomBlob(256 << 10)
			var mu sync.Mutex
			var ranges []string
			srv, c := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				ranges = append(ranges, r.Header.Get("Range"))
				call := len(ranges)
				mu.Unlock()
				switch {
				case call == 1:
					dropAfter(t, w, http.StatusOK, nil, blob, 100<<10)
				case call == 2 && tc.failReopen:
					// The first reopen meets a reset connection.
					conn, _, _ := http.NewResponseController(w).Hijack()
					conn.Close()
				case honourRange && r.Header.Get("Range") != "":
					var start int
					fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
					w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(blob)-1, len(blob)))
					w.Header().Set("Content-Length", strconv.Itoa(len(blob)-start))
					w.WriteHeader(http.StatusPartialContent)
					w.Write(blob[start:])
				default:
					w.Write(blob)
				}
			})
			repo := fakeRepo(t, srv, c, AuthConfig{})
			got := readBlob(testCtx(t), t, repo, desc)
			if !bytes.Equal(got, blob) {
				t.Fatalf("resumed blob differs (%d bytes, want %d)", len(got), len(blob))
			}
			mu.Lock()
			defer mu.Unlock()
			wantCalls := 2
			if tc.failReopen {
				wantCalls = 3
			}
			if len(ranges) != wantCalls || ranges[0] != "" || !strings.HasPrefix(ranges[wantCalls-1], "bytes=") || ranges[wantCalls-1] == "bytes=0-" {
				t.Fatalf("requests' Range headers = %q, want a resume from the dropped offset", ranges)
			}
		})
	}
}

// TestBlobVerification serves bytes that do not match the descriptor: the
// reader returns an error, never io.EOF, so a caller unpacking as it reads
// learns before registering anything. An overlong body fails as soon as
// the extra byte arrives.
func TestBlobVerification(t *testing.T) {
	good, desc := randomBlob(64 << 10)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"digest mismatch", bad},
		{"short", good[:len(good)-10]},
		{"long", append(append([]byte(nil), good...), 'x')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) { w.Write(tc.body) })
			repo := fakeRepo(t, srv, c, AuthConfig{})
			rc, err := repo.OpenBlob(testCtx(t), desc)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var sawEOF bool
			var readErr error
			buf := make([]byte, 4096)
			for {
				_, err := rc.Read(buf)
				if err == io.EOF {
					sawEOF = true
					break
				}
				if err != nil {
					readErr = err
					break
				}
			}
			want := "filesystem layer verification failed for digest " + string(desc.Digest)
			if sawEOF || readErr == nil || !strings.HasPrefix(readErr.Error(), want) || errdefs.KindOf(readErr) != errdefs.ErrInvalidParameter {
				t.Fatalf("read = EOF %v, err %v; want %q and no EOF", sawEOF, readErr, want)
			}
			if _, err := rc.Read(buf); err != readErr {
				t.Fatalf("next Read = %v, want the same error again", err)
			}
		})
	}
}

// TestBlobRedirectWithoutCredentials serves a blob by redirecting to a
// storage server on another port of the same IP: the registry needs basic
// credentials, the storage server must never see them (Go's own redirect
// rule compares host names without ports and would forward them).
func TestBlobRedirectWithoutCredentials(t *testing.T) {
	blob, desc := randomBlob(10000)
	var mu sync.Mutex
	var storageAuth []string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		storageAuth = append(storageAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write(blob)
	}))
	t.Cleanup(storage.Close)
	var registryAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		registryAuth = r.Header.Get("Authorization")
		if r.URL.Path == "/v2/" {
			return
		}
		http.Redirect(w, r, storage.URL+"/blobs/x?sig=1", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	repo := fakeRepo(t, srv, NewClient(Config{}), AuthConfig{Username: "alice", Password: "secret"})
	if got := readBlob(testCtx(t), t, repo, desc); !bytes.Equal(got, blob) {
		t.Fatal("redirected blob differs")
	}
	mu.Lock()
	defer mu.Unlock()
	if registryAuth == "" || len(storageAuth) != 1 || storageAuth[0] != "" {
		t.Fatalf("registry saw Authorization %q; storage saw %q, want none", registryAuth, storageAuth)
	}
}

// TestSchema1Refused serves a signed schema 1 manifest: it is refused with
// dockerd's message naming the full reference.
func TestSchema1Refused(t *testing.T) {
	const schema1 = `{"schemaVersion":1,"name":"lib/blob","tag":"old","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}`
	for _, ct := range []string{MediaTypeDockerSchema1Signed, MediaTypeDockerSchema1, "application/json"} {
		srv, c := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Write([]byte(schema1))
		})
		repo := fakeRepo(t, srv, c, AuthConfig{})
		ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/lib/blob:old")
		_, err := repo.GetManifest(testCtx(t), ref)
		want := "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of " +
			ref.String() + " to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/"
		if err == nil || err.Error() != want || errdefs.KindOf(err) != errdefs.ErrInvalidParameter {
			t.Fatalf("Content-Type %s: GetManifest = %v, want %q", ct, err, want)
		}
	}
}

// TestManifestVerification checks the digest of manifests: a body that does
// not hash to the digest asked for, or to the Docker-Content-Digest of a tag
// fetch, is refused; a huge body is refused without being read whole.
func TestManifestVerification(t *testing.T) {
	img := newTestImage(t, "amd64", 10)
	other := newTestImage(t, "amd64", 11)
	for _, tc := range []struct {
		name, ref, header string
		body              []byte
		want              string
	}{
		{"by digest", "@" + string(other.desc.Config.Digest), "", img.manifest, "image verification failed for digest " + string(other.desc.Config.Digest)},
		{"tag with header", ":1", string(reference.DigestOf(other.manifest)), img.manifest, "image verification failed for digest " + string(reference.DigestOf(other.manifest))},
		{"too large", ":1", "", bytes.Repeat([]byte(" "), MaxManifestSize+1), "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", MediaTypeDockerManifest)
				if tc.header != "" {
					w.Header().Set("Docker-Content-Digest", tc.header)
				}
				w.Write(tc.body)
			})
			repo := fakeRepo(t, srv, c, AuthConfig{})
			_, err := repo.GetManifest(testCtx(t), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/lib/blob"+tc.ref))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("GetManifest = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestChallengeLearntLate covers a registry whose /v2/ answers 200 without
// credentials but whose repositories challenge: the client learns the
// challenge from the 401 and repeats the request with credentials.
func TestChallengeLearntLate(t *testing.T) {
	srv, c := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="late"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	})
	repo := fakeRepo(t, srv, c, AuthConfig{Username: "alice", Password: "secret"})
	if ok, err := repo.BlobExists(testCtx(t), reference.DigestOf(nil)); !ok || err != nil {
		t.Fatalf("BlobExists = %v, %v; want true", ok, err)
	}
}
