package image

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// fakeRegistry pulls by script: it sends msgs, then returns err.
type fakeRegistry struct {
	msgs []types.ProgressMessage
	err  error
	got  types.ImagePullOptions
}

func (f *fakeRegistry) PullImage(ctx context.Context, opts types.ImagePullOptions, progress func(types.ProgressMessage)) error {
	f.got = opts
	for _, m := range f.msgs {
		progress(m)
	}
	return f.err
}

func (f *fakeRegistry) PushImage(ctx context.Context, opts types.ImagePushOptions, progress func(types.ProgressMessage)) error {
	return f.err
}

func (f *fakeRegistry) Login(ctx context.Context, ac types.AuthConfig) (*types.AuthResponse, error) {
	if ac.Password != "secret" {
		return nil, errdefs.Unauthorized(errors.New("login attempt to http://r/v2/ failed with status: 401 Unauthorized"))
	}
	return &types.AuthResponse{Status: "Login Succeeded"}, nil
}

func (f *fakeRegistry) SearchImages(ctx context.Context, term string, limit int, authHeader string) ([]types.SearchResult, error) {
	return []types.SearchResult{}, f.err
}

func (f *fakeRegistry) DistributionInspect(ctx context.Context, name, authHeader string) (*types.DistributionInspect, error) {
	return nil, f.err
}

func serve(t *testing.T, h wire.HandlerFunc, method, target, body string, header http.Header) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	if err := h(w, r); err != nil {
		wire.WriteError(w, errdefs.Status(err), err.Error())
	}
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// TestPullErrors checks where a pull's error goes: the HTTP status before
// the first message (the CLI prints "Error response from daemon: ..."),
// in band after it.
func TestPullErrors(t *testing.T) {
	unknown := errdefs.NotFound(errors.New("manifest unknown"))
	f := &fakeRegistry{err: unknown}
	h := Create(nil, f)
	hdr := http.Header{"X-Registry-Auth": {"e30="}}
	code, body := serve(t, h, "POST", "/images/create?fromImage=localhost:5999/trace/pulled&tag=1&platform=linux/arm64", "", hdr)
	if code != http.StatusNotFound || body != `{"message":"manifest unknown"}`+"\n" {
		t.Errorf("error before the stream: %d %q", code, body)
	}
	if want := (types.ImagePullOptions{FromImage: "localhost:5999/trace/pulled", Tag: "1", Platform: "linux/arm64", RegistryAuth: "e30="}); f.got != want {
		t.Errorf("pull options = %+v, want %+v", f.got, want)
	}
	f = &fakeRegistry{msgs: []types.ProgressMessage{{Status: "Pulling from trace/pulled", ID: "1"}}, err: errors.New("filesystem layer verification failed for digest sha256:ab")}
	code, body = serve(t, Create(nil, f), "POST", "/images/create?fromImage=x", "", nil)
	want := `{"status":"Pulling from trace/pulled","id":"1"}` + "\r\n" +
		`{"errorDetail":{"message":"filesystem layer verification failed for digest sha256:ab"},"error":"filesystem layer verification failed for digest sha256:ab"}` + "\r\n"
	if code != http.StatusOK || body != want {
		t.Errorf("error in the stream: %d %q, want %q", code, body, want)
	}
}

func TestAuth(t *testing.T) {
	f := &fakeRegistry{}
	code, body := serve(t, Auth(f), "POST", "/auth", `{"username":"alice","password":"secret","serveraddress":"r"}`, http.Header{"Content-Type": {"application/json"}})
	if code != http.StatusOK || body != `{"Status":"Login Succeeded"}`+"\n" {
		t.Errorf("login = %d %q", code, body)
	}
	code, body = serve(t, Auth(f), "POST", "/auth", `{"username":"alice","password":"no","serveraddress":"r"}`, http.Header{"Content-Type": {"application/json"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "401 Unauthorized") {
		t.Errorf("refused login = %d %q", code, body)
	}
}
