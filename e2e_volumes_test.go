package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// TestCLIVolumeLifecycle walks the volume commands of issue 6 through the
// real CLI: create, ls (with filters), inspect, rm, prune (anonymous only,
// then --all), a tmpfs-backed volume, the errors, the events, and a daemon
// restart in between.
func TestCLIVolumeLifecycle(t *testing.T) {
	d := skifftest.Start(t)
	start := time.Now().Add(-time.Second)

	if out := dockerOK(t, d, "volume", "create", "data"); out != "data\n" {
		t.Errorf("volume create data printed %q", out)
	}
	if out := dockerOK(t, d, "volume", "ls"); out != "DRIVER    VOLUME NAME\nlocal     data\n" {
		t.Errorf("volume ls =\n%s", out)
	}
	out := dockerOK(t, d, "volume", "inspect", "data")
	var vols []map[string]any
	if err := json.Unmarshal([]byte(out), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("volume inspect output %q: %v", out, err)
	}
	v := vols[0]
	if v["Name"] != "data" || v["Driver"] != "local" || v["Scope"] != "local" || v["Mountpoint"] != filepath.Join(d.DataRoot, "volumes", "data", "_data") || v["Labels"] != nil || v["Options"] != nil {
		t.Errorf("volume inspect = %v", v)
	}
	if created, _ := v["CreatedAt"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`).MatchString(created) {
		t.Errorf("CreatedAt = %q, want RFC 3339 seconds", created)
	}
	// Creating an existing name succeeds and returns it.
	if out := dockerOK(t, d, "volume", "create", "data"); out != "data\n" {
		t.Errorf("second volume create data printed %q", out)
	}
	if out := dockerOK(t, d, "volume", "rm", "data"); out != "data\n" {
		t.Errorf("volume rm data printed %q", out)
	}
	res := d.Docker(t, "volume", "inspect", "data")
	if res.ExitCode != 1 || res.Stdout != "[]\n" || !strings.Contains(res.Stderr, "Error response from daemon: get data: no such volume") {
		t.Errorf("volume inspect of a removed volume: %v", res)
	}
	res = d.Docker(t, "volume", "rm", "data")
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "get data: no such volume") {
		t.Errorf("volume rm of a missing volume: %v", res)
	}
	if res := d.Docker(t, "volume", "rm", "-f", "data"); res.ExitCode != 0 {
		t.Errorf("volume rm -f of a missing volume: %v", res)
	}

	dockerOK(t, d, "volume", "create", "--label", "a=b", "vx")
	dockerOK(t, d, "volume", "create", "vy")
	anon := strings.TrimSpace(dockerOK(t, d, "volume", "create"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Errorf("anonymous volume name %q", anon)
	}
	dockerOK(t, d, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tv")
	if out := dockerOK(t, d, "volume", "ls", "-f", "label=a=b", "--format", "{{.Name}} {{.Driver}}"); out != "vx local\n" {
		t.Errorf("volume ls -f label=a=b = %q", out)
	}
	if out := dockerOK(t, d, "volume", "ls", "-q", "-f", "name=^t"); out != "tv\n" {
		t.Errorf("volume ls -f name=^t = %q", out)
	}
	if out := dockerOK(t, d, "volume", "ls", "-q", "-f", "dangling=true"); out != strings.Join([]string{anon, "tv", "vx", "vy"}, "\n")+"\n" {
		t.Errorf("volume ls -f dangling=true = %q", out)
	}
	if out := dockerOK(t, d, "volume", "inspect", "--format", "{{json .Options}} {{json .Labels}}", "tv", anon); out != `{"device":"tmpfs","o":"size=1m","type":"tmpfs"} null`+"\n"+`null {"com.docker.volume.anonymous":""}`+"\n" {
		t.Errorf("inspect of the tmpfs-backed and anonymous volumes = %q", out)
	}
	res = d.Docker(t, "volume", "ls", "-f", "bogus=1")
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "invalid filter 'bogus'") {
		t.Errorf("volume ls with an unknown filter: %v", res)
	}
	for _, bad := range []struct{ args, want string }{
		{"a", "create a: volume name is too short, names should be at least two alphanumeric characters"},
		{"../etc", `create ../etc: "../etc" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"-o type=tmpfs bad-opts", `create bad-opts: missing required option: "device"`},
		{"-o colour=blue bad-opts", `create bad-opts: invalid option: "colour"`},
		{"-d nfsplugin other", `create other: error looking up volume plugin nfsplugin: plugin "nfsplugin" not found`},
	} {
		res := d.Docker(t, append([]string{"volume", "create"}, strings.Fields(bad.args)...)...)
		if res.ExitCode != 1 || !strings.Contains(res.Stderr, "Error response from daemon: "+bad.want) {
			t.Errorf("volume create %s: %v\nwant error %q", bad.args, res, bad.want)
		}
	}

	checkVolumeEvents(t, d, start, "create data", "destroy data", "create vx", "create vy", "create "+anon, "create tv")

	// The volumes survive a daemon restart.
	if err := d.Stop(); err != nil {
		t.Fatalf("stopping the daemon: %v", err)
	}
	d = skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d.DataRoot}})
	start = time.Now().Add(-time.Second)
	if out := dockerOK(t, d, "volume", "ls", "-q"); out != strings.Join([]string{anon, "tv", "vx", "vy"}, "\n")+"\n" {
		t.Errorf("volume ls -q after a restart = %q", out)
	}

	// API 1.50 prune removes anonymous volumes only; --all the named ones,
	// never option-backed ones.
	out = dockerOK(t, d, "volume", "prune", "-f")
	if want := "Deleted Volumes:\n" + anon + "\n\nTotal reclaimed space: 0B\n"; out != want {
		t.Errorf("volume prune -f =\n%s\nwant\n%s", out, want)
	}
	out = dockerOK(t, d, "volume", "prune", "-f", "--all", "--filter", "label=a=b")
	if want := "Deleted Volumes:\nvx\n\nTotal reclaimed space: 0B\n"; out != want {
		t.Errorf("volume prune -f --all --filter label=a=b =\n%s\nwant\n%s", out, want)
	}
	out = dockerOK(t, d, "volume", "prune", "-f", "--all")
	if want := "Deleted Volumes:\nvy\n\nTotal reclaimed space: 0B\n"; out != want {
		t.Errorf("volume prune -f --all =\n%s\nwant\n%s", out, want)
	}
	if out := dockerOK(t, d, "volume", "ls", "-q"); out != "tv\n" {
		t.Errorf("volumes left after prunes = %q, want only the tmpfs-backed one", out)
	}
	dockerOK(t, d, "volume", "rm", "tv")

	checkVolumeEvents(t, d, start, "destroy "+anon, "prune ", "destroy vx", "destroy vy", "destroy tv")
}

