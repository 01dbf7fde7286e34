package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/authz"
	"skiffd/internal/policy"
)

func testBackends() backends {
	b := &fakeBackend{}
	return backends{System: b, Events: b, Image: b, Volume: b, Container: fakeContainers{}, Exec: fakeExec{}}
}

// requestFor builds a request that the mux routes to pattern.
func requestFor(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	r := strings.NewReplacer("{id}", "x", "{name...}", "img", "{name}", "n", "{action}", "enable")
	return method, r.Replace(path)
}

// withGuard serves h as a listener with policy p and chain would.
func withGuard(t testing.TB, h http.Handler, p string, chain *authz.Chain, maxStreams int) http.Handler {
	a, err := parseHost("unix:///t.sock?"+p, false)
	if p == "" {
		a, err = parseHost("unix:///t.sock", false)
	}
	if err != nil {
		t.Fatal(err)
	}
	g := newGuards(slog.New(slog.NewTextHandler(io.Discard, nil)), chain, maxStreams, []listenAddr{a})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(g.withListener(r.Context(), a)))
	})
}

// roRoutes is what a read-only listener serves: changing it is a decision
// to write down in internal/policy and the README.
var roRoutes = []string{
	"/configs", "/configs/", "/nodes", "/nodes/", "/secrets", "/secrets/", "/services", "/services/", "/tasks", "/tasks/", "/",
	"GET /_ping", "GET /containers/json", "GET /containers/{id}/changes", "GET /containers/{id}/json", "GET /containers/{id}/logs",
	"GET /containers/{id}/stats", "GET /containers/{id}/top", "GET /distribution/{name...}", "GET /events", "GET /images/json",
	"GET /images/search", "GET /images/{name...}", "GET /info", "GET /networks", "GET /networks/{id}", "GET /plugins",
	"GET /plugins/privileges", "GET /plugins/{name}/json", "GET /swarm", "GET /swarm/unlockkey", "GET /system/df", "GET /version",
	"GET /volumes", "GET /volumes/{name}",
}

// TestRoutePolicies walks every route routes.go registers against a
// read-only listener, an allow-list of each group, and an open listener:
// each route must carry a known group, and the answer must be the policy's.
func TestRoutePolicies(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := newRoutes(testBackends(), logger)
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), "mux.Handle("); n != 1 {
		t.Fatalf("routes.go calls mux.Handle %d times; every route must go through routeTable.add so it has a group", n)
	}
	handler := newHandler(optionsRoute(rt.mux), handlerOptions{Logger: logger, ServerHeader: "Docker/test (linux)"})

	policies := []string{"", "mode=ro"}
	for _, g := range policy.Groups() {
		if g != policy.Unrouted {
			policies = append(policies, "allow="+string(g))
		}
	}
	policies = append(policies, "mode=ro&allow=containers:read,exec")

	var gotRO []string
	for _, e := range rt.routes {
		if !policy.Known(e.Info.Group) {
			t.Errorf("route %q has no known group (%q)", e.Pattern, e.Info.Group)
			continue
		}
		method, path := requestFor(e.Pattern)
		if p, _ := policy.Parse("mode=ro"); p.Check(method, e.Info.Group) == nil && !e.Sub {
			gotRO = append(gotRO, e.Pattern)
		}
		for _, ps := range policies {
			p, err := policy.Parse(ps)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(e.Pattern+"/"+ps, func(t *testing.T) {
				h := withGuard(t, handler, ps, nil, 0)
				rec := httptest.NewRecorder()
				// A cancelled request: streams (events, wait) end at once.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, method, "/v1.50"+path, strings.NewReader("{}")))
				denied := rec.Code == http.StatusForbidden && strings.Contains(rec.Body.String(), "access denied by listener policy")
				want := p.Check(method, e.Info.Group) != nil
				if denied != want {
					t.Errorf("%s %s on %q = %d %q; want denied=%v (group %s)", method, path, ps, rec.Code, rec.Body.String(), want, e.Info.Group)
				}
				var msg struct{ Message string }
				json.Unmarshal(rec.Body.Bytes(), &msg)
				if denied && !strings.Contains(msg.Message, fmt.Sprintf("policy %q", p.String())) {
					t.Errorf("refusal %q does not name the policy %q", rec.Body.String(), p.String())
				}
			})
		}
	}
	slices.Sort(gotRO)
	want := slices.Clone(roRoutes)
	slices.Sort(want)
	if !slices.Equal(gotRO, want) {
		t.Errorf("read-only listener serves\n%q\nwant\n%q", gotRO, want)
	}
}

