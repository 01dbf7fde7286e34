package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// loadRegistryImage loads a two-layer image (busybox and a file) as name
// into d and returns its ID.
func loadRegistryImage(t *testing.T, d *skifftest.Daemon, name string, extra []byte) string {
	t.Helper()
	top := skifftest.Tar(t, []skifftest.Entry{{Name: "hello.txt", Body: "hello from the registry\n"}})
	layers := [][]byte{skifftest.BusyboxTar(t), top}
	if extra != nil {
		layers = append(layers, extra)
	}
	archive, ids := skifftest.DockerArchive(t, []skifftest.ArchiveImage{{Layers: layers, Gzip: []bool{true, false, true}, Cmd: []string{"/bin/sh"}, RepoTags: []string{name}}})
	if res := d.DockerIn(t, bytes.NewReader(archive), "load"); res.ExitCode != 0 {
		t.Fatalf("docker load: %v", res)
	}
	return ids[0]
}

var pushDigestRE = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64}) size: \d+`)

// pushImage tags and pushes id as ref from d and returns the manifest digest
// the push reported.
func pushImage(t *testing.T, d *skifftest.Daemon, id, ref string) string {
	t.Helper()
	dockerOK(t, d, "tag", id, ref)
	out := dockerOK(t, d, "push", ref)
	m := pushDigestRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("docker push %s printed no digest:\n%s", ref, out)
	}
	return m[1]
}

func regInspect(t *testing.T, d *skifftest.Daemon, ref, format string) string {
	t.Helper()
	return strings.TrimSpace(dockerOK(t, d, "image", "inspect", "--format", format, ref))
}

// TestE2ERegistryRoundTrip pushes an image from one daemon to the real
// registry and pulls it into a second daemon through the real CLI: same
// image ID and digest, RepoDigests, "up to date" on a second pull, pull by
// digest, and `docker run` of a missing image pulling it first.
func TestE2ERegistryRoundTrip(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	id := loadRegistryImage(t, src, "app:1.0", nil)
	ref := reg + "/team/app:2"
	digest := pushImage(t, src, id, ref)
	out := dockerOK(t, src, "push", ref)
	if !strings.Contains(out, "Layer already exists") || !strings.Contains(out, digest) {
		t.Errorf("second push = %q, want layers already there and digest %s", out, digest)
	}
	if got := regInspect(t, src, ref, "{{json .RepoDigests}}"); got != `["`+reg+`/team/app@`+digest+`"]` {
		t.Errorf("RepoDigests after push = %s", got)
	}

	dst := skifftest.Start(t)
	res := dst.Docker(t, "pull", ref)
	if res.ExitCode != 0 {
		t.Fatalf("docker pull: %v\n%s", res, dst.Log())
	}
	for _, want := range []string{"2: Pulling from team/app", "Pull complete", "Digest: " + digest, "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("docker pull output lacks %q:\n%s", want, res.Stdout)
		}
	}
	if got := regInspect(t, dst, ref, "{{.Id}} {{json .RepoDigests}}"); got != id+` ["`+reg+`/team/app@`+digest+`"]` {
		t.Errorf("pulled image: %s, want ID %s and digest %s", got, id, digest)
	}
	if got := dockerOK(t, dst, "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"); !strings.Contains(got, reg+"/team/app 2 "+digest) {
		t.Errorf("docker images --digests = %q", got)
	}
	if out := dockerOK(t, dst, "pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) || strings.Contains(out, "Pull complete") {
		t.Errorf("second pull = %q, want up to date without downloads", out)
	}

	// By digest, into a daemon that has none of it.
	byDigest := reg + "/team/app@" + digest
	third := skifftest.Start(t)
	out = dockerOK(t, third, "pull", byDigest)
	if !strings.Contains(out, "Status: Downloaded newer image for "+byDigest) {
		t.Errorf("pull by digest = %q", out)
	}
	if got := regInspect(t, third, byDigest, "{{.Id}} {{json .RepoTags}} {{json .RepoDigests}}"); got != id+` [] ["`+byDigest+`"]` {
		t.Errorf("image pulled by digest: %s", got)
	}

	// docker run of an image that is not there: create answers 404, the CLI
	// pulls and creates again. The base layer is there already.
	res = third.Docker(t, "run", "--rm", ref, "cat", "/hello.txt")
	if res.ExitCode != 0 || res.Stdout != "hello from the registry\n" {
		t.Fatalf("docker run of a missing image: %v", res)
	}
	if !strings.Contains(res.Stderr, "Unable to find image '"+ref+"' locally") {
		t.Errorf("docker run stderr = %q, want the CLI's pull notice", res.Stderr)
	}
}

// manifestLayers returns the layer digests of repo:tag on the registry at
// reg, base first.
func manifestLayers(t *testing.T, reg, repo, tag string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+reg+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Layers []struct{ Digest string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// blobProxy forwards to the registry at reg, except that GETs of the blob
// digest go to serve with the blob's true bytes.
func blobProxy(t *testing.T, reg, digest string, serve func(w http.ResponseWriter, r *http.Request, blob []byte)) string {
	t.Helper()
	target, _ := url.Parse("http://" + reg)
	rp := httputil.NewSingleHostReverseProxy(target)
	var blob []byte
	resp, err := http.Get("http://" + reg + "/v2/team/app/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	blob, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reading blob %s: %v %d", digest, err, resp.StatusCode)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			serve(w, r, blob)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func layerDirs(t *testing.T, d *skifftest.Daemon) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.DataRoot, "layers"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestE2ERegistryCorruptBlob pulls through a proxy that serves a layer
// whose bytes do not match its digest: the pull fails with dockerd's
// message and nothing of the image stays, not even the layer that
// verified.
func TestE2ERegistryCorruptBlob(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	pushImage(t, src, loadRegistryImage(t, src, "app:1.0", nil), reg+"/team/app:2")
	layers := manifestLayers(t, reg, "team/app", "2")
	top := layers[len(layers)-1]
	proxy := blobProxy(t, reg, top, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		bad := bytes.Clone(blob)
		bad[len(bad)/2] ^= 0xff
		w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
		w.Write(bad)
	})

	dst := skifftest.Start(t)
	res := dst.Docker(t, "pull", proxy+"/team/app:2")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "filesystem layer verification failed for digest "+top) {
		t.Fatalf("pull of a corrupt blob: %v", res)
	}
	if out := dockerOK(t, dst, "images", "-a", "-q"); out != "" {
		t.Errorf("docker images after a failed pull = %q, want none", out)
	}
	if dirs := layerDirs(t, dst); len(dirs) != 0 {
		t.Errorf("layers left by a failed pull: %v", dirs)
	}
}

// TestE2ERegistryResume pulls through a proxy that drops the connection
// halfway through the largest layer, once: the client resumes with a Range
// request and the pull completes with the right image.
func TestE2ERegistryResume(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	id := loadRegistryImage(t, src, "app:1.0", nil)
	pushImage(t, src, id, reg+"/team/app:2")
	base := manifestLayers(t, reg, "team/app", "2")[0]
	var drops, ranges atomic.Int32
	proxy := blobProxy(t, reg, base, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		if rg := r.Header.Get("Range"); rg != "" {
			ranges.Add(1)
			var start int
			if _, err := fmt.Sscanf(rg, "bytes=%d-", &start); err != nil || start >= len(blob) {
				http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(blob)-1, len(blob)))
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)-start))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(blob[start:])
			return
		}
		if drops.Add(1) > 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
			w.Write(blob)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.Write(blob[:len(blob)/2])
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	dst := skifftest.Start(t)
	ref := proxy + "/team/app:2"
	if res := dst.Docker(t, "pull", ref); res.ExitCode != 0 {
		t.Fatalf("pull through a dropping proxy: %v", res)
	}
	if drops.Load() != 1 || ranges.Load() < 1 {
		t.Errorf("proxy saw %d plain GETs and %d ranged ones, want 1 dropped and a resume", drops.Load(), ranges.Load())
	}
	if got := regInspect(t, dst, ref, "{{.Id}}"); got != id {
		t.Errorf("resumed pull gave image %s, want %s", got, id)
	}
}

// TestE2ERegistryKillMidPull kills the daemon with SIGKILL while a layer is
// half downloaded: the relaunched daemon has no trace of the image, and the
// next pull completes.
func TestE2ERegistryKillMidPull(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	id := loadRegistryImage(t, src, "app:1.0", nil)
	pushImage(t, src, id, reg+"/team/app:2")
	base := manifestLayers(t, reg, "team/app", "2")[0]
	halfway := make(chan struct{}, 1)
	proxy := blobProxy(t, reg, base, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.Write(blob[:len(blob)/2])
		http.NewResponseController(w).Flush()
		select {
		case halfway <- struct{}{}:
		default:
		}
		<-r.Context().Done() // stall until the client goes away
	})
	dst := skifftest.Start(t)
	done := make(chan skifftest.Result, 1)
	go func() { done <- dst.Docker(t, "pull", proxy+"/team/app:2") }()
	select {
	case <-halfway:
	case res := <-done:
		t.Fatalf("pull ended before the stall: %v", res)
	case <-time.After(60 * time.Second):
		t.Fatal("the pull never reached the middle of the layer")
	}
	dst.Kill()
	if res := <-done; res.ExitCode == 0 {
		t.Fatalf("pull survived the daemon's death: %v", res)
	}
	dst.Relaunch(t)
	if out := dockerOK(t, dst, "images", "-a", "-q"); out != "" {
		t.Errorf("images after kill -9 mid-pull = %q, want none", out)
	}
	if dirs := layerDirs(t, dst); len(dirs) != 0 {
		t.Errorf("layer directories after kill -9 mid-pull and relaunch: %v", dirs)
	}
	ref := reg + "/team/app:2"
	dockerOK(t, dst, "pull", ref)
	if got := regInspect(t, dst, ref, "{{.Id}}"); got != id {
		t.Errorf("pull after relaunch gave %s, want %s", got, id)
	}
}
