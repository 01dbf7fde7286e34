package events

import (
	"errors"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

const (
	ctrID = "6c6eea61d31baf9c5660b00c0cf67050e1734cabfbe45cf82db7a4c98eb08bd2"
	imgID = "sha256:65ad0d468eb1c558bf7f4e64e790f586e9eda649ee9f130cd0e835b292bbc5ac"
)

// The events the filter table runs against, shaped as dockerd sends them.
var (
	ctrStart = types.EventMessage{
		Type: "container", Action: "start", Scope: "local",
		Actor: types.EventActor{ID: ctrID, Attributes: map[string]string{
			"image": "busybox", "name": "trace-ev", "com.example.tier": "web"}},
	}
	ctrExec = types.EventMessage{
		Type: "container", Action: "exec_start: sh -c 'echo hi'", Scope: "local",
		Actor: types.EventActor{ID: ctrID, Attributes: map[string]string{"image": "busybox", "name": "trace-ev"}},
	}
	ctrRegistryImage = types.EventMessage{
		Type: "container", Action: "create", Scope: "local",
		Actor: types.EventActor{ID: "aaaa", Attributes: map[string]string{"image": "localhost:5000/app:2", "name": "other"}},
	}
	imgPull = types.EventMessage{
		Type: "image", Action: "pull", Scope: "local",
		Actor: types.EventActor{ID: "docker.io/library/busybox:latest", Attributes: map[string]string{"name": "busybox"}},
	}
	imgDelete = types.EventMessage{
		Type: "image", Action: "delete", Scope: "local",
		Actor: types.EventActor{ID: imgID, Attributes: map[string]string{"name": imgID}},
	}
	netConnect = types.EventMessage{
		Type: "network", Action: "connect", Scope: "local",
		Actor: types.EventActor{ID: "f00dbabe", Attributes: map[string]string{"container": ctrID, "name": "bridge", "type": "bridge"}},
	}
	volMount = types.EventMessage{
		Type: "volume", Action: "mount", Scope: "local",
		Actor: types.EventActor{ID: "data", Attributes: map[string]string{"container": ctrID, "driver": "local"}},
	}
	daemonReload = types.EventMessage{
		Type: "daemon", Action: "reload", Scope: "local",
		Actor: types.EventActor{ID: "HOST:ID", Attributes: map[string]string{"name": "host1"}},
	}
)

func TestFilterInclude(t *testing.T) {
	tests := []struct {
		name   string
		param  string
		msg    types.EventMessage
		expect bool
	}{
		{"no filter", "", ctrStart, true},
		{"type matches", `{"type":{"container":true}}`, ctrStart, true},
		{"type differs", `{"type":{"container":true}}`, imgPull, false},
		{"type either", `{"type":["image","network"]}`, netConnect, true},
		{"event exact", `{"event":{"start":true},"type":{"container":true}}`, ctrStart, true},
		{"event not prefix", `{"event":["sta"]}`, ctrStart, false},
		{"event exec_start prefix", `{"event":["exec_start"]}`, ctrExec, true},
		{"event exec_start turns all values to prefixes", `{"event":["exec_start","sta"]}`, ctrStart, true},
		{"event health_status misses start", `{"event":["health_status"]}`, ctrStart, false},
		{"container by name", `{"container":{"trace-ev":true}}`, ctrStart, true},
		{"container by name prefix", `{"container":["trace"]}`, ctrStart, true},
		{"container by ID prefix", `{"container":["6c6eea61"]}`, ctrStart, true},
		{"container by full ID", `{"container":["` + ctrID + `"]}`, ctrStart, true},
		{"container other", `{"container":["web"]}`, ctrStart, false},
		{"container filter hides network events", `{"container":["trace-ev"]}`, netConnect, false},
		{"network by name", `{"network":["bridge"]}`, netConnect, true},
		{"network by ID prefix", `{"network":["f00d"]}`, netConnect, true},
		{"network filter hides container events", `{"network":["bridge"]}`, ctrStart, false},
		{"volume by name", `{"volume":["data"]}`, volMount, true},
		{"volume other", `{"volume":["logs"]}`, volMount, false},
		{"daemon by name", `{"daemon":["host1"]}`, daemonReload, true},
		{"image attribute", `{"image":["busybox"]}`, ctrStart, true},
		{"image attribute with tag", `{"image":["busybox:latest"]}`, ctrStart, false},
		{"image other", `{"image":["alpine"]}`, ctrStart, false},
		{"image registry repo without tag", `{"image":["localhost:5000/app"]}`, ctrRegistryImage, true},
		{"image registry full", `{"image":["localhost:5000/app:2"]}`, ctrRegistryImage, true},
		{"image event by name", `{"image":["busybox"]}`, imgPull, true},
		{"image event by normalized ID stripped", `{"image":["busybox"]}`, types.EventMessage{
			Type: "image", Action: "tag", Actor: types.EventActor{ID: "docker.io/library/busybox:1.36"}}, true},
		{"image event by ID", `{"image":["` + imgID + `"]}`, imgDelete, true},
		{"image filter hides network events", `{"image":["busybox"]}`, netConnect, false},
		{"label key", `{"label":["com.example.tier"]}`, ctrStart, true},
		{"label key=value", `{"label":["com.example.tier=web"]}`, ctrStart, true},
		{"label wrong value", `{"label":["com.example.tier=db"]}`, ctrStart, false},
		{"label matches attributes", `{"label":["image=busybox"]}`, ctrStart, true},
		{"label all must match", `{"label":["com.example.tier=web","missing"]}`, ctrStart, false},
		{"scope local", `{"scope":["local"]}`, ctrStart, true},
		{"scope swarm", `{"scope":["swarm"]}`, ctrStart, false},
		{"keys are ANDed", `{"type":["container"],"container":["trace-ev"],"event":["start"]}`, ctrStart, true},
		{"keys are ANDed, one fails", `{"type":["container"],"container":["trace-ev"],"event":["die"]}`, ctrStart, false},
		{"empty value set filters nothing", `{"container":[]}`, imgPull, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := filters.FromParam(tt.param)
			if err != nil {
				t.Fatal(err)
			}
			if got := NewFilter(args).Include(tt.msg); got != tt.expect {
				t.Errorf("NewFilter(%s).Include(%s %s %s) = %v, want %v", tt.param, tt.msg.Type, tt.msg.Action, tt.msg.Actor.ID, got, tt.expect)
			}
		})
	}
}

