package container

import (
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

func mustArgs(t testing.TB, param string) filters.Args {
	t.Helper()
	a, err := filters.FromParam(param)
	if err != nil {
		t.Fatalf("FromParam(%s): %v", param, err)
	}
	return a
}

// fixture builds six snapshots, oldest first:
//
//	web        running   label app=web   image aaa  port 80->8080
//	db         exited 3  label app=db    volume data:/var/lib/db
//	cache      created                   network none
//	job        exited 0                  mount volume logs:/logs
//	pausy      paused                    healthy
//	restarter  restarting (1)            isolation process
func fixture() []*Container {
	mk := func(i int, name, idPrefix string, st *State) *Container {
		c := &Container{
			ID:         testID(idPrefix),
			Name:       "/" + name,
			Created:    now.Add(time.Duration(i) * time.Minute),
			Config:     &types.Config{Image: "busybox", Labels: map[string]string{}},
			HostConfig: &types.HostConfig{NetworkMode: "default"},
			ImageID:    "sha256:" + strings.Repeat("b", 64),
			State:      st,
		}
		return c
	}
	started := now.Add(-time.Hour)
	web := mk(1, "web", "a1", &State{Running: true, Pid: 10, StartedAt: started})
	web.Config.Labels["app"] = "web"
	web.ImageID = "sha256:" + strings.Repeat("a", 64)
	web.NetworkSettings = &types.NetworkSettings{
		Ports:    types.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8080"}}, "81/udp": nil},
		Networks: map[string]*types.EndpointSettings{"bridge": {NetworkID: "38a7ca67b855"}},
	}
	db := mk(2, "db", "a2", &State{ExitCode: 3, StartedAt: started, FinishedAt: now})
	db.Config.Labels["app"] = "db"
	db.HostConfig.Binds = []string{"data:/var/lib/db"}
	cache := mk(3, "cache", "b1", &State{})
	cache.HostConfig.NetworkMode = "none"
	job := mk(4, "job", "b2", &State{StartedAt: started, FinishedAt: now})
	job.HostConfig.Mounts = []types.Mount{{Type: "volume", Source: "logs", Target: "/logs"}}
	pausy := mk(5, "pausy", "c1", &State{Running: true, Paused: true, StartedAt: started, Health: &types.Health{Status: "healthy"}})
	restarter := mk(6, "restarter", "c2", &State{Running: true, Restarting: true, ExitCode: 1, StartedAt: started, FinishedAt: now})
	restarter.HostConfig.Isolation = "Process"
	return []*Container{web, db, cache, job, pausy, restarter}
}

func TestFilter(t *testing.T) {
	list := fixture()
	ancestor := func(ref string) []string {
		if ref == "web-image" {
			return []string{"sha256:" + strings.Repeat("a", 64)}
		}
		return nil
	}
	tests := []struct {
		name    string
		filters string
		opts    FilterOptions
		want    string // names, newest first
	}{
		{"running only by default", ``, FilterOptions{}, "restarter pausy web"},
		{"all", ``, FilterOptions{All: true}, "restarter pausy job cache db web"},
		{"status exited implies all", `{"status":{"exited":true}}`, FilterOptions{}, "job db"},
		{"status created", `{"status":["created"]}`, FilterOptions{}, "cache"},
		{"status paused", `{"status":["paused"]}`, FilterOptions{}, "pausy"},
		{"status restarting", `{"status":["restarting"]}`, FilterOptions{}, "restarter"},
		{"status running", `{"status":["running"]}`, FilterOptions{}, "web"},
		{"two statuses", `{"status":["running","created"]}`, FilterOptions{}, "cache web"},
		{"exited 3", `{"exited":["3"]}`, FilterOptions{All: true}, "db"},
		{"exited 0 skips never-started", `{"exited":["0"]}`, FilterOptions{All: true}, "job"},
		{"exited without all", `{"exited":["3"]}`, FilterOptions{}, ""},
		{"name unanchored", `{"name":{"e":true}}`, FilterOptions{All: true}, "restarter cache web"},
		{"name anchored without slash", `{"name":["^db$"]}`, FilterOptions{All: true}, "db"},
		{"name anchored with slash", `{"name":["^/db$"]}`, FilterOptions{All: true}, "db"},
		{"id prefix", `{"id":["a2"]}`, FilterOptions{All: true}, "db"},
		{"id ambiguous prefix", `{"id":["a"]}`, FilterOptions{All: true}, ""},
		{"id and name", `{"id":["a2"],"name":["web"]}`, FilterOptions{All: true}, ""},
		{"label key=value", `{"label":["app=web"]}`, FilterOptions{All: true}, "web"},
		{"label key", `{"label":["app"]}`, FilterOptions{All: true}, "db web"},
		{"before", `{"before":["job"]}`, FilterOptions{All: true}, "cache db web"},
		{"since", `{"since":["cache"]}`, FilterOptions{All: true}, "restarter pausy job"},
		{"since by prefix", `{"since":["b1"]}`, FilterOptions{All: true}, "restarter pausy job"},
		{"legacy since", ``, FilterOptions{All: true, Since: "/cache"}, "restarter pausy job"},
		{"before and since", `{"before":["restarter"],"since":["db"]}`, FilterOptions{All: true}, "pausy job cache"},
		{"limit lists stopped too", ``, FilterOptions{Limit: 2}, "restarter pausy"},
		{"limit after filters", `{"status":["exited"]}`, FilterOptions{Limit: 1}, "job"},
		{"ancestor", `{"ancestor":["web-image"]}`, FilterOptions{All: true, Ancestor: ancestor}, "web"},
		{"ancestor unknown", `{"ancestor":["nope"]}`, FilterOptions{All: true, Ancestor: ancestor}, ""},
		{"ancestor without resolver", `{"ancestor":["web-image"]}`, FilterOptions{All: true}, ""},
		{"volume by name", `{"volume":["data"]}`, FilterOptions{All: true}, "db"},
		{"volume by destination", `{"volume":["/logs"]}`, FilterOptions{All: true}, "job"},
		{"network by name", `{"network":["bridge"]}`, FilterOptions{All: true}, "restarter pausy job db web"},
		{"network by ID prefix", `{"network":["38a7"]}`, FilterOptions{All: true}, "web"},
		{"network none", `{"network":["none"]}`, FilterOptions{All: true}, "cache"},
		{"health healthy", `{"health":["healthy"]}`, FilterOptions{All: true}, "pausy"},
		{"health none", `{"health":["none"]}`, FilterOptions{All: true}, "restarter job cache db web"},
		{"isolation", `{"isolation":["process"]}`, FilterOptions{All: true}, "restarter"},
		{"isolation default", `{"isolation":["default"]}`, FilterOptions{All: true}, "pausy job cache db web"},
		{"is-task true", `{"is-task":["true"]}`, FilterOptions{All: true}, ""},
		{"is-task false", `{"is-task":["false"]}`, FilterOptions{}, "restarter pausy web"},
		{"publish", `{"publish":["8080"]}`, FilterOptions{All: true}, "web"},
		{"publish range", `{"publish":["8000-8100/tcp"]}`, FilterOptions{All: true}, "web"},
		{"expose udp", `{"expose":["81/udp"]}`, FilterOptions{All: true}, "web"},
		{"expose wrong proto", `{"expose":["81/tcp"]}`, FilterOptions{All: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Filter(list, mustArgs(t, tt.filters), tt.opts)
			if err != nil {
				t.Fatalf("Filter(%s, %+v): %v", tt.filters, tt.opts, err)
			}
			var names []string
			for _, c := range got {
				names = append(names, strings.TrimPrefix(c.Name, "/"))
			}
			if g := strings.Join(names, " "); g != tt.want {
				t.Errorf("Filter(%s, %+v) = %q, want %q", tt.filters, tt.opts, g, tt.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	list := fixture()
	tests := []struct {
		filters string
		opts    FilterOptions
		status  int
		msg     string
	}{
		{`{"nosuchfilter":["x"]}`, FilterOptions{}, 400, "invalid filter 'nosuchfilter'"},
		{`{"status":["bogus"]}`, FilterOptions{}, 400, "invalid filter 'status=bogus'"},
		{`{"exited":["x"]}`, FilterOptions{}, 400, `strconv.Atoi: parsing "x": invalid syntax`},
		{`{"health":["meh"]}`, FilterOptions{}, 400, "Unrecognised filter value for health: meh"},
		{`{"is-task":["maybe"]}`, FilterOptions{}, 400, "invalid filter 'is-task=[maybe]'"},
		{`{"publish":["80:80"]}`, FilterOptions{}, 400, "filter for 'publish' should not contain ':': 80:80"},
		{`{"expose":["x/tcp"]}`, FilterOptions{}, 400, "error while looking up for expose x/tcp: invalid port"},
		{`{"since":["nope"]}`, FilterOptions{}, 404, "No such container: nope"},
		{``, FilterOptions{Before: "nope"}, 404, "No such container: nope"},
	}
	for _, tt := range tests {
		_, err := Filter(list, mustArgs(t, tt.filters), tt.opts)
		if err == nil || errdefs.Status(err) != tt.status || err.Error() != tt.msg {
			t.Errorf("Filter(%s, %+v) error = %v (status %d), want %d %q", tt.filters, tt.opts, err, errdefs.Status(err), tt.status, tt.msg)
		}
	}
}

func TestSummary(t *testing.T) {
	list := fixture()
	web := list[0]
	web.Path, web.Args = "sh", []string{"-c", "exit 3"}
	s := web.Summary(now)
	if s.Command != "sh -c 'exit 3'" || s.State != "running" || s.Status != "Up About an hour" ||
		s.Names[0] != "/web" || s.Image != "busybox" || s.HostConfig.NetworkMode != "default" || s.Created != web.Created.Unix() {
		t.Errorf("Summary = %+v", s)
	}
	want := []types.Port{{PrivatePort: 80, PublicPort: 8080, IP: "0.0.0.0", Type: "tcp"}, {PrivatePort: 81, Type: "udp"}}
	if len(s.Ports) != 2 || s.Ports[0] != want[0] || s.Ports[1] != want[1] {
		t.Errorf("Ports = %+v, want %+v", s.Ports, want)
	}
	if s.NetworkSettings.Networks["bridge"] == web.NetworkSettings.Networks["bridge"] {
		t.Errorf("Summary shares endpoint settings with the record")
	}
	empty := (&Container{ID: testID("e"), Name: "/e", State: &State{}}).Summary(now)
	if empty.Ports == nil || empty.Labels == nil || empty.Mounts == nil || empty.Status != "Created" {
		t.Errorf("Summary of a bare record = %+v, want [] and {} rather than null", empty)
	}
}

// FuzzFilter feeds arbitrary filter JSON to Filter: it must never panic,
// and every error must carry a kind (so the API answers 4xx, not 500).
func FuzzFilter(f *testing.F) {
	for _, seed := range []string{
		`{"status":{"exited":true}}`, `{"name":["^w.*"]}`, `{"publish":["1-65535/udp"]}`,
		`{"expose":["80-"]}`, `{"since":[""]}`, `{"id":["("]}`, `{"exited":["-1"]}`,
		`{"label":["a=b=c"]}`, `{"before":["/"]}`, `{"publish":["99999"]}`,
	} {
		f.Add(seed, false, 0)
	}
	list := fixture()
	f.Fuzz(func(t *testing.T, param string, all bool, limit int) {
		args, err := filters.FromParam(param)
		if err != nil {
			return
		}
		got, err := Filter(list, args, FilterOptions{All: all, Limit: limit})
		if err != nil {
			if s := errdefs.Status(err); s != 400 && s != 404 {
				t.Fatalf("Filter(%s) error %v has status %d, want 400 or 404", param, err, s)
			}
			return
		}
		if limit > 0 && len(got) > limit {
			t.Fatalf("Filter(%s, limit %d) returned %d", param, limit, len(got))
		}
	})
}
