package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"skiffd/internal/api/container"
	"skiffd/internal/api/exec"
	"skiffd/internal/api/network"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// fakeBackend stands in for the engine in handler tests.
type fakeBackend struct {
	events []types.EventMessage
	live   chan types.EventMessage
}

func (f *fakeBackend) SystemInfo(ctx context.Context) (*types.Info, error) {
	return &types.Info{ID: "fake", NCPU: 3, Warnings: []string{}}, nil
}

func (f *fakeBackend) SystemVersion(ctx context.Context) types.Version {
	return types.Version{APIVersion: apiVersion, MinAPIVersion: minAPIVersion, Version: "test"}
}

func (f *fakeBackend) SystemDiskUsage(ctx context.Context) (*types.DiskUsage, error) {
	return &types.DiskUsage{}, nil
}

func (f *fakeBackend) SubscribeToEvents(ctx context.Context, since, until time.Time, ef filters.Args) ([]types.EventMessage, types.EventFeed, func(), error) {
	if ef.Contains("bogus") {
		return nil, nil, nil, errdefs.InvalidParameter(errors.New("invalid filter 'bogus'"))
	}
	feed := &chanFeed{ready: make(chan struct{}, 1)}
	if f.live != nil {
		go func() {
			for m := range f.live {
				feed.mu.Lock()
				feed.queue = append(feed.queue, m)
				notify := feed.notify
				feed.mu.Unlock()
				if notify != nil {
					notify()
					continue
				}
				select {
				case feed.ready <- struct{}{}:
				default:
				}
			}
		}()
	}
	return f.events, feed, func() {}, nil
}

// chanFeed is a types.EventFeed of the events a test sends on a channel.
type chanFeed struct {
	mu     sync.Mutex
	queue  []types.EventMessage
	ready  chan struct{}
	notify func()
}

func (c *chanFeed) Ready() <-chan struct{} { return c.ready }
func (c *chanFeed) OnReady(fn func()) {
	c.mu.Lock()
	c.notify = fn
	c.mu.Unlock()
	select {
	case <-c.ready:
		fn()
	default:
	}
}
func (c *chanFeed) Take(dst []types.EventMessage) ([]types.EventMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dst = append(dst, c.queue...)
	c.queue = c.queue[:0]
	return dst, true
}

func testServerHandler(t *testing.T, b *fakeBackend) http.Handler {
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	return newHandler(newRouter(backends{System: b, Events: b, Image: b, Volume: b, Container: fakeContainers{}, Exec: fakeExec{}, Registry: fakeRegistry{}, Network: fakeNetworks{}}, logger), handlerOptions{Logger: logger, ServerHeader: "Docker/test (linux)"})
}