func TestFilterNilAndIsolation(t *testing.T) {
	var f *Filter
	if !f.Include(ctrStart) {
		t.Errorf("nil Filter Include = false, want true")
	}
	args := filters.NewArgs(filters.Arg("type", "container"))
	f = NewFilter(args)
	args.Add("type", "image")
	if f.Include(imgPull) {
		t.Errorf("Filter changed after NewFilter when its Args were changed")
	}
}

func TestValidateFilters(t *testing.T) {
	tests := []struct {
		param   string
		wantErr string
	}{
		{"", ""},
		{`{"config":["a"],"container":["a"],"daemon":["a"],"event":["a"],"image":["a"],"label":["a"],"network":["a"],` +
			`"node":["a"],"plugin":["a"],"scope":["a"],"secret":["a"],"service":["a"],"type":["a"],"volume":["a"]}`, ""},
		{`{"status":["exited"]}`, "invalid filter 'status'"},
		{`{"type":["container"],"name":["x"]}`, "invalid filter 'name'"},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			args, err := filters.FromParam(tt.param)
			if err != nil {
				t.Fatal(err)
			}
			err = ValidateFilters(args)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("ValidateFilters(%s) = %v, want nil", tt.param, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("ValidateFilters(%s) = %v (kind %v), want invalid parameter %q", tt.param, err, errdefs.KindOf(err), tt.wantErr)
			}
		})
	}
}

func TestFamiliarRepo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"busybox", "busybox"},
		{"busybox:latest", "busybox"},
		{"busybox@sha256:65ad0d468eb1c558bf7f4e64e790f586e9eda649ee9f130cd0e835b292bbc5ac", "busybox"},
		{"busybox:1.36@sha256:65ad0d468eb1c558bf7f4e64e790f586e9eda649ee9f130cd0e835b292bbc5ac", "busybox"},
		{"docker.io/library/busybox:1.36", "busybox"},
		{"index.docker.io/library/busybox", "busybox"},
		{"library/busybox", "busybox"},
		{"docker.io/foo/bar:1", "foo/bar"},
		{"foo/bar", "foo/bar"},
		{"foo/bar/baz:2", "foo/bar/baz"},
		{"docker.io/library/a/b", "library/a/b"},
		{"localhost/app:1", "localhost/app"},
		{"localhost:5000/app:2", "localhost:5000/app"},
		{"registry.example.com/team/app:v1.2", "registry.example.com/team/app"},
		{"[::1]:5000/app:1", "[::1]:5000/app"},
		{"Foo/bar:1", "Foo/bar"},           // upper-case first component is a domain
		{"foo/Bar", "foo/Bar"},             // invalid: unchanged
		{"BusyBox", "BusyBox"},             // invalid: unchanged
		{"a_b-c.d__e/x:1", "a_b-c.d__e/x"}, // dockerd's grammar reads this as a path on Docker Hub (see internal/reference)
		{"a_b/x:1", "a_b/x"},               // underscore: a path component
		{"ab-c/x:1", "ab-c/x"},             // plain component, Docker Hub
		{"sha256:" + imgID[7:], "sha256"},  // parses as name:tag, as in dockerd
		{imgID[7:], imgID[7:]},             // a bare ID is not a reference
		{"busybox:", "busybox:"},           // empty tag: invalid
	}
	for _, tt := range tests {
		if got := familiarRepo(tt.in); got != tt.want {
			t.Errorf("familiarRepo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzFamiliarRepo(f *testing.F) {
	for _, seed := range []string{"busybox:latest", "docker.io/library/busybox", "localhost:5000/app:2", "Foo/bar", "a_b.c/x:1", imgID, "[::1]:5000/a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		once := familiarRepo(ref)
		if twice := familiarRepo(once); twice != once {
			t.Fatalf("familiarRepo(%q) = %q, but familiarRepo(%q) = %q; want a fixed point", ref, once, once, twice)
		}
	})
}
