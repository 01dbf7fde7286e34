package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EShimProcessName runs a container and finds its shim through the
// container's state directory: ps -e (the comm) shows it as skiffd-shim,
// not as the number of the fd its sealed binary was run from, and ps -ef
// (the command line) as "skiffd-shim shim <dir>" (issue 13, item 5).
func TestE2EShimProcessName(t *testing.T) {
	d := startWithBusybox(t)
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "busybox", "sleep", "1000"))
	dir := filepath.Join(d.ExecRoot, "containers", id)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("container state dir: %v", err)
	}
	var pid string
	for _, s := range shimsUnder(d.ExecRoot) {
		if p, sdir, _ := strings.Cut(s, " "); sdir == dir {
			pid = p
		}
	}
	if pid == "" {
		t.Fatalf("no shim runs for %s (shims: %v)", dir, shimsUnder(d.ExecRoot))
	}
	comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(comm)); got != "skiffd-shim" {
		t.Errorf("shim %s comm = %q, want %q", pid, got, "skiffd-shim")
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), []string{"skiffd-shim", "shim", dir}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("shim %s cmdline = %q, want %q", pid, got, want)
	}
}

// TestE2EShimShared: containers started through the CLI share one shim
// process, which names each in its command line (issue 13: a process per
// container cost ~1.3 MiB each), and a daemon killed with SIGKILL leaves
// them all running: the next daemon finds each through its own socket in
// the shared shim, runs execs in them and removes one while the others go
// on. A container sharing the host's pid namespace gets a shim of its own.
func TestE2EShimShared(t *testing.T) {
	d := startWithBusybox(t)
	var ids []string
	for _, name := range []string{"s1", "s2", "s3"} {
		ids = append(ids, strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")))
	}
	alone := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "alone", "--pid", "host", "--network", "none", "busybox", "sleep", "1000"))
	shimOf := func() map[string]string {
		m := map[string]string{}
		for _, s := range shimsUnder(d.ExecRoot) {
			pid, dir, _ := strings.Cut(s, " ")
			m[filepath.Base(dir)] = pid
		}
		return m
	}
	before := shimOf()
	if before[ids[0]] == "" || before[ids[1]] != before[ids[0]] || before[ids[2]] != before[ids[0]] {
		t.Fatalf("shims of s1, s2, s3: %q, %q, %q; want one shim for the three", before[ids[0]], before[ids[1]], before[ids[2]])
	}
	if before[alone] == "" || before[alone] == before[ids[0]] {
		t.Errorf("shim of the --pid host container = %q, want one of its own (shared: %s)", before[alone], before[ids[0]])
	}

	d.Kill()
	d.Relaunch(t)
	if got := dockerOK(t, d, "ps", "--format", "{{.Names}}", "--filter", "status=running"); len(strings.Fields(got)) != 4 {
		t.Fatalf("running after the daemon's SIGKILL and restart: %q, want s1 s2 s3 alone", got)
	}
	for _, name := range []string{"s1", "s2", "s3"} {
		if out := dockerOK(t, d, "exec", name, "sh", "-c", "echo in-$HOSTNAME"); !strings.HasPrefix(out, "in-") {
			t.Errorf("exec in %s after the restart: %q", name, out)
		}
	}
	dockerOK(t, d, "rm", "-f", "s2")
	after := shimOf()
	if after[ids[1]] != "" {
		t.Errorf("the shim still names s2 after its removal")
	}
	if after[ids[0]] != before[ids[0]] || after[ids[2]] != before[ids[0]] {
		t.Errorf("shims of s1 and s3 after s2's removal: %q, %q; want the shared %s still", after[ids[0]], after[ids[2]], before[ids[0]])
	}
	if got := inspectField(t, d, "s3", "{{.State.Status}}"); got != "running" {
		t.Errorf("s3 after s2's removal: %s", got)
	}
	dockerOK(t, d, "rm", "-f", "s1", "s3", "alone")
	if left := shimsUnder(d.ExecRoot); len(left) != 0 {
		t.Errorf("shims still serving removed containers: %v", left)
	}
}
