package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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
	dockerOK(t, src, "tag", id, ref)
	out := dockerOK(t, src, "push", ref)
	for _, want := range []string{"The push refers to repository [" + reg + "/team/app]\n", ": Pushed\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker push output lacks %q:\n%s", want, out)
		}
	}
	digest := pushDigestRE.FindStringSubmatch(out)[1]
	out = dockerOK(t, src, "push", ref)
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

	// The API, not `docker events --until 0s`: the events are less than a
	// second old here.
	events := func(d *skifftest.Daemon) string {
		return d.Do(t, "GET", "/events?since=0&until="+strconv.FormatInt(time.Now().Unix()+1, 10)+"&filters="+url.QueryEscape(`{"type":["image"]}`), nil, nil).Body
	}
	if ev := events(dst); !strings.Contains(ev, `"Action":"pull","Actor":{"ID":"`+ref+`","Attributes":{"name":"`+ref+`"}}`) {
		t.Errorf("events after a pull = %q, want pull %s", ev, ref)
	}
	if ev := events(src); !strings.Contains(ev, `"Action":"push","Actor":{"ID":"`+ref+`","Attributes":{"name":"`+ref+`"}}`) {
		t.Errorf("events after a push = %q, want push %s", ev, ref)
	}

	// Pushing the pulled image to another repository of the same registry
	// mounts its blobs instead of uploading them, and reproduces the
	// manifest byte for byte.
	dockerOK(t, dst, "tag", ref, reg+"/other/app:3")
	out = dockerOK(t, dst, "push", reg+"/other/app:3")
	if !strings.Contains(out, "Mounted from team/app") || !strings.Contains(out, "3: digest: "+digest) {
		t.Errorf("push of a pulled image elsewhere = %q, want mounts and digest %s", out, digest)
	}

	// An unknown tag fails before the stream starts, as an HTTP error.
	if res := dst.Docker(t, "pull", reg+"/team/app:nope"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Error response from daemon: manifest for "+reg+"/team/app:nope not found: manifest unknown") {
		t.Errorf("pull of an unknown tag: %v", res)
	}

	// A registry without the v1 search API: dockerd's error, no results.
	if res := dst.Docker(t, "search", reg+"/team"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Unexpected status code 404") {
		t.Errorf("docker search on a registry without search: %v", res)
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

// selfSignedCert writes a certificate for 127.0.0.1 and its key into dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestE2ERegistryLogin logs in to a TLS registry with htpasswd users
// through the real CLI: a wrong password gets dockerd's 401 text, the right
// one "Login Succeeded", after which the CLI's stored credentials (sent as
// X-Registry-Auth) let push and pull through while an anonymous pull is
// refused.
func TestE2ERegistryLogin(t *testing.T) {
	certFile, keyFile := selfSignedCert(t, t.TempDir())
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{CertFile: certFile, KeyFile: keyFile, Htpasswd: map[string]string{"alice": "secret"}})
	d := skifftest.Start(t)

	res := d.Docker(t, "login", reg, "-u", "alice", "-p", "wrong")
	if want := "login attempt to https://" + reg + "/v2/ failed with status: 401 Unauthorized"; res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("login with a wrong password: %v, want %q", res, want)
	}
	res = d.Docker(t, "login", reg, "-u", "alice", "-p", "secret")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "Login Succeeded") {
		t.Fatalf("login: %v", res)
	}
	id := loadRegistryImage(t, d, "app:1.0", nil)
	ref := reg + "/team/app:2"
	pushImage(t, d, id, ref)

	other := skifftest.Start(t)
	// Through the API: the CLI answers a 401 by prompting for a login.
	if r := other.Do(t, "POST", "/images/create?fromImage="+url.QueryEscape(reg+"/team/app")+"&tag=2", nil, nil); r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "no basic auth credentials") {
		t.Errorf("anonymous pull from a registry that needs a login: %d %s", r.Status, r.Body)
	}
	if res := other.Docker(t, "login", reg, "-u", "alice", "-p", "secret"); res.ExitCode != 0 {
		t.Fatalf("login: %v", res)
	}
	dockerOK(t, other, "pull", ref)
	if got := regInspect(t, other, ref, "{{.Id}}"); got != id {
		t.Errorf("pulled %s, want %s", got, id)
	}
}

// manifestOf returns the raw manifest of repo:tag, its digest and type.
func manifestOf(t *testing.T, reg, repo, tag string) (raw []byte, digest, mediaType string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+reg+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ = io.ReadAll(resp.Body)
	sum := sha256.Sum256(raw)
	return raw, "sha256:" + hex.EncodeToString(sum[:]), resp.Header.Get("Content-Type")
}

