package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// TestCLIImageDeleteInUse checks dockerd's rmi rules for images that
// containers use (issue 9, item 11): the last tag of an image a container
// uses, running or stopped, is not removed without force, so that no used
// image turns dangling; other tags go; an ID of an image a running container
// uses cannot be deleted even forced; a forced untag leaves the image.
func TestCLIImageDeleteInUse(t *testing.T) {
	d := skifftest.Start(t)
	id := importBusybox(t, d) // busybox:latest
	removeAllAtEnd(t, d)
	short := strings.TrimPrefix(id, "sha256:")[:12]

	stopped := strings.TrimSpace(dockerOK(t, d, "create", "--name", "stopped", "busybox", "true"))
	want := fmt.Sprintf(`Error response from daemon: conflict: unable to remove repository reference "busybox" (must force) - container %s is using its referenced image %s`, stopped[:12], short)
	if res := d.Docker(t, "rmi", "busybox"); res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("docker rmi busybox (used by a stopped container) = %v, want exit 1 and %q", res, want)
	}
	if out := dockerOK(t, d, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); out != "busybox:latest "+short+"\n" {
		t.Errorf("images after the refused rmi = %q, want busybox:latest still tagged", out)
	}

	// Another tag exists: removing one of the two is only an untag.
	dockerOK(t, d, "tag", "busybox", "other:1")
	if out := dockerOK(t, d, "rmi", "busybox"); out != "Untagged: busybox:latest\n" {
		t.Errorf("docker rmi busybox with another tag = %q, want only the untag", out)
	}
	want = fmt.Sprintf(`conflict: unable to remove repository reference "other:1" (must force) - container %s is using its referenced image %s`, stopped[:12], short)
	if res := d.Docker(t, "rmi", "other:1"); res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("docker rmi other:1 = %v, want %q", res, want)
	}
	// By ID, a stopped container is a conflict force overrides.
	want = fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, stopped[:12])
	if res := d.Docker(t, "rmi", short); res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("docker rmi %s = %v, want %q", short, res, want)
	}

	// A running container: by name the same refusal, by ID not even forced.
	running := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "running", "other:1", "sleep", "600"))
	dockerOK(t, d, "rm", "stopped")
	want = fmt.Sprintf(`conflict: unable to remove repository reference "other:1" (must force) - container %s is using its referenced image %s`, running[:12], short)
	if res := d.Docker(t, "rmi", "other:1"); res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("docker rmi other:1 (running container) = %v, want %q", res, want)
	}
	want = fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", short, running[:12])
	if res := d.Docker(t, "rmi", "-f", short); res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
		t.Errorf("docker rmi -f %s = %v, want %q", short, res, want)
	}
	// Forced by name: the tag goes, the image stays for its container.
	if out := dockerOK(t, d, "rmi", "-f", "other:1"); out != "Untagged: other:1\n" {
		t.Errorf("docker rmi -f other:1 = %q, want only the untag", out)
	}
	if out := dockerOK(t, d, "images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); out != "<none>:<none> "+short+"\n" {
		t.Errorf("images after the forced untag = %q, want the image kept, untagged", out)
	}
	if got := inspectField(t, d, "running", "{{.State.Running}}"); got != "true" {
		t.Errorf("container running = %s after the forced untag, want true", got)
	}

	// Once no container uses it, the ID deletes it.
	dockerOK(t, d, "rm", "-f", "running")
	if out := dockerOK(t, d, "rmi", short); !strings.Contains(out, "Deleted: "+id) {
		t.Errorf("docker rmi %s = %q, want the image deleted", short, out)
	}
}

// TestCLIImagePruneFilters checks image prune's until and label filters
// against images created moments before (issue 9, item 11): until, as a
// duration or a timestamp, keeps what was created after it.
func TestCLIImagePruneFilters(t *testing.T) {
	d := skifftest.Start(t)
	imp := func(name string, changes ...string) (id string, created time.Time) {
		t.Helper()
		args := []string{"import"}
		for _, c := range changes {
			args = append(args, "--change", c)
		}
		args = append(args, "-")
		res := d.DockerIn(t, bytes.NewReader(skifftest.Tar(t, []skifftest.Entry{{Name: name, Body: name}})), args...)
		if res.ExitCode != 0 {
			t.Fatalf("docker import: %v", res)
		}
		id = strings.TrimSpace(res.Stdout)
		var c []time.Time
		if err := json.Unmarshal([]byte(dockerOK(t, d, "image", "inspect", "--format", "[{{json .Created}}]", id)), &c); err != nil || len(c) != 1 {
			t.Fatalf("image inspect Created: %v", err)
		}
		return id, c[0]
	}
	old, oldCreated := imp("old")
	// until is the instant just after old's creation, as unix seconds with
	// nanoseconds; the next image is made once the clock has passed it.
	untilT := oldCreated.Add(time.Microsecond)
	until := fmt.Sprintf("%d.%09d", untilT.Unix(), untilT.Nanosecond())
	for deadline := time.Now().Add(5 * time.Second); !time.Now().After(untilT); {
		if time.Now().After(deadline) {
			t.Fatal("the clock did not pass the image's creation time")
		}
	}
	fresh, _ := imp("fresh")

	// Everything was created within the last hour: nothing goes.
	if out := dockerOK(t, d, "image", "prune", "-f", "--filter", "until=1h"); strings.Contains(out, "deleted:") {
		t.Errorf("image prune --filter until=1h = %q, want nothing deleted", out)
	}
	out := dockerOK(t, d, "image", "prune", "-f", "--filter", "until="+until)
	if !strings.Contains(out, "deleted: "+old) || strings.Contains(out, fresh) {
		t.Errorf("image prune --filter until=%s = %q, want %s deleted and %s kept", until, out, old, fresh)
	}
	if res := d.Docker(t, "image", "prune", "-f", "--filter", "until=soon"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "invalid value for 'until' filter") {
		t.Errorf("image prune --filter until=soon = %v, want dockerd's invalid until error", res)
	}

	// Labels.
	yes, _ := imp("yes", "LABEL prune=yes")
	no, _ := imp("no", "LABEL prune=no")
	out = dockerOK(t, d, "image", "prune", "-f", "--filter", "label=prune=yes")
	if !strings.Contains(out, "deleted: "+yes) || strings.Contains(out, no) || strings.Contains(out, fresh) {
		t.Errorf("image prune --filter label=prune=yes = %q, want only %s deleted", out, yes)
	}
	out = dockerOK(t, d, "image", "prune", "-f", "--filter", "label!=prune=no")
	if !strings.Contains(out, "deleted: "+fresh) || strings.Contains(out, no) {
		t.Errorf("image prune --filter label!=prune=no = %q, want %s deleted and %s kept", out, fresh, no)
	}
	if out := dockerOK(t, d, "images", "-aq", "--no-trunc"); out != no+"\n" {
		t.Errorf("images left = %q, want only %s", out, no)
	}
}