// checkVolumeEvents asks the daemon for the volume events since start and
// checks that each wanted "action actor" line is among them.
func checkVolumeEvents(t *testing.T, d *skifftest.Daemon, start time.Time, want ...string) {
	t.Helper()
	out := dockerOK(t, d, "events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano), "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}")
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("volume events lack %q:\n%s", w, out)
		}
	}
}

// TestAPIVolumeErrors checks status codes and bodies the CLI does not show.
func TestAPIVolumeErrors(t *testing.T) {
	d := skifftest.Start(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/v1.50/volumes/nope", "", 404, `{"message":"get nope: no such volume"}` + "\n"},
		{"DELETE", "/v1.50/volumes/nope", "", 404, `{"message":"get nope: no such volume"}` + "\n"},
		{"DELETE", "/v1.50/volumes/nope?force=1", "", 204, ""},
		{"PUT", "/v1.50/volumes/nope?version=1", "{}", 503, `{"message":"volume update only valid for cluster volumes, but swarm is unavailable"}` + "\n"},
		{"POST", "/v1.50/volumes/create", `{"Name":"cv","ClusterVolumeSpec":{}}`, 503, ""},
		{"GET", "/v1.50/volumes?filters=%7Bbad", "", 400, ""},
		{"POST", "/v1.50/volumes/prune?filters=%7B%22all%22%3A%5B%22maybe%22%5D%7D", "", 400, ""},
		{"POST", "/v1.50/volumes/create", `{"Name":"api-vol","Labels":{"k":"v"}}`, 201, ""},
		{"POST", "/v1.41/volumes/prune", "", 200, `{"VolumesDeleted":["api-vol"],"SpaceReclaimed":0}` + "\n"},
	} {
		var body *strings.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		var resp skifftest.Response
		if body != nil {
			resp = d.Do(t, tc.method, tc.path, body, map[string][]string{"Content-Type": {"application/json"}})
		} else {
			resp = d.Do(t, tc.method, tc.path, nil, nil)
		}
		if resp.Status != tc.status || (tc.want != "" && resp.Body != tc.want) {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, resp.Status, resp.Body, tc.status, tc.want)
		}
	}
}

