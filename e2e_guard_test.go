package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiffd/internal/authz"
	"skiffd/internal/skifftest"
)

// TestCLIGuardedSockets starts the real daemon with a read-only socket, an
// allow-listed socket (both from -H options) and an authorization plugin
// found through the plugin directory, and drives them with the docker CLI
// (issue 12, items 1 and 3).
func TestCLIGuardedSockets(t *testing.T) {
	skifftest.RequireRoot(t)
	pdir, err := os.MkdirTemp("", "skp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pdir) })
	p := &testPlugin{decide: func(req authz.Request) (int, string) {
		if strings.Contains(req.RequestURI, "/volumes/create") {
			return 200, `{"Allow":false,"Msg":"no new volumes"}`
		}
		return 200, `{"Allow":true}`
	}}
	startPlugin(t, pdir, "guard", p)
	ro := filepath.Join(pdir, "ro.sock")
	al := filepath.Join(pdir, "al.sock")
	d := skifftest.StartWith(t, skifftest.Options{
		Args: []string{"-H", "unix://" + ro + "?mode=ro", "-H", "unix://" + al + "?allow=volumes:read", "--authorization-plugin", "guard"},
		Env:  []string{"SKIFFD_PLUGIN_DIR=" + pdir},
	})

	if r := d.Docker(t, "volume", "create", "v1"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Error response from daemon: authorization denied by plugin guard: no new volumes") {
		t.Errorf("volume create with the plugin refusing = %v", r)
	}
	if r := d.Docker(t, "ps"); r.ExitCode != 0 {
		t.Errorf("docker ps on the main socket = %v", r)
	}

	roHost := "unix://" + ro
	if r := d.DockerHost(t, roHost, "ps", "-a"); r.ExitCode != 0 {
		t.Errorf("docker ps on the read-only socket = %v", r)
	}
	if r := d.DockerHost(t, roHost, "volume", "ls"); r.ExitCode != 0 {
		t.Errorf("docker volume ls on the read-only socket = %v", r)
	}
	if r := d.DockerHost(t, roHost, "create", "busybox"); r.ExitCode == 0 || !strings.Contains(r.Stderr, `access denied by listener policy "mode=ro": POST requests to containers:write are not allowed on this socket`) {
		t.Errorf("docker create on the read-only socket = %v", r)
	}

	alHost := "unix://" + al
	if r := d.DockerHost(t, alHost, "volume", "ls"); r.ExitCode != 0 {
		t.Errorf("docker volume ls on the allow-listed socket = %v", r)
	}
	if r := d.DockerHost(t, alHost, "ps"); r.ExitCode == 0 || !strings.Contains(r.Stderr, `access denied by listener policy "allow=volumes:read": GET requests to containers:read are not allowed on this socket`) {
		t.Errorf("docker ps on a socket allowing volumes:read = %v", r)
	}
}
