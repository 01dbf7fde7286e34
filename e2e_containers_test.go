package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/skifftest"
)

// startWithBusybox starts a daemon, imports busybox and makes sure every
// container is removed before the daemon stops: containers outlive their
// daemon (live restore), so a test must not leave any behind.
func startWithBusybox(t *testing.T) *skifftest.Daemon {
	t.Helper()
	d := skifftest.Start(t)
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	return d
}

func removeAllAtEnd(t *testing.T, d *skifftest.Daemon) {
	t.Cleanup(func() {
		ids := strings.Fields(d.Docker(t, "ps", "-aq").Stdout)
		if len(ids) > 0 {
			d.Docker(t, append([]string{"rm", "-f"}, ids...)...)
		}
	})
}

// waitFor polls cond (a docker query) until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func inspectField(t *testing.T, d *skifftest.Daemon, name, format string) string {
	t.Helper()
	return strings.TrimSpace(dockerOK(t, d, "inspect", "--format", format, name))
}

// TestCLIContainerRun covers docker run in the foreground: output, exit
// codes, start errors with the CLI's 126/127, stdin, and the options of
// the issue proven from inside the container.
func TestCLIContainerRun(t *testing.T) {
	d := startWithBusybox(t)

	for _, tc := range []struct {
		name     string
		args     []string
		stdin    []byte
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{name: "echo", args: []string{"run", "--rm", "busybox", "echo", "hello"}, wantOut: "hello\n"},
		{name: "exit code", args: []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, wantCode: 3},
		{name: "stderr", args: []string{"run", "--rm", "busybox", "sh", "-c", "echo oops >&2"}, wantErr: "oops\n"},
		{name: "stdin", args: []string{"run", "-i", "--rm", "busybox", "cat"}, stdin: []byte("hi\n"), wantOut: "hi\n"},
		{name: "image cmd", args: []string{"run", "--rm", "busybox"}, wantOut: ""},
		{name: "env workdir user", args: []string{"run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", "busybox", "sh", "-c", "echo $FOO $A; pwd; id -u; id -g"},
			wantOut: "bar 1\n/tmp\n1000\n1000\n"},
		{name: "user by name", args: []string{"run", "--rm", "-u", "user", "busybox", "id"}, wantOut: "uid=1000(user) gid=1000(user)"},
		{name: "entrypoint", args: []string{"run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"}, wantOut: "a b\n"},
		{name: "hostname", args: []string{"run", "--rm", "--hostname", "box1", "busybox", "sh", "-c", "hostname; cat /etc/hostname; grep -c box1 /etc/hosts"}, wantOut: "box1\nbox1\n1\n"},
		{name: "add-host and dns", args: []string{"run", "--rm", "--add-host", "db:10.1.2.3", "--dns", "9.9.9.9", "--dns-search", "example.org", "busybox", "sh", "-c", "grep -w db /etc/hosts; grep -v '^#' /etc/resolv.conf | grep ."},
			wantOut: "10.1.2.3\tdb\nnameserver 9.9.9.9\nsearch example.org\n"},
		{name: "pid 1", args: []string{"run", "--rm", "busybox", "sh", "-c", "echo $$; cat /proc/1/cmdline; true"}, wantOut: "1\nsh\x00-c\x00"},
		{name: "ports with the host network", args: []string{"run", "--rm", "-p", "18081:80", "--network", "host", "busybox", "true"}, wantErr: "WARNING: Published ports are discarded when using host network mode"},
		{name: "dockerd's init layer", args: []string{"run", "--rm", "busybox", "sh", "-c", "test -f /.dockerenv && echo dockerenv; readlink /etc/mtab"}, wantOut: "dockerenv\n/proc/mounts\n"},
		{name: "image filesystem", args: []string{"run", "--rm", "busybox", "ls", "/"}, wantOut: "bin\ndev\netc\nproc\nroot\nsys\ntmp\n"},
		{name: "read-only rootfs", args: []string{"run", "--rm", "--read-only", "busybox", "touch", "/x"}, wantCode: 1, wantErr: "Read-only file system"},
		{name: "cap drop", args: []string{"run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c", "grep CapEff /proc/self/status"}, wantOut: "CapEff:\t0000000000000000\n"},
		{name: "default caps", args: []string{"run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status"}, wantOut: "CapEff:\t00000000a80425fb\n"},
		{name: "limits in force", args: []string{"run", "--rm", "--memory", "64m", "--pids-limit", "33", "--cpus", "0.5", "busybox", "sh", "-c",
			"cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"},
			wantOut: "67108864\n33\n50000"},
		{name: "ulimit", args: []string{"run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"}, wantOut: "100\n200\n"},
		{name: "cap add", args: []string{"run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "grep", "CapEff", "/proc/self/status"}, wantOut: "CapEff:\t00000000a80435fb\n"},
		{name: "seccomp default", args: []string{"run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status"}, wantOut: "Seccomp:\t2\n"},
		{name: "seccomp unconfined", args: []string{"run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:", "/proc/self/status"}, wantOut: "Seccomp:\t0\n"},
		{name: "no-new-privileges", args: []string{"run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"}, wantOut: "NoNewPrivs:\t1\n"},
		{name: "read-only with tmpfs", args: []string{"run", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c", "touch /tmp/x && echo ok"}, wantOut: "ok\n"},
		{name: "group-add", args: []string{"run", "--rm", "-u", "1000", "--group-add", "root", "busybox", "id", "-G"}, wantOut: "1000 0"},
		{name: "network none", args: []string{"run", "--rm", "--network", "none", "busybox", "sh", "-c", "ip -o link | wc -l; ip -o addr show lo | grep -c 'inet 127.0.0.1/8'"}, wantOut: "1\n1\n"},
		{name: "sysctl", args: []string{"run", "--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=99", "--sysctl", "kernel.shmmni=1000", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/kernel/shmmni"}, wantOut: "99\n1000\n"},
		{name: "default network loopback", args: []string{"run", "--rm", "busybox", "sh", "-c", "nc -l -p 99 -e echo pong & sleep 0.2; echo ping | nc 127.0.0.1 99"}, wantOut: "pong\n"},
		{name: "missing executable", args: []string{"run", "--rm", "busybox", "nope"}, wantCode: 127, wantErr: `exec: "nope": executable file not found in $PATH`},
		{name: "missing path", args: []string{"run", "--rm", "busybox", "/no/such/binary"}, wantCode: 127, wantErr: "no such file or directory"},
		{name: "relative command from the working directory", args: []string{"run", "--rm", "-w", "/bin", "busybox", "./echo", "rel"}, wantOut: "rel\n"},
		{name: "a directory is not executable", args: []string{"run", "--rm", "busybox", "/etc"}, wantCode: 126, wantErr: `exec: "/etc": permission denied`},
		{name: "not executable", args: []string{"run", "--rm", "busybox", "/etc/passwd"}, wantCode: 126, wantErr: "permission denied"},
		// dockerd looks users and groups up itself: its plain error.
		{name: "unknown user", args: []string{"run", "--rm", "-u", "nobody2", "busybox", "true"}, wantCode: 125, wantErr: "Error response from daemon: unable to find user nobody2: no matching entries in passwd file"},
		{name: "unknown group", args: []string{"run", "--rm", "-u", "user:nosuchgroup", "busybox", "true"}, wantCode: 125, wantErr: "Error response from daemon: unable to find group nosuchgroup: no matching entries in group file"},
		{name: "unknown added group", args: []string{"run", "--rm", "-u", "1000", "--group-add", "nosuchgroup", "busybox", "true"}, wantCode: 125, wantErr: "Error response from daemon: Unable to find group nosuchgroup: no matching entries in group file"},
		{name: "working directory a file", args: []string{"run", "--rm", "-w", "/etc/passwd", "busybox", "true"}, wantCode: 125, wantErr: "Error response from daemon: Cannot mkdir: /etc/passwd is not a directory"},
		{name: "unknown capability", args: []string{"create", "--cap-add", "BOGUS", "busybox", "true"}, wantCode: 1, wantErr: `invalid CapAdd: unknown capability: "CAP_BOGUS"`},
		{name: "unknown capability dropped", args: []string{"create", "--cap-drop", "NOPE", "busybox", "true"}, wantCode: 1, wantErr: `invalid CapDrop: unknown capability: "CAP_NOPE"`},
		{name: "cpus range", args: []string{"run", "--rm", "--cpus", "9999", "busybox", "true"}, wantCode: 125, wantErr: "Range of CPUs is from 0.01 to"},
		{name: "memory minimum", args: []string{"run", "--rm", "--memory", "1m", "busybox", "true"}, wantCode: 125, wantErr: "Minimum memory limit allowed is 6MB"},
		{name: "privileged", args: []string{"run", "--rm", "--privileged", "busybox", "sh", "-c", "grep CapEff /proc/self/status; test -c /dev/kmsg && echo kmsg; grep -c ' /sys sysfs rw' /proc/mounts"}, wantOut: "CapEff:\t" + ownCapBnd(t) + "\nkmsg\n1\n"},
		// The shim ignores SIGHUP and SIGPIPE; dockerd's containers start
		// with no signal ignored, and a SIGHUP ends a process that does
		// not handle it.
		{name: "no signal ignored", args: []string{"run", "--rm", "busybox", "grep", "SigIgn", "/proc/self/status"}, wantOut: "SigIgn:\t0000000000000000\n"},
		{name: "no signal ignored under --init", args: []string{"run", "--rm", "--init", "busybox", "grep", "SigIgn", "/proc/self/status"}, wantOut: "SigIgn:\t0000000000000000\n"},
		{name: "SIGHUP ends a process", args: []string{"run", "--rm", "busybox", "sh", "-c", "sleep 10 & kill -HUP $!; wait $!; echo $?"}, wantOut: "129\n"},
		{name: "device", args: []string{"run", "--rm", "--device", "/dev/kmsg:/dev/k2", "busybox", "sh", "-c", "test -c /dev/k2 && echo ok; test -e /dev/kmsg || echo alone"}, wantOut: "ok\nalone\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in io.Reader
			if tc.stdin != nil {
				in = bytes.NewReader(tc.stdin)
			}
			res := d.DockerIn(t, in, tc.args...)
			if res.ExitCode != tc.wantCode || !strings.Contains(res.Stdout, tc.wantOut) || !strings.Contains(res.Stderr, tc.wantErr) {
				t.Errorf("docker %s = %v\nwant exit %d, stdout containing %q, stderr containing %q", strings.Join(tc.args, " "), res, tc.wantCode, tc.wantOut, tc.wantErr)
			}
			if tc.wantOut != "" && tc.wantCode == 0 && !strings.HasPrefix(res.Stdout, tc.wantOut) {
				t.Errorf("docker %s printed %q, want it to start with %q", strings.Join(tc.args, " "), res.Stdout, tc.wantOut)
			}
		})
	}
	// --init: the command is not PID 1, and a stop signal reaches it (a
	// shell as PID 1 would ignore SIGTERM and wait for SIGKILL).
	out := dockerOK(t, d, "run", "--rm", "--init", "busybox", "sh", "-c", "echo $$")
	if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n == 1 {
		t.Errorf("pid of the command under --init = %q, want other than 1", out)
	}
	dockerOK(t, d, "run", "-d", "--name", "initsleep", "--init", "busybox", "sleep", "1000")
	start := time.Now()
	dockerOK(t, d, "stop", "initsleep")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stop of a container with --init took %v: SIGTERM was not forwarded", el)
	}
	if got := inspectField(t, d, "initsleep", "{{.State.ExitCode}}"); got != "143" {
		t.Errorf("exit code after SIGTERM through init = %s, want 143", got)
	}
	dockerOK(t, d, "rm", "initsleep")
	// Under --init the command is the reaper's to find, as docker-init
	// does: a missing one is the container's exit 127 with the reaper's
	// message, not a failed start; a detached run is made and started.
	res := d.Docker(t, "run", "--rm", "--init", "busybox", "nosuchcmd")
	if res.ExitCode != 127 || !strings.Contains(res.Stderr, `skiffd reaper: exec: "nosuchcmd": executable file not found in $PATH`) || strings.Contains(res.Stderr, "Error response from daemon") {
		t.Errorf("docker run --init with a missing command: %v, want the reaper's exit 127", res)
	}
	dockerOK(t, d, "run", "-d", "--name", "initmissing", "--init", "busybox", "/etc/passwd")
	if got := strings.TrimSpace(dockerOK(t, d, "wait", "initmissing")); got != "126" {
		t.Errorf("exit of --init with a command that is not executable = %s, want 126", got)
	}
	dockerOK(t, d, "rm", "initmissing")

	// --rm removed every container, failed starts included.
	if out := dockerOK(t, d, "ps", "-aq"); out != "" {
		t.Errorf("containers left after docker run --rm: %q", out)
	}
}

// TestCLINetworkDefaultSysctls: as in dockerd, a container with a network
// namespace of its own may bind any port as any user and ping without
// CAP_NET_RAW (net.ipv4.ip_unprivileged_port_start=0,
// net.ipv4.ping_group_range=0 2147483647), unless it sets them itself; one
// in the host's network namespace sees the host's values, untouched.
func TestCLINetworkDefaultSysctls(t *testing.T) {
	d := startWithBusybox(t)
	type sysctl struct{ path, dockerd string }
	var present []sysctl
	for _, s := range []sysctl{
		{"/proc/sys/net/ipv4/ip_unprivileged_port_start", "0"},
		{"/proc/sys/net/ipv4/ping_group_range", "0\t2147483647"},
	} {
		if _, err := os.Stat(s.path); err == nil {
			present = append(present, s)
		}
	}
	if len(present) == 0 {
		t.Log("this kernel has neither sysctl: only the host network's values are checked")
	}
	host, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	for _, s := range present {
		out := dockerOK(t, d, "run", "--rm", "--network", "none", "busybox", "cat", s.path)
		if strings.TrimSpace(out) != s.dockerd {
			t.Errorf("%s in a container of its own network = %q, want dockerd's %q", s.path, out, s.dockerd)
		}
	}
	if err == nil {
		out := dockerOK(t, d, "run", "--rm", "--network", "host", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
		if out != string(host) {
			t.Errorf("ip_unprivileged_port_start in the host's network = %q, want the host's %q", out, host)
		}
		if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); string(now) != string(host) {
			t.Errorf("the host's ip_unprivileged_port_start changed: %q, was %q", now, host)
		}
		out = dockerOK(t, d, "run", "--rm", "--network", "none", "--sysctl", "net.ipv4.ip_unprivileged_port_start=500", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
		if out != "500\n" {
			t.Errorf("ip_unprivileged_port_start set by the container = %q, want 500", out)
		}
		// What the default is for: a server on port 80 as a user.
		out = dockerOK(t, d, "run", "--rm", "--network", "none", "-u", "1000", "busybox", "sh", "-c", "httpd -p 80 && echo bound")
		if out != "bound\n" {
			t.Errorf("httpd on port 80 as uid 1000 printed %q, want bound", out)
		}
	}
}

// TestCLIStartErrorsAsDockerd: a start that the runtime refuses answers
// as dockerd 20.10 (the API traces' daemon) does, side by side: runc's
// text inside containerd's, a 400 for the caller's mistakes and a 500 for
// the rest, the exit code dockerd records (127 for a path of the wrong
// type, with its hint, 128 otherwise), and dockerd's own plain errors for
// what it checks itself.
func TestCLIStartErrorsAsDockerd(t *testing.T) {
	d := startWithBusybox(t)
	const runc = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "
	for _, tc := range []struct {
		name     string
		args     []string
		status   int
		message  string // the start's whole message
		exitCode string
	}{
		{"file bound onto a directory", []string{"-v", "/etc/passwd:/bin"}, 400,
			runc + "mount /etc/passwd (bind) on /bin: not a directory: unknown: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type", "127"},
		{"bad tmpfs option", []string{"--tmpfs", "/x:size=bogus"}, 500,
			runc + "mount tmpfs (tmpfs) on /x: invalid argument: unknown", "128"},
		{"missing executable", []string{"--entrypoint", "/nope"}, 400,
			runc + `exec: "/nope": stat /nope: no such file or directory: unknown`, "127"},
		{"unknown user", []string{"-u", "nobody2"}, 500,
			"unable to find user nobody2: no matching entries in passwd file", "128"},
		{"working directory a file", []string{"-w", "/etc/passwd"}, 500,
			"Cannot mkdir: /etc/passwd is not a directory", "128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.TrimSpace(dockerOK(t, d, append(append([]string{"create"}, tc.args...), "busybox", "true")...))
			r := d.Do(t, "POST", "/v1.41/containers/"+id+"/start", nil, nil)
			var body struct{ Message string }
			json.Unmarshal([]byte(r.Body), &body)
			if r.Status != tc.status || body.Message != tc.message {
				t.Errorf("start: %d %q\nwant %d %q", r.Status, body.Message, tc.status, tc.message)
			}
			if got := inspectField(t, d, id, "{{.State.ExitCode}}"); got != tc.exitCode {
				t.Errorf("exit code after the failed start = %s, want %s", got, tc.exitCode)
			}
			dockerOK(t, d, "rm", id)
		})
	}
}

// TestCLICgroupNamespaceDefault: as in dockerd, a container gets a cgroup
// namespace of its own by default on a cgroup v2 host only; on a v1 or
// hybrid one it sees its cgroups by the host's paths, its ID in them
// (programs inside find their container's ID there). --cgroupns private
// roots every hierarchy at the container's cgroup.
func TestCLICgroupNamespaceDefault(t *testing.T) {
	d := startWithBusybox(t)
	mode := "host"
	if cgroups.DetectMode() == cgroups.Unified {
		mode = "private"
	}
	id := strings.TrimSpace(dockerOK(t, d, "create", "busybox", "cat", "/proc/self/cgroup"))
	if got := inspectField(t, d, id, "{{.HostConfig.CgroupnsMode}}"); got != mode {
		t.Errorf("default CgroupnsMode on a %v host = %q, want dockerd's %q", cgroups.DetectMode(), got, mode)
	}
	out := dockerOK(t, d, "start", "-a", id)
	if mode == "host" && !strings.Contains(out, id) {
		t.Errorf("/proc/self/cgroup in the host's cgroup namespace lacks the container's ID:\n%s", out)
	}
	out = dockerOK(t, d, "run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("with --cgroupns private, /proc/self/cgroup has %q, want every line rooted at /", l)
		}
	}
}

// TestCLIContainerStdinBinary sends 1 MiB of random bytes through cat and
// expects them back byte for byte.
func TestCLIContainerStdinBinary(t *testing.T) {
	d := startWithBusybox(t)
	data := make([]byte, 1<<20)
	rand.Read(data)
	res := d.DockerIn(t, bytes.NewReader(data), "run", "-i", "--rm", "busybox", "cat")
	if res.ExitCode != 0 || res.Stdout != string(data) {
		t.Fatalf("stdin round trip: exit %d, %d bytes back (equal: %v), stderr %q", res.ExitCode, len(res.Stdout), res.Stdout == string(data), res.Stderr)
	}
}

// TestCLIRunExitSeenEverywhere: once an attached `docker run` returns, the
// exit is in every view: `docker ps` no longer lists the container as
// running and inspect shows its exit code. The wait used to be answered
// before the record (and the list's view) had the exit.
func TestCLIRunExitSeenEverywhere(t *testing.T) {
	d := startWithBusybox(t)
	for i := 0; i < 15; i++ {
		name := fmt.Sprintf("quick%d", i)
		if res := d.Docker(t, "run", "--name", name, "busybox", "sh", "-c", "exit 7"); res.ExitCode != 7 {
			t.Fatalf("docker run %s: %v", name, res)
		}
		if out := dockerOK(t, d, "ps", "-q", "--filter", "name="+name); out != "" {
			t.Fatalf("run %d: docker ps lists %s as running right after docker run returned: %q", i, name, out)
		}
		if out := dockerOK(t, d, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name); out != "exited 7\n" {
			t.Fatalf("run %d: inspect = %q, want exited 7", i, out)
		}
	}
}

// TestCLIContainerLifecycle walks the command block on one
// detached container.
func TestCLIContainerLifecycle(t *testing.T) {
	d := startWithBusybox(t)

	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "web", "-e", "A=1", "-w", "/tmp", "-u", "1000",
		"--restart", "on-failure:2", "--memory", "64m", "--pids-limit", "50", "--label", "app=web", "busybox",
		"sh", "-c", "echo started; i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done"))
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q, want a container ID", id)
	}
	dockerOK(t, d, "run", "--name", "done", "busybox", "true")

	if out := dockerOK(t, d, "ps", "--format", "{{.Names}} {{.Image}} {{.State}}"); out != "web busybox running\n" {
		t.Errorf("docker ps = %q", out)
	}
	if out := dockerOK(t, d, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"); out != "done\n" {
		t.Errorf("docker ps -a --filter status=exited = %q, want done", out)
	}
	if out := dockerOK(t, d, "ps", "-a", "--filter", "label=app=web", "-q"); out != id[:12]+"\n" {
		t.Errorf("docker ps --filter label = %q", out)
	}
	got := inspectField(t, d, "web", `{{.State.Status}} {{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Env}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.Config.Hostname}}`)
	want := `running 1000 /tmp ["A=1"] on-failure:2 67108864 50 ` + id[:12]
	if got != want {
		t.Errorf("inspect web = %q, want %q", got, want)
	}
	// The limits are in force inside: the cgroup says so.
	out := dockerOK(t, d, "inspect", "--format", "{{.State.Pid}}", "web")
	if pid := strings.TrimSpace(out); pid == "0" {
		t.Errorf("running container has no pid")
	}

	// Logs: tail with timestamps.
	waitFor(t, "three ticks", func() bool { return strings.Contains(d.Docker(t, "logs", "web").Stdout, "tick3\n") })
	res := d.Docker(t, "logs", "--tail", "2", "--timestamps", "web")
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z tick\d+$`)
	if res.ExitCode != 0 || len(lines) != 2 || !stamp.MatchString(lines[0]) || !stamp.MatchString(lines[1]) {
		t.Errorf("docker logs --tail 2 --timestamps = %v", res)
	}
	if out := dockerOK(t, d, "logs", "web"); !strings.HasPrefix(out, "started\ntick1\n") {
		t.Errorf("docker logs starts %q", out[:min(len(out), 30)])
	}

	// top, with the default and the BSD and -o forms.
	out = dockerOK(t, d, "top", "web")
	if !strings.HasPrefix(out, "UID") || !strings.Contains(out, "sh -c echo started") {
		t.Errorf("docker top = %q", out)
	}
	if out := dockerOK(t, d, "top", "web", "aux"); !strings.Contains(out, "%MEM") || !strings.Contains(out, "sh -c") {
		t.Errorf("docker top aux = %q", out)
	}
	if out := dockerOK(t, d, "top", "web", "-o", "pid,comm"); !strings.HasPrefix(out, "PID") || !strings.Contains(out, " sh\n") {
		t.Errorf("docker top -o pid,comm = %q", out)
	}

	// stats: one sample with the memory limit.
	out = dockerOK(t, d, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}")
	if !regexp.MustCompile(`^web \S+ / 64MiB [1-9]\d*\n$`).MatchString(out) {
		t.Errorf("docker stats --no-stream = %q", out)
	}

	// pause and unpause, with dockerd's conflicts.
	dockerOK(t, d, "pause", "web")
	if out := dockerOK(t, d, "ps", "--format", "{{.Status}}"); !strings.HasSuffix(out, "(Paused)\n") {
		t.Errorf("status of a paused container = %q", out)
	}
	if res := d.Docker(t, "pause", "web"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Container "+id+" is already paused") {
		t.Errorf("second pause: %v", res)
	}
	dockerOK(t, d, "unpause", "web")
	if res := d.Docker(t, "unpause", "web"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Container "+id+" is not paused") {
		t.Errorf("second unpause: %v", res)
	}

	// A signal number the platform lacks is dockerd's kill error.
	if res := d.Docker(t, "kill", "-s", "99", "web"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Cannot kill container: web: the linux daemon does not support signal 99") {
		t.Errorf("kill -s 99: %v", res)
	}
	// kill with a signal the shell ignores does not stop it.
	dockerOK(t, d, "kill", "-s", "USR1", "web")
	if got := inspectField(t, d, "web", "{{.State.Running}}"); got != "true" {
		t.Errorf("after kill -s USR1 running = %s", got)
	}

	// stop: SIGTERM (ignored by PID 1 without a handler), SIGKILL after -t.
	start := time.Now()
	dockerOK(t, d, "stop", "-t", "1", "web")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stop -t 1 took %v", el)
	}
	if got := inspectField(t, d, "web", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"); got != "exited 137 0" {
		t.Errorf("after stop: %s, want exited 137 0 (a manual stop is not restarted)", got)
	}
	// stop of a stopped container succeeds (304).
	dockerOK(t, d, "stop", "web")
	if res := d.Docker(t, "kill", "web"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "is not running") {
		t.Errorf("kill of a stopped container: %v", res)
	}

	dockerOK(t, d, "start", "web")
	if got := inspectField(t, d, "web", "{{.State.Running}}"); got != "true" {
		t.Errorf("after start running = %s", got)
	}
	before := inspectField(t, d, "web", "{{.State.StartedAt}}")
	dockerOK(t, d, "restart", "-t", "0", "web")
	if after := inspectField(t, d, "web", "{{.State.Running}} {{.State.StartedAt}}"); after == "true "+before || !strings.HasPrefix(after, "true ") {
		t.Errorf("restart: StartedAt %s then %s", before, after)
	}

	// rm of a running container without -f is refused.
	if res := d.Docker(t, "rm", "web"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "You cannot remove a running container "+id) {
		t.Errorf("rm of a running container: %v", res)
	}
	// Names are unique.
	if res := d.Docker(t, "create", "--name", "web", "busybox"); res.ExitCode == 0 || !strings.Contains(res.Stderr, `The container name "/web" is already in use`) {
		t.Errorf("create with a taken name: %v", res)
	}

	dockerOK(t, d, "rename", "web", "web2")
	if got := inspectField(t, d, id[:12], "{{.Name}}"); got != "/web2" {
		t.Errorf("name after rename = %s", got)
	}

	// wait returns the exit code once the container stops.
	type waited struct {
		res skifftest.Result
	}
	ch := make(chan waited, 1)
	go func() { ch <- waited{d.Docker(t, "wait", "web2")} }()
	// Whether the wait registers before or after the kill, it answers 137.
	dockerOK(t, d, "kill", "web2")
	w := <-ch
	if w.res.ExitCode != 0 || w.res.Stdout != "137\n" {
		t.Errorf("docker wait = %v, want 137", w.res)
	}

	// info counts containers.
	if out := dockerOK(t, d, "info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}}"); out != "2 0 2\n" {
		t.Errorf("info counts = %q, want 2 0 2", out)
	}

	dockerOK(t, d, "start", "web2")
	dockerOK(t, d, "rm", "-f", "web2")
	if res := d.Docker(t, "inspect", "web2"); res.ExitCode == 0 {
		t.Errorf("web2 still exists after rm -f")
	}
	out = dockerOK(t, d, "container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") {
		t.Errorf("container prune = %q", out)
	}
	if out := dockerOK(t, d, "ps", "-aq"); out != "" {
		t.Errorf("containers left after prune: %q", out)
	}
}

// TestCLIContainerOOM runs a memory hog under a 16 MiB limit: it is killed
// (137) and inspect says OOMKilled.
func TestCLIContainerOOM(t *testing.T) {
	d := startWithBusybox(t)
	res := d.Docker(t, "run", "--name", "hog", "--memory", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done")
	if res.ExitCode != 137 {
		t.Fatalf("memory hog: %v, want exit 137", res)
	}
	if got := inspectField(t, d, "hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"); got != "true 137" {
		t.Errorf("inspect hog = %q, want true 137", got)
	}
}

// TestCLIContainerPidsLimit proves --pids-limit: forks beyond it fail.
func TestCLIContainerPidsLimit(t *testing.T) {
	d := startWithBusybox(t)
	res := d.Docker(t, "run", "--rm", "--pids-limit", "5", "busybox", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait")
	if !strings.Contains(res.Stderr, "can't fork") && !strings.Contains(res.Stderr, "Resource temporarily unavailable") {
		t.Errorf("fork beyond the pids limit: %v, want a fork failure", res)
	}
}

// TestCLIContainerRestartPolicy: on-failure:2 restarts a failing container
// twice, then leaves it exited.
func TestCLIContainerRestartPolicy(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
	waitFor(t, "two restarts", func() bool {
		return inspectField(t, d, "flaky", "{{.State.Status}} {{.RestartCount}}") == "exited 2"
	})
	if out := dockerOK(t, d, "logs", "flaky"); out != "run\nrun\nrun\n" {
		t.Errorf("logs of three runs = %q", out)
	}
	if got := inspectField(t, d, "flaky", "{{.State.ExitCode}}"); got != "1" {
		t.Errorf("exit code %s, want 1", got)
	}
	// A successful exit is not restarted.
	dockerOK(t, d, "run", "-d", "--name", "fine", "--restart", "on-failure", "busybox", "true")
	waitFor(t, "fine to exit", func() bool { return inspectField(t, d, "fine", "{{.State.Status}}") == "exited" })
	if got := inspectField(t, d, "fine", "{{.RestartCount}}"); got != "0" {
		t.Errorf("restart count after exit 0 = %s", got)
	}
}

// TestCLIContainerLiveRestore kills the daemon with SIGKILL while one
// container runs and another exits meanwhile, starts a new daemon on the
// same roots, and finds both as they are: the first still running and
// stoppable, the second exited with its code and complete log.
func TestCLIContainerLiveRestore(t *testing.T) {
	d1 := skifftest.Start(t)
	importBusybox(t, d1)
	dockerOK(t, d1, "run", "-d", "--name", "keep", "busybox", "sleep", "1000")
	dockerOK(t, d1, "run", "-d", "--name", "quit", "busybox", "sh", "-c", "sleep 1; echo bye; exit 7")
	dockerOK(t, d1, "run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "sleep 1; exit 1")
	pid := inspectField(t, d1, "keep", "{{.State.Pid}}")
	quitPid := inspectField(t, d1, "quit", "{{.State.Pid}}")
	d1.Kill()
	// "quit" exits while no daemon runs: its shim reaps it.
	waitFor(t, "quit to exit while no daemon runs", func() bool {
		_, err := os.Stat("/proc/" + quitPid)
		return os.IsNotExist(err)
	})

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}})
	removeAllAtEnd(t, d2)
	if got := inspectField(t, d2, "keep", "{{.State.Status}} {{.State.Pid}}"); got != "running "+pid {
		t.Errorf("keep after restart = %q, want running %s", got, pid)
	}
	waitFor(t, "quit's exit to be recorded", func() bool {
		return inspectField(t, d2, "quit", "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"
	})
	if out := dockerOK(t, d2, "logs", "quit"); out != "bye\n" {
		t.Errorf("logs of quit = %q", out)
	}
	// The restart policy acts on the exit that happened while no daemon
	// ran.
	waitFor(t, "always to be restarted", func() bool {
		n, _ := strconv.Atoi(inspectField(t, d2, "always", "{{.RestartCount}}"))
		return n >= 1
	})
	dockerOK(t, d2, "rm", "-f", "always")
	dockerOK(t, d2, "stop", "-t", "1", "keep")
	if got := inspectField(t, d2, "keep", "{{.State.Status}}"); got != "exited" {
		t.Errorf("keep after stop = %s", got)
	}
	if _, err := os.Stat("/proc/" + pid); err == nil {
		if b, _ := os.ReadFile("/proc/" + pid + "/stat"); !bytes.Contains(b, []byte(") Z")) {
			t.Errorf("process %s still runs after docker stop", pid)
		}
	}
}

// TestCLIContainerConcurrent starts 50 containers at once.
func TestCLIContainerConcurrent(t *testing.T) {
	d := startWithBusybox(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := d.Docker(t, "run", "-d", "--name", fmt.Sprintf("c%d", i), "busybox", "sleep", "1000")
			if res.ExitCode != 0 {
				errs <- res.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent run: %s", e)
	}
	if out := dockerOK(t, d, "ps", "-q"); len(strings.Fields(out)) != n {
		t.Errorf("%d containers running, want %d", len(strings.Fields(out)), n)
	}
	// Each has its own hostname (UTS namespace) and sees only itself.
	out := dockerOK(t, d, "run", "--rm", "busybox", "sh", "-c", "ps -o pid > /tmp/p; wc -l < /tmp/p")
	if strings.TrimSpace(out) != "3" { // header, sh, ps
		t.Errorf("processes seen by a new container: %q", out)
	}
	ids := strings.Fields(dockerOK(t, d, "ps", "-q"))
	dockerOK(t, d, append([]string{"rm", "-f"}, ids...)...)
}

// TestCLIContainerTTY runs docker run -it under a pseudo-terminal: a
// shell prompt, a command, ^C to a foreground process, the terminal's size
// and the exit code.
func TestCLIContainerTTY(t *testing.T) {
	d := startWithBusybox(t)
	term := d.DockerTerminal(t, 30, 100, "run", "-it", "--rm", "--name", "tty", "busybox", "sh")
	term.Expect("/ # ")
	term.Type("echo $((6*7)); stty size\r")
	term.Expect("42\r\n30 100\r\n")
	// ^C must reach the foreground process, so wait until it runs.
	term.Type("sleep 100\r")
	term.WaitFor("sleep 100 to run in the container", func() bool {
		return strings.Contains(d.Docker(t, "top", "tty").Stdout, "sleep 100")
	})
	term.Type("\x03")
	term.Expect("^C")
	term.Type("exit 5\r")
	if code := term.ExitCode(); code != 5 {
		t.Errorf("docker run -it exited with %d, want 5; terminal:\n%q", code, term.Output())
	}
}

// TestCLIContainerRawAPI checks engine answers the CLI hides: the create
// response, start of a running container (304), wait before start, and
// the error texts of the lifecycle conflicts.
func TestCLIContainerRawAPI(t *testing.T) {
	d := startWithBusybox(t)
	hdr := map[string][]string{"Content-Type": {"application/json"}}
	r := d.Do(t, "POST", "/v1.50/containers/create?name=raw", strings.NewReader(`{"Image":"busybox","Cmd":["sleep","1000"]}`), hdr)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var created struct {
		ID       string `json:"Id"`
		Warnings []string
	}
	if err := json.Unmarshal([]byte(r.Body), &created); err != nil || len(created.ID) != 64 || created.Warnings == nil {
		t.Errorf("create body %q", r.Body)
	}
	r = d.Do(t, "POST", "/v1.50/containers/create", strings.NewReader(`{"Image":"nothere"}`), hdr)
	if r.Status != 404 || !strings.Contains(r.Body, "No such image: nothere:latest") {
		t.Errorf("create of a missing image: %d %s", r.Status, r.Body)
	}
	if r := d.Do(t, "POST", "/v1.50/containers/raw/start", nil, nil); r.Status != 204 {
		t.Errorf("start: %d %s", r.Status, r.Body)
	}
	if r := d.Do(t, "POST", "/v1.50/containers/raw/start", nil, nil); r.Status != 304 {
		t.Errorf("second start: %d %s, want 304", r.Status, r.Body)
	}
	// dockerd (containerd) takes a resize of a running container without
	// a terminal as a no-op.
	if r := d.Do(t, "POST", "/v1.50/containers/raw/resize?h=10&w=10", nil, nil); r.Status != 200 || r.Body != "" {
		t.Errorf("resize without a tty: %d %q, want 200 and no body", r.Status, r.Body)
	}
	if r := d.Do(t, "POST", "/v1.50/containers/raw/stop?t=0", nil, nil); r.Status != 204 {
		t.Errorf("stop: %d %s", r.Status, r.Body)
	}
	if r := d.Do(t, "POST", "/v1.50/containers/raw/stop", nil, nil); r.Status != 304 {
		t.Errorf("second stop: %d %s, want 304", r.Status, r.Body)
	}
	if r := d.Do(t, "POST", "/v1.50/containers/raw/pause", nil, nil); r.Status != 409 || !strings.Contains(r.Body, "is not running") {
		t.Errorf("pause of a stopped container: %d %s", r.Status, r.Body)
	}
	r = d.Do(t, "GET", "/v1.50/containers/raw/json?size=1", nil, nil)
	var insp map[string]any
	if err := json.Unmarshal([]byte(r.Body), &insp); err != nil {
		t.Fatalf("inspect: %v", err)
	}
	for _, k := range []string{"SizeRw", "SizeRootFs", "GraphDriver", "NetworkSettings", "Mounts"} {
		if _, ok := insp[k]; !ok {
			t.Errorf("inspect lacks %s: %s", k, r.Body)
		}
	}
	if rootfs, _ := insp["SizeRootFs"].(float64); rootfs <= 0 {
		t.Errorf("SizeRootFs = %v", insp["SizeRootFs"])
	}
	if r := d.Do(t, "DELETE", "/v1.50/containers/raw", nil, nil); r.Status != 204 {
		t.Errorf("rm: %d %s", r.Status, r.Body)
	}
	if r := d.Do(t, "GET", "/v1.50/containers/raw/json", nil, nil); r.Status != 404 || !strings.Contains(r.Body, "No such container: raw") {
		t.Errorf("inspect after rm: %d %s", r.Status, r.Body)
	}
}

// TestCLIContainerMounts: named and anonymous volumes, read-only, bind
// mounts and tmpfs, and rm -v of anonymous volumes.
func TestCLIContainerMounts(t *testing.T) {
	d := startWithBusybox(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("fromhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerOK(t, d, "run", "--rm", "-v", "vol1:/data", "busybox", "sh", "-c", "echo hi > /data/f")
	if out := dockerOK(t, d, "run", "--rm", "-v", "vol1:/data", "busybox", "cat", "/data/f"); out != "hi\n" {
		t.Errorf("named volume content = %q, want hi", out)
	}
	if res := d.Docker(t, "run", "--rm", "-v", "vol1:/data:ro", "busybox", "touch", "/data/g"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Read-only file system") {
		t.Errorf("write to a read-only volume: %v", res)
	}
	out := dockerOK(t, d, "run", "--rm", "-v", host+":/h", "--tmpfs", "/t:size=1m", "busybox", "sh", "-c", "cat /h/f; echo new > /h/g; grep -c ' /t tmpfs ' /proc/mounts")
	if out != "fromhost\n1\n" {
		t.Errorf("bind and tmpfs = %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "g")); err != nil || string(b) != "new\n" {
		t.Errorf("write through the bind mount: %q %v", b, err)
	}
	if res := d.Docker(t, "run", "--rm", "-v", "/tmp:/x", "--mount", "type=bind,source=/no/such/dir,target=/y", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "/no/such/dir") {
		t.Errorf("--mount of a missing bind source: %v", res)
	}

	dockerOK(t, d, "run", "-d", "--name", "anon", "-v", "/anon", "busybox", "sleep", "1000")
	mounts := inspectField(t, d, "anon", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}")
	if mounts != "volume /anon true" {
		t.Errorf("inspect Mounts = %q", mounts)
	}
	before := len(strings.Fields(dockerOK(t, d, "volume", "ls", "-q")))
	if res := d.Docker(t, "volume", "rm", "vol1"); res.ExitCode != 0 {
		t.Errorf("volume rm of an unused named volume: %v", res)
	}
	dockerOK(t, d, "rm", "-f", "-v", "anon")
	if after := len(strings.Fields(dockerOK(t, d, "volume", "ls", "-q"))); after != before-2 {
		t.Errorf("volumes after rm -v: %d, want %d", after, before-2)
	}
}

// ownCapBnd is this process's bounding set as /proc/self/status shows it:
// what a privileged container gets.
func ownCapBnd(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

// TestCLIContainerJoinNamespaces: --network, --pid and --ipc
// container:<name> share the other container's namespaces, and with IPC
// its /dev/shm, which a shareable container has on the host for that
// (cri-dockerd's pod sandboxes); a private one cannot be joined; --ipc
// host has the host's /dev/shm, --ipc none has none. Refusals are
// dockerd's texts.
func TestCLIContainerJoinNamespaces(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "srv", "--ipc", "shareable", "busybox", "sh", "-c", "echo donor > /dev/shm/from-srv; while true; do nc -l -p 8080 -e echo pong; done")
	waitFor(t, "the server to listen", func() bool {
		return d.Docker(t, "run", "--rm", "--network", "container:srv", "busybox", "sh", "-c", "echo ping | nc 127.0.0.1 8080").Stdout == "pong\n"
	})
	out := dockerOK(t, d, "run", "--rm", "--pid", "container:srv", "--ipc", "container:srv", "busybox", "sh", "-c", "ps -o comm | grep -c nc")
	if out != "1\n" {
		t.Errorf("processes of srv seen with --pid container:srv: %q", out)
	}
	// /dev/shm is the donor's: both ways, and through a chain of joins.
	dockerOK(t, d, "run", "-d", "--name", "pod1", "--ipc", "container:srv", "busybox", "sh", "-c", "echo joiner > /dev/shm/from-pod1; sleep 600")
	waitFor(t, "the joiner's file in the donor's /dev/shm", func() bool {
		return d.Docker(t, "exec", "srv", "cat", "/dev/shm/from-pod1").Stdout == "joiner\n"
	})
	if out := dockerOK(t, d, "run", "--rm", "--ipc", "container:pod1", "busybox", "cat", "/dev/shm/from-srv"); out != "donor\n" {
		t.Errorf("/dev/shm through a chain of joins: %q, want the donor's file", out)
	}
	dockerOK(t, d, "run", "-d", "--name", "private1", "busybox", "sleep", "600")
	if res := d.Docker(t, "run", "--rm", "--ipc", "container:private1", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "failed to join IPC namespace: container private1: non-shareable IPC (hint: use IpcMode:shareable for the donor container)") {
		t.Errorf("joining a private IPC namespace: %v, want dockerd's refusal", res)
	}
	if out := dockerOK(t, d, "run", "--rm", "--ipc", "none", "busybox", "sh", "-c", "grep -c ' /dev/shm ' /proc/mounts; readlink /proc/self/ns/ipc"); !strings.HasPrefix(out, "0\nipc:[") || strings.Contains(out, hostNamespace(t, "ipc")) {
		t.Errorf("--ipc none: %q, want no /dev/shm and an IPC namespace of its own", out)
	}
	marker := fmt.Sprintf("skiffd-test-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove("/dev/shm/" + marker) })
	dockerOK(t, d, "run", "--rm", "--ipc", "host", "busybox", "sh", "-c", "echo host > /dev/shm/"+marker)
	if b, err := os.ReadFile("/dev/shm/" + marker); err != nil || string(b) != "host\n" {
		t.Errorf("a file a --ipc host container wrote in /dev/shm: %q, %v, want it in the host's", b, err)
	}

	srvShm := filepath.Join(d.DataRoot, "containers", inspectField(t, d, "srv", "{{.Id}}"), "shm")
	if mounted, err := isMountPoint(srvShm); !mounted {
		t.Errorf("the running donor's shm %s is not a mount on the host: %v", srvShm, err)
	}
	dockerOK(t, d, "stop", "-t", "0", "srv")
	if res := d.Docker(t, "run", "--rm", "--network", "container:srv", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "cannot join network namespace of a non running container: container srv is exited") {
		t.Errorf("joining a stopped container's network: %v", res)
	}
	if res := d.Docker(t, "run", "--rm", "--ipc", "container:srv", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "failed to join IPC namespace: container srv is not running") {
		t.Errorf("joining a stopped container's IPC: %v", res)
	}
	// Its shm went with the run; the joiner keeps its bind.
	if out := dockerOK(t, d, "exec", "pod1", "cat", "/dev/shm/from-srv"); out != "donor\n" {
		t.Errorf("the joiner's /dev/shm after the donor stopped: %q", out)
	}
	if mounted, _ := isMountPoint(srvShm); mounted {
		t.Errorf("the stopped donor's shm is still mounted on the host")
	}
}

// hostNamespace is the test process's namespace link of kind, e.g.
// "ipc:[4026531839]".
func hostNamespace(t *testing.T, kind string) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// isMountPoint reports whether p is on another device than its parent.
func isMountPoint(p string) (bool, error) {
	var st, pst syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return false, err
	}
	if err := syscall.Lstat(filepath.Dir(p), &pst); err != nil {
		return false, err
	}
	return st.Dev != pst.Dev, nil
}

// TestCLIContainerLogsFollow: logs -f streams output as it comes and ends
// when the container stops.
func TestCLIContainerLogsFollow(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "fl", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done")
	start := time.Now()
	res := d.Docker(t, "logs", "-f", "fl")
	if res.ExitCode != 0 || res.Stdout != "1\n2\n3\n" {
		t.Errorf("logs -f = %v", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("logs -f took %v to end after the container stopped", el)
	}
	// Rotation: max-size and max-file bound the log; the newest lines stay.
	dockerOK(t, d, "run", "--name", "rot", "--log-opt", "max-size=200", "--log-opt", "max-file=2", "busybox", "sh", "-c", "for i in $(seq 30); do echo line$i; done")
	out := dockerOK(t, d, "logs", "rot")
	if !strings.HasSuffix(out, "line29\nline30\n") || strings.Contains(out, "line1\n") {
		t.Errorf("rotated log = %q, want only the newest lines", out)
	}
	// start -a and start -ai with piped stdin.
	dockerOK(t, d, "create", "--name", "sa", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	res = d.Docker(t, "start", "-a", "sa")
	if res.ExitCode != 3 || res.Stdout != "out\n" || res.Stderr != "err\n" {
		t.Errorf("start -a = %v", res)
	}
	dockerOK(t, d, "create", "-i", "--name", "sai", "busybox", "cat")
	res = d.DockerIn(t, strings.NewReader("piped\n"), "start", "-ai", "sai")
	if res.ExitCode != 0 || res.Stdout != "piped\n" {
		t.Errorf("start -ai = %v", res)
	}
}

// TestCLIContainerLogsBulk: a container's burst of output is logged line by
// line, whole and in order, and comes back the same through the docker CLI,
// which gets the records of one stream in shared frames (issue 13: a frame
// per line held `docker logs` to 45 MB/s) while other clients get dockerd's
// frame per record.
func TestCLIContainerLogsBulk(t *testing.T) {
	d := startWithBusybox(t)
	const n = 100000
	dockerOK(t, d, "run", "--name", "bulk", "busybox", "sh", "-c", fmt.Sprintf("seq 1 %d; echo err >&2", n))
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	res := d.Docker(t, "logs", "bulk")
	if res.ExitCode != 0 || res.Stdout != want.String() || res.Stderr != "err\n" {
		t.Errorf("docker logs: exit %d, %d bytes of stdout (want %d), stderr %q", res.ExitCode, len(res.Stdout), want.Len(), res.Stderr)
	}
	logPath := strings.TrimSpace(inspectField(t, d, "bulk", "{{.LogPath}}"))
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != n+1 {
		t.Errorf("the log holds %d records, want %d", got, n+1)
	}
	for _, tc := range []struct {
		agent     string
		maxFrames int
	}{
		{"Docker-Client/28.3.3 (linux)", 100},
		{"docker-sdk-python/7.1.0", n + 1},
	} {
		r := d.Do(t, "GET", "/v1.50/containers/bulk/logs?stdout=1&stderr=1", nil, http.Header{"User-Agent": {tc.agent}})
		frames := 0
		var out strings.Builder
		for body := r.Body; len(body) >= 8; frames++ {
			size := 8 + int(binary.BigEndian.Uint32([]byte(body[4:8])))
			if body[0] == 1 {
				out.WriteString(body[8:size])
			}
			body = body[size:]
		}
		if out.String() != want.String() {
			t.Errorf("%s: stdout of %d bytes, want %d", tc.agent, out.Len(), want.Len())
		}
		if frames > tc.maxFrames || (tc.maxFrames == n+1 && frames != n+1) {
			t.Errorf("%s: %d frames for %d records (limit %d)", tc.agent, frames, n+1, tc.maxFrames)
		}
	}
}

// TestCLIContainerIsolation: two containers of one image do not see each
// other's files, processes or hostname.
func TestCLIContainerIsolation(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "one", "busybox", "sh", "-c", "echo mine > /tmp/one; echo x > /etc/passwd; sleep 1000")
	waitFor(t, "one to write its file", func() bool {
		return d.Docker(t, "top", "one").ExitCode == 0 && strings.Contains(dockerOK(t, d, "top", "one"), "sleep 1000")
	})
	out := dockerOK(t, d, "run", "--rm", "busybox", "sh", "-c", "ls /tmp; head -1 /etc/passwd; ps -o comm | grep -c sleep; hostname")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "root:x:0:0:root:/root:/bin/sh" || lines[1] != "0" || lines[2] == inspectField(t, d, "one", "{{.Config.Hostname}}") {
		t.Errorf("a second container sees %q", out)
	}
}

// TestCLIContainerCrashDuringRuns kills the daemon with SIGKILL while
// containers are being created, started and removed, then checks that the
// next daemon finds a consistent world: every container created, running
// or exited with a sane start time, all removable, and nothing left behind
// (records, runtime directories, mounts).
func TestCLIContainerCrashDuringRuns(t *testing.T) {
	d1 := skifftest.Start(t)
	importBusybox(t, d1)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d1.Docker(t, "run", "-d", "--name", fmt.Sprintf("r%d", i), "busybox", "sleep", "1000")
			d1.Docker(t, "rm", "-f", fmt.Sprintf("r%d", i-1))
		}()
	}
	// Kill the daemon in the middle of the storm: once a few containers exist.
	waitFor(t, "a few containers to exist", func() bool {
		entries, _ := os.ReadDir(filepath.Join(d1.DataRoot, "containers"))
		return len(entries) >= 3
	})
	d1.Kill()
	wg.Wait()

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}})
	removeAllAtEnd(t, d2)
	out := dockerOK(t, d2, "ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) < 3:
			t.Errorf("ps line %q", line)
		case f[1] != "created" && f[1] != "running" && f[1] != "exited":
			t.Errorf("container in state %q after the crash: %q", f[1], line)
		case strings.Contains(line, "years"):
			t.Errorf("container with no start time: %q", line)
		}
	}
	if ids := strings.Fields(dockerOK(t, d2, "ps", "-aq")); len(ids) > 0 {
		dockerOK(t, d2, append([]string{"rm", "-f"}, ids...)...)
	}
	for _, dir := range []string{filepath.Join(d1.DataRoot, "containers"), filepath.Join(d1.ExecRoot, "containers")} {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s holds %d entries after removing every container", dir, len(ents))
		}
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(d1.DataRoot+"/containers/")) {
		t.Errorf("container mounts left after removing every container")
	}
}

// TestCLIContainerHealthcheck: a health check turns the container healthy,
// then unhealthy after Retries failures; ps shows and filters it.
func TestCLIContainerHealthcheck(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "hc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "100ms", "--health-retries", "2",
		"busybox", "sh", "-c", "touch /tmp/ok; sleep 1000")
	waitFor(t, "healthy", func() bool {
		return strings.HasSuffix(dockerOK(t, d, "ps", "--format", "{{.Status}}"), "(healthy)\n")
	})
	if out := dockerOK(t, d, "ps", "--filter", "health=healthy", "--format", "{{.Names}}"); out != "hc\n" {
		t.Errorf("ps --filter health=healthy = %q", out)
	}
	dockerOK(t, d, "exec", "hc", "rm", "/tmp/ok")
	waitFor(t, "unhealthy", func() bool { return inspectField(t, d, "hc", "{{.State.Health.Status}}") == "unhealthy" })
	if got := inspectField(t, d, "hc", "{{.State.Health.FailingStreak}} {{(index .State.Health.Log 0).ExitCode}}"); !strings.HasSuffix(got, " 0") && !strings.HasSuffix(got, " 1") {
		t.Errorf("health log = %q", got)
	}
}

// TestCLIImageMountPointsReplaced runs an image that has its own files
// where dockerd's init layer puts its mount points: a dangling /etc/hosts
// link (which a bind mount must not follow), a stale /etc/mtab file, its
// own /etc/hostname and /dev/console. As with dockerd, the container
// starts with the generated files, /etc/mtab is the link to
// /proc/mounts, and docker export shows the init layer's empty files and
// mount points instead of the image's.
func TestCLIImageMountPointsReplaced(t *testing.T) {
	d := startWithBusybox(t)
	top := skifftest.Tar(t, []skifftest.Entry{
		{Name: "etc/hosts", Type: tar.TypeSymlink, Linkname: "/nowhere"},
		{Name: "etc/mtab", Body: "/dev/sda1 / ext4 rw 0 0\n"},
		{Name: "etc/hostname", Body: "imagehost\n"},
		{Name: "dev/", Mode: 0o700},
		{Name: "dev/console", Body: "c"},
	})
	archive, _ := skifftest.DockerArchive(t, []skifftest.ArchiveImage{{Layers: [][]byte{skifftest.BusyboxTar(t), top}, RepoTags: []string{"mounts:1"}}})
	if res := d.DockerIn(t, bytes.NewReader(archive), "load"); res.ExitCode != 0 {
		t.Fatalf("docker load: %v", res)
	}
	res := d.Docker(t, "run", "--rm", "--hostname", "web", "mounts:1", "sh", "-c", "grep -c localhost /etc/hosts; cat /etc/hostname; readlink /etc/mtab; stat -c %a /dev")
	if want := "2\nweb\n/proc/mounts\n755\n"; res.ExitCode != 0 || res.Stdout != want {
		t.Errorf("run: %v, want %q", res, want)
	}
	id := strings.TrimSpace(dockerOK(t, d, "create", "mounts:1", "true"))
	out := dockerOK(t, d, "export", id)
	got := map[string]string{}
	tr := tar.NewReader(strings.NewReader(out))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		got[strings.TrimSuffix(h.Name, "/")] = fmt.Sprintf("%c %o %q %s", h.Typeflag, h.Mode&0o7777, b, h.Linkname)
	}
	for name, want := range map[string]string{
		"etc/hosts":    "0 755 \"\" ",
		"etc/hostname": "0 755 \"\" ",
		"etc/mtab":     "2 777 \"\" /proc/mounts",
		"dev":          "5 700 \"\" ",
		"dev/console":  "0 755 \"\" ",
		"dev/pts":      "5 755 \"\" ",
		"dev/shm":      "5 755 \"\" ",
		".dockerenv":   "0 755 \"\" ",
	} {
		if got[name] != want {
			t.Errorf("export: %s is %q, want %q", name, got[name], want)
		}
	}
}

// TestCLICreatePlatform: a create for a platform the local image cannot
// run on is dockerd's 404 naming both platforms, which makes the CLI try
// to pull the image for that platform; the image's own platform (and a
// spelling of it) creates as without one.
func TestCLICreatePlatform(t *testing.T) {
	d := startWithBusybox(t)
	own, other, otherName := "linux/amd64", "linux/arm64", "linux/arm64/v8"
	if goruntime.GOARCH != "amd64" {
		own, other, otherName = "linux/"+goruntime.GOARCH, "linux/amd64", "linux/amd64"
	}
	dockerOK(t, d, "run", "--rm", "--platform", own, "busybox", "true")
	if goruntime.GOARCH == "amd64" {
		dockerOK(t, d, "run", "--rm", "--platform", "linux/x86_64", "busybox", "true")
	}
	r := d.Do(t, "POST", "/containers/create?platform="+other, strings.NewReader(`{"Image":"busybox","Cmd":["true"]}`), http.Header{"Content-Type": {"application/json"}})
	want := "image with reference busybox was found but its platform (" + own + ") does not match the specified platform (" + otherName + ")"
	if r.Status != http.StatusNotFound || !strings.Contains(r.Body, want) {
		t.Errorf("create for %s: %d %s, want 404 %q", other, r.Status, r.Body, want)
	}
	// The CLI takes the 404 for a missing image and pulls, which fails
	// here (nothing serves docker.io): the container is not made.
	res := d.Docker(t, "run", "--rm", "--platform", other, "--pull", "never", "busybox", "true")
	if res.ExitCode == 0 {
		t.Errorf("docker run --platform %s --pull never: %v, want a refusal", other, res)
	}
	if got := strings.TrimSpace(dockerOK(t, d, "ps", "-aq")); got != "" {
		t.Errorf("containers after the refused creates: %q", got)
	}
}
