package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"skiffd/internal/skifftest"
)

// importBusybox imports the test rootfs as busybox:latest and returns its ID.
func importBusybox(t *testing.T, d *skifftest.Daemon) string {
	t.Helper()
	res := d.DockerIn(t, bytes.NewReader(skifftest.BusyboxTar(t)), "import", "--change", `CMD ["/bin/sh"]`, "--change", "ENV A=1", "-", "busybox:latest")
	if res.ExitCode != 0 {
		t.Fatalf("docker import: %v", res)
	}
	id := strings.TrimSpace(res.Stdout)
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("docker import printed %q, want an image ID", res.Stdout)
	}
	return id
}

func dockerOK(t *testing.T, d *skifftest.Daemon, args ...string) string {
	t.Helper()
	res := d.Docker(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), res)
	}
	return res.Stdout
}

// TestCLIImageLifecycle walks the commands of the images issue through the
// real CLI: import, images, inspect, history, tag, rmi, save, load, prune, df.
func TestCLIImageLifecycle(t *testing.T) {
	d := skifftest.Start(t)
	id := importBusybox(t, d)

	out := dockerOK(t, d, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if want := "busybox:latest " + id[7:19] + "\n"; out != want {
		t.Errorf("docker images = %q, want %q", out, want)
	}
	out = dockerOK(t, d, "image", "inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Env}} {{.Os}} {{.Architecture}} {{json .RepoTags}}", "busybox")
	if want := `["/bin/sh"] ["A=1"] linux amd64 ["busybox:latest"]` + "\n"; out != want {
		t.Errorf("image inspect = %q, want %q", out, want)
	}
	// The generic inspect probes containers first; they must answer 404.
	if got := dockerOK(t, d, "inspect", "--format", "{{.Id}}", "busybox"); got != id+"\n" {
		t.Errorf("docker inspect busybox = %q, want %s", got, id)
	}
	if res := d.Docker(t, "inspect", "nothing-here"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "No such object: nothing-here") {
		t.Errorf("docker inspect of a missing object: %v", res)
	}
	out = dockerOK(t, d, "history", "--no-trunc", "--format", "{{.ID}} {{.Comment}}", "busybox")
	if !strings.HasPrefix(out, id+" Imported from -") {
		t.Errorf("docker history = %q, want the image ID first with comment %q", out, "Imported from -")
	}

	dockerOK(t, d, "tag", "busybox", "me/box:1")
	out = dockerOK(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if out != "busybox:latest\nme/box:1\n" && out != "me/box:1\nbusybox:latest\n" {
		t.Errorf("images after tag = %q", out)
	}
	out = dockerOK(t, d, "rmi", "me/box:1")
	if out != "Untagged: me/box:1\n" {
		t.Errorf("rmi me/box:1 = %q, want only an untag", out)
	}

	// Save, remove, load: the same image ID comes back.
	saved := filepath.Join(t.TempDir(), "b.tar")
	dockerOK(t, d, "save", "busybox", "-o", saved)
	out = dockerOK(t, d, "rmi", "busybox")
	if !strings.Contains(out, "Untagged: busybox:latest") || !strings.Contains(out, "Deleted: "+id) {
		t.Errorf("rmi busybox = %q, want untag and delete of %s", out, id)
	}
	if out := dockerOK(t, d, "images", "-q"); out != "" {
		t.Errorf("images after rmi = %q, want none", out)
	}
	out = dockerOK(t, d, "load", "-i", saved)
	if out != "Loaded image: busybox:latest\n" {
		t.Errorf("docker load = %q", out)
	}
	if got := dockerOK(t, d, "image", "inspect", "--format", "{{.Id}}", "busybox"); got != id+"\n" {
		t.Errorf("ID after save/load = %q, want %s", got, id)
	}

	// The saved archive is a docker-archive with the OCI index recent dockerd writes.
	names := tarNames(t, saved)
	for _, want := range []string{"manifest.json", "index.json", "oci-layout", "repositories"} {
		if !names[want] {
			t.Errorf("saved archive lacks %s (has %v)", want, names)
		}
	}

	out = dockerOK(t, d, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(out, "Images 1") {
		t.Errorf("system df = %q, want 1 image", out)
	}
	// An untagged image is dangling; prune removes it and only it.
	dockerOK(t, d, "tag", "busybox", "keep:1")
	dockerOK(t, d, "rmi", "busybox")
	dangling := d.DockerIn(t, bytes.NewReader(skifftest.Tar(t, []skifftest.Entry{{Name: "x", Body: "x"}})), "import", "-")
	if dangling.ExitCode != 0 {
		t.Fatal(dangling)
	}
	out = dockerOK(t, d, "image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+strings.TrimSpace(dangling.Stdout)) || strings.Contains(out, id) {
		t.Errorf("image prune = %q, want only the dangling image deleted", out)
	}
	if out := dockerOK(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}"); out != "keep:1\n" {
		t.Errorf("images after prune = %q", out)
	}
	info := dockerOK(t, d, "info", "--format", "{{.Images}}")
	if info != "1\n" {
		t.Errorf("info Images = %q, want 1", info)
	}
}

func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	return names
}

// TestCLILoadMultiLayer loads an archive the test builds itself: two images
// sharing a gzip base layer, the second with a whiteout and an opaque
// directory; both survive a daemon restart and a save/load round trip.
func TestCLILoadMultiLayer(t *testing.T) {
	base := skifftest.Tar(t, append(skifftest.BusyboxRootfs(t),
		skifftest.Entry{Name: "data/"}, skifftest.Entry{Name: "data/a", Body: "a"}, skifftest.Entry{Name: "data/b", Body: "b"},
		skifftest.Entry{Name: "etc/motd", Body: "hello"}))
	top := skifftest.Tar(t, []skifftest.Entry{
		{Name: "data/"}, {Name: "data/.wh..wh..opq"}, {Name: "data/c", Body: "c"},
		{Name: "etc/"}, {Name: "etc/.wh.motd"},
	})
	archive, ids := skifftest.DockerArchive(t, []skifftest.ArchiveImage{
		{Layers: [][]byte{base}, Gzip: []bool{true}, Cmd: []string{"/bin/sh"}, RepoTags: []string{"base:1"}},
		{Layers: [][]byte{base, top}, Gzip: []bool{true, false}, Cmd: []string{"/bin/sh"}, RepoTags: []string{"top:1", "localhost:5000/team/top:2"}},
	})
	d := skifftest.Start(t)
	res := d.DockerIn(t, bytes.NewReader(archive), "load")
	if res.ExitCode != 0 {
		t.Fatalf("docker load: %v", res)
	}
	for _, want := range []string{"Loaded image: base:1", "Loaded image: top:1", "Loaded image: localhost:5000/team/top:2"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("docker load output %q lacks %q", res.Stdout, want)
		}
	}
	check := func() {
		t.Helper()
		for i, name := range []string{"base:1", "top:1", "localhost:5000/team/top:2"} {
			want := ids[min(i, 1)]
			if got := dockerOK(t, d, "image", "inspect", "--format", "{{.Id}} {{len .RootFS.Layers}}", name); got != want+" "+string(rune('1'+min(i, 1)))+"\n" {
				t.Errorf("inspect %s = %q, want %s with %d layers", name, got, want, min(i, 1)+1)
			}
		}
	}
	check()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d.DataRoot}})
	d = d2
	check()

	saved := filepath.Join(t.TempDir(), "top.tar")
	dockerOK(t, d, "save", "-o", saved, "top:1", "base:1")
	dockerOK(t, d, "rmi", "top:1", "localhost:5000/team/top:2", "base:1")
	dockerOK(t, d, "load", "-i", saved)
	if got := dockerOK(t, d, "image", "inspect", "--format", "{{.Id}}", "top:1"); got != ids[1]+"\n" {
		t.Errorf("top:1 after save/load = %q, want %s", got, ids[1])
	}
}

