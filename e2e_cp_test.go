package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/skifftest"
)

// tarEntries reads a tar stream into name -> content (directories and
// links map to "").
func tarEntries(t *testing.T, b []byte) (names []string, content map[string]string) {
	t.Helper()
	content = map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, content
		}
		if err != nil {
			t.Fatalf("reading tar (%d bytes): %v", len(b), err)
		}
		body, _ := io.ReadAll(tr)
		names = append(names, hdr.Name)
		content[hdr.Name] = string(body)
	}
}

func buildTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return buf.Bytes()
}

// cpOut runs `docker cp ctr:path -` and returns the tar's entries.
func cpOut(t *testing.T, d *skifftest.Daemon, src string) ([]string, map[string]string) {
	t.Helper()
	res := d.Docker(t, "cp", src, "-")
	if res.ExitCode != 0 {
		t.Fatalf("docker cp %s -: %v", src, res)
	}
	return tarEntries(t, []byte(res.Stdout))
}

// TestCLICopyDiffExportCommit walks the archive commands of the issue
// through the real CLI.
func TestCLICopyDiffExportCommit(t *testing.T) {
	d := startWithBusybox(t)
	src := t.TempDir()
	dir := filepath.Join(src, "dir")
	for name, body := range map[string]string{"a": "file a\n", "sub/b": "file b\n"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a", filepath.Join(dir, "link"))

	dockerOK(t, d, "run", "-d", "--name", "web", "busybox", "sleep", "1000")
	// /srv does not exist: the copy is the new /srv, then a copy into it.
	dockerOK(t, d, "cp", dir, "web:/srv")
	dockerOK(t, d, "cp", dir, "web:/srv/")
	names, content := cpOut(t, d, "web:/srv/dir")
	if want := []string{"dir/", "dir/a", "dir/link", "dir/sub/", "dir/sub/b"}; !slices.Equal(names, want) {
		t.Errorf("docker cp web:/srv/dir - lists %q, want %q", names, want)
	}
	if content["dir/a"] != "file a\n" || content["dir/sub/b"] != "file b\n" {
		t.Errorf("docker cp web:/srv/dir - content = %q", content)
	}
	if names, _ := cpOut(t, d, "web:/srv/."); !slices.Contains(names, "./a") || !slices.Contains(names, "./dir/sub/b") {
		t.Errorf("docker cp web:/srv/. - lists %q", names)
	}

	// The engine's files are mounted in the container, and cp sees them.
	ctrID := strings.TrimSpace(dockerOK(t, d, "inspect", "--format", "{{.Id}}", "web"))
	if names, content := cpOut(t, d, "web:/etc/hostname"); !slices.Equal(names, []string{"hostname"}) || content["hostname"] != ctrID[:12]+"\n" {
		t.Errorf("docker cp web:/etc/hostname - = %q %q, want the container's hostname", names, content)
	}
	if _, content := cpOut(t, d, "web:/etc"); content["etc/hostname"] != ctrID[:12]+"\n" || !strings.Contains(content["etc/hosts"], "localhost") {
		t.Errorf("docker cp web:/etc - has hostname %q and hosts %q, want the mounted files", content["etc/hostname"], content["etc/hosts"])
	}

	// Back out to the host, as a directory and as a single file.
	out := t.TempDir()
	dockerOK(t, d, "cp", "web:/srv/dir", out)
	if b, err := os.ReadFile(filepath.Join(out, "dir/sub/b")); err != nil || string(b) != "file b\n" {
		t.Errorf("copied out dir/sub/b = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(out, "dir/link")); err != nil || l != "a" {
		t.Errorf("copied out dir/link -> %q, %v", l, err)
	}
	dockerOK(t, d, "cp", "web:/srv/a", filepath.Join(out, "renamed"))
	if b, err := os.ReadFile(filepath.Join(out, "renamed")); err != nil || string(b) != "file a\n" {
		t.Errorf("copied out renamed = %q, %v", b, err)
	}

	// A tar stream in, built here as `tar -c f` would.
	res := d.DockerIn(t, bytes.NewReader(buildTar(t, map[string]string{"f": "from a stream\n", "g/h": "nested\n"})), "cp", "-", "web:/tmp")
	if res.ExitCode != 0 {
		t.Fatalf("tar | docker cp - web:/tmp: %v", res)
	}
	if _, content := cpOut(t, d, "web:/tmp/g/h"); content["h"] != "nested\n" {
		t.Errorf("streamed file g/h = %q", content)
	}

	// Errors in dockerd's words.
	if res := d.Docker(t, "cp", "web:/no/such/path", out); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Could not find the file /no/such/path in container web") {
		t.Errorf("cp of a missing path: %v", res)
	}
	if res := d.Docker(t, "cp", filepath.Join(dir, "a"), "web:/no/such/dir/"); res.ExitCode == 0 {
		t.Errorf("cp into a missing directory succeeded: %v", res)
	}

	// The stat header of HEAD, as the CLI reads it.
	r := d.Do(t, "HEAD", "/v1.41/containers/web/archive?path=%2Fsrv%2Fdir%2F", nil, nil)
	var st struct {
		Name string `json:"name"`
		Mode uint32 `json:"mode"`
	}
	if b, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Docker-Container-Path-Stat")); r.Status != 200 || err != nil || json.Unmarshal(b, &st) != nil ||
		st.Name != "dir" || st.Mode != 1<<31|0o755 {
		t.Errorf("HEAD archive = %d %q (%+v)", r.Status, r.Header.Get("X-Docker-Container-Path-Stat"), st)
	}

	// docker diff: what was copied in, and nothing of the runtime's.
	diff := dockerOK(t, d, "diff", "web")
	for _, want := range []string{"A /srv\n", "A /srv/dir/sub/b\n", "C /tmp\n", "A /tmp/f\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("docker diff lacks %q:\n%s", want, diff)
		}
	}
	for _, unwanted := range []string{"/etc/hostname", "/proc", "/dev"} {
		if strings.Contains(diff, unwanted) {
			t.Errorf("docker diff shows %s:\n%s", unwanted, diff)
		}
	}

	// docker export: the whole file system.
	exp := filepath.Join(out, "web.tar")
	dockerOK(t, d, "export", "-o", exp, "web")
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	names, content = tarEntries(t, b)
	if !slices.Contains(names, "bin/busybox") || content["srv/dir/a"] != "file a\n" || content["tmp/f"] != "from a stream\n" {
		t.Errorf("docker export has %d entries, bin/busybox %v, srv/dir/a %q", len(names), slices.Contains(names, "bin/busybox"), content["srv/dir/a"])
	}

	// docker commit, then run the new image.
	id := strings.TrimSpace(dockerOK(t, d, "commit", "-c", `CMD ["sh"]`, "-m", "copied", "-a", "me", "web", "me/web:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("docker commit printed %q", id)
	}
	if got := dockerOK(t, d, "run", "--rm", "me/web:1", "cat", "/srv/dir/a"); got != "file a\n" {
		t.Errorf("cat in the committed image = %q", got)
	}
	if got := dockerOK(t, d, "image", "inspect", "--format", "{{json .Config.Cmd}} {{.Comment}} {{.Author}} {{len .RootFS.Layers}}", "me/web:1"); got != `["sh"] copied me 2`+"\n" {
		t.Errorf("image inspect me/web:1 = %q", got)
	}
	if got := dockerOK(t, d, "ps", "--filter", "name=web", "--format", "{{.Status}}"); !strings.HasPrefix(got, "Up") || strings.Contains(got, "Paused") {
		t.Errorf("web after commit: %q, want running and not paused", got)
	}

	// A stopped container: copies both ways still work.
	dockerOK(t, d, "stop", "-t", "0", "web")
	res = d.DockerIn(t, bytes.NewReader(buildTar(t, map[string]string{"stopped": "while stopped\n"})), "cp", "-", "web:/tmp")
	if res.ExitCode != 0 {
		t.Fatalf("cp into a stopped container: %v", res)
	}
	if _, content := cpOut(t, d, "web:/tmp/stopped"); content["stopped"] != "while stopped\n" {
		t.Errorf("cp out of a stopped container = %q", content)
	}
	if diff := dockerOK(t, d, "diff", "web"); !strings.Contains(diff, "A /tmp/stopped\n") {
		t.Errorf("diff of the stopped container lacks /tmp/stopped:\n%s", diff)
	}
}

// TestCLICopyVolume copies into and out of a named volume mounted in a
// container, running and stopped, and reads the result from another.
func TestCLICopyVolume(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "volume", "create", "cpdata")
	dockerOK(t, d, "run", "-d", "--name", "vol", "-v", "cpdata:/d", "busybox", "sleep", "1000")
	res := d.DockerIn(t, bytes.NewReader(buildTar(t, map[string]string{"f": "in the volume\n"})), "cp", "-", "vol:/d")
	if res.ExitCode != 0 {
		t.Fatalf("cp into a volume: %v", res)
	}
	if got := dockerOK(t, d, "run", "--rm", "-v", "cpdata:/d", "busybox", "cat", "/d/f"); got != "in the volume\n" {
		t.Errorf("file copied into the volume reads %q in another container", got)
	}
	dockerOK(t, d, "run", "--rm", "-v", "cpdata:/d", "busybox", "sh", "-c", "echo from a container > /d/g")
	if _, content := cpOut(t, d, "vol:/d/g"); content["g"] != "from a container\n" {
		t.Errorf("cp out of the volume = %q", content)
	}
	dockerOK(t, d, "stop", "-t", "0", "vol")
	if _, content := cpOut(t, d, "vol:/d/f"); content["f"] != "in the volume\n" {
		t.Errorf("cp out of the volume of a stopped container = %q", content)
	}
	if diff := dockerOK(t, d, "diff", "vol"); strings.Contains(diff, "/d/") {
		t.Errorf("docker diff shows volume content:\n%s", diff)
	}
}