// TestE2ERegistryPlatformIndex builds a manifest list with an amd64 and an
// arm64 entry and pulls it with and without --platform; then inspects the
// list and one of its manifests in the registry (GET /distribution/{name}/json),
// over raw HTTP and through docker-py.
func TestE2ERegistryPlatformIndex(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	amdID := loadRegistryImage(t, src, "app:amd", nil)
	armID := loadRegistryImage(t, src, "app:arm", skifftest.Tar(t, []skifftest.Entry{{Name: "arm.txt", Body: "arm\n"}}))
	pushImage(t, src, amdID, reg+"/team/app:amd")
	pushImage(t, src, armID, reg+"/team/app:arm")
	type entry struct {
		MediaType string            `json:"mediaType"`
		Digest    string            `json:"digest"`
		Size      int               `json:"size"`
		Platform  map[string]string `json:"platform"`
	}
	var entries []entry
	for _, e := range []struct{ tag, arch, variant string }{{"amd", "amd64", ""}, {"arm", "arm64", "v8"}} {
		raw, d, mt := manifestOf(t, reg, "team/app", e.tag)
		p := map[string]string{"os": "linux", "architecture": e.arch}
		if e.variant != "" {
			p["variant"] = e.variant
		}
		entries = append(entries, entry{mt, d, len(raw), p})
	}
	list, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": entries})
	req, _ := http.NewRequest("PUT", "http://"+reg+"/v2/team/app/manifests/multi", bytes.NewReader(list))
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.list.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("putting the manifest list: %v %v", err, resp)
	}
	resp.Body.Close()
	sum := sha256.Sum256(list)
	listDigest := "sha256:" + hex.EncodeToString(sum[:])

	dst := skifftest.Start(t)
	ref := reg + "/team/app:multi"
	out := dockerOK(t, dst, "pull", "--platform", "linux/arm64", ref)
	if !strings.Contains(out, "Digest: "+listDigest) {
		t.Errorf("pull of the list = %q, want the list's digest %s", out, listDigest)
	}
	if got := regInspect(t, dst, ref, "{{.Id}} {{json .RepoDigests}}"); got != armID+` ["`+reg+`/team/app@`+listDigest+`"]` {
		t.Errorf("--platform linux/arm64 gave %s, want %s with the list digest", got, armID)
	}
	other := skifftest.Start(t)
	dockerOK(t, other, "pull", "--platform", "linux/amd64", ref)
	if got := regInspect(t, other, ref, "{{.Id}}"); got != amdID {
		t.Errorf("--platform linux/amd64 gave %s, want %s", got, amdID)
	}
	if res := other.Docker(t, "pull", "--platform", "linux/s390x", ref); res.ExitCode == 0 || !strings.Contains(res.Stderr, "no matching manifest for linux/s390x") {
		t.Errorf("pull for a platform the list lacks: %v", res)
	}

	// The registry's view, without pulling: the list's descriptor and
	// its entries' platforms; a manifest's descriptor and its config's
	// platform, by tag and by digest.
	amdRaw, amdDigest, amdType := manifestOf(t, reg, "team/app", "amd")
	for _, c := range []struct{ name, want string }{
		{ref, fmt.Sprintf(`{"Descriptor":{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","digest":%q,"size":%d},"Platforms":[{"architecture":"amd64","os":"linux"},{"architecture":"arm64","os":"linux","variant":"v8"}]}`, listDigest, len(list))},
		{reg + "/team/app:amd", fmt.Sprintf(`{"Descriptor":{"mediaType":%q,"digest":%q,"size":%d},"Platforms":[{"architecture":"amd64","os":"linux"}]}`, amdType, amdDigest, len(amdRaw))},
		{reg + "/team/app@" + amdDigest, fmt.Sprintf(`{"Descriptor":{"mediaType":%q,"digest":%q,"size":%d},"Platforms":[{"architecture":"amd64","os":"linux"}]}`, amdType, amdDigest, len(amdRaw))},
	} {
		res := dst.Do(t, "GET", "/distribution/"+c.name+"/json", nil, nil)
		if res.Status != http.StatusOK || strings.TrimSpace(res.Body) != c.want {
			t.Errorf("distribution inspect of %s: %d %s, want 200 %s", c.name, res.Status, res.Body, c.want)
		}
	}
	if got := dockerPy(t, dst, "d = c.inspect_distribution('"+ref+"')\nprint(d['Descriptor']['digest'], [p['architecture'] for p in d['Platforms']])"); got != listDigest+" ['amd64', 'arm64']" {
		t.Errorf("docker-py inspect_distribution = %q", got)
	}
	if res := dst.Do(t, "GET", "/distribution/"+reg+"/team/app:missing/json", nil, nil); res.Status != http.StatusNotFound || !strings.Contains(res.Body, "manifest unknown") {
		t.Errorf("distribution inspect of a missing tag: %d %s, want 404", res.Status, res.Body)
	}
	if res := dst.Do(t, "GET", "/distribution/"+amdID+"/json", nil, nil); res.Status != http.StatusInternalServerError || !strings.Contains(res.Body, "no manifest found for full image ID") {
		t.Errorf("distribution inspect of an image ID: %d %s, want dockerd's 500", res.Status, res.Body)
	}
}