// TestReadOnlyRefusals spells out what ro must never serve.
func TestReadOnlyRefusals(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := withGuard(t, newHandler(newRouter(testBackends(), logger), handlerOptions{Logger: logger}), "mode=ro", nil, 0)
	for _, req := range []string{
		"POST /containers/create", "POST /containers/x/exec", "POST /exec/x/start", "POST /containers/x/attach",
		"GET /containers/x/attach/ws", "GET /containers/x/archive?path=/", "HEAD /containers/x/archive?path=/",
		"GET /containers/x/export", "GET /images/get?names=a", "GET /images/busybox/get", "HEAD /images/busybox/get",
		"POST /containers/x/wait", "DELETE /containers/x", "PUT /containers/x/archive?path=/", "POST /images/load",
		"GET /exec/x/json", "POST /auth",
	} {
		method, path, _ := strings.Cut(req, " ")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/v1.50"+path, nil))
		if rec.Code != http.StatusForbidden || (method != "HEAD" && !strings.Contains(rec.Body.String(), `access denied by listener policy \"mode=ro\"`)) {
			t.Errorf("%s on a read-only listener = %d %q, want 403 naming the policy", req, rec.Code, rec.Body.String())
		}
	}
}

// testPlugin is an authorization plugin speaking dockerd's protocol on a
// unix socket in dir. decide answers AuthZReq; res answers AuthZRes.
type testPlugin struct {
	mu        sync.Mutex
	requests  []authz.Request
	responses []authz.Request
	decide    func(req authz.Request) (int, string) // status, raw JSON answer
	res       func(req authz.Request) (int, string)
	srv       *http.Server
}

func startPlugin(t *testing.T, dir, name string, p *testPlugin) string {
	t.Helper()
	sock := filepath.Join(dir, name+".sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"Implements":["authz"]}`)
	})
	serve := func(record *[]authz.Request, f func(authz.Request) (int, string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req authz.Request
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				t.Errorf("plugin: bad message: %v", err)
			}
			p.mu.Lock()
			*record = append(*record, req)
			p.mu.Unlock()
			code, body := 200, `{"Allow":true}`
			if f != nil {
				code, body = f(req)
			}
			w.WriteHeader(code)
			io.WriteString(w, body)
		}
	}
	mux.HandleFunc("POST /AuthZPlugin.AuthZReq", serve(&p.requests, p.decide))
	mux.HandleFunc("POST /AuthZPlugin.AuthZRes", serve(&p.responses, p.res))
	p.srv = &http.Server{Handler: mux}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return sock
}

// recordingContainers counts creates: the state change a refused request
// must not cause.
type recordingContainers struct {
	fakeContainers
	creates *atomic.Int32
	last    *atomic.Pointer[types.CreateRequest]
}

func (c recordingContainers) ContainerCreate(ctx context.Context, name string, req *types.CreateRequest) (*types.CreateResponse, error) {
	c.creates.Add(1)
	c.last.Store(req)
	return &types.CreateResponse{ID: "0123456789ab", Warnings: []string{}}, nil
}

type authzFixture struct {
	dir     string
	socket  string
	creates atomic.Int32
	last    atomic.Pointer[types.CreateRequest]
	client  *http.Client
	guards  *guards
}