func TestRoutes(t *testing.T) {
	h := testServerHandler(t, &fakeBackend{})
	tests := []struct {
		method, path string
		status       int
		body         string // substring
	}{
		{"GET", "/_ping", 200, "OK"},
		{"HEAD", "/_ping", 200, ""},
		{"GET", "/v1.50/_ping", 200, "OK"},
		{"POST", "/_ping", 404, `{"message":"page not found"}`},
		{"GET", "/_ping/x", 404, `{"message":"page not found"}`},
		{"GET", "/v1.50/no/such/endpoint", 404, `{"message":"page not found"}`},
		{"GET", "/version", 200, `"ApiVersion":"1.50"`},
		{"GET", "/v1.24/version", 200, `"MinAPIVersion":"1.24"`},
		{"GET", "/info", 200, `"NCPU":3`},
		{"GET", "/system/df", 200, `"LayersSize":0`},
		{"GET", "/v1.50/nodes", 503, `This node is not a swarm manager.`},
		{"GET", "/v1.50/services?filters=x", 503, `This node is not a swarm manager.`},
		{"GET", "/v1.50/swarm", 503, `This node is not a swarm manager.`},
		{"POST", "/v1.50/swarm/leave", 503, `This node is not part of a swarm`},
		{"POST", "/v1.50/swarm/init", 501, `swarm mode`},
		{"GET", "/v1.50/plugins", 200, `[]`},
		{"GET", "/v1.50/plugins/trace-nonexistent/json", 404, `{"message":"plugin \"trace-nonexistent\" not found"}`},
		{"POST", "/v1.50/build", 501, `does not build images`},
		{"POST", "/v1.50/build/prune", 200, `{"CachesDeleted":[],"SpaceReclaimed":0}`},
		{"GET", "/v1.50/containers/json", 200, `[]`},
		{"POST", "/v1.50/containers/web/exec", 400, `No exec command specified`},
		{"GET", "/v1.50/containers/web/json", 404, `{"message":"No such container: web"}`},
		{"GET", "/v1.50/networks/x", 404, `{"message":"network x not found"}`},
		{"GET", "/v1.50/volumes/x", 404, `{"message":"get x: no such volume"}`},
		{"GET", "/v1.50/images/localhost:5000/a/b:1/json", 404, `{"message":"No such image: localhost:5000/a/b:1"}`},
		{"GET", "/v1.50/images/busybox/history", 404, `No such image: busybox`},
		{"GET", "/v1.50/images/busybox/nope", 404, `page not found`},
		{"POST", "/v1.50/images/busybox/tag?repo=x", 404, `No such image: busybox`},
		{"DELETE", "/v1.50/images/a/b/c", 404, `No such image: a/b/c`},
		{"GET", "/v1.50/images/json", 200, `[]`},
		{"GET", "/v1.50/images/get?names=nope", 404, `No such image: nope`},
		{"POST", "/v1.50/images/create?fromImage=busybox&tag=latest", 404, `{"message":"manifest unknown"}`},
		{"POST", "/v1.50/images/localhost:5000/a/b/push?tag=1", 404, `An image does not exist locally with the tag: localhost:5000/a/b`},
		{"POST", "/v1.50/auth", 401, `failed with status: 401 Unauthorized`},
		{"GET", "/v1.50/images/search?term=localhost:5000/x", 500, `Unexpected status code 404`},
		{"POST", "/v1.50/images/load", 200, `{"errorDetail":{"message":"fake: no load"},"error":"fake: no load"}` + "\r\n"},
		{"GET", "/events?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D", 400, `invalid filter 'bogus'`},
		{"GET", "/events?since=yesterday-ish", 400, ``},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.status, tt.body)
			}
			if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("error Content-Type = %q, want application/json", rec.Header().Get("Content-Type"))
			}
			routed := rec.Body.String() != `{"message":"page not found"}`+"\n"
			if got := rec.Header().Get("Api-Version") != ""; got != routed {
				t.Errorf("Api-Version header present = %v, want %v (only routed answers carry it)", got, routed)
			}
		})
	}
}

func TestPingHeaders(t *testing.T) {
	h := testServerHandler(t, &fakeBackend{})
	for _, method := range []string{"GET", "HEAD"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/_ping", nil))
		want := map[string]string{
			"Api-Version":         "1.50",
			"Cache-Control":       "no-cache, no-store, must-revalidate",
			"Pragma":              "no-cache",
			"Content-Type":        "text/plain; charset=utf-8",
			"Docker-Experimental": "false",
			"Ostype":              "linux",
			"Swarm":               "inactive",
		}
		if method == "HEAD" {
			want["Content-Length"] = "0"
		}
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s /_ping: %s = %q, want %q", method, k, got, v)
			}
		}
	}
}

func TestMakeHTTPHandlerStatuses(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	tests := []struct {
		err    error
		status int
		body   string
	}{
		{errdefs.NotFound(errors.New("No such container: x")), 404, `{"message":"No such container: x"}` + "\n"},
		{fmt.Errorf("wrapped: %w", errdefs.Conflict(errors.New("in use"))), 409, `{"message":"wrapped: in use"}` + "\n"},
		{errdefs.InvalidParameter(errors.New("bad")), 400, `{"message":"bad"}` + "\n"},
		{errdefs.NotModified(errors.New("already started")), 304, ""},
		{errdefs.Unavailable(errors.New("off")), 503, `{"message":"off"}` + "\n"},
		{errors.New("disk on fire"), 500, `{"message":"disk on fire"}` + "\n"},
	}
	for _, tt := range tests {
		h := makeHTTPHandler(func(w http.ResponseWriter, r *http.Request) error { return tt.err }, logger)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/x", nil))
		if rec.Code != tt.status || rec.Body.String() != tt.body {
			t.Errorf("error %v: got %d %q, want %d %q", tt.err, rec.Code, rec.Body.String(), tt.status, tt.body)
		}
	}
}

