package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/sys"
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

// TestCLIBlkioDeviceLimits: --device-read-bps and --device-write-iops of a
// whole disk reach the container's cgroup (v1 blkio.throttle.*_device, v2
// io.max) where the host has them and are discarded with dockerd's
// warnings where not; a path that is not a block device fails the start
// with the reason; docker update of them is refused rather than ignored.
// The device is a whole disk of this host with a node in /dev (the CLI
// takes /dev paths only).
func TestCLIBlkioDeviceLimits(t *testing.T) {
	d := startWithBusybox(t)
	sup := cgroups.Probe()
	var disk, node string
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		var st syscall.Stat_t
		if err != nil || syscall.Stat("/dev/"+e.Name(), &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFBLK {
			continue
		}
		if fmt.Sprintf("%d:%d", sys.Major(st.Rdev), sys.Minor(st.Rdev)) == strings.TrimSpace(string(b)) {
			disk, node = strings.TrimSpace(string(b)), "/dev/"+e.Name()
			break
		}
	}
	if node == "" {
		t.Fatal("no whole disk of this host has a node in /dev")
	}
	run := d.Docker(t, "run", "-d", "--device-read-bps", node+":1mb", "--device-write-iops", node+":100", "busybox", "sleep", "600")
	if run.ExitCode != 0 {
		t.Fatalf("docker run: %v", run)
	}
	id := strings.TrimSpace(run.Stdout)
	if !sup.BlkioReadBpsDevice || !sup.BlkioWriteIOpsDevice {
		if !strings.Contains(run.Stderr, "Block I/O BPS read limit discarded") {
			t.Errorf("docker run on a host without IO limits: %v, want dockerd's warning", run)
		}
		return
	}
	if got := inspectField(t, d, id, "{{json .HostConfig.BlkioDeviceReadBps}} {{json .HostConfig.BlkioDeviceWriteIOps}}"); got != `[{"Path":"`+node+`","Rate":1048576}] [{"Path":"`+node+`","Rate":100}]` {
		t.Errorf("inspect = %s", got)
	}
	paths := cgroups.New(id).Paths()
	if dir := paths["blkio"]; dir != "" {
		for name, want := range map[string]string{"blkio.throttle.read_bps_device": disk + " 1048576", "blkio.throttle.write_iops_device": disk + " 100"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s = %q, %v; want %q", name, b, err, want)
			}
		}
	} else if b, err := os.ReadFile(filepath.Join(paths[""], "io.max")); err != nil || !strings.Contains(string(b), disk+" rbps=1048576 wbps=max riops=max wiops=100") {
		t.Errorf("io.max = %q, %v; want the disk's limits", b, err)
	}
	res := d.Docker(t, "run", "--rm", "--device-read-bps", "/dev/null:1mb", "busybox", "true")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "block IO device /dev/null: not a block device") {
		t.Errorf("a character device as the limited disk: %v, want the start refused", res)
	}
	r := d.Do(t, "POST", "/containers/"+id+"/update", strings.NewReader(`{"BlkioDeviceReadBps":[{"Path":"`+node+`","Rate":2048}]}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != 400 || !strings.Contains(r.Body, "does not support updating devices, per-device block IO limits or ulimits") {
		t.Errorf("update of a device limit: %d %s", r.Status, r.Body)
	}
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
