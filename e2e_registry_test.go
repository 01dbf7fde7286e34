package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

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
