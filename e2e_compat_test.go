package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/fluentd/fluentdtest"
	"skiffd/internal/skifftest"
)

// dockerPy runs a small python3 script with docker-py (Debian's
// python3-docker, which .ci/run installs) against d, and returns its
// output. The script gets a client as the variable c. It runs Debian's
// /usr/bin/python3, where that package is, whatever other python3 PATH
// finds first.
func dockerPy(t *testing.T, d *skifftest.Daemon, script string) string {
	t.Helper()
	prog := "import docker\nc = docker.APIClient(base_url='" + d.Host + "', version='1.41', timeout=60)\n" + script
	cmd := exec.Command("/usr/bin/python3", "-c", prog)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-py script failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	return strings.TrimSpace(string(out))
}

// dockerWithin runs the docker CLI and fails the test, instead of hanging,
// when it has not answered within 30 s.
func dockerWithin(t *testing.T, d *skifftest.Daemon, args ...string) skifftest.Result {
	t.Helper()
	done := make(chan skifftest.Result, 1)
	go func() { done <- d.Docker(t, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("docker %s did not answer within 30 s", strings.Join(args, " "))
		return skifftest.Result{}
	}
}

// TestCompatKillWaitsForExit: a kill with SIGKILL (the default) answers
// only once the container is stopped, as dockerd's does, so that an
// inspect or remove right after sees it stopped (issue 15, item 1).
// docker-py's kill(); remove() must work every time.
func TestCompatKillWaitsForExit(t *testing.T) {
	d := startWithBusybox(t)
	for i := range 10 {
		id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "busybox", "sleep", "600"))
		dockerOK(t, d, "kill", id)
		if got := inspectField(t, d, id, "{{.State.Running}} {{.State.ExitCode}}"); got != "false 137" {
			t.Fatalf("try %d: right after docker kill, State.Running ExitCode = %q, want \"false 137\"", i, got)
		}
		dockerOK(t, d, "rm", id)
	}
	out := dockerPy(t, d, `
ok = 0
for i in range(20):
    ctr = c.create_container('busybox', ['sleep', '600'])
    c.start(ctr)
    c.kill(ctr)
    c.remove_container(ctr)
    ok += 1
print(ok)
`)
	if out != "20" {
		t.Errorf("docker-py kill(); remove() succeeded %s of 20 times", out)
	}
}

// TestCompatJoinOwnNamespace: a container whose IPC, PID or network mode
// names itself fails to start with dockerd's error instead of hanging the
// daemon on its own lock.
func TestCompatJoinOwnNamespace(t *testing.T) {
	d := startWithBusybox(t)
	for _, tc := range []struct{ flag, want string }{
		{"--ipc", "failed to join IPC namespace: container selfipc is not running"},
		{"--pid", "failed to join PID namespace: container selfpid is not running"},
		{"--network", "cannot join own network namespace"},
	} {
		name := "self" + strings.TrimPrefix(tc.flag, "--")
		dockerOK(t, d, "create", "--name", name, tc.flag, "container:"+name, "busybox", "true")
		r := dockerWithin(t, d, "start", name)
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("docker start of a container with %s container:<itself> = %v, want an error with %q", tc.flag, r, tc.want)
		}
		// The daemon still answers about the container.
		if got := inspectField(t, d, name, "{{.State.Running}}"); got != "false" {
			t.Errorf("%s: State.Running = %s, want false", name, got)
		}
	}
}

// TestCompatRuntimeName: "runc" is the name of skiffd's runtime, the
// default, listed by /info and echoed back; other names are refused with
// dockerd's message (issue 15, item 7).
func TestCompatRuntimeName(t *testing.T) {
	d := startWithBusybox(t)
	if got := strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{.DefaultRuntime}} {{index .Runtimes \"runc\"}}")); !strings.HasPrefix(got, "runc {") {
		t.Errorf("docker info DefaultRuntime, Runtimes[runc] = %q, want runc and an entry", got)
	}
	id := strings.TrimSpace(dockerOK(t, d, "create", "busybox", "true"))
	if got := inspectField(t, d, id, "{{.HostConfig.Runtime}}"); got != "runc" {
		t.Errorf("default HostConfig.Runtime = %q, want runc", got)
	}
	r := d.Docker(t, "create", "--runtime", "foo", "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "unknown or invalid runtime name: foo") {
		t.Errorf("docker create --runtime foo = %v, want dockerd's refusal", r)
	}
	out := dockerPy(t, d, `
ctr = c.create_container('busybox', ['true'], host_config=c.create_host_config(runtime='runc'))
print(c.inspect_container(ctr)['HostConfig']['Runtime'])
c.remove_container(ctr)
`)
	if out != "runc" {
		t.Errorf("docker-py: HostConfig.Runtime = %q, want runc", out)
	}
}

// TestCompatLogOptions: json-file's max-file without max-size is accepted
// as by dockerd; an unknown driver and an unknown option are refused with
// dockerd's texts (issue 15, item 6).
func TestCompatLogOptions(t *testing.T) {
	d := startWithBusybox(t)
	out := strings.TrimSpace(dockerOK(t, d, "run", "--rm", "--log-opt", "max-file=3", "busybox", "echo", "hello"))
	if out != "hello" {
		t.Errorf("docker run --log-opt max-file=3 printed %q, want hello", out)
	}
	r := d.Docker(t, "create", "--log-driver", "asdf", "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "logger: no log driver named 'asdf' is registered") {
		t.Errorf("docker create --log-driver asdf = %v, want dockerd's refusal", r)
	}
	r = d.Docker(t, "create", "--log-opt", "foo=bar", "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "unknown log opt 'foo' for json-file log driver") {
		t.Errorf("docker create --log-opt foo=bar = %v, want dockerd's refusal", r)
	}
	out = dockerPy(t, d, `
from docker.types import LogConfig
try:
    ctr = c.create_container('busybox', ['true'], host_config=c.create_host_config(log_config=LogConfig(type='asdf', config={})))
    c.start(ctr)
    print('accepted')
except docker.errors.APIError as e:
    print(e.explanation)
ctr = c.create_container('busybox', ['true'], host_config=c.create_host_config(log_config=LogConfig(type='json-file', config={'max-file': '2'})))
c.start(ctr)
print(c.wait(ctr)['StatusCode'])
c.remove_container(ctr)
`)
	if want := "logger: no log driver named 'asdf' is registered\n0"; out != want {
		t.Errorf("docker-py log configs: %q, want %q", out, want)
	}
}

