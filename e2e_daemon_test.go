package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// containerProcesses lists the live processes that belong to the container
// with the full ID id: those in its cgroup (its init and everything it
// started) and its shim (whose command line names the container's runtime
// directory). Zombies count as gone.
func containerProcesses(t *testing.T, id string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", ent.Name())
		if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err != nil || bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		cgroup, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		if bytes.Contains(cgroup, []byte(id)) || bytes.Contains(cmdline, []byte(id)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestCLILiveRestoreDefault: skiffd's default is live restore on (issue 9,
// item 10): docker info says so, and a container keeps running across a
// clean daemon stop (SIGTERM) and is found running by the next daemon.
func TestCLILiveRestoreDefault(t *testing.T) {
	d1 := skifftest.Start(t)
	importBusybox(t, d1)
	if out := dockerOK(t, d1, "info"); !strings.Contains(out, "Live Restore Enabled: true") {
		t.Errorf("docker info lacks \"Live Restore Enabled: true\":\n%s", out)
	}
	id := strings.TrimSpace(dockerOK(t, d1, "run", "-d", "--name", "keep", "busybox", "sleep", "1000"))
	pid := inspectField(t, d1, "keep", "{{.State.Pid}}")
	if err := d1.Stop(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	if len(containerProcesses(t, id)) == 0 {
		t.Fatalf("no process of the container is left after the daemon stopped; live restore should keep it running")
	}
	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}})
	removeAllAtEnd(t, d2)
	if got := inspectField(t, d2, "keep", "{{.State.Status}} {{.State.Pid}}"); got != "running "+pid {
		t.Errorf("keep after the restart = %q, want running %s", got, pid)
	}
}

// TestCLILiveRestoreDisabled: with --live-restore=false, docker info says
// false and a clean daemon stop stops every running container as dockerd
// does: each with its stop signal, SIGKILL after its stop timeout, all at
// once, the exits recorded. Nothing of the containers is left running, and
// the next daemon finds them exited, then starts the ones whose restart
// policy says so (always, and unless-stopped unless a user stopped it).
func TestCLILiveRestoreDisabled(t *testing.T) {
	args := []string{"--live-restore=false"}
	d1 := skifftest.StartWith(t, skifftest.Options{Args: args})
	importBusybox(t, d1)
	if out := dockerOK(t, d1, "info"); !strings.Contains(out, "Live Restore Enabled: false") {
		t.Errorf("docker info lacks \"Live Restore Enabled: false\":\n%s", out)
	}
	if got := strings.TrimSpace(dockerOK(t, d1, "info", "--format", "{{.LiveRestoreEnabled}}")); got != "false" {
		t.Errorf("LiveRestoreEnabled = %s, want false", got)
	}
	// "sig" leaves on its own stop signal with its own code; the others
	// run sleep as PID 1, which ignores SIGTERM, so only SIGKILL after
	// their 1 s stop timeout ends them.
	ids := map[string]string{}
	run := func(name string, opts ...string) {
		args := append([]string{"run", "-d", "--name", name}, opts...)
		ids[name] = strings.TrimSpace(dockerOK(t, d1, args...))
	}
	run("sig", "--stop-signal", "USR1", "busybox", "sh", "-c", `trap "echo got USR1; exit 3" USR1; echo ready; while true; do sleep 1; done`)
	run("plain", "--stop-timeout", "1", "busybox", "sleep", "1000")
	run("always", "--restart", "always", "--stop-timeout", "1", "busybox", "sleep", "1000")
	run("unless", "--restart", "unless-stopped", "--stop-timeout", "1", "busybox", "sleep", "1000")
	run("manual", "--restart", "unless-stopped", "--stop-timeout", "1", "busybox", "sleep", "1000")
	dockerOK(t, d1, "stop", "manual")
	waitFor(t, "sig to install its trap", func() bool { return strings.Contains(dockerOK(t, d1, "logs", "sig"), "ready") })

	if err := d1.Stop(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	for name, id := range ids {
		if pids := containerProcesses(t, id); len(pids) > 0 {
			t.Errorf("after the daemon stopped, processes %v of container %s are left", pids, name)
		}
	}

	d2 := skifftest.StartWith(t, skifftest.Options{Args: append([]string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}, args...)})
	removeAllAtEnd(t, d2)
	for name, want := range map[string]string{"sig": "exited 3", "plain": "exited 137", "manual": "exited 137"} {
		if got := inspectField(t, d2, name, "{{.State.Status}} {{.State.ExitCode}}"); got != want {
			t.Errorf("%s after the daemon restart = %q, want %q", name, got, want)
		}
	}
	if out := dockerOK(t, d2, "logs", "sig"); out != "ready\ngot USR1\n" {
		t.Errorf("logs of sig = %q, want ready and the trap's line", out)
	}
	for _, name := range []string{"always", "unless"} {
		waitFor(t, name+" to be started by the new daemon", func() bool {
			return inspectField(t, d2, name, "{{.State.Status}}") == "running"
		})
		if got := inspectField(t, d2, name, "{{.State.ExitCode}} {{.RestartCount}}"); got != "0 0" {
			t.Errorf("%s: exit code and restart count after the start = %q, want 0 0", name, got)
		}
	}
}