// TestCLICopyBind copies into and out of bind mounts, refusing a
// read-only one as dockerd does.
func TestCLICopyBind(t *testing.T) {
	d := startWithBusybox(t)
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "kept"), []byte("read only\n"), 0o644)
	dockerOK(t, d, "run", "-d", "--name", "bind", "-v", rw+":/rw", "-v", ro+":/ro:ro", "busybox", "sleep", "1000")
	res := d.DockerIn(t, bytes.NewReader(buildTar(t, map[string]string{"f": "via cp\n"})), "cp", "-", "bind:/rw")
	if res.ExitCode != 0 {
		t.Fatalf("cp into a bind mount: %v", res)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "f")); err != nil || string(b) != "via cp\n" {
		t.Errorf("host side of the bind mount has f = %q, %v", b, err)
	}
	if _, content := cpOut(t, d, "bind:/ro/kept"); content["kept"] != "read only\n" {
		t.Errorf("cp out of a read-only bind = %q", content)
	}
	res = d.DockerIn(t, bytes.NewReader(buildTar(t, map[string]string{"g": "x"})), "cp", "-", "bind:/ro")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "mounted volume is marked read-only") {
		t.Errorf("cp into a read-only bind: %v", res)
	}
	if _, err := os.Stat(filepath.Join(ro, "g")); err == nil {
		t.Errorf("cp wrote into a read-only bind mount")
	}
}

