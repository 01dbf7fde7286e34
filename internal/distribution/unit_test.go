package distribution

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Challenge
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`,
			[]Challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		{`Basic realm="basic-realm"`, []Challenge{{"basic", map[string]string{"realm": "basic-realm"}}}},
		{`Bearer realm="r", error="insufficient_scope", scope="repository:a:pull,push"`,
			[]Challenge{{"bearer", map[string]string{"realm": "r", "error": "insufficient_scope", "scope": "repository:a:pull,push"}}}},
		{`Basic realm="a", Bearer realm="b",service=s`,
			[]Challenge{{"basic", map[string]string{"realm": "a"}}, {"bearer", map[string]string{"realm": "b", "service": "s"}}}},
		{`BEARER Realm = "q\"uoted\\"`, []Challenge{{"bearer", map[string]string{"realm": `q"uoted\`}}}},
		{``, nil},
		{`Bearer realm="unterminated`, []Challenge{{"bearer", map[string]string{}}}},
	} {
		if got := ParseChallenges(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseChallenges(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Bearer realm="https://a/token",service="x",scope="repository:a:pull"`, `Basic realm="r"`, `a b=c, d e="f\"g"`, `,,=,"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range ParseChallenges(s) {
			if c.Scheme == "" || c.Scheme != strings.ToLower(c.Scheme) || c.Params == nil {
				t.Fatalf("ParseChallenges(%q): bad challenge %+v", s, c)
			}
			for k := range c.Params {
				if k == "" || k != strings.ToLower(k) {
					t.Fatalf("ParseChallenges(%q): bad key %q", s, k)
				}
			}
		}
	})
}