// TestE2ERegistryConcurrentPullsShareDownloads runs two pulls of the same
// image at once while the base layer's download is held back: the registry
// serves that blob once, and both pulls succeed.
func TestE2ERegistryConcurrentPullsShareDownloads(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	id := loadRegistryImage(t, src, "app:1.0", nil)
	pushImage(t, src, id, reg+"/team/app:2")
	base := manifestLayers(t, reg, "team/app", "2")[0]
	var gets atomic.Int32
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	proxy := blobProxy(t, reg, base, func(w http.ResponseWriter, r *http.Request, blob []byte) {
		gets.Add(1)
		started <- struct{}{}
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.Write(blob[:len(blob)/2])
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(blob[len(blob)/2:])
	})
	d := skifftest.Start(t)
	ref := proxy + "/team/app:2"
	first := make(chan skifftest.Result, 1)
	go func() { first <- d.Docker(t, "pull", ref) }()
	<-started
	// The second pull, through the API, gets as far as the layers while the
	// first holds the download: its stream lists the base layer as being
	// pulled, and only then is the blob let through.
	req, _ := http.NewRequest("POST", "http://skiffd/v1.50/images/create?fromImage="+url.QueryEscape(proxy+"/team/app")+"&tag=2", nil)
	req.Header.Set("X-Registry-Auth", "e30=")
	resp, err := d.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var second []string
	for sc.Scan() {
		second = append(second, sc.Text())
		if strings.Contains(sc.Text(), "Pulling fs layer") && strings.Contains(sc.Text(), base[7:19]) {
			break
		}
	}
	close(release)
	for sc.Scan() {
		second = append(second, sc.Text())
	}
	if last := second[len(second)-1]; !strings.Contains(last, "Status: ") {
		t.Errorf("second pull ended with %s, want a status", last)
	}
	if res := <-first; res.ExitCode != 0 {
		t.Fatalf("first pull: %v", res)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("the base layer was fetched %d times by two concurrent pulls, want once", n)
	}
	if got := regInspect(t, d, ref, "{{.Id}}"); got != id {
		t.Errorf("image %s, want %s", got, id)
	}
}

// TestE2ERegistryConfigInInfo starts a daemon with dockerd's registry
// flags and reads them back through docker info.
func TestE2ERegistryConfigInInfo(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--insecure-registry", "reg.local:5000", "--insecure-registry", "10.1.0.0/16",
		"--registry-mirror", "https://mirror.example", "--max-concurrent-downloads", "1", "--max-concurrent-uploads", "2"}})
	out := dockerOK(t, d, "info")
	for _, want := range []string{"Insecure Registries:\n  reg.local:5000\n", "10.1.0.0/16\n", "127.0.0.0/8\n", "Registry Mirrors:\n  https://mirror.example/\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker info lacks %q:\n%s", want, out)
		}
	}
}

// TestE2ERegistryMaxConcurrentDownloads pulls a three-layer image with
// --max-concurrent-downloads 1 while the registry holds back every layer:
// the two layers that do not get the slot report "Waiting", and the
// registry sees a single layer request until the first is let through.
func TestE2ERegistryMaxConcurrentDownloads(t *testing.T) {
	reg := skifftest.StartRegistry(t, skifftest.RegistryOptions{})
	src := skifftest.Start(t)
	id := loadRegistryImage(t, src, "app:1.0", skifftest.Tar(t, []skifftest.Entry{{Name: "third.txt", Body: "3\n"}}))
	pushImage(t, src, id, reg+"/team/app:2")
	layers := manifestLayers(t, reg, "team/app", "2")
	isLayer := map[string]bool{}
	for _, l := range layers {
		isLayer[l] = true
	}
	target, _ := url.Parse("http://" + reg)
	rp := httputil.NewSingleHostReverseProxy(target)
	gets := make(chan string, 8)
	release := make(chan struct{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := strings.LastIndex(r.URL.Path, "/blobs/")
		if r.Method == http.MethodGet && i >= 0 && isLayer[r.URL.Path[i+len("/blobs/"):]] {
			gets <- r.URL.Path[i+len("/blobs/"):]
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	proxy := l.Addr().String()

	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--max-concurrent-downloads", "1"}})
	req, _ := http.NewRequest("POST", "http://skiffd/v1.50/images/create?fromImage="+url.QueryEscape(proxy+"/team/app")+"&tag=2", nil)
	resp, err := d.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	first := ""
	waiting := map[string]bool{}
	for len(waiting) < 2 {
		select {
		case g := <-gets:
			if first != "" {
				t.Fatalf("the registry got a second layer request (%s) while %s was downloading, with --max-concurrent-downloads 1", g, first)
			}
			first = g
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the pull ended before its layers waited")
			}
			if strings.Contains(line, `"status":"Waiting"`) {
				waiting[line] = true
			}
		}
	}
	close(release)
	var last string
	for line := range lines {
		last = line
	}
	if !strings.Contains(last, "Status: Downloaded newer image") {
		t.Errorf("pull ended with %s", last)
	}
	if got := regInspect(t, d, proxy+"/team/app:2", "{{.Id}}"); got != id {
		t.Errorf("image %s, want %s", got, id)
	}
}
