package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/skifftest"
)

// listBaseline is the commit whose GET /containers/json answers the list's
// cached encoding must reproduce byte for byte (issue 13, list rate): the
// last one before it.
const listBaseline = "a806d71527f6a458d184c753be196ecabbdb3257"

// buildBaseline builds skiffd as of rev from the module's git history
// (read with git archive, which changes nothing in the repository), or
// skips when there is no such history (a source tarball).
func buildBaseline(t *testing.T, rev string) string {
	t.Helper()
	root, err := skifftest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "archive", "--format=tar", rev).Output()
	if err != nil {
		t.Skipf("no git history holding the baseline %s: %v", rev, err)
	}
	src := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(src, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "skiffd-baseline")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the baseline: %v\n%s", err, b)
	}
	return bin
}

// durations are the parts of a status text that move with the clock.
var durations = regexp.MustCompile(`Less than a second|About a minute|\d+ seconds?|\d+ minutes`)

// TestE2EContainerListMatchesBaseline: on one data root, the list answers
// of this build are byte for byte those of the build before the list's
// encodings were cached (but for the time in status texts), for every
// kind of query: all, running only, limit, size, each filter, before and
// since, an old API version; with containers created, exited with codes,
// published ports, mounts, labels and annotations that need escaping, and
// an image reference that has since moved to another image. Then changes
// (rename, start, commit over the reference) show in the next list.
func TestE2EContainerListMatchesBaseline(t *testing.T) {
	skifftest.RequireRoot(t)
	baseline := buildBaseline(t, listBaseline)
	d := skifftest.StartWith(t, skifftest.Options{Binary: baseline})
	if res := d.DockerIn(t, bytes.NewReader(skifftest.BusyboxTar(t)), "import", "-", "busybox"); res.ExitCode != 0 {
		t.Fatalf("docker import: %v", res)
	}
	if res := d.Docker(t, "tag", "busybox", "bb:1"); res.ExitCode != 0 {
		t.Fatalf("docker tag: %v", res)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	create := func(name, body string) {
		t.Helper()
		if r := d.Do(t, "POST", "/v1.50/containers/create?name="+name, strings.NewReader(body), hdr); r.Status != 201 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	run := func(name string) {
		t.Helper()
		if r := d.Do(t, "POST", "/v1.50/containers/"+name+"/start", nil, nil); r.Status != 204 {
			t.Fatalf("start %s: %d %s", name, r.Status, r.Body)
		}
		if r := d.Do(t, "POST", "/v1.50/containers/"+name+"/wait", nil, nil); r.Status != 200 {
			t.Fatalf("wait %s: %d %s", name, r.Status, r.Body)
		}
	}
	create("plain", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`)
	create("labelled", `{"Image":"busybox","Cmd":["sh","-c","echo <a> && exit 0"],"Labels":{"a":"<b>&\u2028","z":"1","é":""},`+
		`"HostConfig":{"NetworkMode":"none","Annotations":{"k":"v&"}}}`)
	create("ports", `{"Image":"busybox","Cmd":["true"],"ExposedPorts":{"80/tcp":{},"53/udp":{}},`+
		`"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]}}}`)
	create("mounts", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none","Binds":["listvol:/data","`+t.TempDir()+`:/host:ro"]}}`)
	create("exit0", `{"Image":"bb:1","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`)
	create("exit3", `{"Image":"busybox","Cmd":["sh","-c","exit 3"],"HostConfig":{"NetworkMode":"none"}}`)
	create("moved", `{"Image":"bb:1","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`)
	run("exit0")
	run("exit3")
	// bb:1 now names another image: "moved" and "exit0" list the image ID.
	if r := d.Do(t, "POST", "/v1.50/commit?container=exit3&repo=bb&tag=1", strings.NewReader("{}"), hdr); r.Status != 201 {
		t.Fatalf("commit: %d %s", r.Status, r.Body)
	}
	queries := []string{
		"/v1.50/containers/json?all=1",
		"/v1.50/containers/json",
		"/v1.50/containers/json?all=1&size=1",
		"/v1.50/containers/json?limit=2",
		"/v1.50/containers/json?all=1&limit=0",
		"/v1.24/containers/json?all=1",
		"/containers/json?all=true",
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"status":["exited"]}`),
		"/v1.50/containers/json?filters=" + url.QueryEscape(`{"exited":["3"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"label":["a"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"label":["z=1"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"name":["^/e"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"ancestor":["busybox"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"before":["exit3"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"since":["labelled"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"volume":["listvol"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"expose":["53/udp"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"network":["none"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"status":["bogus"]}`),
		"/v1.50/containers/json?all=1&filters=" + url.QueryEscape(`{"before":["nosuch"]}`),
		"/v1.50/containers/json?limit=x",
	}
	list := func() []string {
		t.Helper()
		var out []string
		for _, q := range queries {
			// Twice: the second answer comes from what the first cached.
			for range 2 {
				r := d.Do(t, "GET", q, nil, nil)
				out = append(out, r.Header.Get("Content-Type")+" "+http.StatusText(r.Status)+"\n"+durations.ReplaceAllString(r.Body, "T"))
			}
		}
		return out
	}
	want := list()
	if err := d.Stop(); err != nil {
		t.Fatalf("stopping the baseline: %v", err)
	}
	d.RelaunchWith(t, skifftest.Binary(t))
	got := list()
	for i, q := range queries {
		for j := range 2 {
			if g, w := got[2*i+j], want[2*i+j]; g != w {
				t.Errorf("GET %s (%d) =\n%s\nwant (baseline)\n%s", q, j, g, w)
			}
		}
	}

	// What changes shows in the next list, from the record saved.
	summaries := func() map[string]types.ContainerSummary {
		t.Helper()
		r := d.Do(t, "GET", "/v1.50/containers/json?all=1", nil, nil)
		var l []types.ContainerSummary
		if err := json.Unmarshal([]byte(r.Body), &l); err != nil {
			t.Fatalf("list: %v: %s", err, r.Body)
		}
		m := map[string]types.ContainerSummary{}
		for _, s := range l {
			m[s.Names[0]] = s
		}
		return m
	}
	before := summaries()
	if r := d.Do(t, "POST", "/v1.50/containers/plain/rename?name=renamed", nil, nil); r.Status != 204 {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	after := summaries()
	if _, ok := after["/plain"]; ok || after["/renamed"].ID != before["/plain"].ID {
		t.Errorf("after rename: /plain %v, /renamed %q; want /renamed %q", ok, after["/renamed"].ID, before["/plain"].ID)
	}
	create("sleeper", `{"Image":"busybox","Cmd":["sleep","1000"],"HostConfig":{"NetworkMode":"none"}}`)
	if s := summaries()["/sleeper"]; s.State != "created" {
		t.Errorf("after create: sleeper %q, want created", s.State)
	}
	if r := d.Do(t, "POST", "/v1.50/containers/sleeper/start", nil, nil); r.Status != 204 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	t.Cleanup(func() { d.Do(t, "POST", "/v1.50/containers/sleeper/kill", nil, nil) })
	after = summaries()
	if s := after["/sleeper"]; s.State != "running" || !strings.HasPrefix(s.Status, "Up ") {
		t.Errorf("after start: sleeper %q %q, want running, Up ...", s.State, s.Status)
	}
	if r := d.Do(t, "POST", "/v1.50/commit?container=renamed&repo=busybox&tag=latest", strings.NewReader("{}"), hdr); r.Status != 201 {
		t.Fatalf("commit: %d %s", r.Status, r.Body)
	}
	// busybox now names the committed image: the containers made from
	// the one before list its ID.
	if s := summaries()["/labelled"]; before["/labelled"].Image != "busybox" || s.Image != s.ImageID {
		t.Errorf("after commit over busybox: labelled lists image %q (before %q), want its ID %q", s.Image, before["/labelled"].Image, s.ImageID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := summaries()["/sleeper"]
		if s.Status != after["/sleeper"].Status {
			break // the status text moves on with the clock
		}
		if time.Now().After(deadline) {
			t.Errorf("sleeper's status stayed %q for 10s", s.Status)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EContainerListCacheFollowsChanges: the list handler reuses its last
// answer while nothing listed changed (issue 13, list rate). After each kind
// of change, the answer to a repeated query (which the last answer would
// serve if it were not invalidated) must equal the same query answered
// after another one has replaced the last answer (encoded anew).
func TestE2EContainerListCacheFollowsChanges(t *testing.T) {
	d := skifftest.Start(t)
	if res := d.DockerIn(t, bytes.NewReader(skifftest.BusyboxTar(t)), "import", "-", "busybox"); res.ExitCode != 0 {
		t.Fatalf("docker import: %v", res)
	}
	if res := d.Docker(t, "tag", "busybox", "bb:1"); res.ExitCode != 0 {
		t.Fatalf("docker tag: %v", res)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	do := func(method, path, body string, want int) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		if r := d.Do(t, method, path, rd, hdr); r.Status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
		}
	}
	create := func(name, image string) {
		t.Helper()
		do("POST", "/v1.50/containers/create?name="+name, `{"Image":"`+image+`","Cmd":["sleep","1000"],"Labels":{"k":"v"},"HostConfig":{"NetworkMode":"none"}}`, 201)
	}
	create("ca", "busybox")
	create("cb", "bb:1")
	t.Cleanup(func() {
		for _, n := range []string{"ca", "cb", "cc", "cd"} {
			d.Do(t, "DELETE", "/v1.50/containers/"+n+"?force=1", nil, nil)
		}
	})
	const (
		query = "/v1.50/containers/json?all=1"
		other = "/v1.50/containers/json?all=1&filters=%7B%22name%22%3A%5B%22%5E%2Fnone%24%22%5D%7D" // name=^/none$: []
	)
	list := func(q string) string {
		t.Helper()
		r := d.Do(t, "GET", q, nil, nil)
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", q, r.Status, r.Body)
		}
		if n := r.Header.Get("Content-Length"); n != strconv.Itoa(len(r.Body)) {
			t.Errorf("GET %s: Content-Length %q for %d bytes", q, n, len(r.Body))
		}
		return r.Body
	}
	for _, tc := range []struct {
		name   string
		change func()
	}{
		{"create", func() { create("cc", "busybox") }},
		{"start", func() { do("POST", "/v1.50/containers/ca/start", "", 204) }},
		{"rename", func() { do("POST", "/v1.50/containers/cb/rename?name=cd", "", 204) }},
		{"update without labels", func() {
			do("POST", "/v1.50/containers/ca/update", `{"RestartPolicy":{"Name":"unless-stopped"}}`, 200)
		}},
		{"pause", func() { do("POST", "/v1.50/containers/ca/pause", "", 204) }},
		{"unpause", func() { do("POST", "/v1.50/containers/ca/unpause", "", 204) }},
		{"image tag moved", func() {
			if res := d.Docker(t, "commit", "ca", "bb:1"); res.ExitCode != 0 {
				t.Fatalf("docker commit: %v", res)
			}
		}},
		{"stop", func() { do("POST", "/v1.50/containers/ca/stop?t=0", "", 204) }},
		{"remove", func() { do("DELETE", "/v1.50/containers/cc", "", 204) }},
	} {
		list(query)
		list(query) // the last answer now
		before := list(query)
		tc.change()
		cached := list(query)
		list(other)
		fresh := list(query)
		// Both are read within a second or so: a status text may
		// move on between them.
		if c, f := durations.ReplaceAllString(cached, "T"), durations.ReplaceAllString(fresh, "T"); c != f {
			t.Errorf("after %s: GET %s =\n%s\nwant (encoded anew)\n%s", tc.name, query, cached, fresh)
		}
		if tc.name != "update without labels" && cached == before {
			t.Errorf("after %s: the list did not change:\n%s", tc.name, cached)
		}
	}
}
