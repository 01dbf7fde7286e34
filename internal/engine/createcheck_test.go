package engine

import (
	"slices"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/image"
)

// TestNormalizeCreate checks the one pass over a create request: the
// image's config under the client's, dockerd's defaults, the process, and
// the client's request left as it was.
func TestNormalizeCreate(t *testing.T) {
	img := &image.ContainerConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, WorkingDir: "/srv/"}
	hc := &types.HostConfig{NetworkMode: "host"}
	req := &types.CreateRequest{Config: &types.Config{Image: "busybox", Env: []string{"A=1"}}, HostConfig: hc}
	p, err := normalizeCreate("web", req, img, createHost{cgroup: fullHost, ncpu: 4, hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	if p.path != "sh" || len(p.args) != 0 {
		t.Errorf("process = %q %q, want sh", p.path, p.args)
	}
	if want := []string{"A=1", "PATH=/bin"}; !slices.Equal(p.config.Env, want) {
		t.Errorf("Env = %q, want %q", p.config.Env, want)
	}
	if p.config.WorkingDir != "/srv" || p.config.Hostname != "box" {
		t.Errorf("WorkingDir, Hostname = %q, %q, want /srv, box", p.config.WorkingDir, p.config.Hostname)
	}
	h := p.hostConfig
	if h.LogConfig.Type != "json-file" || h.RestartPolicy.Name != types.RestartPolicyDisabled || h.ShmSize != defaultShmSize || h.OomKillDisable == nil || p.warnings == nil {
		t.Errorf("defaults not filled in: %+v, warnings %v", h, p.warnings)
	}
	if h == hc || hc.LogConfig.Type != "" || hc.ShmSize != 0 {
		t.Errorf("the client's HostConfig was changed: %+v", hc)
	}
	if req.Config.WorkingDir != "" || req.Config.Hostname != "" {
		t.Errorf("the client's Config was changed: %+v", req.Config)
	}

	for _, tc := range []struct {
		name    string
		ctrName string
		req     types.CreateRequest
		kind    error
	}{
		{"bad name", "a b", types.CreateRequest{Config: &types.Config{Image: "x", Cmd: types.StrSlice{"sh"}}}, errdefs.ErrInvalidParameter},
		{"no command", "", types.CreateRequest{Config: &types.Config{Image: "x"}}, errdefs.ErrInvalidParameter},
		{"relative workdir", "", types.CreateRequest{Config: &types.Config{Image: "x", Cmd: types.StrSlice{"sh"}, WorkingDir: "srv"}}, errdefs.ErrInvalidParameter},
		{"bad restart policy", "", types.CreateRequest{Config: &types.Config{Image: "x", Cmd: types.StrSlice{"sh"}}, HostConfig: &types.HostConfig{RestartPolicy: types.RestartPolicy{Name: "sometimes"}}}, errdefs.ErrInvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := normalizeCreate(tc.ctrName, &tc.req, nil, createHost{cgroup: fullHost, ncpu: 4}); errdefs.KindOf(err) != tc.kind {
				t.Errorf("normalizeCreate = %v (kind %v), want kind %v", err, errdefs.KindOf(err), tc.kind)
			}
		})
	}
}