func TestDecodeAuthConfig(t *testing.T) {
	want := AuthConfig{Username: "alice", Password: "pa:ss", ServerAddress: "127.0.0.1:5000", IdentityToken: "id", RegistryToken: "rt"}
	enc := EncodeAuthConfig(want)
	for _, in := range []string{enc, strings.TrimRight(enc, "=")} {
		got, err := DecodeAuthConfig(in)
		if err != nil || got != want {
			t.Errorf("DecodeAuthConfig(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if got, err := DecodeAuthConfig(""); err != nil || got != (AuthConfig{}) {
		t.Errorf("DecodeAuthConfig(\"\") = %+v, %v", got, err)
	}
	for _, in := range []string{"!!!", "bm90IGpzb24"} {
		_, err := DecodeAuthConfig(in)
		if err == nil || !strings.HasPrefix(err.Error(), "invalid X-Registry-Auth header: ") || errdefs.KindOf(err) != errdefs.ErrInvalidParameter {
			t.Errorf("DecodeAuthConfig(%q) = %v, want invalid X-Registry-Auth header", in, err)
		}
	}
	u, p := AuthConfig{Auth: "YWxpY2U6c2VjOnJldA=="}.credentials()
	if u != "alice" || p != "sec:ret" {
		t.Errorf("credentials of auth field = %q, %q", u, p)
	}
}

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	lookup := func(_ context.Context, host string) ([]net.IP, error) {
		switch host {
		case "localhost":
			return []net.IP{net.ParseIP("127.0.0.1")}, nil
		case "inside.corp":
			return []net.IP{net.ParseIP("10.1.2.3")}, nil
		}
		return nil, errors.New("no such host")
	}
	cfg := Config{Mirrors: []string{"https://mirror.example.com/", "http://plain.example"}, InsecureRegistries: []string{"10.0.0.0/8", "named.example:5000"},
		CertsDir: t.TempDir(), LookupIP: lookup}
	urls := func(eps []Endpoint) []string {
		var s []string
		for _, e := range eps {
			v := e.URL.String()
			if e.TLS != nil && e.TLS.InsecureSkipVerify {
				v += " (no verify)"
			}
			s = append(s, v)
		}
		return s
	}
	for _, tc := range []struct {
		domain  string
		mirrors bool
		want    []string
	}{
		{"docker.io", true, []string{"https://mirror.example.com", "http://plain.example", "https://registry-1.docker.io"}},
		{"docker.io", false, []string{"https://registry-1.docker.io"}},
		{"ghcr.io", true, []string{"https://ghcr.io"}},
		{"127.0.0.1:5000", true, []string{"https://127.0.0.1:5000 (no verify)", "http://127.0.0.1:5000"}},
		{"[::1]:5000", true, []string{"https://[::1]:5000 (no verify)", "http://[::1]:5000"}},
		{"localhost:5000", true, []string{"https://localhost:5000 (no verify)", "http://localhost:5000"}},
		{"inside.corp:443", true, []string{"https://inside.corp:443 (no verify)", "http://inside.corp:443"}},
		{"named.example:5000", true, []string{"https://named.example:5000 (no verify)", "http://named.example:5000"}},
		{"named.example:5001", true, []string{"https://named.example:5001"}},
	} {
		eps, err := cfg.Endpoints(ctx, tc.domain, tc.mirrors)
		if err != nil || !reflect.DeepEqual(urls(eps), tc.want) {
			t.Errorf("Endpoints(%q, %v) = %q, %v; want %q", tc.domain, tc.mirrors, urls(eps), err, tc.want)
		}
	}
	if _, err := (Config{Mirrors: []string{"mirror.example.com"}}).Endpoints(ctx, "docker.io", true); err == nil {
		t.Error("a mirror without scheme was accepted")
	}
}

func TestLoadCertsDirErrors(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.clientPair(t)
	for _, tc := range []struct {
		files map[string][]byte
		want  string
	}{
		{map[string][]byte{"client.cert": cert}, "missing key client.key for client certificate client.cert. CA certificates must use the extension .crt"},
		{map[string][]byte{"client.key": key}, "missing client certificate client.cert for key client.key"},
	} {
		dir := t.TempDir()
		for n, b := range tc.files {
			os.WriteFile(filepath.Join(dir, n), b, 0o600)
		}
		err := LoadCertsDir(dir, defaultTLS())
		if err == nil || err.Error() != tc.want {
			t.Errorf("LoadCertsDir(%v) = %v, want %q", tc.files, err, tc.want)
		}
	}
	if err := LoadCertsDir(filepath.Join(t.TempDir(), "none"), defaultTLS()); err != nil {
		t.Errorf("LoadCertsDir(missing) = %v, want nil", err)
	}
}

func TestSelectPlatform(t *testing.T) {
	d := func(s string) reference.Digest { return reference.DigestOf([]byte(s)) }
	entries := []Descriptor{
		{Digest: d("amd64"), Platform: &Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: d("armv6"), Platform: &Platform{OS: "linux", Architecture: "arm", Variant: "v6"}},
		{Digest: d("armv7"), Platform: &Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{Digest: d("win"), Platform: &Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}},
		{Digest: d("attest"), Platform: &Platform{OS: "unknown", Architecture: "unknown"}},
		{Digest: d("ppc"), Platform: &Platform{OS: "linux", Architecture: "ppc64le", OSVersion: "anything"}},
	}
	for _, tc := range []struct {
		want Platform
		d    reference.Digest
		err  string
	}{
		{Platform{Architecture: "amd64"}, d("amd64"), ""},
		{Platform{OS: "linux", Architecture: "arm"}, d("armv7"), ""},
		{Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, d("armv6"), ""},
		{Platform{OS: "linux", Architecture: "arm64"}, d("armv7"), ""}, // arm64/v8 runs arm/v7
		{Platform{OS: "linux", Architecture: "ppc64le"}, d("ppc"), ""}, // os.version ignored
		{Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, "", "no matching manifest for linux/arm/v5 in the manifest list entries"},
		{Platform{OS: "linux", Architecture: "s390x"}, "", "no matching manifest for linux/s390x in the manifest list entries"},
	} {
		got, err := SelectPlatform(entries, tc.want)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("SelectPlatform(%+v) = %v, want %q", tc.want, err, tc.err)
			}
			continue
		}
		if err != nil || got.Digest != tc.d {
			t.Errorf("SelectPlatform(%+v) = %s, %v; want %s", tc.want, got.Digest, err, tc.d)
		}
	}
	_, err := SelectPlatform(entries[:1], Platform{OS: "linux", Architecture: "arm64"})
	if want := "no matching manifest for linux/arm64/v8 in the manifest list entries"; err == nil || err.Error() != want {
		t.Errorf("SelectPlatform(arm64) = %v, want %q", err, want)
	}
}