// startAuthzDaemon serves the real router and middleware chain on a unix
// socket with the named plugins (found in dir), as run does.
func startAuthzDaemon(t *testing.T, dir string, plugins ...string) *authzFixture {
	t.Helper()
	f := &authzFixture{dir: dir, socket: filepath.Join(dir, "api.sock")}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	b := testBackends()
	b.Container = recordingContainers{creates: &f.creates, last: &f.last}
	chain, err := authz.NewChain(plugins, authz.Dirs{Sockets: dir, Specs: []string{dir}, RetryTimeout: 300 * time.Millisecond}, logger)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	a := listenAddr{Proto: "unix", Addr: f.socket}
	srv := &apiServer{
		handler: newHandler(newRouter(b, logger), handlerOptions{Logger: logger, ServerHeader: "Docker/test (linux)"}),
		logger:  logger, grace: time.Second,
		guards: newGuards(logger, chain, 4, []listenAddr{a}),
	}
	f.guards = srv.guards
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, []apiListener{{Listener: l, Addr: a}}) }()
	t.Cleanup(func() { cancel(); <-done; f.guards.authz.Load().Close() })
	f.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", f.socket)
	}}}
	return f
}

func (f *authzFixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://d"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthzPluginAllowDeny(t *testing.T) {
	dir := t.TempDir()
	p := &testPlugin{decide: func(req authz.Request) (int, string) {
		if strings.Contains(string(req.RequestBody), `"Privileged":true`) || strings.HasSuffix(req.RequestURI, "/containers/json") {
			return 200, `{"Allow":false,"Msg":"privileged containers are not allowed"}`
		}
		return 200, `{"Allow":true}`
	}}
	startPlugin(t, dir, "guard", p)
	f := startAuthzDaemon(t, dir, "guard")

	// Allowed: the plugin saw exactly the body the handler decoded.
	body := `{"Image":"busybox","Env":["A=1"]}`
	if code, out := f.do(t, "POST", "/v1.50/containers/create?name=a", body); code != 201 {
		t.Fatalf("allowed create = %d %s", code, out)
	}
	p.mu.Lock()
	got := p.requests[len(p.requests)-1]
	res := p.responses[len(p.responses)-1]
	p.mu.Unlock()
	if string(got.RequestBody) != body || got.RequestMethod != "POST" || got.RequestURI != "/v1.50/containers/create?name=a" || got.RequestHeaders["Content-Type"] != "application/json" {
		t.Errorf("AuthZReq = %+v", got)
	}
	if res.ResponseStatusCode != 201 || !strings.Contains(string(res.ResponseBody), `"Id":"0123456789ab"`) {
		t.Errorf("AuthZRes = status %d body %q", res.ResponseStatusCode, res.ResponseBody)
	}
	if f.creates.Load() != 1 {
		t.Fatalf("creates = %d, want 1", f.creates.Load())
	}

	// Denied: dockerd's 403 and message, no handler.
	code, out := f.do(t, "POST", "/v1.50/containers/create", `{"Image":"busybox","HostConfig":{"Privileged":true}}`)
	if want := `{"message":"authorization denied by plugin guard: privileged containers are not allowed"}`; code != 403 || strings.TrimSpace(out) != want {
		t.Errorf("denied create = %d %s, want 403 %s", code, out, want)
	}
	if f.creates.Load() != 1 {
		t.Errorf("a denied create reached the handler")
	}

	// The real docker CLI shows dockerd's text.
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("docker CLI not found: the tests need it (see .ci/run)")
	}
	cmd := exec.Command(docker, "ps")
	cmd.Env = []string{"DOCKER_HOST=unix://" + f.socket, "HOME=" + dir, "DOCKER_CONFIG=" + dir}
	outb, err := cmd.CombinedOutput()
	if want := "Error response from daemon: authorization denied by plugin guard: privileged containers are not allowed"; err == nil || !strings.Contains(string(outb), want) {
		t.Errorf("docker ps = %v %q, want %q", err, outb, want)
	}
}