// TestCLIRunWithVolumes is the container half of the volume
// commands: data written through a named volume is read by the next
// container and after a daemon restart, a volume in use cannot be removed,
// read-only binds refuse writes (the kernel's EROFS), tmpfs mounts and
// tmpfs-backed volumes have their size, an empty volume is filled from the
// image, and --rm removes anonymous volumes.
func TestCLIRunWithVolumes(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "volume", "create", "data")
	dockerOK(t, d, "run", "--rm", "-v", "data:/d", "busybox", "sh", "-c", "echo x > /d/f")
	if out := dockerOK(t, d, "run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"); out != "x\n" {
		t.Errorf("second container read %q from the volume, want x", out)
	}

	id := strings.TrimSpace(dockerOK(t, d, "create", "--name", "holder", "-v", "data:/d:ro", "busybox", "true"))
	res := d.Docker(t, "volume", "rm", "data")
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "remove data: volume is in use - ["+id+"]") {
		t.Errorf("volume rm of a volume in use: %v", res)
	}
	var mounts []map[string]any
	if err := json.Unmarshal([]byte(dockerOK(t, d, "inspect", "--format", "{{json .Mounts}}", "holder")), &mounts); err != nil || len(mounts) != 1 {
		t.Fatalf("inspect Mounts: %v %v", mounts, err)
	}
	m := mounts[0]
	if m["Type"] != "volume" || m["Name"] != "data" || m["Source"] != filepath.Join(d.DataRoot, "volumes", "data", "_data") || m["Destination"] != "/d" || m["Driver"] != "local" || m["RW"] != false || m["Mode"] != "ro" {
		t.Errorf("inspect Mounts = %v", m)
	}
	dockerOK(t, d, "rm", "holder")

	// Read-only binds are enforced by the kernel; a missing -v source is
	// created, a missing --mount source is an error.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f.txt"), []byte("bind file\n"), 0o644)
	if out := dockerOK(t, d, "run", "--rm", "-v", host+":/mnt:ro", "busybox", "cat", "/mnt/f.txt"); out != "bind file\n" {
		t.Errorf("read through a bind mount = %q", out)
	}
	res = d.Docker(t, "run", "--rm", "-v", host+":/mnt:ro", "busybox", "touch", "/mnt/new")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Read-only file system") {
		t.Errorf("write into a read-only bind: %v", res)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); !os.IsNotExist(err) {
		t.Errorf("the read-only bind let a file through: %v", err)
	}
	created := filepath.Join(host, "made", "by", "run")
	dockerOK(t, d, "run", "--rm", "-v", created+":/m", "busybox", "true")
	if fi, err := os.Stat(created); err != nil || !fi.IsDir() {
		t.Errorf("-v did not create the missing host directory: %v", err)
	}
	missing := filepath.Join(host, "missing")
	res = d.Docker(t, "run", "--rm", "--mount", "type=bind,src="+missing+",dst=/m", "busybox", "true")
	if res.ExitCode != 125 || !strings.Contains(res.Stderr, `invalid mount config for type "bind": bind source path does not exist: `+missing) {
		t.Errorf("--mount of a missing bind source: %v", res)
	}

	// Sizes of tmpfs mounts and of a tmpfs-backed volume.
	for _, args := range [][]string{
		{"--mount", "type=tmpfs,target=/t,tmpfs-size=1m"},
		{"--tmpfs", "/t:size=1m"},
		{"-v", "tv:/t"},
	} {
		if args[0] == "-v" {
			dockerOK(t, d, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tv")
		}
		out := dockerOK(t, d, append(append([]string{"run", "--rm"}, args...), "busybox", "df", "-k", "/t")...)
		if fields := strings.Fields(out); len(fields) < 9 || fields[7] != "tmpfs" || fields[8] != "1024" {
			t.Errorf("df /t with %v = %q, want a 1024 KiB tmpfs", args, out)
		}
	}

	// A bind-backed volume (the local driver's type=none,o=bind) shows the
	// host directory while a container uses it; removing the volume leaves
	// the host's files alone.
	dockerOK(t, d, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+host, "hostvol")
	if out := dockerOK(t, d, "run", "--rm", "-v", "hostvol:/h", "busybox", "cat", "/h/f.txt"); out != "bind file\n" {
		t.Errorf("read through a bind-backed volume = %q", out)
	}
	dockerOK(t, d, "volume", "rm", "hostvol")
	if b, err := os.ReadFile(filepath.Join(host, "f.txt")); err != nil || string(b) != "bind file\n" {
		t.Errorf("host file after removing the bind-backed volume = %q, %v", b, err)
	}

	// A new volume is filled from the image; nocopy leaves it empty.
	if out := dockerOK(t, d, "run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/group"); !strings.HasPrefix(out, "root:x:0:") {
		t.Errorf("/etc from a fresh volume = %q, want the image's /etc/group", out)
	}
	if out := dockerOK(t, d, "run", "--rm", "-v", "emptyvol:/etc:nocopy", "busybox", "ls", "-A", "/etc"); out != "" {
		t.Errorf("a nocopy volume holds %q", out)
	}

	// --rm removes the container's anonymous volumes, never named ones.
	before := dockerOK(t, d, "volume", "ls", "-q")
	dockerOK(t, d, "run", "--rm", "-v", "/anon", "busybox", "true")
	if after := dockerOK(t, d, "volume", "ls", "-q"); after != before {
		t.Errorf("volumes after run --rm -v /anon =\n%s\nwant\n%s", after, before)
	}

	// The data survives a daemon restart.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d = skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d.DataRoot}})
	removeAllAtEnd(t, d)
	if out := dockerOK(t, d, "run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"); out != "x\n" {
		t.Errorf("after a restart the volume holds %q, want x", out)
	}
}