// TestCLILiveRestoreDisabledAfterCrash: a daemon without live restore that
// died without its shutdown (SIGKILL) left containers running; the next
// one stops them at its start, as dockerd does, then starts those whose
// restart policy says so.
func TestCLILiveRestoreDisabledAfterCrash(t *testing.T) {
	args := []string{"--live-restore=false"}
	d1 := skifftest.StartWith(t, skifftest.Options{Args: args})
	importBusybox(t, d1)
	plain := strings.TrimSpace(dockerOK(t, d1, "run", "-d", "--name", "plain", "--stop-timeout", "1", "busybox", "sleep", "1000"))
	dockerOK(t, d1, "run", "-d", "--name", "always", "--restart", "always", "--stop-timeout", "1", "busybox", "sleep", "1000")
	alwaysPid := inspectField(t, d1, "always", "{{.State.Pid}}")
	d1.Kill()
	if len(containerProcesses(t, plain)) == 0 {
		t.Fatal("the container died with the daemon; nothing left to test")
	}

	d2 := skifftest.StartWith(t, skifftest.Options{Args: append([]string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}, args...)})
	removeAllAtEnd(t, d2)
	if got := inspectField(t, d2, "plain", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 137" {
		t.Errorf("plain after the restart = %q, want exited 137", got)
	}
	waitFor(t, "no process of plain to be left", func() bool { return len(containerProcesses(t, plain)) == 0 })
	waitFor(t, "always to run again", func() bool {
		return inspectField(t, d2, "always", "{{.State.Status}}") == "running"
	})
	if pid := inspectField(t, d2, "always", "{{.State.Pid}}"); pid == alwaysPid {
		t.Errorf("always still runs its first process %s; want it stopped and started again", pid)
	}
}