func TestAuthzPluginFailures(t *testing.T) {
	tests := []struct {
		name   string
		plugin *testPlugin // nil: no plugin at all
		kill   bool        // started, then stopped
		status int
		want   string
	}{
		{"not found", nil, false, 500, `{"message":"plugin guard failed with error: plugin not found"}`},
		{"down", &testPlugin{}, true, 500, `plugin guard failed with error: Post \"http://plugin/AuthZPlugin.AuthZReq\": dial unix`},
		{"err field", &testPlugin{decide: func(authz.Request) (int, string) { return 200, `{"Allow":true,"Err":"policy store offline"}` }}, false, 500, `{"message":"plugin guard failed with error: policy store offline"}`},
		{"http error with Err", &testPlugin{decide: func(authz.Request) (int, string) { return 500, `{"Err":"boom"}` }}, false, 500, `{"message":"plugin guard failed with error: boom"}`},
		{"malformed", &testPlugin{decide: func(authz.Request) (int, string) { return 200, `{"Allow":tru` }}, false, 500, `plugin guard failed with error: AuthZPlugin.AuthZReq: invalid answer`},
		{"not json at all", &testPlugin{decide: func(authz.Request) (int, string) { return 404, `404 page not found` }}, false, 500, `{"message":"plugin guard failed with error: AuthZPlugin.AuthZReq: 404 page not found"}`},
		{"allow missing", &testPlugin{decide: func(authz.Request) (int, string) { return 200, `{}` }}, false, 403, `{"message":"authorization denied by plugin guard: "}`},
		{"response denied", &testPlugin{res: func(authz.Request) (int, string) { return 200, `{"Allow":false,"Msg":"no peeking"}` }}, false, 403, `{"message":"authorization denied by plugin guard: no peeking"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.plugin != nil {
				startPlugin(t, dir, "guard", tt.plugin)
			}
			f := startAuthzDaemon(t, dir, "guard")
			if tt.kill {
				if code, out := f.do(t, "GET", "/v1.50/version", ""); code != 200 {
					t.Fatalf("before stopping the plugin: %d %s", code, out)
				}
				tt.plugin.srv.Close()
			}
			code, out := f.do(t, "POST", "/v1.50/containers/create", `{"Image":"busybox"}`)
			if code != tt.status || !strings.Contains(out, tt.want) {
				t.Errorf("create = %d %s, want %d containing %s", code, out, tt.status, tt.want)
			}
			if tt.name != "response denied" && f.creates.Load() != 0 {
				t.Errorf("the handler ran although authorization failed")
			}
		})
	}
}

// TestAuthzBodyShapes sends the CVE-2024-41110 and CVE-2026-34040 shapes
// raw: the plugin denies privileged containers, and none may be created.
func TestAuthzBodyShapes(t *testing.T) {
	dir := t.TempDir()
	p := &testPlugin{decide: func(req authz.Request) (int, string) {
		if strings.Contains(string(req.RequestBody), `"Privileged":true`) {
			return 200, `{"Allow":false,"Msg":"privileged"}`
		}
		return 200, `{"Allow":true}`
	}}
	startPlugin(t, dir, "guard", p)
	f := startAuthzDaemon(t, dir, "guard")
	priv := `{"Image":"busybox","HostConfig":{"Privileged":true}}`
	pad := `{"Image":"busybox","Labels":{"pad":"` + strings.Repeat("x", authz.MaxBodySize) + `"},"HostConfig":{"Privileged":true}}`
	chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(s), s) }
	tests := []struct {
		name, raw string
		status    int
	}{
		{"chunked", "POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(priv), 403},
		{"chunked with Content-Length 0", "POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(priv), 403},
		{"over the limit", fmt.Sprintf("POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(pad), pad), 413},
		{"over the limit chunked", "POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(pad), 413},
		{"no content type", fmt.Sprintf("POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n%s", len(priv), priv), 403},
		{"Content-Length 0 with bytes following", "POST /v1.50/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n" + priv, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", f.socket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() {
				io.WriteString(c, tt.raw)
				if tt.status == 0 {
					// Nothing more comes: the server must not wait for the
					// rest of a "request" made of the trailing bytes.
					c.(*net.UnixConn).CloseWrite()
				}
			}()
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if tt.status != 0 && resp.StatusCode != tt.status {
				t.Errorf("status = %d %s, want %d", resp.StatusCode, b, tt.status)
			}
			if tt.status == 0 {
				// An empty create (no image) is what the plugin saw and what
				// the handler got; the bytes after it are a second request,
				// which the server refuses as malformed.
				if resp.StatusCode == 201 {
					if r := f.last.Load(); r != nil && r.HostConfig != nil && r.HostConfig.Privileged {
						t.Errorf("the handler got a privileged config the plugin never saw")
					}
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if resp2, err := http.ReadResponse(br, nil); err == nil && resp2.StatusCode < 400 {
					t.Errorf("the trailing bytes were served: %d", resp2.StatusCode)
				}
			}
			if r := f.last.Load(); r != nil && r.HostConfig != nil && r.HostConfig.Privileged {
				t.Fatalf("a privileged container was created")
			}
		})
	}
}

// TestGuardsReload swaps a listener's policy and the plugin chain the way
// a SIGHUP reload does, while the server keeps running.
func TestGuardsReload(t *testing.T) {
	dir := t.TempDir()
	p := &testPlugin{decide: func(authz.Request) (int, string) { return 200, `{"Allow":false,"Msg":"closed"}` }}
	startPlugin(t, dir, "guard", p)
	f := startAuthzDaemon(t, dir)
	if code, out := f.do(t, "POST", "/v1.50/containers/create", `{"Image":"busybox"}`); code != 201 {
		t.Fatalf("before reload: %d %s", code, out)
	}
	g := f.guards
	chain, err := authz.NewChain([]string{"guard"}, authz.Dirs{Sockets: dir, Specs: []string{dir}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ro, _ := policy.Parse("mode=ro")
	key := listenAddr{Proto: "unix", Addr: f.socket}.Key()
	if err := g.Reload(chain, 4, map[string]policy.Policy{key: ro, "unix:///nowhere.sock": ro}); err == nil {
		t.Fatal("reload naming a listener that does not exist succeeded")
	}
	if code, _ := f.do(t, "POST", "/v1.50/containers/create", `{"Image":"busybox"}`); code != 201 {
		t.Fatalf("a failed reload changed the state: %d", code)
	}
	if err := g.Reload(chain, 4, map[string]policy.Policy{key: ro}); err != nil {
		t.Fatal(err)
	}
	if code, out := f.do(t, "POST", "/v1.50/containers/create", `{"Image":"busybox"}`); code != 403 || !strings.Contains(out, "listener policy") {
		t.Errorf("after reload to ro: %d %s", code, out)
	}
	if code, out := f.do(t, "GET", "/v1.50/containers/json", ""); code != 403 || !strings.Contains(out, "authorization denied by plugin guard: closed") {
		t.Errorf("after reload with a plugin: %d %s", code, out)
	}
	if err := g.Reload(nil, 4, map[string]policy.Policy{key: {}}); err != nil {
		t.Fatal(err)
	}
	if code, out := f.do(t, "POST", "/v1.50/containers/create", `{"Image":"busybox"}`); code != 201 {
		t.Errorf("after reload back to open: %d %s", code, out)
	}
}

// BenchmarkPingAuthz measures GET /_ping on a unix socket from 16
// concurrent keep-alive clients, without and with one authorization plugin
// (a trivial allow-all plugin on its own unix socket, in this process).
func BenchmarkPingAuthz(b *testing.B) {
	for _, plugins := range [][]string{nil, {"allow"}} {
		name := "none"
		if plugins != nil {
			name = "one-plugin"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			logger := slog.New(slog.DiscardHandler)
			if plugins != nil {
				l, err := net.Listen("unix", filepath.Join(dir, "allow.sock"))
				if err != nil {
					b.Fatal(err)
				}
				mux := http.NewServeMux()
				mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"Implements":["authz"]}`) })
				allow := func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					io.WriteString(w, `{"Allow":true}`)
				}
				mux.HandleFunc("POST /AuthZPlugin.AuthZReq", allow)
				mux.HandleFunc("POST /AuthZPlugin.AuthZRes", allow)
				ps := &http.Server{Handler: mux}
				go ps.Serve(l)
				defer ps.Close()
			}
			chain, err := authz.NewChain(plugins, authz.Dirs{Sockets: dir, Specs: []string{dir}}, logger)
			if err != nil {
				b.Fatal(err)
			}
			defer chain.Close()
			sock := filepath.Join(dir, "api.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				b.Fatal(err)
			}
			a := listenAddr{Proto: "unix", Addr: sock}
			srv := &apiServer{
				handler: newHandler(newRouter(testBackends(), logger), handlerOptions{Logger: logger, ServerHeader: "Docker/bench (linux)"}),
				logger:  logger, grace: time.Second,
				guards: newGuards(logger, chain, 0, []listenAddr{a}),
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.serve(ctx, []apiListener{{Listener: l, Addr: a}}) }()
			defer func() { cancel(); <-done }()
			client := unixClient(sock)
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.ReportAllocs()
			b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get("http://skiffd/v1.50/_ping")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// TestAuthzTLSUser: over a --tlsverify listener the plugin learns the