func TestResponseError(t *testing.T) {
	ref := mustRef(t, "busybox:1")
	for _, tc := range []struct {
		name, auth, body string
		status           int
		text, pull       string
		kind             errdefs.Kind
	}{
		{"manifest unknown", "", `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1"}}]}`, 404,
			"manifest unknown: manifest unknown", "manifest for busybox:1 not found: manifest unknown: manifest unknown", errdefs.ErrNotFound},
		{"denied by scope", `Bearer realm="r",error="insufficient_scope"`, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, 401,
			"denied: requested access to the resource is denied",
			"pull access denied for busybox, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", errdefs.ErrNotFound},
		{"unauthorized", `Bearer realm="r"`, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, 401,
			"unauthorized: authentication required", "unauthorized: authentication required", errdefs.ErrUnauthorized},
		{"name unknown", "", `{"errors":[{"code":"NAME_UNKNOWN"}]}`, 404,
			"name unknown: repository name not known to registry", "repository busybox not found: name unknown: repository name not known to registry", errdefs.ErrNotFound},
		{"token details", "", `{"details":"incorrect username or password"}`, 401,
			"unauthorized: incorrect username or password", "unauthorized: incorrect username or password", errdefs.ErrUnauthorized},
		{"toomanyrequests", "", `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`, 429,
			"toomanyrequests: You have reached your pull rate limit.", "toomanyrequests: You have reached your pull rate limit.", errdefs.ErrUnavailable},
		{"odd code", "", `{"errors":[{"code":"WEIRD","message":"m"}]}`, 400, "unknown: m", "unknown: m", errdefs.ErrSystem},
		{"not json", "", `<html>`, 502, `error parsing HTTP 502 response body: "<html>"`, `error parsing HTTP 502 response body: "<html>"`, errdefs.ErrSystem},
	} {
		resp := &http.Response{StatusCode: tc.status, Status: http.StatusText(tc.status), Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
		if tc.auth != "" {
			resp.Header.Set("WWW-Authenticate", tc.auth)
		}
		err := responseError(resp)
		if err.Error() != tc.text || errdefs.KindOf(err) != tc.kind && tc.pull == tc.text {
			t.Errorf("%s: responseError = %q (%v), want %q (%v)", tc.name, err, errdefs.KindOf(err), tc.text, tc.kind)
		}
		perr := pullError(err, ref)
		if perr.Error() != tc.pull || errdefs.KindOf(perr) != tc.kind {
			t.Errorf("%s: pullError = %q (%v), want %q (%v)", tc.name, perr, errdefs.KindOf(perr), tc.pull, tc.kind)
		}
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"": "docker.io", "https://index.docker.io/v1/": "docker.io", "docker.io": "docker.io", "registry-1.docker.io": "docker.io",
		"127.0.0.1:5000": "127.0.0.1:5000", "https://127.0.0.1:5443/": "127.0.0.1:5443", "http://r.example/v2/": "r.example",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPlatformMatches: an image runs where its platform, or one that
// platform can run, is asked for (containerd's platforms.Only).
func TestPlatformMatches(t *testing.T) {
	for _, c := range []struct {
		want, have Platform
		ok         bool
	}{
		{Platform{OS: "linux", Architecture: "amd64"}, Platform{OS: "linux", Architecture: "amd64"}, true},
		{Platform{OS: "linux", Architecture: "x86_64"}, Platform{OS: "linux", Architecture: "amd64"}, true},
		{Platform{OS: "linux", Architecture: "amd64"}, Platform{OS: "linux", Architecture: "386"}, true},
		{Platform{OS: "linux", Architecture: "386"}, Platform{OS: "linux", Architecture: "amd64"}, false},
		{Platform{OS: "linux", Architecture: "arm64"}, Platform{OS: "linux", Architecture: "amd64"}, false},
		{Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, Platform{OS: "linux", Architecture: "arm64"}, true},
		{Platform{OS: "linux", Architecture: "arm64"}, Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, true},
		{Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, false},
		{Platform{OS: "windows", Architecture: "amd64"}, Platform{OS: "linux", Architecture: "amd64"}, false},
		{Platform{OS: "linux", Architecture: "amd64"}, Platform{}, false},
	} {
		if got := PlatformMatches(c.want, c.have); got != c.ok {
			t.Errorf("PlatformMatches(%v, %v) = %v, want %v", c.want, c.have, got, c.ok)
		}
	}
}