// The image methods answer as an empty store would.
func (f *fakeBackend) ImportImage(ctx context.Context, src io.Reader, repo, tag, message string, changes []string) (string, error) {
	return "", errdefs.InvalidParameter(errors.New("fake: no import"))
}
func (f *fakeBackend) ImportImageURL(ctx context.Context, src, repo, tag, message string, changes []string, progress func(types.ProgressMessage)) (string, error) {
	return "", errdefs.NotFound(errors.New("fake: no download"))
}
func (f *fakeBackend) LoadImage(ctx context.Context, src io.Reader, progress func(string)) error {
	return errors.New("fake: no load")
}
func (f *fakeBackend) ExportImages(ctx context.Context, names []string, w io.Writer) error {
	return errdefs.NotFound(fmt.Errorf("No such image: %s", names[0]))
}
func (f *fakeBackend) Images(ctx context.Context, all, digests bool, ef filters.Args) ([]*types.ImageSummary, error) {
	return []*types.ImageSummary{}, nil
}
func (f *fakeBackend) ImageInspect(ctx context.Context, name string) (*types.ImageInspect, error) {
	return nil, errdefs.NotFound(fmt.Errorf("No such image: %s", name))
}
func (f *fakeBackend) ImageHistory(ctx context.Context, name string) ([]*types.ImageHistoryItem, error) {
	return nil, errdefs.NotFound(fmt.Errorf("No such image: %s", name))
}
func (f *fakeBackend) TagImage(ctx context.Context, name, repo, tag string) error {
	return errdefs.NotFound(fmt.Errorf("No such image: %s", name))
}
func (f *fakeBackend) ImageDelete(ctx context.Context, name string, force, prune bool) ([]types.ImageDeleteItem, error) {
	return nil, errdefs.NotFound(fmt.Errorf("No such image: %s", name))
}
func (f *fakeBackend) ImagesPrune(ctx context.Context, ef filters.Args) (*types.ImagesPruneReport, error) {
	return &types.ImagesPruneReport{ImagesDeleted: []types.ImageDeleteItem{}}, nil
}

// The volume methods answer as an empty store would.
func (f *fakeBackend) Volumes(ctx context.Context, ef filters.Args) ([]*types.Volume, []string, error) {
	return []*types.Volume{}, nil, nil
}
func (f *fakeBackend) VolumeCreate(ctx context.Context, req types.VolumeCreateOptions) (*types.Volume, error) {
	return &types.Volume{Name: req.Name, Driver: "local"}, nil
}
func (f *fakeBackend) VolumeInspect(ctx context.Context, name string) (*types.Volume, error) {
	return nil, errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
}
func (f *fakeBackend) VolumeRemove(ctx context.Context, name string, force bool) error {
	return errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
}
func (f *fakeBackend) VolumesPrune(ctx context.Context, ef filters.Args) (*types.VolumesPruneReport, error) {
	return &types.VolumesPruneReport{}, nil
}

// fakeContainers answers as an engine without containers. Methods it does
// not override panic (the embedded interface is nil): tests call only these.
type fakeContainers struct{ container.Backend }

func (fakeContainers) ContainerList(ctx context.Context, opts types.ContainerListOptions, dst []types.ContainerListEntry) ([]types.ContainerListEntry, error) {
	return dst, nil
}

func (fakeContainers) ContainerInspect(ctx context.Context, name string, size bool) (*types.ContainerJSON, error) {
	return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", name))
}

// fakeExec answers as an engine without containers.
type fakeExec struct{ exec.Backend }

type fakeNetworks struct{ network.Backend }

func (fakeNetworks) NetworkInspect(ctx context.Context, term string) (*types.NetworkResource, error) {
	return nil, errdefs.NotFound(fmt.Errorf("network %s not found", term))
}

func (fakeExec) ContainerExecCreate(ctx context.Context, name string, cfg *types.ExecConfig) (string, error) {
	return "", errdefs.NotFound(fmt.Errorf("No such container: %s", name))
}