// TestCompatLogCompressAndAttrs: json-file's compress, labels, env and
// tag options, which were accepted and ignored: the older rotated files
// are gzipped (the newest stays plain), docker logs reads the whole kept
// window through them in order, and every entry carries the attrs log
// shippers key on, as dockerd writes them.
func TestCompatLogCompressAndAttrs(t *testing.T) {
	d := startWithBusybox(t)
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "lg", "--label", "app=web", "-e", "STAGE=prod",
		"--log-opt", "max-size=2k", "--log-opt", "max-file=4", "--log-opt", "compress=true",
		"--log-opt", "labels=app", "--log-opt", "env=STAGE", "--log-opt", "tag={{.Name}}/{{.ID}}",
		"busybox", "sh", "-c", `i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done`))
	dockerOK(t, d, "wait", id)
	logPath := inspectField(t, d, id, "{{.LogPath}}")
	for _, name := range []string{logPath, logPath + ".1", logPath + ".2.gz", logPath + ".3.gz"} {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("rotated log files: %v", err)
		}
	}
	if _, err := os.Stat(logPath + ".4.gz"); err == nil {
		t.Errorf("more rotated files than max-file keeps")
	}
	lines := strings.Split(strings.TrimSpace(dockerOK(t, d, "logs", id)), "\n")
	first := -1
	if len(lines) > 0 {
		fmt.Sscanf(lines[0], "line %d", &first)
	}
	if first <= 0 || len(lines) != 300-first {
		t.Fatalf("docker logs gave %d lines from %q, want the kept window up to line 299", len(lines), lines[0])
	}
	for i, l := range lines {
		if want := fmt.Sprintf("line %d", first+i); l != want {
			t.Fatalf("docker logs line %d = %q, want %q", i, l, want)
		}
	}
	if got := dockerOK(t, d, "logs", "--tail", "2", id); got != "line 298\nline 299\n" {
		t.Errorf("docker logs --tail 2 = %q", got)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Log   string            `json:"log"`
		Attrs map[string]string `json:"attrs"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &entry); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "web", "STAGE": "prod", "tag": "lg/" + id[:12]}; !maps.Equal(entry.Attrs, want) {
		t.Errorf("attrs of an entry = %v, want %v", entry.Attrs, want)
	}
	r := d.Docker(t, "create", "--log-opt", "compress=true", "--log-opt", "max-file=3", "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "compress cannot be true when max-file is less than 2 or max-size is not set") {
		t.Errorf("compress without max-size: %v, want dockerd's refusal", r)
	}
}

// TestCompatLocalLogDriver: the local driver (daemon.json "log-driver":
// "local", which dockerd's documentation recommends) works as dockerd's
// does for a client: docker logs reads it, whole and with --tail, across
// its rotations; inspect shows no LogPath. Its options are checked as
// dockerd's, and every driver's mode and max-buffer-size are accepted.
func TestCompatLocalLogDriver(t *testing.T) {
	d := startWithBusybox(t)
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
		"--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=4m",
		"busybox", "sh", "-c", `i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done`))
	dockerOK(t, d, "wait", id)
	if got := inspectField(t, d, id, "{{.LogPath}}|{{.HostConfig.LogConfig.Type}}"); got != "|local" {
		t.Errorf("inspect LogPath|driver = %q, want no path, local", got)
	}
	lines := strings.Split(strings.TrimSpace(dockerOK(t, d, "logs", id)), "\n")
	if n := len(lines); n < 20 || lines[n-1] != "line 199" {
		t.Errorf("docker logs of a local log: %d lines ending %q", n, lines[n-1])
	}
	for i := 1; i < len(lines); i++ {
		var a, b int
		fmt.Sscanf(lines[i-1], "line %d", &a)
		fmt.Sscanf(lines[i], "line %d", &b)
		if b != a+1 {
			t.Fatalf("docker logs line %d = %q after %q", i, lines[i], lines[i-1])
		}
	}
	if got := dockerOK(t, d, "logs", "--tail", "1", id); got != "line 199\n" {
		t.Errorf("docker logs --tail 1 = %q", got)
	}
	dir := filepath.Join(d.DataRoot, "containers", id, "local-logs")
	for _, name := range []string{"container.log", "container.log.1", "container.log.2.gz"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("local log files: %v", err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-driver", "local", "--log-opt", "labels=a"}, "unknown log opt 'labels' for log driver local"},
		{[]string{"--log-driver", "local", "--log-opt", "max-file=1"}, "compression cannot be enabled when max file count is 1"},
		{[]string{"--log-opt", "mode=sometimes"}, "logger: logging mode not supported: sometimes"},
		{[]string{"--log-opt", "max-buffer-size=4m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
	} {
		r := d.Docker(t, append(append([]string{"create"}, tc.args...), "busybox", "true")...)
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("create %q: %v, want %q", tc.args, r, tc.want)
		}
	}
}

// TestCompatSyslogDriver: the syslog driver sends each line to a server
// the test runs (unixgram, and udp on loopback), in dockerd's formats and
// priorities, and keeps dockerd's local cache, which docker logs reads;
// without the cache docker logs is refused as dockerd refuses it. Bad
// options are refused at create with dockerd's texts.
func TestCompatSyslogDriver(t *testing.T) {
	d := startWithBusybox(t)
	sock := filepath.Join(t.TempDir(), "log.sock")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--log-driver", "syslog", "--log-opt", "syslog-address=unixgram://"+sock,
		"--log-opt", "tag={{.Name}}", "--name", "sl", "busybox", "sh", "-c", "echo out; echo err >&2"))
	buf := make([]byte, 2048)
	got := map[string]bool{}
	for range 2 {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("syslog server: %v (got %v)", err, got)
		}
		got[regexp.MustCompile(`^(<\d+>)\w{3} [ \d]\d \d\d:\d\d:\d\d sl\[\d+\]: (\w+)\n$`).ReplaceAllString(string(buf[:n]), "$1$2")] = true
	}
	if !got["<30>out"] || !got["<27>err"] {
		t.Errorf("syslog messages = %v, want out as daemon.info (<30>) and err as daemon.err (<27>)", got)
	}
	dockerOK(t, d, "wait", id)
	if out := dockerOK(t, d, "logs", id); out != "out\n" {
		t.Errorf("docker logs from the cache = %q", out)
	}
	if got := inspectField(t, d, id, "{{.LogPath}}"); got != "" {
		t.Errorf("inspect LogPath = %q, want none", got)
	}

	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	id = strings.TrimSpace(dockerOK(t, d, "run", "-d", "--log-driver", "syslog", "--log-opt", "syslog-address=udp://"+up.LocalAddr().String(),
		"--log-opt", "syslog-format=rfc5424", "--log-opt", "syslog-facility=local3", "--log-opt", "cache-disabled=true", "busybox", "echo", "hello"))
	up.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := up.ReadFrom(buf)
	if want := `^<158>1 \S+ \S+ ` + id[:12] + ` \d+ ` + id[:12] + ` - hello\n$`; err != nil || !regexp.MustCompile(want).Match(buf[:n]) {
		t.Errorf("rfc5424 over udp: %q, %v; want %s", buf[:n], err, want)
	}
	dockerOK(t, d, "wait", id)
	if r := d.Docker(t, "logs", id); r.ExitCode == 0 || !strings.Contains(r.Stderr, "configured logging driver does not support reading") {
		t.Errorf("docker logs without the cache: %v", r)
	}

	for _, tc := range []struct{ opt, want string }{
		{"syslog-address=unix:///nonexistent/log.sock", "no such file or directory"},
		{"syslog-address=http://x", "unsupported scheme: 'http'"},
		{"syslog-facility=bogus", "invalid syslog facility"},
		{"syslog-format=json", "Invalid syslog format"},
		{"max-size=1m", "unknown log opt 'max-size' for syslog log driver"},
	} {
		r := d.Docker(t, "create", "--log-driver", "syslog", "--log-opt", tc.opt, "busybox", "true")
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("create with %s: %v, want %q", tc.opt, r, tc.want)
		}
	}
}

// TestCompatGelfDriver: the gelf driver sends each line, gzipped over UDP
// to an endpoint the test runs on loopback, as a GELF message with
// dockerd's fields of the container and the attributes its options pick,
// and keeps the local cache docker logs reads; bad options are refused
// with dockerd's texts.
func TestCompatGelfDriver(t *testing.T) {
	d := startWithBusybox(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "gl", "--label", "app=web", "--log-driver", "gelf",
		"--log-opt", "gelf-address=udp://"+pc.LocalAddr().String(), "--log-opt", "labels=app", "busybox", "sh", "-c", "echo out; echo err >&2"))
	buf := make([]byte, 65536)
	got := map[string]map[string]any{}
	for range 2 {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("gelf endpoint: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(buf[:n]))
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		var m map[string]any
		if err := json.NewDecoder(zr).Decode(&m); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprint(m["short_message"])] = m
	}
	out, errm := got["out"], got["err"]
	if out == nil || errm == nil || out["level"] != float64(6) || errm["level"] != float64(3) {
		t.Fatalf("messages = %v", got)
	}
	for k, want := range map[string]string{"version": "1.1", "_container_id": id, "_container_name": "gl", "_tag": id[:12],
		"_image_name": "busybox", "_command": `sh -c echo out; echo err >&2`, "_app": "web"} {
		if out[k] != want {
			t.Errorf("field %s = %v, want %q", k, out[k], want)
		}
	}
	dockerOK(t, d, "wait", id)
	if got := dockerOK(t, d, "logs", id); got != "out\n" {
		t.Errorf("docker logs from the cache = %q", got)
	}
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "gelf-address is a required parameter"},
		{[]string{"gelf-address=http://x:1"}, "gelf: endpoint needs to be TCP or UDP"},
		{[]string{"gelf-address=udp://x"}, "gelf: please provide gelf-address as proto://host:port"},
		{[]string{"gelf-address=tcp://127.0.0.1:1", "gelf-compression-type=gzip"}, "compression is only supported on UDP"},
		{[]string{"gelf-address=udp://127.0.0.1:1", "gelf-compression-type=lz4"}, `unknown value "lz4" for log opt "gelf-compression-type" for gelf log driver`},
		{[]string{"gelf-address=udp://127.0.0.1:1", "max-size=1m"}, `unknown log opt "max-size" for gelf log driver`},
	} {
		refusedLogOpts(t, d, "gelf", tc.opts, tc.want)
	}
}

// refusedLogOpts checks that a create with the log driver and options is
// refused with want in the error.
func refusedLogOpts(t *testing.T, d *skifftest.Daemon, driver string, opts []string, want string) {
	t.Helper()
	args := []string{"create", "--log-driver", driver}
	for _, o := range opts {
		args = append(args, "--log-opt", o)
	}
	r := d.Docker(t, append(args, "busybox", "true")...)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("create with %s %q: %v, want %q", driver, opts, r, want)
	}
}

// TestCompatFluentdDriver: with --log-driver fluentd each line goes to a
// forward input (one the test runs, on loopback and on a unix socket) as
// dockerd's driver sends it: [tag, time, record, option] with the record's
// container_id, container_name (with its slash), source, log and the
// picked labels; EventTime stamps and acknowledged chunks when asked.
// docker logs reads the local cache; a start with no server fails with the
// dial's error unless fluentd-async; bad options get dockerd's refusals.
func TestCompatFluentdDriver(t *testing.T) {
	d := startWithBusybox(t)
	if got := dockerOK(t, d, "info", "--format", "{{.Plugins.Log}}"); !strings.Contains(got, "fluentd") {
		t.Errorf("log drivers in docker info: %q, want fluentd among them", got)
	}
	s := fluentdtest.Serve(t, "tcp", "127.0.0.1:0")
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "fl", "--label", "app=web", "--log-driver", "fluentd",
		"--log-opt", "fluentd-address="+s.Ln.Addr().String(), "--log-opt", "labels=app", "--log-opt", "tag=docker.{{.Name}}",
		"busybox", "sh", "-c", "echo out; echo err >&2"))
	got := map[string][]any{}
	for range 2 {
		select {
		case m := <-s.Msgs:
			rec, _ := m[2].(map[string]any)
			got[fmt.Sprint(rec["source"])] = m
		case <-time.After(10 * time.Second):
			t.Fatalf("no message; got %v", got)
		}
	}
	for source, want := range map[string]string{"stdout": "out", "stderr": "err"} {
		m := got[source]
		if m == nil {
			t.Fatalf("no %s message in %v", source, got)
		}
		if m[0] != "docker.fl" {
			t.Errorf("tag %v, want docker.fl", m[0])
		}
		if sec, ok := m[1].(int64); !ok || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
			t.Errorf("time %v, want the seconds of now", m[1])
		}
		wantRec := map[string]any{"container_id": id, "container_name": "/fl", "source": source, "log": want, "app": "web"}
		if !reflect.DeepEqual(m[2], wantRec) {
			t.Errorf("record %v, want %v", m[2], wantRec)
		}
		if opt, ok := m[3].(map[string]any); !ok || len(opt) != 0 {
			t.Errorf("option %v, want an empty map", m[3])
		}
	}
	dockerOK(t, d, "wait", id)
	if got := dockerOK(t, d, "logs", id); got != "out\n" {
		t.Errorf("docker logs from the cache = %q", got)
	}

	// A unix socket, sub-second times and acknowledgements (which the
	// server answers: the container's output goes on).
	us := fluentdtest.Serve(t, "unix", filepath.Join(t.TempDir(), "fluent.sock"))
	out := dockerOK(t, d, "run", "--rm", "--log-driver", "fluentd", "--log-opt", "fluentd-address=unix://"+us.Ln.Addr().String(),
		"--log-opt", "fluentd-sub-second-precision=true", "--log-opt", "fluentd-request-ack=true", "busybox", "sh", "-c", "echo a; echo b")
	if out != "a\nb\n" {
		t.Errorf("attached output with the fluentd driver: %q", out)
	}
	for _, want := range []string{"a", "b"} {
		m := <-us.Msgs
		if rec := m[2].(map[string]any); rec["log"] != want {
			t.Errorf("log %v, want %q", rec["log"], want)
		}
		if tm, ok := m[1].(time.Time); !ok || time.Since(tm).Abs() > time.Minute {
			t.Errorf("time %v, want an EventTime of now", m[1])
		}
		if opt := m[3].(map[string]any); len(fmt.Sprint(opt["chunk"])) != 24 {
			t.Errorf("option %v, want a chunk ID", opt)
		}
	}

	// A line longer than the log's 16 KiB goes in pieces, numbered as
	// dockerd numbers them.
	dockerOK(t, d, "run", "--rm", "--log-driver", "fluentd", "--log-opt", "fluentd-address="+s.Ln.Addr().String(),
		"busybox", "sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x; echo")
	var pieces []map[string]any
	for range 2 {
		select {
		case m := <-s.Msgs:
			pieces = append(pieces, m[2].(map[string]any))
		case <-time.After(10 * time.Second):
			t.Fatalf("%d pieces of the long line came, want 2", len(pieces))
		}
	}
	if p0, p1 := pieces[0], pieces[1]; len(fmt.Sprint(p0["log"]))+len(fmt.Sprint(p1["log"])) != 20000 ||
		p0["partial_ordinal"] != "1" || p0["partial_last"] != "false" || p1["partial_ordinal"] != "2" || p1["partial_last"] != "true" ||
		p0["partial_id"] != p1["partial_id"] || p0["partial_message"] != "true" {
		t.Errorf("pieces of a 20000-byte line: %.200v / %.200v", p0, p1)
	}

	// No server: the start fails, as dockerd's, unless fluentd-async.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	r := d.Docker(t, "run", "--rm", "--log-driver", "fluentd", "--log-opt", "fluentd-address="+dead, "busybox", "true")
	if want := "failed to initialize logging driver: dial tcp " + dead + ": connect: connection refused"; r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("run with no fluentd server = %v, want %q", r, want)
	}
	r = d.Docker(t, "run", "--rm", "--log-driver", "fluentd", "--log-opt", "fluentd-address="+dead, "--log-opt", "fluentd-async=true", "busybox", "echo", "lost")
	if r.ExitCode != 0 || r.Stdout != "lost\n" {
		t.Errorf("run with fluentd-async and no server = %v, want it to run", r)
	}

	for _, tc := range []struct {
		opts []string
		want string
	}{
		{[]string{"max-size=1m"}, "unknown log opt 'max-size' for fluentd log driver"},
		{[]string{"fluentd-address=udp://127.0.0.1:1"}, "invalid fluentd-address (udp://127.0.0.1:1): unsupported scheme: 'udp'"},
		{[]string{"fluentd-address=tcp://127.0.0.1:1/x"}, "invalid fluentd-address (tcp://127.0.0.1:1/x): should not contain a path element"},
		{[]string{"fluentd-address=unix://"}, "invalid fluentd-address (unix://): path is empty"},
		{[]string{"fluentd-async-reconnect-interval=50ms"}, `invalid value for fluentd-async-reconnect-interval: value ("50ms") must be between 100ms and 10s`},
		{[]string{"fluentd-write-timeout=-1s"}, "invalid value for fluentd-write-timeout: value must be a duration that is non-negative"},
		{[]string{"fluentd-max-retries=x"}, `strconv.ParseUint: parsing "x": invalid syntax`},
	} {
		refusedLogOpts(t, d, "fluentd", tc.opts, tc.want)
	}
}

// TestCompatJournaldDriver: with --log-driver journald each line goes to
// the journal's socket in the native protocol with dockerd's fields
// (MESSAGE, PRIORITY 6 or 3, CONTAINER_ID, CONTAINER_ID_FULL,
// CONTAINER_NAME, CONTAINER_TAG, SYSLOG_IDENTIFIER, IMAGE_NAME, the picked
// labels named as journal fields). The journal is a socket the test
// listens on, named to the daemon by SKIFFD_JOURNAL_SOCKET: the host's own
// journal is never written. docker logs reads the local cache; with no
// journal the start fails with dockerd's words.
func TestCompatJournaldDriver(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "journal.sock")
	jc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Close()
	d := skifftest.StartWith(t, skifftest.Options{Env: []string{"SKIFFD_JOURNAL_SOCKET=" + sock}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	if got := dockerOK(t, d, "info", "--format", "{{.Plugins.Log}}"); !strings.Contains(got, "journald") {
		t.Errorf("log drivers in docker info: %q, want journald among them", got)
	}
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "jl", "--label", "com.example.app=web", "--log-driver", "journald",
		"--log-opt", "labels=com.example.app", "busybox", "sh", "-c", "echo out; echo err >&2"))
	got := map[string]map[string]string{}
	buf := make([]byte, 65536)
	for range 2 {
		jc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := jc.Read(buf)
		if err != nil {
			t.Fatalf("journal socket: %v (got %v)", err, got)
		}
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("field %q is not KEY=value in %q", line, buf[:n])
			}
			m[k] = v
		}
		got[m["MESSAGE"]] = m
	}
	for msg, priority := range map[string]string{"out": "6", "err": "3"} {
		m := got[msg]
		for k, want := range map[string]string{"PRIORITY": priority, "CONTAINER_ID": id[:12], "CONTAINER_ID_FULL": id,
			"CONTAINER_NAME": "jl", "CONTAINER_TAG": id[:12], "SYSLOG_IDENTIFIER": id[:12], "IMAGE_NAME": "busybox",
			"COM_EXAMPLE_APP": "web"} {
			if m[k] != want {
				t.Errorf("message %q: %s = %q, want %q (fields %v)", msg, k, m[k], want, m)
			}
		}
	}
	dockerOK(t, d, "wait", id)
	if got := dockerOK(t, d, "logs", id); got != "out\n" {
		t.Errorf("docker logs from the cache = %q", got)
	}
	refusedLogOpts(t, d, "journald", []string{"max-size=1m"}, "unknown log opt 'max-size' for journald log driver")

	// No journal where the daemon looks: dockerd's refusal at the start.
	jc.Close()
	os.Remove(sock)
	r := d.Docker(t, "run", "--rm", "--log-driver", "journald", "busybox", "true")
	if want := "failed to initialize logging driver: journald is not enabled on this host"; r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("run with no journal = %v, want %q", r, want)
	}
}

// TestCompatCpusets: --cpuset-cpus/--cpuset-mems reach the container's
// cgroup, are checked against the host's CPUs and memory nodes with
// dockerd's messages, and docker update changes them (issue 15, item 3).
func TestCompatCpusets(t *testing.T) {
	d := startWithBusybox(t)
	sup := cgroups.Probe()
	t.Logf("host: cgroup v%s, cpuset %v, cpus %q, mems %q", sup.Version, sup.Cpuset, sup.Cpus, sup.Mems)
	if !sup.Cpuset {
		r := d.Docker(t, "run", "-d", "--cpuset-cpus", "0", "busybox", "sleep", "600")
		if r.ExitCode != 0 || !strings.Contains(r.Stderr, "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.") {
			t.Errorf("docker run --cpuset-cpus 0 on a host without cpusets = %v, want dockerd's warning", r)
		}
		return
	}
	allowed := func(id string) string {
		out := dockerOK(t, d, "exec", id, "grep", "Cpus_allowed_list", "/proc/1/status")
		return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Cpus_allowed_list:"))
	}
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--cpuset-cpus", "0", "--cpuset-mems", "0", "busybox", "sleep", "600"))
	if got := allowed(id); got != "0" {
		t.Errorf("Cpus_allowed_list with --cpuset-cpus 0 = %q, want 0", got)
	}
	if got := inspectField(t, d, id, "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}}"); got != "0 0" {
		t.Errorf("HostConfig cpusets = %q, want \"0 0\"", got)
	}
	last := sup.Cpus
	if i := strings.LastIndexAny(last, ",-"); i >= 0 {
		last = last[i+1:]
	}
	dockerOK(t, d, "update", "--cpuset-cpus", last, id)
	if got := allowed(id); got != last {
		t.Errorf("Cpus_allowed_list after docker update --cpuset-cpus %s = %q", last, got)
	}
	r := d.Docker(t, "run", "--rm", "--cpuset-cpus", "0-4095", "busybox", "true")
	if want := "Requested CPUs are not available - requested 0-4095, available: " + sup.Cpus; r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("docker run --cpuset-cpus 0-4095 = %v, want %q", r, want)
	}
	r = d.Docker(t, "run", "--rm", "--cpuset-mems", "4095", "busybox", "true")
	if want := "Requested memory nodes are not available - requested 4095, available: " + sup.Mems; r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("docker run --cpuset-mems 4095 = %v, want %q", r, want)
	}
	r = d.Docker(t, "update", "--cpuset-cpus", "x", id)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "Invalid value x for cpuset cpus") {
		t.Errorf("docker update --cpuset-cpus x = %v, want dockerd's refusal", r)
	}
	// A value refused on its own is dockerd's bare check, not the update's
	// "Cannot update container" error.
	r = d.Docker(t, "update", "--memory", "1m", id)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "Error response from daemon: Minimum memory limit allowed is 6MB") {
		t.Errorf("docker update --memory 1m = %v, want dockerd's bare refusal", r)
	}
	// The container prints its own cpus, read back from its log: docker-py's
	// exec_start reads the hijacked stream from the raw socket, so output
	// that arrives together with the 101 headers is left in http.client's
	// buffer and lost (with dockerd too; a fast exec meets it more often:
	// 1 run in 10 here).
	out := dockerPy(t, d, `
ctr = c.create_container('busybox', ['grep', 'Cpus_allowed_list', '/proc/self/status'], host_config=c.create_host_config(cpuset_cpus='0'))
c.start(ctr)
c.wait(ctr)
print(c.logs(ctr).decode().split()[-1])
c.remove_container(ctr)
`)
	if out != "0" {
		t.Errorf("docker-py cpuset_cpus='0': Cpus_allowed_list %q, want 0", out)
	}
}

// TestCompatRealtimeCPU: --cpu-rt-period/--cpu-rt-runtime reach the
// container's cgroup where the kernel has RT group scheduling, and are
// discarded with dockerd's warning where it has not (issue 15, item 8).
func TestCompatRealtimeCPU(t *testing.T) {
	d := startWithBusybox(t)
	sup := cgroups.Probe()
	t.Logf("host: cgroup v%s, real-time group scheduling %v", sup.Version, sup.CPURealtime)
	r := d.Docker(t, "run", "-d", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "10000", "busybox", "sleep", "600")
	if r.ExitCode != 0 {
		t.Fatalf("docker run --cpu-rt-runtime 10000 = %v", r)
	}
	id := strings.TrimSpace(r.Stdout)
	got := inspectField(t, d, id, "{{.HostConfig.CPURealtimePeriod}} {{.HostConfig.CPURealtimeRuntime}}")
	if !sup.CPURealtime {
		if !strings.Contains(r.Stderr, "Your kernel does not support cgroup cpu real-time runtime. Runtime discarded.") {
			t.Errorf("docker run stderr = %q, want dockerd's warning", r.Stderr)
		}
		if got != "0 0" {
			t.Errorf("HostConfig real-time = %q, want \"0 0\" (discarded)", got)
		}
		return
	}
	if got != "1000000 10000" {
		t.Errorf("HostConfig real-time = %q, want \"1000000 10000\"", got)
	}
	dir := cgroups.New(id).Paths()["cpu"]
	for file, want := range map[string]string{"cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "10000"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q (%v), want %s", file, b, err, want)
		}
	}
	dockerOK(t, d, "update", "--cpu-rt-runtime", "20000", id)
	if b, _ := os.ReadFile(filepath.Join(dir, "cpu.rt_runtime_us")); strings.TrimSpace(string(b)) != "20000" {
		t.Errorf("cpu.rt_runtime_us after docker update = %q, want 20000", b)
	}
}

// TestCompatBindPropagation: a shared or slave bind propagation needs a
// source whose mount propagates, as dockerd checks; on a shared source the
// container sees what is mounted there later (issue 15, item 5). The test
// makes its own mount point in a temp dir, private then shared.
func TestCompatBindPropagation(t *testing.T) {
	d := startWithBusybox(t)
	dir := t.TempDir()
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s onto itself: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if err := syscall.Mount("", dir, "", syscall.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ prop, want string }{
		{"rshared", "path " + dir + " is mounted on " + dir + " but it is not a shared mount"},
		{"rslave", "path " + dir + " is mounted on " + dir + " but it is not a shared or slave mount"},
	} {
		r := d.Docker(t, "run", "--rm", "-v", dir+":/x:"+tc.prop, "busybox", "true")
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("docker run -v %s:/x:%s on a private mount = %v, want %q", dir, tc.prop, r, tc.want)
		}
	}

	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "-v", dir+":/x:rslave", "busybox", "sleep", "600"))
	if got := inspectField(t, d, id, "{{range .Mounts}}{{.Propagation}}{{end}}"); got != "rslave" {
		t.Errorf("Mounts[0].Propagation = %q, want rslave", got)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(sub, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("propagated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(dockerOK(t, d, "exec", id, "cat", "/x/sub/f")); got != "propagated" {
		t.Errorf("a mount made on the host after start reads %q in the container, want propagated", got)
	}
	dockerOK(t, d, "rm", "-f", id)
	id = strings.TrimSpace(dockerOK(t, d, "run", "-d", "-v", dir+":/x:rshared", "busybox", "sleep", "600"))
	dockerOK(t, d, "rm", "-f", id)
}

// TestCompatVolumesFrom: --volumes-from mounts every volume and bind of
// the named container at the same paths, writable or not as :ro/:rw say,
// and an unknown container is refused as dockerd does (issue 15, item 2).
func TestCompatVolumesFrom(t *testing.T) {
	d := startWithBusybox(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "g"), []byte("from-bind\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerOK(t, d, "run", "--name", "src", "-v", "/anon", "-v", "named:/data", "-v", host+":/bind", "busybox", "sh", "-c", "echo from-volume > /data/f; echo anon > /anon/a")
	out := dockerOK(t, d, "run", "--rm", "--volumes-from", "src", "busybox", "cat", "/data/f", "/bind/g", "/anon/a")
	if out != "from-volume\nfrom-bind\nanon\n" {
		t.Errorf("--volumes-from src read %q", out)
	}
	r := d.Docker(t, "run", "--rm", "--volumes-from", "src:ro", "busybox", "touch", "/data/x")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("touch in a --volumes-from src:ro volume = %v, want a read-only file system", r)
	}
	dockerOK(t, d, "run", "--rm", "--volumes-from", "src:rw", "busybox", "touch", "/data/x")
	// The container's own mounts win over the copied ones.
	out = dockerOK(t, d, "run", "--rm", "--volumes-from", "src", "-v", "other:/data", "busybox", "ls", "/data")
	if out != "" {
		t.Errorf("/data with its own volume over --volumes-from lists %q, want empty", out)
	}
	// dockerd answers 404 (which makes the CLI try to pull the image
	// first), so ask the API directly.
	resp := d.Do(t, "POST", "/containers/create", strings.NewReader(`{"Image":"busybox","Cmd":["true"],"HostConfig":{"VolumesFrom":["nosuch"]}}`), http.Header{"Content-Type": {"application/json"}})
	if resp.Status != http.StatusNotFound || !strings.Contains(resp.Body, "No such container: nosuch") {
		t.Errorf("create with VolumesFrom [nosuch] = %d %s, want 404 No such container", resp.Status, resp.Body)
	}
	r = d.Docker(t, "create", "--volumes-from", "src:rx", "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "invalid mode: rx") {
		t.Errorf("--volumes-from src:rx = %v, want invalid mode", r)
	}
	out = dockerPy(t, d, `
ctr = c.create_container('busybox', ['cat', '/data/f'], host_config=c.create_host_config(volumes_from=['src']))
c.start(ctr)
c.wait(ctr)
print(c.logs(ctr).decode().strip())
c.remove_container(ctr)
`)
	if out != "from-volume" {
		t.Errorf("docker-py volumes_from=['src']: %q, want from-volume", out)
	}
}

// TestCompatVolumeSubpath: --mount type=volume,volume-subpath=... mounts
// the subdirectory (or file) of the volume, resolved inside the volume: a
// link that points out of it is resolved within it instead (issue 15,
// item 4).
func TestCompatVolumeSubpath(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "--rm", "-v", "vol:/v", "busybox", "sh", "-c",
		"mkdir -p /v/sub/dir && echo inside > /v/sub/dir/f && ln -s / /v/sub/escape && ln -s ../../.. /v/sub/up")
	mount := func(sub string) string { return "type=volume,src=vol,dst=/m,volume-subpath=" + sub }
	if got := dockerOK(t, d, "run", "--rm", "--mount", mount("sub/dir"), "busybox", "cat", "/m/f"); got != "inside\n" {
		t.Errorf("volume-subpath=sub/dir: /m/f = %q, want inside", got)
	}
	if got := dockerOK(t, d, "run", "--rm", "--mount", mount("sub/dir/f")+",readonly", "busybox", "cat", "/m"); got != "inside\n" {
		t.Errorf("volume-subpath=sub/dir/f: /m = %q, want inside", got)
	}
	for _, link := range []string{"sub/escape", "sub/up"} {
		if got := dockerOK(t, d, "run", "--rm", "--mount", mount(link), "busybox", "ls", "/m"); got != "sub\n" {
			t.Errorf("volume-subpath=%s (a link out of the volume) lists %q, want the volume's root (sub)", link, got)
		}
	}
	r := d.Docker(t, "run", "--rm", "--mount", mount("nope"), "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "cannot access path") || !strings.Contains(r.Stderr, "no such file or directory") {
		t.Errorf("volume-subpath=nope = %v, want cannot access path ... no such file or directory", r)
	}
	r = d.Docker(t, "run", "--rm", "--mount", mount("../x"), "busybox", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "subpath must be a relative path within the volume") {
		t.Errorf("volume-subpath=../x = %v, want dockerd's refusal", r)
	}
	// A running container keeps its subpath after the staging mount is
	// gone, and nothing of it stays mounted on the host once it is removed.
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--mount", mount("sub/dir"), "busybox", "sleep", "600"))
	if got := dockerOK(t, d, "exec", id, "cat", "/m/f"); got != "inside\n" {
		t.Errorf("running container: /m/f = %q, want inside", got)
	}
	dockerOK(t, d, "rm", "-f", id)
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), id) && strings.Contains(string(b), "subpaths") {
		t.Errorf("a subpath staging mount of %s is left on the host", id)
	}
	if got := dockerOK(t, d, "run", "--rm", "-v", "vol:/v", "busybox", "cat", "/v/sub/dir/f"); got != "inside\n" {
		t.Errorf("the volume after the subpath containers: %q, want its file intact", got)
	}
}

// TestCompatStreams: the events, stats and logs -f streams, which the
// daemon serves without a goroutine while they wait (issue 13, memory per
// stream), work for docker-py and for the docker CLI: an event published
// after the stream opened, two stats samples in a row (the second's
// precpu_stats is the first's cpu_stats), and a log line written after
// logs -f began.
func TestCompatStreams(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "talker", "--network", "none", "busybox", "sh", "-c", "while :; do echo tick; sleep 1; done")

	out := dockerPy(t, d, `
ev = c.events(decode=True)
c.create_volume('pyvol')
for e in ev:
    if e.get('Type') == 'volume' and e.get('Action') == 'create':
        print('event', e['Actor']['ID'])
        break
ev.close()
st = c.stats('talker', decode=True, stream=True)
a = next(st)
b = next(st)
print('stats', b['precpu_stats']['cpu_usage']['total_usage'] == a['cpu_stats']['cpu_usage']['total_usage'], b['name'])
lg = c.logs('talker', stream=True, follow=True, tail=0)
print('logs', next(lg).decode().strip())
`)
	if want := "event pyvol\nstats True /talker\nlogs tick"; out != want {
		t.Errorf("docker-py streams:\n%s\nwant:\n%s", out, want)
	}

	for _, tc := range []struct {
		args []string
		then func()
		want string
	}{
		{[]string{"events", "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"}, func() { dockerOK(t, d, "volume", "create", "clivol") }, "create clivol\n"},
		{[]string{"stats", "--format", "{{.Name}} {{.PIDs}}", "talker"}, nil, "talker 2"},
		{[]string{"logs", "-f", "--tail", "0", "talker"}, nil, "tick\ntick\n"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			cmd := exec.Command("docker", tc.args...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			if tc.then != nil {
				// The stream is open once the daemon counts its
				// subscriber.
				waitFor(t, "the events subscriber", func() bool {
					return strings.Contains(dockerOK(t, d, "info", "--format", "{{.NEventsListener}}"), "1")
				})
				tc.then()
			}
			got := make(chan error, 1)
			go func() { got <- readUntil(stdout, tc.want) }()
			select {
			case err := <-got:
				if err != nil {
					t.Errorf("docker %s: %v before %q", strings.Join(tc.args, " "), err, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("docker %s: no %q within 30 s", strings.Join(tc.args, " "), tc.want)
			}
		})
	}
}

// TestCompatUpdateMemorySwap follows dockerd's memory+swap bookkeeping: a
// memory limit alone is stored with twice as much memory+swap (-1 on a
// host without swap accounting, with dockerd's warning), and docker
// update refuses a memory limit above the memory+swap in force (none,
// unlimited or the default) unless a new one comes with it, with
// dockerd's 409. A restart policy for an AutoRemove container is a 409
// too.
func TestCompatUpdateMemorySwap(t *testing.T) {
	d := startWithBusybox(t)
	sup := cgroups.Probe()
	if !sup.MemoryLimit {
		r := d.Docker(t, "run", "-d", "-m", "100m", "busybox", "sleep", "600")
		if r.ExitCode != 0 || !strings.Contains(r.Stderr, "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.") {
			t.Errorf("docker run -m 100m on a host without memory limits = %v, want dockerd's warning", r)
		}
		return
	}
	t.Logf("host: cgroup v%s, swap accounting %v", sup.Version, sup.SwapLimit)
	swapOf := func(mem string) string {
		if !sup.SwapLimit {
			return "-1"
		}
		return mem
	}
	field := func(id string) string {
		return inspectField(t, d, id, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}")
	}
	run := func(args ...string) string {
		return strings.TrimSpace(dockerOK(t, d, append(append([]string{"run", "-d"}, args...), "busybox", "sleep", "600")...))
	}
	refused := "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"

	limited := run("-m", "100m")
	if got, want := field(limited), "104857600 "+swapOf("209715200"); got != want {
		t.Errorf("after -m 100m: Memory MemorySwap = %q, want %q", got, want)
	}
	if sup.SwapLimit {
		dockerOK(t, d, "update", "-m", "150m", limited)
		if got := field(limited); got != "157286400 209715200" {
			t.Errorf("after update -m 150m: %q, want the memory+swap kept", got)
		}
	}
	res := d.Docker(t, "update", "-m", "300m", limited)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Cannot update container "+limited+": "+refused) {
		t.Errorf("update -m 300m over 200m of memory+swap: %v, want dockerd's refusal", res)
	}
	dockerOK(t, d, "update", "-m", "300m", "--memory-swap", "600m", limited)
	if got, want := field(limited), "314572800 "+swapOf("629145600"); got != want {
		t.Errorf("after update -m 300m --memory-swap 600m: %q, want %q", got, want)
	}

	for _, c := range []struct {
		name string
		args []string
	}{
		{"no limit", nil},
		{"unlimited swap", []string{"-m", "100m", "--memory-swap", "-1"}},
	} {
		id := run(c.args...)
		before := field(id)
		r := d.Do(t, "POST", "/containers/"+id+"/update", strings.NewReader(`{"Memory": 209715200}`), http.Header{"Content-Type": {"application/json"}})
		if r.Status != http.StatusConflict || !strings.Contains(r.Body, refused) {
			t.Errorf("%s: update of Memory alone = %d %s, want dockerd's 409", c.name, r.Status, r.Body)
		}
		if got := field(id); got != before {
			t.Errorf("%s: the refused update changed the limits: %q, was %q", c.name, got, before)
		}
	}

	id := strings.TrimSpace(dockerOK(t, d, "create", "--rm", "busybox", "true"))
	r := d.Do(t, "POST", "/containers/"+id+"/update", strings.NewReader(`{"RestartPolicy": {"Name": "always"}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "Restart policy cannot be updated because AutoRemove is enabled for the container") {
		t.Errorf("restart policy for an AutoRemove container = %d %s, want dockerd's 409", r.Status, r.Body)
	}
}