// TestCLIDaemonContainerDefaults: a dockerd daemon.json as operators
// write it (default log rotation, storage and cgroup driver, shm size,
// buildkit switched on) starts skiffd, and its defaults reach the
// containers that set none, as in dockerd: the options of the default
// driver merge under a container's own, another driver gets none, the
// log is rotated by them, /dev/shm has the size. A driver or option no
// container could have stops the daemon with the reason.
func TestCLIDaemonContainerDefaults(t *testing.T) {
	// The cgroup parent the daemon gives its containers; the containers'
	// cgroups go with them, the parent (which skiffd, like dockerd,
	// leaves) is removed last.
	parent := fmt.Sprintf("skiffd-test-parent-%d", os.Getpid())
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		for _, dir := range append(dirs, "/sys/fs/cgroup/"+parent) {
			if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
				t.Errorf("removing the test's cgroup parent: %v", err)
			}
		}
	})
	cfgFile := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(cfgFile, []byte(`{"log-driver": "json-file", "log-opts": {"max-size": "1k", "max-file": "2"},
		"storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"], "default-shm-size": "16M",
		"features": {"buildkit": true}, "userland-proxy": false,
		"dns": ["192.0.2.53"], "dns-search": ["corp.example"], "dns-opts": ["ndots:2"],
		"no-new-privileges": true, "init": true, "default-ipc-mode": "shareable",
		"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
		"cgroup-parent": "/`+parent+`", "log-format": "json", "default-runtime": "runc"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--config-file", cfgFile}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	if got := strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{.LoggingDriver}}")); got != "json-file" {
		t.Errorf("LoggingDriver = %q", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, `{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}`},
		{[]string{"--log-opt", "max-size=2k"}, `{"Type":"json-file","Config":{"max-file":"2","max-size":"2k"}}`},
		{[]string{"--log-driver", "none"}, `{"Type":"none","Config":{}}`},
	} {
		id := strings.TrimSpace(dockerOK(t, d, append(append([]string{"create"}, c.args...), "busybox", "true")...))
		if got := inspectField(t, d, id, "{{json .HostConfig.LogConfig}}"); got != c.want {
			t.Errorf("create %q: LogConfig %s, want %s", c.args, got, c.want)
		}
	}
	out := dockerOK(t, d, "run", "--name", "chatty", "busybox", "sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'; i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done")
	if !strings.HasPrefix(out, "16384\n") {
		t.Errorf("/dev/shm size with default-shm-size 16M: %q", strings.SplitN(out, "\n", 2)[0])
	}
	logs := dockerOK(t, d, "logs", "chatty")
	if !strings.HasSuffix(logs, "line-199-xxxxxxxxxxxxxxxxxxxxxxxx\n") || len(logs) > 4096 || strings.Contains(logs, "line-0-") {
		t.Errorf("logs of 200 lines under max-size 1k, max-file 2: %d bytes ending %q, want the last lines only", len(logs), logs[max(0, len(logs)-40):])
	}

	// The rest of the defaults, and a container's own settings over them.
	probe := "grep -E '^(nameserver|search|options)' /etc/resolv.conf; grep NoNewPrivs /proc/self/status; echo pid $$; ulimit -n; ulimit -Hn"
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\nNoNewPrivs:\t1\npid 7\n1024\n2048\n"},
		{[]string{"--dns", "192.0.2.54", "--security-opt", "no-new-privileges=false", "--init=false", "--ulimit", "nofile=100:200"},
			"nameserver 192.0.2.54\nsearch corp.example\noptions ndots:2\nNoNewPrivs:\t0\npid 1\n100\n200\n"},
	} {
		out := dockerOK(t, d, append(append([]string{"run", "--rm"}, c.args...), "busybox", "sh", "-c", probe)...)
		out = regexp.MustCompile(`pid ([2-9]|[1-9][0-9]+)\n`).ReplaceAllString(out, "pid 7\n") // not 1: under the reaper
		if out != c.want {
			t.Errorf("run %q:\n%s\nwant\n%s", c.args, out, c.want)
		}
	}
	id := strings.TrimSpace(dockerOK(t, d, "create", "busybox", "true"))
	if got := inspectField(t, d, id, "{{.HostConfig.IpcMode}} {{json .HostConfig.Init}} {{.HostConfig.CgroupParent}}"); got != "shareable null /"+parent {
		t.Errorf("IpcMode, Init and CgroupParent of a container that sets none: %s, want the daemon's shareable, Init left null, its cgroup parent", got)
	}
	// The container's cgroups are under the parent (seen by the host's
	// names where the container shares the host's cgroup namespace).
	out = dockerOK(t, d, "run", "--rm", "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup")
	if !strings.Contains(out, "/"+parent+"/") {
		t.Errorf("/proc/self/cgroup of a container under the daemon's cgroup parent:\n%s", out)
	}
	// log-format json: every line of the daemon's log is a JSON object.
	for _, line := range strings.Split(strings.TrimSpace(d.Log()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["msg"] == nil {
			t.Errorf("daemon log line under log-format json: %q (%v)", line, err)
			break
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-driver", "splunk"}, "skiffd does not support the splunk logging driver"},
		{[]string{"--default-ulimit", "bogus=1"}, "bogus"},
		{[]string{"--log-opt", "max-size=lots"}, "invalid max-size for log: lots"},
		{[]string{"--storage-driver", "zfs"}, `storage driver "zfs" is not supported`},
	} {
		out, err := startRefused(t, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("skiffd %q: %v\n%s\nwant it to stop with %q", c.args, err, out, c.want)
		}
	}
}

// TestCLIDaemonSeccompProfile: the daemon's --seccomp-profile is the
// profile of every container that names none, as in dockerd: a JSON
// profile (here one refusing mkdir), or unconfined; a container's own
// --security-opt seccomp=... still wins, and docker info names the
// profile. One that does not parse stops the daemon.
func TestCLIDaemonSeccompProfile(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--bridge=none", "--seccomp-profile", profile}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	res := d.Docker(t, "run", "--rm", "--network", "none", "busybox", "mkdir", "/made")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under the daemon's profile: %v, want it refused", res)
	}
	dockerOK(t, d, "run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "mkdir", "/made")
	if got := dockerOK(t, d, "info", "--format", "{{json .SecurityOptions}}"); !strings.Contains(got, `"name=seccomp,profile=`+profile+`"`) {
		t.Errorf("SecurityOptions = %s, want the profile's path", got)
	}

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--bridge=none", "--seccomp-profile", "unconfined"}})
	importBusybox(t, d2)
	removeAllAtEnd(t, d2)
	if out := dockerOK(t, d2, "run", "--rm", "--network", "none", "busybox", "grep", "^Seccomp:", "/proc/self/status"); out != "Seccomp:\t0\n" {
		t.Errorf("with --seccomp-profile unconfined: %q, want no filter", out)
	}
	if out := dockerOK(t, d2, "run", "--rm", "--network", "none", "--security-opt", "seccomp="+profile, "busybox", "grep", "^Seccomp:", "/proc/self/status"); out != "Seccomp:\t2\n" {
		t.Errorf("a container's own profile under an unconfined daemon: %q, want a filter", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_BOGUS"}`), 0o600)
	out, err := startRefused(t, "--seccomp-profile", bad)
	if err == nil || !strings.Contains(out, "seccomp profile "+bad) {
		t.Errorf("a profile that does not parse: %v\n%s\nwant the daemon to stop naming it", err, out)
	}
}

// startRefused runs the daemon with args on roots and a socket of its own
// (bridge networking off), for a setting that should stop it at start: it
// returns what the daemon printed and how it ended, bounded to 30 s.
func startRefused(t *testing.T, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	all := append([]string{"-H", "unix://" + filepath.Join(dir, "s.sock"), "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid"), "--bridge=none"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, skifftest.Binary(t), all...).CombinedOutput()
	return string(out), err
}