// TestCLICopyOwnershipAndReadOnly covers cp -a (the container user's ids)
// and a read-only rootfs, which refuses copies in but not out.
func TestCLICopyOwnershipAndReadOnly(t *testing.T) {
	d := startWithBusybox(t)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("x\n"), 0o644)
	os.Chown(src, 4321, 4321)
	dockerOK(t, d, "run", "-d", "--name", "usr", "-u", "user", "busybox", "sleep", "1000")
	dockerOK(t, d, "cp", src, "usr:/tmp/plain")
	dockerOK(t, d, "cp", "-a", src, "usr:/tmp/archive")
	if got := dockerOK(t, d, "exec", "usr", "stat", "-c", "%u:%g", "/tmp/plain", "/tmp/archive"); got != "4321:4321\n1000:1000\n" {
		t.Errorf("owners of copied files = %q, want the archive's, then the container user's", got)
	}

	dockerOK(t, d, "run", "-d", "--name", "ro", "--read-only", "busybox", "sleep", "1000")
	if res := d.Docker(t, "cp", src, "ro:/tmp/"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "container rootfs is marked read-only") {
		t.Errorf("cp into a read-only rootfs: %v", res)
	}
	if _, content := cpOut(t, d, "ro:/etc/passwd"); !strings.HasPrefix(content["passwd"], "root:") {
		t.Errorf("cp out of a read-only rootfs = %q", content)
	}
}