// TestLoadBadArchive: a broken archive is an in-band error, the CLI exits
// non-zero, and no image appears.
func TestLoadBadArchive(t *testing.T) {
	d := skifftest.Start(t)
	res := d.DockerIn(t, strings.NewReader(strings.Repeat("not a tar ", 100)), "load")
	if res.ExitCode == 0 {
		t.Fatalf("docker load of garbage succeeded: %v", res)
	}
	// A manifest whose layer does not match the config's diff_ids.
	good := skifftest.Tar(t, []skifftest.Entry{{Name: "f", Body: "1"}})
	archive, _ := skifftest.DockerArchive(t, []skifftest.ArchiveImage{{Layers: [][]byte{good}, RepoTags: []string{"bad:1"}}})
	tampered := bytes.Replace(archive, []byte("f\x00"), []byte("g\x00"), 1)
	res = d.DockerIn(t, bytes.NewReader(tampered), "load")
	if res.ExitCode == 0 {
		t.Errorf("docker load of a tampered layer succeeded: %v", res)
	}
	if out := dockerOK(t, d, "images", "-q"); out != "" {
		t.Errorf("images after failed loads = %q, want none", out)
	}
	r := d.Do(t, "GET", "/v1.50/images/nope/json", nil, nil)
	var body map[string]string
	json.Unmarshal([]byte(r.Body), &body)
	if r.Status != 404 || body["message"] != "No such image: nope:latest" {
		t.Errorf("inspect missing = %d %q", r.Status, r.Body)
	}
}

// killingReader feeds src and kills the daemon once after bytes have gone
// through: the daemon is then mid-load, since it consumes as it reads.
type killingReader struct {
	src   *bytes.Reader
	after int
	read  int
	kill  func()
}