// TestOptionsAnyPath sends raw OPTIONS requests over a real socket: dockerd
// answers every path with 200 and an empty body from its options route
// (router/system, "/{anyroute:.*}"), through the same middlewares as any
// route, with or without --api-cors-header (issue 9, item 12).
func TestOptionsAnyPath(t *testing.T) {
	paths := []string{"/_ping", "/v1.50/_ping", "/containers/json", "/v1.50/containers/web/json",
		"/v1.24/images/localhost:5000/a/b:1/json", "/v1.50/nodes", "/no/such/path", "/v1.50/no/such/path", "/"}
	for _, cors := range []string{"", "https://example.test"} {
		t.Run("cors="+cors, func(t *testing.T) {
			logger := slog.New(slog.NewTextHandler(t.Output(), nil))
			b := &fakeBackend{}
			h := newHandler(newRouter(backends{System: b, Events: b, Image: b, Volume: b, Container: fakeContainers{}, Exec: fakeExec{}, Registry: fakeRegistry{}, Network: fakeNetworks{}}, logger),
				handlerOptions{Logger: logger, ServerHeader: "Docker/test (linux)", CORSOrigin: cors})
			l, path := unixTestListener(t)
			srv := &apiServer{handler: h, logger: logger, grace: time.Second}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- srv.serve(ctx, []apiListener{l}) }()
			t.Cleanup(func() {
				cancel()
				<-served
			})
			for _, p := range paths {
				resp, raw := rawRequest(t, path, "OPTIONS "+p+" HTTP/1.1\r\nHost: docker\r\nOrigin: https://example.test\r\nAccess-Control-Request-Method: POST\r\n\r\n")
				if resp.StatusCode != http.StatusOK || raw != "" {
					t.Errorf("OPTIONS %s = %d %q, want 200 and no body", p, resp.StatusCode, raw)
				}
				want := map[string]string{
					"Api-Version":         apiVersion,
					"Ostype":              "linux",
					"Server":              "Docker/test (linux)",
					"Docker-Experimental": "false",
					"Content-Length":      "0",
					"Content-Type":        "",
				}
				for k, v := range map[string]string{
					"Access-Control-Allow-Origin":  cors,
					"Access-Control-Allow-Headers": "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth",
					"Access-Control-Allow-Methods": "HEAD, GET, POST, DELETE, PUT, OPTIONS",
				} {
					if cors == "" {
						v = ""
					}
					want[k] = v
				}
				for k, v := range want {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("OPTIONS %s: %s = %q, want %q", p, k, got, v)
					}
				}
			}
			// A version out of range is refused before any route, OPTIONS
			// included, as dockerd's version middleware does.
			resp, raw := rawRequest(t, path, "OPTIONS /v1.99/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(raw, "client version 1.99 is too new") {
				t.Errorf("OPTIONS /v1.99/_ping = %d %q, want 400 too new", resp.StatusCode, raw)
			}
		})
	}
}

// rawRequest writes req as is on a new connection to the unix socket at
// path and returns the parsed response and its body.
func rawRequest(t *testing.T, path, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: reading body: %v", req, err)
	}
	return resp, string(body)
}

// fakeRegistry answers the registry routes as a registry that knows
// nothing would.
type fakeRegistry struct{}

func (fakeRegistry) PullImage(ctx context.Context, opts types.ImagePullOptions, progress func(types.ProgressMessage)) error {
	return errdefs.NotFound(errors.New("manifest unknown"))
}

func (fakeRegistry) PushImage(ctx context.Context, opts types.ImagePushOptions, progress func(types.ProgressMessage)) error {
	return errdefs.NotFound(errors.New("An image does not exist locally with the tag: " + opts.Name))
}

func (fakeRegistry) Login(ctx context.Context, ac types.AuthConfig) (*types.AuthResponse, error) {
	return nil, errdefs.Unauthorized(errors.New("login attempt to http://r/v2/ failed with status: 401 Unauthorized"))
}

func (fakeRegistry) SearchImages(ctx context.Context, term string, limit int, authHeader string) ([]types.SearchResult, error) {
	return nil, errdefs.System(errors.New("Unexpected status code 404"))
}

func (fakeRegistry) DistributionInspect(ctx context.Context, name, authHeader string) (*types.DistributionInspect, error) {
	return nil, errdefs.NotFound(errors.New("manifest unknown"))
}
