package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// fake answers like an engine holding the volumes of the traces.
type fake struct {
	calls []string
}

func (f *fake) rec(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

var traceVol2 = &types.Volume{
	CreatedAt:  "2026-11-26T09:04:42Z",
	Driver:     "local",
	Labels:     map[string]string{"trace": "1"},
	Mountpoint: "/var/lib/docker-engine/volumes/trace-vol2/_data",
	Name:       "trace-vol2",
	Scope:      "local",
}

func (f *fake) Volumes(ctx context.Context, ef filters.Args) ([]*types.Volume, []string, error) {
	p, _ := filters.ToParam(ef)
	f.rec("list %s", p)
	if ef.Contains("bogus") {
		return nil, nil, errdefs.InvalidParameter(errors.New("invalid filter 'bogus'"))
	}
	if ef.Contains("none") {
		return nil, nil, nil
	}
	return []*types.Volume{traceVol2}, nil, nil
}

func (f *fake) VolumeCreate(ctx context.Context, req types.VolumeCreateOptions) (*types.Volume, error) {
	f.rec("create %q %q %v %v", req.Name, req.Driver, req.DriverOpts, req.Labels)
	if req.Name == "a" {
		return nil, errdefs.InvalidParameter(errors.New("create a: volume name is too short, names should be at least two alphanumeric characters"))
	}
	v := *traceVol2
	v.Name = req.Name
	v.Labels = req.Labels
	v.Mountpoint = "/var/lib/docker-engine/volumes/" + req.Name + "/_data"
	return &v, nil
}

func (f *fake) VolumeInspect(ctx context.Context, name string) (*types.Volume, error) {
	f.rec("inspect %s", name)
	if name != "trace-vol2" {
		return nil, errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
	}
	return traceVol2, nil
}

func (f *fake) VolumeRemove(ctx context.Context, name string, force bool) error {
	f.rec("rm %s %v", name, force)
	switch name {
	case "trace-vol-inuse":
		return errdefs.Conflict(errors.New("remove trace-vol-inuse: volume is in use - [cdef0e25b1759c5f4c7bc00256d24388803688cc574fb25d5783920f414fc5f0]"))
	case "trace-nonexistent":
		if !force {
			return errdefs.NotFound(errors.New("get trace-nonexistent: no such volume"))
		}
	}
	return nil
}

func (f *fake) VolumesPrune(ctx context.Context, ef filters.Args) (*types.VolumesPruneReport, error) {
	p, _ := filters.ToParam(ef)
	f.rec("prune %s", p)
	if ef.Contains("label") {
		return &types.VolumesPruneReport{VolumesDeleted: []string{"trace-vol3"}}, nil
	}
	return &types.VolumesPruneReport{}, nil
}

// serve runs the handler behind the same error adapter and version
// recording package main uses.
func serve(t *testing.T, f *fake, pattern string, h wire.HandlerFunc, version string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(wire.WithVersion(r.Context(), version))
		if err := h(w, r); err != nil {
			wire.WriteError(w, errdefs.Status(err), err.Error())
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandlers(t *testing.T) {
	tests := []struct {
		name       string
		pattern    string
		handler    func(*fake) wire.HandlerFunc
		version    string
		method     string
		path       string
		body       string
		wantStatus int
		wantBody   string
		wantCall   string
	}{
		{
			name: "create from the trace", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			method: "POST", path: "/volumes/create", body: `{"Driver":"local","Labels":{"trace":"1"},"Name":"trace-vol2"}`,
			wantStatus: 201,
			wantBody:   `{"CreatedAt":"2026-11-26T09:04:42Z","Driver":"local","Labels":{"trace":"1"},"Mountpoint":"/var/lib/docker-engine/volumes/trace-vol2/_data","Name":"trace-vol2","Options":null,"Scope":"local"}` + "\n",
			wantCall:   `create "trace-vol2" "local" map[] map[trace:1]`,
		},
		{
			name: "create from compose without a driver", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			method: "POST", path: "/volumes/create", body: `{"Name": "trace-compose_data", "Labels": {"com.docker.compose.project": "trace-compose"}}`,
			wantStatus: 201, wantCall: `create "trace-compose_data" "" map[] map[com.docker.compose.project:trace-compose]`,
		},
		{
			name: "create with an empty body", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			method: "POST", path: "/volumes/create", wantStatus: 201, wantCall: `create "" "" map[] map[]`,
		},
		{
			name: "create with a bad name", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			method: "POST", path: "/volumes/create", body: `{"Name":"a"}`, wantStatus: 400,
			wantBody: `{"message":"create a: volume name is too short, names should be at least two alphanumeric characters"}` + "\n",
		},
		{
			name: "create with bad JSON", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			method: "POST", path: "/volumes/create", body: `{"Name":`, wantStatus: 400,
		},
		{
			name: "create a cluster volume", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			version: "1.50", method: "POST", path: "/volumes/create", body: `{"Name":"cv","ClusterVolumeSpec":{"Group":"g"}}`, wantStatus: 503,
			wantBody: `{"message":"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."}` + "\n",
		},
		{
			name: "cluster spec ignored before 1.42", pattern: "POST /volumes/create", handler: func(f *fake) wire.HandlerFunc { return Create(f) },
			version: "1.41", method: "POST", path: "/volumes/create", body: `{"Name":"cv","ClusterVolumeSpec":{}}`, wantStatus: 201,
			wantCall: `create "cv" "" map[] map[]`,
		},
		{
			name: "list", pattern: "GET /volumes", handler: func(f *fake) wire.HandlerFunc { return List(f) },
			method: "GET", path: "/volumes?filters=%7B%22label%22%3A%7B%22trace%3D1%22%3Atrue%7D%7D", wantStatus: 200,
			wantBody: `{"Volumes":[{"CreatedAt":"2026-11-26T09:04:42Z","Driver":"local","Labels":{"trace":"1"},"Mountpoint":"/var/lib/docker-engine/volumes/trace-vol2/_data","Name":"trace-vol2","Options":null,"Scope":"local"}],"Warnings":null}` + "\n",
			wantCall: `list {"label":{"trace=1":true}}`,
		},
		{
			name: "list nothing", pattern: "GET /volumes", handler: func(f *fake) wire.HandlerFunc { return List(f) },
			method: "GET", path: `/volumes?filters={"none":["x"]}`, wantStatus: 200, wantBody: `{"Volumes":[],"Warnings":null}` + "\n",
		},
		{
			name: "list with a broken filter", pattern: "GET /volumes", handler: func(f *fake) wire.HandlerFunc { return List(f) },
			method: "GET", path: "/volumes?filters=%7Bbad", wantStatus: 400, wantBody: `{"message":"error reading volume filters: invalid filter"}` + "\n",
		},
		{
			name: "list with an unknown filter", pattern: "GET /volumes", handler: func(f *fake) wire.HandlerFunc { return List(f) },
			method: "GET", path: `/volumes?filters={"bogus":["1"]}`, wantStatus: 400, wantBody: `{"message":"invalid filter 'bogus'"}` + "\n",
		},
		{
			name: "inspect", pattern: "GET /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Inspect(f) },
			method: "GET", path: "/volumes/trace-vol2", wantStatus: 200,
			wantBody: `{"CreatedAt":"2026-11-26T09:04:42Z","Driver":"local","Labels":{"trace":"1"},"Mountpoint":"/var/lib/docker-engine/volumes/trace-vol2/_data","Name":"trace-vol2","Options":null,"Scope":"local"}` + "\n",
		},
		{
			name: "inspect missing", pattern: "GET /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Inspect(f) },
			method: "GET", path: "/volumes/trace-nonexistent", wantStatus: 404, wantBody: `{"message":"get trace-nonexistent: no such volume"}` + "\n",
		},
		{
			name: "update", pattern: "PUT /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Update() },
			method: "PUT", path: "/volumes/x?version=1", body: `{}`, wantStatus: 503,
			wantBody: `{"message":"volume update only valid for cluster volumes, but swarm is unavailable"}` + "\n",
		},
		{
			name: "remove", pattern: "DELETE /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Remove(f) },
			method: "DELETE", path: "/volumes/trace-vol2", wantStatus: 204, wantBody: "", wantCall: "rm trace-vol2 false",
		},
		{
			name: "remove in use", pattern: "DELETE /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Remove(f) },
			method: "DELETE", path: "/volumes/trace-vol-inuse?force=1", wantStatus: 409,
			wantBody: `{"message":"remove trace-vol-inuse: volume is in use - [cdef0e25b1759c5f4c7bc00256d24388803688cc574fb25d5783920f414fc5f0]"}` + "\n",
			wantCall: "rm trace-vol-inuse true",
		},
		{
			name: "remove missing", pattern: "DELETE /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Remove(f) },
			method: "DELETE", path: "/volumes/trace-nonexistent", wantStatus: 404, wantBody: `{"message":"get trace-nonexistent: no such volume"}` + "\n",
		},
		{
			name: "force remove missing", pattern: "DELETE /volumes/{name}", handler: func(f *fake) wire.HandlerFunc { return Remove(f) },
			method: "DELETE", path: "/volumes/trace-nonexistent?force=True", wantStatus: 204, wantCall: "rm trace-nonexistent true",
		},
		{
			name: "prune from the trace, API 1.41", pattern: "POST /volumes/prune", handler: func(f *fake) wire.HandlerFunc { return Prune(f) },
			version: "1.41", method: "POST", path: "/volumes/prune?filters=%7B%22label%22%3A%7B%22trace-prune%3D1%22%3Atrue%7D%7D", wantStatus: 200,
			wantBody: `{"VolumesDeleted":["trace-vol3"],"SpaceReclaimed":0}` + "\n",
			wantCall: `prune {"all":{"true":true},"label":{"trace-prune=1":true}}`,
		},
		{
			name: "prune, API 1.50 keeps only anonymous", pattern: "POST /volumes/prune", handler: func(f *fake) wire.HandlerFunc { return Prune(f) },
			version: "1.50", method: "POST", path: "/volumes/prune", wantStatus: 200,
			wantBody: `{"VolumesDeleted":[],"SpaceReclaimed":0}` + "\n",
			wantCall: `prune `,
		},
		{
			name: "prune with a broken filter", pattern: "POST /volumes/prune", handler: func(f *fake) wire.HandlerFunc { return Prune(f) },
			method: "POST", path: "/volumes/prune?filters=%7Bbad", wantStatus: 400, wantBody: `{"message":"invalid filter"}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{}
			srv := serve(t, f, tt.pattern, tt.handler(f), tt.version)
			status, body := do(t, srv, tt.method, tt.path, tt.body)
			if status != tt.wantStatus {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, status, body, tt.wantStatus)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("%s %s body =\n%s\nwant\n%s", tt.method, tt.path, body, tt.wantBody)
			}
			if tt.wantStatus == http.StatusNoContent && body != "" {
				t.Errorf("204 with a body: %q", body)
			}
			if tt.wantCall != "" && (len(f.calls) != 1 || f.calls[0] != tt.wantCall) {
				t.Errorf("backend calls = %q, want [%q]", f.calls, tt.wantCall)
			}
		})
	}
}
