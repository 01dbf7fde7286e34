package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// composeFile is a three-service stack: web publishes a port and asks app
// (by service name) through a CGI script, app asks db (by name) the same
// way, and db serves a file it wrote into a named volume. The answer of
// web therefore proves the whole chain and the volume.
const composeFile = `version: "2.4"
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "echo dbok > /data/db && echo db ready && exec httpd -f -v -p 5432 -h /data"]
    volumes:
      - dbdata:/data
  app:
    image: busybox:latest
    depends_on: [db]
    command: ["sh", "-c", "echo app ready && exec httpd -f -v -p 8000 -h /srv"]
    volumes:
      - ./app.cgi:/srv/cgi-bin/app.cgi:ro
  web:
    image: busybox:latest
    depends_on: [app]
    command: ["sh", "-c", "echo web ready && exec httpd -f -v -p 80 -h /srv"]
    ports:
      - "127.0.0.1:%d:80"
    volumes:
      - ./web.cgi:/srv/cgi-bin/web.cgi:ro
volumes:
  dbdata: {}
`

const appCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "app saw $(wget -qO- http://db:5432/db)"
`

const webCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "web saw $(wget -qO- http://app:8000/cgi-bin/app.cgi)"
`

// compose runs docker-compose (Debian's 1.29, which .ci/run installs)
// against the daemon in dir, with a project name of the test's own.
func compose(t *testing.T, d *skifftest.Daemon, dir, project string, args ...string) (string, string, error) {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("docker-compose is not installed (.ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	env := []string{"DOCKER_HOST=" + d.Host, "COMPOSE_PROJECT_NAME=" + project, "DOCKER_CONFIG=" + filepath.Join(d.Dir, "docker-config")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_CONFIG", "COMPOSE_PROJECT_NAME", "COMPOSE_FILE":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestE2ECompose runs `docker-compose up -d`, `ps`, `logs` and `down -v`
// on a three-service file against a daemon and checks each step: the
// published web port answers with what web got from app and app from db
// (service names resolved by the embedded DNS, depends_on ordering, a
// named volume), ps shows every service Up, logs carry each service's
// output, and down -v leaves no container, network or volume behind.
func TestE2ECompose(t *testing.T) {
	d := startNetDaemon(t)
	dir := t.TempDir()
	port := freePort(t)
	project := fmt.Sprintf("skt%d", time.Now().UnixNano()%1000000)
	for name, body := range map[string]string{
		"docker-compose.yml": fmt.Sprintf(composeFile, port),
		"app.cgi":            appCGI,
		"web.cgi":            webCGI,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { compose(t, d, dir, project, "down", "-v", "-t", "1") })

	if out, errOut, err := compose(t, d, dir, project, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d: %v\n%s%s\ndaemon log:\n%s", err, out, errOut, d.Log())
	}

	// The chain web -> app -> db through the published port.
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		body, err = getIn(t, d.Netns, fmt.Sprintf("127.0.0.1:%d", port), "/cgi-bin/web.cgi")
		if err == nil && strings.Contains(body, "web saw app saw dbok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web through 127.0.0.1:%d answered %q (%v), want %q", port, body, err, "web saw app saw dbok")
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, errOut, err := compose(t, d, dir, project, "ps")
	t.Logf("ps:\n%s", out)
	if err != nil {
		t.Fatalf("docker-compose ps: %v\n%s%s", err, out, errOut)
	}
	for _, svc := range []string{"db", "app", "web"} {
		name := project + "_" + svc + "_1"
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, name+" ") && strings.Contains(line, " Up ") {
				found = true
			}
		}
		if !found {
			t.Errorf("docker-compose ps shows no %s Up:\n%s", name, out)
		}
	}
	if !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Errorf("docker-compose ps shows no published port 127.0.0.1:%d->80/tcp:\n%s", port, out)
	}

	out, errOut, err = compose(t, d, dir, project, "logs", "--no-color")
	if err != nil {
		t.Fatalf("docker-compose logs: %v\n%s%s", err, out, errOut)
	}
	for _, svc := range []string{"db", "app", "web"} {
		if !strings.Contains(out, svc+" ready") {
			t.Errorf("docker-compose logs lack %q:\n%s", svc+" ready", out)
		}
	}

	// What compose made, by its labels, before down removes it.
	nets := strings.Fields(dockerOK(t, d, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+project))
	vols := strings.Fields(dockerOK(t, d, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+project))
	if len(nets) != 1 || len(vols) != 1 {
		t.Errorf("compose project %s has networks %q and volumes %q, want one of each", project, nets, vols)
	}

	if out, errOut, err := compose(t, d, dir, project, "down", "-v", "-t", "1"); err != nil {
		t.Fatalf("docker-compose down -v: %v\n%s%s\ndaemon log:\n%s", err, out, errOut, d.Log())
	}
	if ids := strings.Fields(dockerOK(t, d, "ps", "-aq")); len(ids) != 0 {
		t.Errorf("containers left after down -v: %q", ids)
	}
	if ls := dockerOK(t, d, "network", "ls", "--format", "{{.Name}}"); strings.Contains(ls, project) {
		t.Errorf("network left after down -v:\n%s", ls)
	}
	if ls := dockerOK(t, d, "volume", "ls", "--format", "{{.Name}}"); strings.Contains(ls, project) {
		t.Errorf("volume left after down -v:\n%s", ls)
	}
}
