package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/skifftest"
)

// mountSmallTmpfs mounts a tmpfs of size bytes at a new directory of the
// test's and unmounts it at cleanup (after the daemon's cleanup, which was
// registered later).
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	skifftest.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0711"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes path until the file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			return
		}
	}
}

// TestCLIContainerRecordsDiskFull runs a daemon whose data root is a small
// tmpfs and fills it up (issue 9, item 7). Operations that change a
// container record then fail with a clear error and change nothing —
// create, rename, update, pause — and an exit that happens meanwhile is
// kept in memory, logged and saved as soon as there is room again. Killed
// and relaunched, the daemon finds the previous records intact and the
// exit recorded, and works normally.
func TestCLIContainerRecordsDiskFull(t *testing.T) {
	dataRoot := mountSmallTmpfs(t, "64m")
	sigDir := t.TempDir()
	d := skifftest.StartWith(t, skifftest.Options{DataRoot: dataRoot})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	dockerOK(t, d, "create", "--name", "ca", "--label", "gen=1", "--cpu-shares", "512", "busybox", "true")
	// r runs until the test creates sigDir/go, then exits 3; it writes
	// nothing, so its log needs no room.
	dockerOK(t, d, "run", "-d", "--name", "cr", "--cpu-shares", "512", "-v", sigDir+":/sig",
		"busybox", "sh", "-c", "while [ ! -e /sig/go ]; do sleep 1; done; exit 3")

	fill := filepath.Join(dataRoot, "fill")
	fillUp(t, fill)

	wantNoSpace := func(args ...string) {
		t.Helper()
		res := d.Docker(t, args...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "save container") || !strings.Contains(res.Stderr, "no space left on device") {
			t.Errorf("docker %s on a full disk: %v; want a failure saying the record could not be saved for lack of space", strings.Join(args, " "), res)
		}
	}
	wantNoSpace("create", "--name", "cb", "busybox", "true")
	if out := dockerOK(t, d, "ps", "-a", "--filter", "name=^cb$", "--format", "{{.Names}}"); out != "" {
		t.Errorf("a create that failed left a container: %q", out)
	}
	wantNoSpace("rename", "ca", "ca2")
	if got := inspectField(t, d, "ca", "{{.Name}}"); got != "/ca" {
		t.Errorf("name after a failed rename = %s, want /ca", got)
	}
	if res := d.Docker(t, "inspect", "ca2"); res.ExitCode == 0 {
		t.Errorf("the name of a failed rename is in use")
	}
	wantNoSpace("update", "--cpu-shares", "1024", "cr")
	if got := inspectField(t, d, "cr", "{{.HostConfig.CPUShares}}"); got != "512" {
		t.Errorf("CpuShares after a failed update = %s, want 512", got)
	}
	wantNoSpace("pause", "cr")
	if got := inspectField(t, d, "cr", "{{.State.Status}}"); got != "running" {
		t.Errorf("status after a failed pause = %s, want running", got)
	}

	// An exit while the disk is full: recorded in memory, its save
	// retried.
	if err := os.WriteFile(filepath.Join(sigDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "r to exit", func() bool { return inspectField(t, d, "cr", "{{.State.Status}} {{.State.ExitCode}}") == "exited 3" })
	waitFor(t, "the failed save of r's exit to be logged", func() bool {
		return strings.Contains(d.Log(), "saving container record failed; retrying")
	})

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retried save of r's exit", func() bool {
		return strings.Contains(d.Log(), "container record saved after an earlier failure")
	})

	// What is on disk is what a new daemon finds.
	d.Kill()
	d.Relaunch(t)
	if got := inspectField(t, d, "ca", "{{.Name}} {{index .Config.Labels \"gen\"}} {{.HostConfig.CPUShares}}"); got != "/ca 1 512" {
		t.Errorf("a after relaunch = %q, want its previous record: /ca 1 512", got)
	}
	if got := inspectField(t, d, "cr", "{{.State.Status}} {{.State.ExitCode}} {{.HostConfig.CPUShares}}"); got != "exited 3 512" {
		t.Errorf("r after relaunch = %q, want exited 3 512 (the exit saved once there was room)", got)
	}
	if res := d.Docker(t, "inspect", "cb"); res.ExitCode == 0 {
		t.Errorf("the container of a failed create exists after relaunch")
	}
	// And it works again.
	dockerOK(t, d, "create", "--name", "cb", "busybox", "true")
	dockerOK(t, d, "rename", "ca", "ca2")
	dockerOK(t, d, "update", "--cpu-shares", "1024", "ca2")
	if got := inspectField(t, d, "ca2", "{{.Name}} {{.HostConfig.CPUShares}}"); got != "/ca2 1024" {
		t.Errorf("a after rename and update = %q, want /ca2 1024", got)
	}
}
