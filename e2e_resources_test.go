package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiffd/internal/runtime/cgroups"
)

// TestCLIBlkioWeightHostCapability asks the probe the daemon uses whether
// this host has a weighted IO scheduler and checks docker run, docker
// update and docker info against the answer (issue 9, item 9): without one,
// the weight is discarded at create with dockerd's warning, which the CLI
// prints, and the container runs; with one, the weight reaches the
// container's cgroup.
func TestCLIBlkioWeightHostCapability(t *testing.T) {
	d := startWithBusybox(t)
	sup := cgroups.Probe()
	t.Logf("host: cgroup v%s, weighted IO %v", sup.Version, sup.BlkioWeight)
	const warning = "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."

	run := d.Docker(t, "run", "-d", "--blkio-weight", "300", "busybox", "sleep", "600")
	if run.ExitCode != 0 {
		t.Fatalf("docker run --blkio-weight 300: %v", run)
	}
	id := strings.TrimSpace(run.Stdout)
	if got := inspectField(t, d, id, "{{.State.Running}}"); got != "true" {
		t.Fatalf("State.Running = %s, want true", got)
	}
	weight := inspectField(t, d, id, "{{.HostConfig.BlkioWeight}}")
	infoWarnings := dockerOK(t, d, "info", "--format", `{{join .Warnings "\n"}}`)
	infoWant := "WARNING: No blkio weight support"
	if sup.Version == "2" {
		infoWant = "WARNING: No io.weight support"
	}

	if !sup.BlkioWeight {
		if !strings.Contains(run.Stderr, "WARNING: "+warning) {
			t.Errorf("docker run stderr = %q, want dockerd's warning %q", run.Stderr, warning)
		}
		if weight != "0" {
			t.Errorf("HostConfig.BlkioWeight = %s, want 0 (discarded)", weight)
		}
		upd := d.Docker(t, "update", "--blkio-weight", "400", id)
		if upd.ExitCode != 0 || !strings.Contains(upd.Stdout+upd.Stderr, warning) { // the CLI prints update warnings on stdout
			t.Errorf("docker update --blkio-weight 400 = %v, want success with dockerd's warning", upd)
		}
		if !strings.Contains(infoWarnings, infoWant) {
			t.Errorf("docker info warnings = %q, want %q", infoWarnings, infoWant)
		}
		return
	}

	if strings.Contains(run.Stderr, warning) {
		t.Errorf("docker run stderr = %q, want no discard warning on a host with weighted IO", run.Stderr)
	}
	if weight != "300" {
		t.Errorf("HostConfig.BlkioWeight = %s, want 300", weight)
	}
	if strings.Contains(infoWarnings, infoWant) {
		t.Errorf("docker info warnings = %q, want no %q on a host with weighted IO", infoWarnings, infoWant)
	}
	paths := cgroups.New(id).Paths()
	dir, v2 := paths["blkio"], false
	if dir == "" {
		dir, v2 = paths[""], true
	}
	var want []string
	if v2 {
		want = []string{"io.bfq.weight:default 300", "io.weight:default 2930"}
	} else {
		want = []string{"blkio.weight:300", "blkio.bfq.weight:300"}
	}
	for _, w := range want {
		name, val, _ := strings.Cut(w, ":")
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if got := strings.TrimSpace(string(b)); got != val {
			t.Errorf("%s = %q, want %q", name, got, val)
		}
		return
	}
	t.Errorf("no blkio weight file in %s although the probe promises one", dir)
}

// TestCLIMemorySwappinessOOMHostCapability: --memory-swappiness and
// --oom-kill-disable reach the container's cgroup where the host's memory
// controller has them (cgroup v1), and are discarded with dockerd's
// warnings where it has not (cgroup v2).
func TestCLIMemorySwappinessOOMHostCapability(t *testing.T) {
	d := startWithBusybox(t)
	sup := cgroups.Probe()
	run := d.Docker(t, "run", "-d", "-m", "64m", "--memory-swappiness", "30", "--oom-kill-disable", "busybox", "sleep", "600")
	if run.ExitCode != 0 {
		t.Fatalf("docker run --memory-swappiness 30 --oom-kill-disable: %v", run)
	}
	id := strings.TrimSpace(run.Stdout)
	const (
		wSwap = "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."
		wOOM  = "Your kernel does not support OomKillDisable. OomKillDisable discarded."
	)
	if got := strings.Contains(run.Stderr, wSwap); got == sup.MemorySwappiness {
		t.Errorf("swappiness warning printed = %v on a host with swappiness %v; stderr %q", got, sup.MemorySwappiness, run.Stderr)
	}
	if got := strings.Contains(run.Stderr, wOOM); got == sup.OomKillDisable {
		t.Errorf("OomKillDisable warning printed = %v on a host with the switch %v; stderr %q", got, sup.OomKillDisable, run.Stderr)
	}
	dir := cgroups.New(id).Paths()["memory"]
	if sup.MemorySwappiness {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.swappiness")); err != nil || strings.TrimSpace(string(b)) != "30" {
			t.Errorf("memory.swappiness = %q, %v; want 30", b, err)
		}
	}
	if sup.OomKillDisable {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control")); err != nil || !strings.Contains(string(b), "oom_kill_disable 1") {
			t.Errorf("memory.oom_control = %q, %v; want oom_kill_disable 1", b, err)
		}
	}
	want := map[bool]string{true: "true", false: "false"}[sup.OomKillDisable]
	if got := inspectField(t, d, id, "{{.HostConfig.OomKillDisable}}"); got != want {
		t.Errorf("HostConfig.OomKillDisable = %s, want %s", got, want)
	}
}