func (k *killingReader) Read(p []byte) (int, error) {
	if k.kill != nil && k.read >= k.after {
		k.kill()
		k.kill = nil
	}
	n, err := k.src.Read(p)
	k.read += n
	return n, err
}

// TestLoadCrashLeavesNothing kills the daemon with SIGKILL in the middle of
// loading a large image; after a restart there is no partial image and no
// leftover temporary data, and the same load then succeeds.
func TestLoadCrashLeavesNothing(t *testing.T) {
	big := make([]byte, 160<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	layer := skifftest.Tar(t, []skifftest.Entry{{Name: "big", Body: string(big)}, {Name: "small", Body: "s"}})
	archive, ids := skifftest.DockerArchive(t, []skifftest.ArchiveImage{{Layers: [][]byte{layer}, RepoTags: []string{"big:1"}}})

	d := skifftest.Start(t)
	kr := &killingReader{src: bytes.NewReader(archive), after: 80 << 20, kill: d.Kill}
	res := d.DockerIn(t, kr, "load")
	if res.ExitCode == 0 {
		t.Fatalf("docker load succeeded although the daemon was killed: %v", res)
	}
	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d.DataRoot}})
	if out := dockerOK(t, d2, "images", "-a", "-q"); out != "" {
		t.Errorf("images after a killed load = %q, want none", out)
	}
	var leftovers []string
	filepath.Walk(d.DataRoot, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".tmp-") {
			leftovers = append(leftovers, p)
		}
		return nil
	})
	if layers, _ := os.ReadDir(filepath.Join(d.DataRoot, "layers")); len(layers) > 0 {
		for _, l := range layers {
			leftovers = append(leftovers, "layers/"+l.Name())
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(d.DataRoot, "image", "tmp")); len(tmp) > 0 {
		for _, l := range tmp {
			leftovers = append(leftovers, "image/tmp/"+l.Name())
		}
	}
	if len(leftovers) > 0 {
		t.Errorf("leftovers after restart: %v", leftovers)
	}
	res = d2.DockerIn(t, bytes.NewReader(archive), "load")
	if res.ExitCode != 0 {
		t.Fatalf("load after restart: %v", res)
	}
	if got := dockerOK(t, d2, "image", "inspect", "--format", "{{.Id}}", "big:1"); got != ids[0]+"\n" {
		t.Errorf("big:1 = %q, want %s", got, ids[0])
	}
}

// TestCLIImportFromURL: docker import of a URL has the daemon download the
// tarball (from a server the test runs on loopback), with dockerd's
// "Downloading from" and "Importing" progress, the comment "Imported from
// <url>", a tag, and a container that runs from it; a missing file is
// dockerd's 404 with the server's words, and a server that is not there
// an error, not a hang.
func TestCLIImportFromURL(t *testing.T) {
	d := skifftest.Start(t)
	removeAllAtEnd(t, d)
	tarball := skifftest.BusyboxTar(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rootfs.tar" {
			http.Error(w, "no such file here", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(tarball)))
		w.Write(tarball)
	}))
	defer srv.Close()
	out := dockerOK(t, d, "import", "--change", `CMD ["/bin/sh"]`, srv.URL+"/rootfs.tar", "fromurl:1")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || lines[0] != "Downloading from "+srv.URL+"/rootfs.tar" || !strings.HasPrefix(lines[1], "sha256:") {
		t.Errorf("docker import of a URL printed %q, want where it downloads from and the image ID", out)
	}
	if got := inspectField(t, d, "fromurl:1", "{{.Comment}}"); got != "Imported from "+srv.URL+"/rootfs.tar" {
		t.Errorf("comment %q", got)
	}
	if got := dockerOK(t, d, "run", "--rm", "--network", "none", "fromurl:1", "echo", "ran"); got != "ran\n" {
		t.Errorf("run from the imported image: %q", got)
	}
	// The raw stream: dockerd's messages, in order.
	resp, err := d.Client().Post("http://docker/v1.50/images/create?fromSrc="+url.QueryEscape(srv.URL+"/rootfs.tar")+"&repo=raw&tag=1", "application/x-tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != 200 || len(lines) < 3 || lines[0] != `{"status":"Downloading from `+srv.URL+`/rootfs.tar"}`+"\r" ||
		!strings.HasPrefix(lines[1], `{"status":"Importing","progressDetail":{"current":`) || !strings.Contains(lines[len(lines)-1], `{"status":"sha256:`) {
		t.Errorf("import stream %d:\n%s", resp.StatusCode, body)
	}

	r := d.Docker(t, "import", srv.URL+"/missing.tar")
	if want := "failed to GET " + srv.URL + "/missing.tar with status 404 Not Found: no such file here"; r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("import of a missing file = %v, want %q", r, want)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	r = d.Docker(t, "import", "http://"+dead+"/x.tar")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "connection refused") {
		t.Errorf("import from a closed port = %v, want the dial's error", r)
	}
}
