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