// client certificate's common name as User, with UserAuthNMethod "TLS",
// and the certificate itself in RequestPeerCertificates.
func TestAuthzTLSUser(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	p := &testPlugin{}
	startPlugin(t, dir, "guard", p)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	chain, err := authz.NewChain([]string{"guard"}, authz.Dirs{Sockets: dir, Specs: []string{dir}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	cfg := pki.config()
	cfg.Hosts = []string{"tcp://127.0.0.1:0"}
	ls, err := openListeners(cfg, pki.serverConfig(t), noEnv, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := &apiServer{
		handler: newHandler(newRouter(testBackends(), logger), handlerOptions{Logger: logger}),
		logger:  logger, grace: time.Second,
		guards: newGuards(logger, chain, 0, []listenAddr{ls[0].Addr}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ls) }()
	defer func() { cancel(); <-done }()

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.client}}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + ls[0].Addr.Addr + "/v1.50/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) != 1 {
		t.Fatalf("plugin saw %d requests, want 1", len(p.requests))
	}
	got := p.requests[0]
	if got.User != "client" || got.UserAuthNMethod != "TLS" || len(got.RequestPeerCertificates) != 1 ||
		!bytes.Equal(got.RequestPeerCertificates[0].Raw, pki.client.Leaf.Raw) {
		t.Errorf("AuthZReq User=%q UserAuthNMethod=%q certs=%d, want client/TLS/the client certificate", got.User, got.UserAuthNMethod, len(got.RequestPeerCertificates))
	}
}