// TestCLICopyHostile sends archives and paths that try to leave the
// container; a sentinel directory on the host must not change.
func TestCLICopyHostile(t *testing.T) {
	d := startWithBusybox(t)
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	os.WriteFile(secret, []byte("host secret\n"), 0o600)
	check := func() {
		t.Helper()
		entries, _ := os.ReadDir(host)
		if b, err := os.ReadFile(secret); err != nil || string(b) != "host secret\n" || len(entries) != 1 {
			t.Errorf("host sentinel changed: %q %v, %d entries", b, err, len(entries))
		}
	}
	dockerOK(t, d, "run", "-d", "--name", "hostile", "busybox", "sh", "-c",
		"ln -s "+host+" /tmp/abs; ln -s "+secret+" /tmp/secret; ln -s ../../../../../.. /tmp/up; touch /tmp/ready; sleep 1000")
	waitFor(t, "the symlinks", func() bool { return d.Docker(t, "cp", "hostile:/tmp/ready", "-").ExitCode == 0 })

	// Reads through the planted links see the container, never the host.
	for _, p := range []string{"hostile:/tmp/abs/secret", "hostile:/tmp/secret/", "hostile:/tmp/up" + secret} {
		res := d.Docker(t, "cp", p, "-")
		if strings.Contains(res.Stdout, "host secret") {
			t.Errorf("docker cp %s - leaked the host file", p)
		}
	}
	if res := d.Docker(t, "cp", "-L", "hostile:/tmp/secret", t.TempDir()); strings.Contains(res.Stdout+res.Stderr, "host secret") {
		t.Errorf("cp -L leaked the host file: %v", res)
	}
	// Writes: a name climbing out, a symlink then a file through it, and
	// a file through the planted links.
	for name, b := range map[string][]byte{
		"dotdot":       buildTar(t, map[string]string{"../../../../../../" + secret: "pwned\n"}),
		"through link": buildTar(t, map[string]string{"abs/secret": "pwned\n", "up" + secret: "pwned\n"}),
		"link then file": func() []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: host})
			tw.WriteHeader(&tar.Header{Name: "evil/secret", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6})
			tw.Write([]byte("pwned\n"))
			tw.Close()
			return buf.Bytes()
		}(),
	} {
		res := d.DockerIn(t, bytes.NewReader(b), "cp", "-", "hostile:/tmp")
		t.Logf("%s: exit %d %s", name, res.ExitCode, strings.TrimSpace(res.Stderr))
		check()
	}
	// A copy into the link goes to the container's own path of that name,
	// if the archives above created it there, and never to the host.
	res := d.DockerIn(t, bytes.NewReader(buildTar(t, map[string]string{"secret": "pwned\n"})), "cp", "-", "hostile:/tmp/abs")
	check()
	if res.ExitCode == 0 {
		if _, content := cpOut(t, d, "hostile:"+secret); content["secret"] != "pwned\n" {
			t.Errorf("cp into /tmp/abs succeeded but the container's %s holds %q", secret, content["secret"])
		}
	}
}