// TestCLIVolumesOfContainers covers how containers hold volumes: an image
// VOLUME becomes an anonymous volume, prune and rm leave volumes of a
// stopped container alone, rm -v removes only anonymous volumes, and a run
// logs the volume mount and unmount events.
func TestCLIVolumesOfContainers(t *testing.T) {
	d := startWithBusybox(t)
	start := time.Now().Add(-time.Second)
	res := d.DockerIn(t, strings.NewReader(string(skifftest.BusyboxTar(t))), "import", "--change", "VOLUME /data", "--change", `CMD ["sh"]`, "-", "withvol:1")
	if res.ExitCode != 0 {
		t.Fatalf("import with VOLUME: %v", res)
	}
	id := strings.TrimSpace(dockerOK(t, d, "create", "-v", "keepme:/named", "withvol:1", "true"))
	var mounts []map[string]any
	if err := json.Unmarshal([]byte(dockerOK(t, d, "inspect", "--format", "{{json .Mounts}}", id)), &mounts); err != nil || len(mounts) != 2 {
		t.Fatalf("inspect Mounts = %v, %v; want the image volume and the named one", mounts, err)
	}
	var anon string
	for _, m := range mounts {
		if m["Destination"] == "/data" {
			anon, _ = m["Name"].(string)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Fatalf("image VOLUME /data got volume %q, want an anonymous one (mounts %v)", anon, mounts)
	}
	dockerOK(t, d, "start", "-a", id)

	// A stopped container still holds its volumes.
	if out := dockerOK(t, d, "volume", "prune", "-f", "--all"); strings.Contains(out, anon) || strings.Contains(out, "keepme") {
		t.Errorf("prune removed a volume of a stopped container:\n%s", out)
	}
	if out := dockerOK(t, d, "volume", "ls", "-q", "-f", "dangling=true"); out != "" {
		t.Errorf("dangling volumes while the container exists = %q", out)
	}
	dockerOK(t, d, "rm", "-v", id)
	if out := dockerOK(t, d, "volume", "ls", "-q"); out != "keepme\n" {
		t.Errorf("volumes after rm -v = %q, want only the named one", out)
	}

	// Without -v the anonymous volume stays, dangling.
	id = strings.TrimSpace(dockerOK(t, d, "create", "withvol:1", "true"))
	anon = strings.TrimSpace(dockerOK(t, d, "inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", id))
	dockerOK(t, d, "rm", id)
	dangling := []string{anon, "keepme"}
	slices.Sort(dangling)
	if out := dockerOK(t, d, "volume", "ls", "-q", "-f", "dangling=true"); out != strings.Join(dangling, "\n")+"\n" {
		t.Errorf("dangling volumes after rm without -v = %q", out)
	}

	out := dockerOK(t, d, "events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano), "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"destination\"}}")
	for _, want := range []string{"create keepme ", "mount keepme /named", "unmount keepme ", "destroy "} {
		if !strings.Contains(out, want) {
			t.Errorf("volume events lack %q:\n%s", want, out)
		}
	}
}

// TestCLIVolumeDriverOption: --volume-driver is the driver of the volumes
// a container's -v makes, as in dockerd: a container without volumes is
// made with it recorded, one whose volume would need that plugin is
// refused with dockerd's error and no volume made.
func TestCLIVolumeDriverOption(t *testing.T) {
	d := startWithBusybox(t)
	id := strings.TrimSpace(dockerOK(t, d, "create", "--volume-driver", "foo", "busybox", "true"))
	if got := inspectField(t, d, id, "{{.HostConfig.VolumeDriver}}"); got != "foo" {
		t.Errorf("VolumeDriver = %q", got)
	}
	// Raw: the CLI takes this 404 for a missing image and tries a pull.
	r := d.Do(t, "POST", "/containers/create", strings.NewReader(`{"Image":"busybox","HostConfig":{"VolumeDriver":"foo","Binds":["vdata:/data"]}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != http.StatusNotFound || !strings.Contains(r.Body, `error looking up volume plugin foo: plugin \"foo\" not found`) {
		t.Errorf("a volume with VolumeDriver foo: %d %s, want dockerd's refusal", r.Status, r.Body)
	}
	if out := dockerOK(t, d, "volume", "ls", "-q"); strings.Contains(out, "vdata") {
		t.Errorf("volumes after the refusal: %q", out)
	}
	dockerOK(t, d, "create", "--volume-driver", "local", "-v", "vdata:/data", "busybox", "true")
}

// TestCLIImageMount covers --mount type=image (API 1.48) as dockerd 28
// does it: the image's files alone (not the init layer's), read-only,
// a subpath resolved inside the image (a link out of it is clamped to
// the image, so it finds nothing of the host), the image held against
// removal while a container mounts it, the mount on the host only while
// the container runs, after a kill -9 of the daemon too, and the
// refusal of older API versions.
func TestCLIImageMount(t *testing.T) {
	d := startWithBusybox(t)
	data := skifftest.Tar(t, []skifftest.Entry{
		{Name: "data/"}, {Name: "data/sub/"}, {Name: "data/sub/f", Body: "hello\n"},
		{Name: "data/esc", Type: tar.TypeSymlink, Linkname: "/etc/shadow"},
		{Name: "etc/"}, {Name: "etc/hosts", Body: "image hosts\n"},
	})
	if res := d.DockerIn(t, bytes.NewReader(data), "import", "-", "data:1"); res.ExitCode != 0 {
		t.Fatalf("import: %v", res)
	}
	img := "type=image,source=data:1,target=/img"
	if out := dockerOK(t, d, "run", "--rm", "--mount", img, "busybox", "sh", "-c", "ls /img; cat /img/data/sub/f /img/etc/hosts"); out != "data\netc\nhello\nimage hosts\n" {
		t.Errorf("image mount shows %q, want the image's files alone", out)
	}
	res := d.Docker(t, "run", "--rm", "--mount", img, "busybox", "touch", "/img/new")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Read-only file system") {
		t.Errorf("write into an image mount: %v, want it refused", res)
	}
	if out := dockerOK(t, d, "run", "--rm", "--mount", img+",image-subpath=data/sub", "busybox", "ls", "/img"); out != "f\n" {
		t.Errorf("image subpath shows %q, want f", out)
	}
	res = d.Docker(t, "run", "--rm", "--mount", img+",image-subpath=data/esc", "busybox", "true")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "cannot access path") || !strings.Contains(res.Stderr, "data/esc: no such file or directory") {
		t.Errorf("a subpath linking out of the image: %v, want it resolved inside the image, where it is missing", res)
	}
	r := d.Do(t, "POST", "/v1.47/containers/create", strings.NewReader(`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"image","Source":"data:1","Target":"/img"}]}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != 400 || !strings.Contains(r.Body, `Mount type \"Image\" needs API v1.48 or newer`) {
		t.Errorf("image mount with API 1.47: %d %s", r.Status, r.Body)
	}

	dockerOK(t, d, "run", "-d", "--name", "hold", "--mount", img, "busybox", "sleep", "1d")
	var mounts []map[string]any
	if err := json.Unmarshal([]byte(inspectField(t, d, "hold", "{{json .Mounts}}")), &mounts); err != nil || len(mounts) != 1 {
		t.Fatalf("inspect Mounts: %v %v", mounts, err)
	}
	if m := mounts[0]; m["Type"] != "image" || m["Name"] != "data:1" || m["Destination"] != "/img" || m["RW"] != false || !strings.HasPrefix(m["Source"].(string), d.DataRoot) {
		t.Errorf("inspect Mounts = %v", m)
	}
	res = d.Docker(t, "rmi", "data:1")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "is using its referenced image") {
		t.Errorf("rmi of a mounted image: %v, want a conflict", res)
	}
	dockerOK(t, d, "image", "prune", "-af")
	imageMounted := func() bool {
		t.Helper()
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, " "+filepath.Join(d.DataRoot, "containers")+"/") && strings.Contains(l, "/image-mounts/0/rootfs ") {
				return true
			}
		}
		return false
	}
	if !imageMounted() {
		t.Errorf("no image mount on the host while the container runs")
	}
	d.Kill()
	d.Relaunch(t)
	if out := dockerOK(t, d, "exec", "hold", "cat", "/img/data/sub/f"); out != "hello\n" {
		t.Errorf("after the daemon's kill -9, the image mount shows %q", out)
	}
	dockerOK(t, d, "stop", "-t", "0", "hold")
	if imageMounted() {
		t.Errorf("the image mount stays on the host after the container stopped")
	}
	dockerOK(t, d, "start", "hold")
	if out := dockerOK(t, d, "exec", "hold", "cat", "/img/data/sub/f"); out != "hello\n" {
		t.Errorf("after a restart, the image mount shows %q", out)
	}
	dockerOK(t, d, "rm", "-f", "hold")
	if imageMounted() {
		t.Errorf("the image mount stays on the host after the container's removal")
	}
	dockerOK(t, d, "rmi", "data:1")
}