// TestAuthzStreams: with a plugin, a hijacked websocket attach and a
// flushed events stream still flow (the response is not held back).
func TestAuthzStreams(t *testing.T) {
	dir := t.TempDir()
	p := &testPlugin{}
	startPlugin(t, dir, "guard", p)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	chain, err := authz.NewChain([]string{"guard"}, authz.Dirs{Sockets: dir, Specs: []string{dir}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	b := testBackends()
	b.Container = attachContainers{}
	live := make(chan types.EventMessage)
	b.Events = &fakeBackend{live: live}
	sock := serveTest(t, b, 0, func(g *guards) { g.authz.Store(chain) })

	ws, resp := dialWS(t, sock, "/v1.50/containers/c1/attach/ws?stream=1&stdin=1&stdout=1&stderr=1")
	if resp.StatusCode != 101 {
		t.Fatalf("websocket attach with a plugin: %s", resp.Status)
	}
	var got string
	for len(got) < len("hello\noops\n") {
		_, b := ws.recv(t)
		got += string(b)
	}
	ws.send(0x8, []byte{0x03, 0xE8})

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /v1.50/events HTTP/1.1\r\nHost: d\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events with a plugin: %v %v", resp, err)
	}
	live <- types.EventMessage{Type: "container", Action: "start", TimeNano: time.Now().UnixNano()}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.Contains(line, `"start"`) {
		t.Fatalf("event with a plugin: %q %v; the stream was held back", line, err)
	}
}

// TestAuthzLargeAnswerStreams: an answer larger than the plugin body limit
// is not held in memory until AuthZRes; the client starts receiving it
// while the handler is still writing.
func TestAuthzLargeAnswerStreams(t *testing.T) {
	dir := t.TempDir()
	startPlugin(t, dir, "guard", &testPlugin{})
	chain, err := authz.NewChain([]string{"guard"}, authz.Dirs{Sockets: dir, Specs: []string{dir}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		w.Write(make([]byte, authz.MaxBodySize+1))
		<-release // the client must have the first bytes by now
		w.Write([]byte("end"))
	})
	srv := httptest.NewServer(withGuard(t, guardRoute(routeInfo{Group: policy.ImagesSave}, h), "", chain, 0))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/images/get")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, authz.MaxBodySize+1)); err != nil {
		t.Fatalf("first part of a large answer: %v", err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "end" {
		t.Fatalf("rest = %q", rest)
	}
}
