package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiffd/internal/api/wire"
)

func TestSplitVersion(t *testing.T) {
	tests := []struct {
		path, version, rest string
		ok                  bool
	}{
		{"/v1.50/containers/json", "1.50", "/containers/json", true},
		{"/v1.24/_ping", "1.24", "/_ping", true},
		{"/v1/info", "1", "/info", true},
		{"/v1.99/x/y", "1.99", "/x/y", true},
		{"/volumes", "", "/volumes", false},
		{"/v1.50", "", "/v1.50", false},
		{"/v/info", "", "/v/info", false},
		{"/vfoo/info", "", "/vfoo/info", false},
		{"/_ping", "", "/_ping", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		v, rest, ok := splitVersion(tt.path)
		if v != tt.version || rest != tt.rest || ok != tt.ok {
			t.Errorf("splitVersion(%q) = %q, %q, %v; want %q, %q, %v", tt.path, v, rest, ok, tt.version, tt.rest, tt.ok)
		}
	}
}

// echoVersion answers with the version and path the handler saw.
func echoVersion() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(wire.VersionFrom(r.Context()) + " " + r.URL.Path))
	})
}

func testChain(t *testing.T, opts handlerOptions, next http.Handler) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.ServerHeader == "" {
		opts.ServerHeader = "Docker/test (linux)"
	}
	return newHandler(next, opts)
}

func TestVersionMiddleware(t *testing.T) {
	h := testChain(t, handlerOptions{}, echoVersion())
	tests := []struct {
		path       string
		status     int
		body       string
		wantCTJSON bool
	}{
		{"/_ping", 200, " /_ping", false},
		{"/v1.50/info", 200, "1.50 /info", false},
		{"/v1.24/version", 200, "1.24 /version", false},
		{"/v1.41/containers/x/json", 200, "1.41 /containers/x/json", false},
		{"/v1.99/info", 400, `{"message":"client version 1.99 is too new. Maximum supported API version is 1.50"}` + "\n", true},
		{"/v1.51/info", 400, `{"message":"client version 1.51 is too new. Maximum supported API version is 1.50"}` + "\n", true},
		{"/v1.23/info", 400, "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\n", false},
		{"/v1.0/_ping", 400, "client version 1.0 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.status || rec.Body.String() != tt.body {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, rec.Code, rec.Body.String(), tt.status, tt.body)
			}
			hdr := rec.Header()
			for k, want := range map[string]string{"Api-Version": "1.50", "Ostype": "linux", "Server": "Docker/test (linux)", "Docker-Experimental": "false"} {
				if tt.status == 400 && k == "Docker-Experimental" {
					continue // the version check answers before the experimental middleware runs
				}
				if got := hdr.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			ct := hdr.Get("Content-Type")
			if tt.wantCTJSON && ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if tt.status == 400 && !tt.wantCTJSON && !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain for too-old clients", ct)
			}
		})
	}
}

func TestVersionMiddlewareKeepsEscapedPath(t *testing.T) {
	h := testChain(t, handlerOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.URL.Path + "|" + r.URL.EscapedPath()))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1.50/images/localhost:5000%2Fa/json", nil))
	if got, want := rec.Body.String(), "/images/localhost:5000/a/json|/images/localhost:5000%2Fa/json"; got != want {
		t.Errorf("path seen = %q, want %q", got, want)
	}
}

func TestExperimentalHeader(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := testChain(t, handlerOptions{Experimental: on}, echoVersion())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/_ping", nil))
		want := "false"
		if on {
			want = "true"
		}
		if got := rec.Header().Get("Docker-Experimental"); got != want {
			t.Errorf("experimental=%v: Docker-Experimental = %q, want %q", on, got, want)
		}
	}
}

func TestCORS(t *testing.T) {
	off := testChain(t, handlerOptions{}, echoVersion())
	rec := httptest.NewRecorder()
	off.ServeHTTP(rec, httptest.NewRequest("GET", "/info", nil))
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("without --api-cors-header: Access-Control-Allow-Origin = %q, want none", got)
	}

	called := false
	on := testChain(t, handlerOptions{CORSOrigin: "https://ui.example"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
	}))
	rec = httptest.NewRecorder()
	on.ServeHTTP(rec, httptest.NewRequest("OPTIONS", "/v1.50/containers/json", nil))
	// The preflight goes on to the route (the options route answers it, see
	// TestOptionsAnyPath), with the CORS headers already set, as in dockerd.
	if rec.Code != 200 || !called {
		t.Errorf("preflight: status %d, handler called %v; want it passed on to the handler", rec.Code, called)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "https://ui.example",
		"Access-Control-Allow-Methods": "HEAD, GET, POST, DELETE, PUT, OPTIONS",
		"Access-Control-Allow-Headers": "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	rec = httptest.NewRecorder()
	on.ServeHTTP(rec, httptest.NewRequest("GET", "/info", nil))
	if !called || rec.Header().Get("Access-Control-Allow-Origin") != "https://ui.example" {
		t.Errorf("GET with CORS: handler called %v, origin header %q", called, rec.Header().Get("Access-Control-Allow-Origin"))
	}
}

func TestAuthzHookRunsLast(t *testing.T) {
	var order []string
	deny := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			order = append(order, "authz saw "+wire.VersionFrom(r.Context())+" "+r.URL.Path)
			wire.WriteError(w, http.StatusForbidden, "authorization denied by plugin test")
		})
	}
	h := testChain(t, handlerOptions{Authz: []middleware{deny}}, echoVersion())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1.44/containers/create", nil))
	if rec.Code != 403 || len(order) != 1 || order[0] != "authz saw 1.44 /containers/create" {
		t.Errorf("authz: status %d, calls %q; want 403 after version stripping", rec.Code, order)
	}
}

func TestRecoverMiddleware(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	h := testChain(t, handlerOptions{Logger: logger}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/info", nil))
	var body wire.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 500 || body.Message == "" {
		t.Errorf("panic answer = %d %q (%v), want 500 with a JSON message", rec.Code, rec.Body.String(), err)
	}
	if !strings.Contains(logBuf.String(), "handler panic") || !strings.Contains(logBuf.String(), "boom") {
		t.Errorf("panic not logged: %q", logBuf.String())
	}
}

func TestLogMiddlewareDebugOnly(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logBuf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: level}))
		h := testChain(t, handlerOptions{Logger: logger}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}))
		req := httptest.NewRequest("POST", "/v1.50/containers/create", strings.NewReader(`{"Env":["SECRET=hunter2"]}`))
		h.ServeHTTP(httptest.NewRecorder(), req)
		logged := logBuf.String()
		if level == slog.LevelDebug {
			for _, want := range []string{"method=POST", "path=/v1.50/containers/create", "status=418", "duration="} {
				if !strings.Contains(logged, want) {
					t.Errorf("debug log %q lacks %q", logged, want)
				}
			}
		} else if logged != "" {
			t.Errorf("info level logged %q, want nothing", logged)
		}
		if strings.Contains(logged, "hunter2") {
			t.Errorf("request body leaked into the log: %q", logged)
		}
	}
}
