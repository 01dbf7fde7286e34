package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// startExecTarget runs the container the exec tests go into: a sleep as
// PID 1, with no_new_privs so that the exec's inheriting it shows.
func startExecTarget(t *testing.T, d *skifftest.Daemon) string {
	t.Helper()
	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "web", "--security-opt", "no-new-privileges", "-e", "C=from-container", "busybox", "sleep", "1000"))
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q", id)
	}
	return id
}

// TestCLIExec walks the exec commands through the real CLI: the
// exec sees the container's processes, namespaces, hostname, files,
// capabilities and no_new_privs; env, user and workdir; stdin; exit codes;
// detach; and dockerd's errors for missing commands and stopped or paused
// containers.
func TestCLIExec(t *testing.T) {
	d := startWithBusybox(t)
	since := time.Now().Add(-time.Second).Unix()
	id := startExecTarget(t, d)

	hostMnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		wantOut  string // exact, unless match is set
		match    string // a regexp the whole stdout must match
		wantErr  string // contained in stderr
		wantCode int
	}{
		{name: "ps shows the container's processes", args: []string{"ps", "-o", "pid,args"},
			match: `^PID +COMMAND\n +1 sleep 1000\n +\d+ ps -o pid,args\n$`},
		{name: "env user workdir", args: []string{"-e", "X=1", "-e", "C=from-exec", "-w", "/tmp", "-u", "1000", "web", "env"},
			match: `^PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=[0-9a-f]{12}\nC=from-exec\nA=1\nX=1\nHOME=/home/user\n$`},
		// The supplementary groups are the runtime's user resolution,
		// shared with docker run; only the ids are checked here.
		{name: "id", args: []string{"-u", "1000", "web", "id"}, match: `^uid=1000\(user\) gid=1000\(user\)( groups=.*)?\n$`},
		{name: "id with group", args: []string{"-u", "1000:50", "web", "sh", "-c", "id -u; id -g"}, wantOut: "1000\n50\n"},
		{name: "pwd", args: []string{"-w", "/tmp", "web", "pwd"}, wantOut: "/tmp\n"},
		{name: "container env", args: []string{"web", "sh", "-c", "echo $C $HOSTNAME; echo $PATH"},
			wantOut: "from-container " + id[:12] + "\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"},
		{name: "stdin", args: []string{"-i", "web", "cat"}, stdin: "hi\n", wantOut: "hi\n"},
		{name: "exit code", args: []string{"web", "sh", "-c", "exit 5"}, wantCode: 5},
		{name: "stderr", args: []string{"web", "sh", "-c", "echo out; echo err >&2"}, wantOut: "out\n", wantErr: "err\n"},
		{name: "hostname", args: []string{"web", "hostname"}, wantOut: id[:12] + "\n"},
		{name: "mount namespace", args: []string{"web", "readlink", "/proc/self/ns/mnt"}, match: `^mnt:\[\d+\]\n$`},
		{name: "pid 1 is the container's", args: []string{"web", "cat", "/proc/1/cmdline"}, wantOut: "sleep\x001000\x00"},
		{name: "namespaces and cgroup of PID 1", args: []string{"web", "sh", "-c",
			`for n in cgroup ipc mnt net pid uts; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] || echo "not in $n"; done; [ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] || echo "not in the cgroup"`}},
		{name: "security", args: []string{"web", "sh", "-c", `grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t'`},
			wantOut: "CapEff:00000000a80425fb\nNoNewPrivs:1\nSeccomp:2\n"},
		{name: "relative command from the working directory", args: []string{"-w", "/bin", "web", "./echo", "rel"}, wantOut: "rel\n"},
		{name: "missing working directory", args: []string{"-w", "/nope", "web", "true"}, wantCode: 126,
			wantOut: "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/nope\") set in config.json failed: no such file or directory: unknown\r\n"},
		{name: "no signal ignored", args: []string{"web", "grep", "SigIgn", "/proc/self/status"}, wantOut: "SigIgn:\t0000000000000000\n"},
		{name: "user loses capabilities", args: []string{"-u", "1000", "web", "grep", "CapEff", "/proc/self/status"}, wantOut: "CapEff:\t0000000000000000\n"},
		{name: "missing command", args: []string{"web", "nope"}, wantCode: 126,
			wantOut: "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown\r\n"},
		{name: "unknown user", args: []string{"-u", "nobody2", "web", "true"}, wantCode: 126,
			wantOut: "unable to find user nobody2: no matching entries in passwd file\r\n"},
		{name: "missing working directory", args: []string{"-w", "/nowhere", "web", "true"}, wantCode: 126,
			wantOut: "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/nowhere\") set in config.json failed: no such file or directory: unknown\r\n"},
		{name: "not executable", args: []string{"web", "/etc/passwd"}, wantCode: 126,
			wantOut: "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown\r\n"},
		{name: "privileged", args: []string{"--privileged", "web", "sh", "-c", `grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -d '\t'`},
			match: `^CapEff:[0-9a-f]{16}\nNoNewPrivs:1\n$`},
		{name: "missing container", args: []string{"nothere", "true"}, wantCode: 1, wantErr: "Error response from daemon: No such container: nothere\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] == "ps" {
				args = append([]string{"web"}, args...)
			}
			var in io.Reader
			if tc.stdin != "" {
				in = strings.NewReader(tc.stdin)
			}
			res := d.DockerIn(t, in, append([]string{"exec"}, args...)...)
			outOK := res.Stdout == tc.wantOut
			if tc.match != "" {
				outOK = regexp.MustCompile(tc.match).MatchString(res.Stdout)
			}
			if !outOK || res.ExitCode != tc.wantCode || !strings.Contains(res.Stderr, tc.wantErr) {
				t.Errorf("docker exec %s = %v\nwant exit %d, stdout %q (match %q), stderr containing %q", strings.Join(args, " "), res, tc.wantCode, tc.wantOut, tc.match, tc.wantErr)
			}
			if tc.name == "mount namespace" && strings.TrimSpace(res.Stdout) == hostMnt {
				t.Errorf("the exec is in the host's mount namespace %s", hostMnt)
			}
			if tc.name == "privileged" {
				// CAP_SYS_ADMIN (bit 21) is beyond the container's set.
				hex, _, _ := strings.Cut(strings.TrimPrefix(res.Stdout, "CapEff:"), "\n")
				if mask, err := strconv.ParseUint(hex, 16, 64); err != nil || mask&(1<<21) == 0 {
					t.Errorf("privileged exec has CapEff %q, want every capability", hex)
				}
			}
		})
	}

	t.Run("detach", func(t *testing.T) {
		if res := d.Docker(t, "exec", "-d", "web", "sh", "-c", "echo lost; touch /tmp/x"); res.ExitCode != 0 || res.Stdout != "" {
			t.Fatalf("docker exec -d = %v", res)
		}
		waitFor(t, "the detached exec's file", func() bool { return d.Docker(t, "exec", "web", "test", "-e", "/tmp/x").ExitCode == 0 })
	})

	t.Run("paused", func(t *testing.T) {
		dockerOK(t, d, "pause", "web")
		res := d.Docker(t, "exec", "web", "true")
		dockerOK(t, d, "unpause", "web")
		if res.ExitCode != 1 || res.Stderr != "Error response from daemon: Container web is paused, unpause the container before exec\n" {
			t.Errorf("docker exec into a paused container = %v", res)
		}
	})

	// The events of one exec, in order, with the ID of the exec.
	until := time.Now().Add(time.Second).Unix()
	out := dockerOK(t, d, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(until), "--filter", "container=web",
		"--format", `{{.Action}}|{{index .Actor.Attributes "execID"}}|{{index .Actor.Attributes "exitCode"}}`)
	var execID string
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		action, rest, _ := strings.Cut(line, "|")
		xid, code, _ := strings.Cut(rest, "|")
		if action == "exec_create: sh -c exit 5" {
			execID = xid
		}
		if execID != "" && xid == execID {
			got = append(got, action+" "+code)
		}
	}
	if want := []string{"exec_create: sh -c exit 5 ", "exec_start: sh -c exit 5 ", "exec_die 5"}; strings.Join(got, ",") != strings.Join(want, ",") || len(execID) != 64 {
		t.Errorf("events of docker exec web sh -c 'exit 5' = %q (exec %q), want %q; all events:\n%s", got, execID, want, out)
	}
	if !strings.Contains(out, "exec_create: ps -o pid,args|") {
		t.Errorf("events lack exec_create of ps (dockerd's form, a space after the entrypoint):\n%s", out)
	}

	t.Run("stopped", func(t *testing.T) {
		dockerOK(t, d, "stop", "-t", "0", "web")
		res := d.Docker(t, "exec", "web", "true")
		if res.ExitCode != 1 || res.Stderr != "Error response from daemon: Container "+id+" is not running\n" {
			t.Errorf("docker exec into a stopped container = %v", res)
		}
	})
}

// TestCLIExecTTY runs docker exec -it under a pseudo-terminal: the shell's
// prompt, the terminal's size (set through exec resize), a command, and
// the exit code.
func TestCLIExecTTY(t *testing.T) {
	d := startWithBusybox(t)
	startExecTarget(t, d)
	term := d.DockerTerminal(t, 30, 100, "exec", "-it", "web", "sh")
	term.Expect("/ # ")
	term.Type("echo $((6*7)) $TERM; stty size; tty\r")
	term.Expect("42 xterm\r\n30 100\r\n/dev/pts/0\r\n")
	// A new size reaches the CLI as SIGWINCH and the exec through resize;
	// the CLI may still be on the old size when the first stty runs.
	if err := term.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	term.WaitFor("the new size in the exec", func() bool {
		term.Type("stty size\r")
		return strings.Contains(term.Output(), "40 120\r\n")
	})
	term.Type("exit 6\r")
	if code := term.ExitCode(); code != 6 {
		t.Errorf("docker exec -it exited with %d, want 6; terminal:\n%q", code, term.Output())
	}
}

// rawExecStart sends POST /exec/{id}/start on a fresh connection and
// returns the status line, the headers and everything until the daemon
// closes the stream.
func rawExecStart(t testing.TB, d *skifftest.Daemon, id, body string, upgrade bool) (string, http.Header, []byte) {
	t.Helper()
	return rawExecSession(t, d, id, body, upgrade, func(c *net.UnixConn, _ *bufio.Reader) { c.CloseWrite() })
}

// rawExecSession is rawExecStart where talk drives the stream once the
// answer's headers are in (sending stdin, reading some output); what
// follows, until the daemon closes the stream, is returned.
func rawExecSession(t testing.TB, d *skifftest.Daemon, id, body string, upgrade bool, talk func(*net.UnixConn, *bufio.Reader)) (string, http.Header, []byte) {
	t.Helper()
	c, err := net.Dial("unix", d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "POST /v1.50/exec/" + id + "/start HTTP/1.1\r\nHost: skiffd\r\nContent-Type: application/json\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", len(body))
	if upgrade {
		req += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading headers: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		hdr.Add(k, strings.TrimSpace(v))
	}
	talk(conn, br)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return strings.TrimRight(status, "\r\n"), hdr, rest
}

// demuxFrames splits a multiplexed stream into its stdout and stderr
// payloads; a frame of another stream, or a cut one, is an error.
func demuxFrames(b []byte) (stdout, stderr string, err error) {
	for len(b) > 0 {
		if len(b) < 8 {
			return stdout, stderr, fmt.Errorf("cut frame header %q", b)
		}
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		if b[1] != 0 || b[2] != 0 || b[3] != 0 || len(b) < 8+n {
			return stdout, stderr, fmt.Errorf("bad frame %q", b)
		}
		switch b[0] {
		case 1:
			stdout += string(b[8 : 8+n])
		case 2:
			stderr += string(b[8 : 8+n])
		default:
			return stdout, stderr, fmt.Errorf("frame of stream %d", b[0])
		}
		b = b[8+n:]
	}
	return stdout, stderr, nil
}

// TestExecRawAPI drives exec over raw HTTP: the 201 of create, a TTY start
// (unframed output), the legacy start without Upgrade (200 and a
// multiplexed stream until close), a detached start (empty 200), inspect
// while running and after, resize, and the 404s and 409s.
func TestExecRawAPI(t *testing.T) {
	d := startWithBusybox(t)
	id := startExecTarget(t, d)
	hdr := http.Header{"Content-Type": {"application/json"}}
	create := func(body string) string {
		t.Helper()
		r := d.Do(t, "POST", "/v1.50/containers/web/exec", strings.NewReader(body), hdr)
		var resp struct {
			ID string `json:"Id"`
		}
		if r.Status != 201 || json.Unmarshal([]byte(r.Body), &resp) != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(resp.ID) {
			t.Fatalf("exec create %s: %d %s", body, r.Status, r.Body)
		}
		return resp.ID
	}
	inspect := func(xid string) map[string]any {
		t.Helper()
		r := d.Do(t, "GET", "/v1.50/exec/"+xid+"/json", nil, nil)
		var m map[string]any
		if r.Status != 200 || json.Unmarshal([]byte(r.Body), &m) != nil {
			t.Fatalf("exec inspect: %d %s", r.Status, r.Body)
		}
		return m
	}

	t.Run("tty", func(t *testing.T) {
		xid := create(`{"AttachStdout":true,"AttachStderr":true,"Tty":true,"ConsoleSize":[12,34],"Cmd":["sh","-c","stty size; echo err >&2"]}`)
		status, h, body := rawExecStart(t, d, xid, `{"Detach":false,"Tty":true,"ConsoleSize":[12,34]}`, true)
		if status != "HTTP/1.1 101 UPGRADED" || h.Get("Content-Type") != "application/vnd.docker.raw-stream" || h.Get("Api-Version") == "" {
			t.Errorf("tty start answered %q %v", status, h)
		}
		if string(body) != "12 34\r\nerr\r\n" {
			t.Errorf("tty exec output %q, want raw %q", body, "12 34\r\nerr\r\n")
		}
		m := inspect(xid)
		pc, _ := m["ProcessConfig"].(map[string]any)
		if m["ExitCode"] != 0.0 || m["Running"] != false || pc["tty"] != true || pc["entrypoint"] != "sh" || m["ContainerID"] != id {
			t.Errorf("inspect after exit = %v", m)
		}
	})
	t.Run("stdin half-close", func(t *testing.T) {
		// A client that half-closes its input still gets all the output
		// and, once the stream ends, the exit code.
		xid := create(`{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","cat; echo after-eof >&2; exit 3"]}`)
		_, _, body := rawExecSession(t, d, xid, `{"Detach":false,"Tty":false}`, true, func(c *net.UnixConn, _ *bufio.Reader) {
			io.WriteString(c, "to-cat\n")
			c.CloseWrite()
		})
		// stdout and stderr are separate pipes, read apart (in the shim as
		// in dockerd's), so the order of their frames is not fixed; the
		// frames of each stream are.
		stdout, stderr, err := demuxFrames(body)
		if err != nil || stdout != "to-cat\n" || stderr != "after-eof\n" {
			t.Errorf("stream %q (%v): stdout %q, stderr %q, want %q and %q", body, err, stdout, stderr, "to-cat\n", "after-eof\n")
		}
		if m := inspect(xid); m["ExitCode"] != 3.0 || m["Running"] != false {
			t.Errorf("inspect right after the stream ended = %v, want exit code 3", m)
		}
	})
	t.Run("detach keys", func(t *testing.T) {
		xid := create(`{"AttachStdin":true,"AttachStdout":true,"Tty":true,"DetachKeys":"ctrl-x,x","Cmd":["sh"]}`)
		since := time.Now().Add(-time.Second).Unix()
		var seen string
		rawExecSession(t, d, xid, `{"Detach":false,"Tty":true}`, true, func(c *net.UnixConn, br *bufio.Reader) {
			// ctrl-x alone is passed on (the shell ignores it); ctrl-x
			// then x detaches.
			io.WriteString(c, "\x18echo $((6*7))\n")
			for !strings.Contains(seen, "42\r\n") {
				b := make([]byte, 512)
				n, err := br.Read(b)
				seen += string(b[:n])
				if err != nil {
					t.Fatalf("terminal output ended (%v) before 42: %q", err, seen)
				}
			}
			io.WriteString(c, "\x18x")
		})
		m := inspect(xid)
		if m["Running"] != true || m["DetachKeys"] != "GHg=" {
			t.Errorf("inspect after the detach = %v", m)
		}
		out := dockerOK(t, d, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(time.Now().Add(time.Second).Unix()),
			"--filter", "event=exec_detach", "--format", `{{index .Actor.Attributes "execID"}}`)
		if out != xid+"\n" {
			t.Errorf("exec_detach events: %q, want %s", out, xid)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		xid := create(`{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","echo out; echo err >&2"]}`)
		status, h, body := rawExecStart(t, d, xid, `{"Detach":false,"Tty":false}`, false)
		if status != "HTTP/1.1 200 OK" || h.Get("Content-Length") != "" || h.Get("Transfer-Encoding") != "" {
			t.Errorf("legacy start answered %q %v", status, h)
		}
		// stdout and stderr are separate pipes, so their order is not fixed.
		frames := map[string]bool{string("\x01\x00\x00\x00\x00\x00\x00\x04out\n"): true, string("\x02\x00\x00\x00\x00\x00\x00\x04err\n"): true}
		if len(body) != 24 || !frames[string(body[:12])] || !frames[string(body[12:])] || body[0] == body[12] {
			t.Errorf("legacy stream %q, want the two frames", body)
		}
	})
	t.Run("detached, resize, running", func(t *testing.T) {
		xid := create(`{"Tty":true,"Cmd":["sleep","1000"]}`)
		r := d.Do(t, "POST", "/v1.50/exec/"+xid+"/start", strings.NewReader(`{"Detach":true}`), hdr)
		if r.Status != 200 || r.Body != "" {
			t.Errorf("detached start: %d %q", r.Status, r.Body)
		}
		m := inspect(xid)
		if m["Running"] != true || m["ExitCode"] != nil || m["Pid"] == 0.0 {
			t.Errorf("inspect of a running exec = %v", m)
		}
		if r := d.Do(t, "POST", "/v1.50/exec/"+xid+"/resize?h=20&w=60", nil, nil); r.Status != 200 {
			t.Errorf("resize: %d %s", r.Status, r.Body)
		}
		r = d.Do(t, "POST", "/v1.50/exec/"+xid+"/start", strings.NewReader(`{"Detach":true}`), hdr)
		if r.Status != 409 || !strings.Contains(r.Body, "Error: Exec command "+xid+" is already running") {
			t.Errorf("second start: %d %s", r.Status, r.Body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			status             int
			msg                string
		}{
			{"POST", "/v1.50/exec/nope/start", `{"Detach":true}`, 404, "No such exec instance: nope"},
			{"GET", "/v1.50/exec/nope/json", "", 404, "No such exec instance: nope"},
			{"POST", "/v1.50/exec/nope/resize?h=1&w=1", "", 404, "No such exec instance: nope"},
			{"POST", "/v1.50/containers/nope/exec", `{"Cmd":["true"]}`, 404, "No such container: nope"},
			{"POST", "/v1.50/containers/web/exec", `{"Cmd":[]}`, 400, "No exec command specified"},
		} {
			r := d.Do(t, tc.method, tc.path, strings.NewReader(tc.body), hdr)
			if r.Status != tc.status || !strings.Contains(r.Body, tc.msg) {
				t.Errorf("%s %s = %d %s, want %d %q", tc.method, tc.path, r.Status, r.Body, tc.status, tc.msg)
			}
		}
		// An exec created but not started is forgotten when its container
		// stops, as dockerd does.
		xid := create(`{"Cmd":["true"]}`)
		dockerOK(t, d, "stop", "-t", "0", "web")
		r := d.Do(t, "POST", "/v1.50/exec/"+xid+"/start", strings.NewReader(`{"Detach":false}`), hdr)
		if r.Status != 404 || !strings.Contains(r.Body, "No such exec instance: "+xid) {
			t.Errorf("start after the container stopped: %d %s", r.Status, r.Body)
		}
		r = d.Do(t, "POST", "/v1.50/containers/web/exec", strings.NewReader(`{"Cmd":["true"]}`), hdr)
		if r.Status != 409 || !strings.Contains(r.Body, "Container "+id+" is not running") {
			t.Errorf("create in a stopped container: %d %s", r.Status, r.Body)
		}
	})
}

// startBenchTarget starts a daemon with busybox and a running container
// named web for the exec benchmarks.
func startBenchTarget(b *testing.B) *skifftest.Daemon {
	b.Helper()
	d := skifftest.Start(b)
	if res := d.DockerIn(b, bytes.NewReader(skifftest.BusyboxTar(b)), "import", "-", "busybox"); res.ExitCode != 0 {
		b.Fatalf("docker import: %v", res)
	}
	if res := d.Docker(b, "run", "-d", "--name", "web", "busybox", "sleep", "100000"); res.ExitCode != 0 {
		b.Fatalf("docker run: %v", res)
	}
	b.Cleanup(func() { d.Docker(b, "rm", "-f", "web") })
	return d
}

// BenchmarkCLIExecTrue is the latency of `docker exec web true` through
// the real CLI, the number (CLI start-up included).
func BenchmarkCLIExecTrue(b *testing.B) {
	d := startBenchTarget(b)
	for b.Loop() {
		if res := d.Docker(b, "exec", "web", "true"); res.ExitCode != 0 {
			b.Fatalf("docker exec: %v", res)
		}
	}
}

// BenchmarkExecTrueAPI is the daemon's share of it: create, hijacked start
// and inspect over the socket, as the CLI sends them.
func BenchmarkExecTrueAPI(b *testing.B) {
	d := startBenchTarget(b)
	hdr := http.Header{"Content-Type": {"application/json"}}
	for b.Loop() {
		r := d.Do(b, "POST", "/v1.50/containers/web/exec", strings.NewReader(`{"AttachStdout":true,"AttachStderr":true,"Cmd":["true"]}`), hdr)
		var resp struct {
			ID string `json:"Id"`
		}
		if r.Status != 201 || json.Unmarshal([]byte(r.Body), &resp) != nil {
			b.Fatalf("exec create: %d %s", r.Status, r.Body)
		}
		rawExecStart(b, d, resp.ID, `{"Detach":false,"Tty":false}`, true)
		if r := d.Do(b, "GET", "/v1.50/exec/"+resp.ID+"/json", nil, nil); r.Status != 200 || !strings.Contains(r.Body, `"ExitCode":0`) {
			b.Fatalf("exec inspect: %d %s", r.Status, r.Body)
		}
	}
}

// TestCLIExecStdinBinary sends 1 MiB of random bytes through an exec'd
// cat and expects them back byte for byte.
func TestCLIExecStdinBinary(t *testing.T) {
	d := startWithBusybox(t)
	startExecTarget(t, d)
	data := make([]byte, 1<<20)
	rand.Read(data)
	res := d.DockerIn(t, bytes.NewReader(data), "exec", "-i", "web", "cat")
	if res.ExitCode != 0 || res.Stdout != string(data) {
		t.Fatalf("stdin round trip: exit %d, %d bytes back (equal: %v), stderr %q", res.ExitCode, len(res.Stdout), res.Stdout == string(data), res.Stderr)
	}
}

// TestCLIExecAfterRestart execs into a container that a previous daemon
// started (live restore): the new daemon knows its runtime state only from
// disk. Execs themselves, like dockerd's, do not survive the restart.
func TestCLIExecAfterRestart(t *testing.T) {
	d1 := skifftest.Start(t)
	importBusybox(t, d1)
	dockerOK(t, d1, "run", "-d", "--name", "web", "--cap-drop", "CHOWN", "--security-opt", "no-new-privileges", "busybox", "sleep", "1000")
	r := d1.Do(t, "POST", "/v1.50/containers/web/exec", strings.NewReader(`{"Cmd":["true"]}`), http.Header{"Content-Type": {"application/json"}})
	var created struct {
		ID string `json:"Id"`
	}
	if r.Status != 201 || json.Unmarshal([]byte(r.Body), &created) != nil {
		t.Fatalf("exec create: %d %s", r.Status, r.Body)
	}
	d1.Kill()

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}})
	removeAllAtEnd(t, d2)
	res := d2.Docker(t, "exec", "web", "sh", "-c", `grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -d '\t'; cat /proc/1/cmdline`)
	if want := "CapEff:00000000a80425fa\nNoNewPrivs:1\nsleep\x001000\x00"; res.ExitCode != 0 || res.Stdout != want {
		t.Errorf("exec after the restart = %v, want stdout %q", res, want)
	}
	if r := d2.Do(t, "GET", "/v1.50/exec/"+created.ID+"/json", nil, nil); r.Status != 404 {
		t.Errorf("inspect of an exec made by the previous daemon: %d %s, want 404", r.Status, r.Body)
	}
}

// TestCLIExecContainerRemoved removes a container while docker exec is
// attached to a process in it: the CLI must not hang.
func TestCLIExecContainerRemoved(t *testing.T) {
	d := startWithBusybox(t)
	startExecTarget(t, d)
	cmd := exec.Command(skifftest.DockerPath(t), "exec", "web", "sh", "-c", "echo started; exec sleep 1000")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(d.Dir, "docker-config"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "started\n" {
		t.Fatalf("exec printed %q (%v)", line, err)
	}
	dockerOK(t, d, "rm", "-f", "web")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("docker exec succeeded although its container was removed")
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("docker exec hung after its container was removed")
	}
}

// TestCLIExecCgroupLimits proves that an exec is in its container's
// cgroup: the container's pids limit stops the exec's forks.
func TestCLIExecCgroupLimits(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "small", "--pids-limit", "20", "busybox", "sleep", "1000")
	res := d.Docker(t, "exec", "small", "sh", "-c", "i=0; while [ $i -lt 30 ]; do sleep 1 & i=$((i+1)); done; wait")
	if !strings.Contains(res.Stderr, "can't fork") {
		t.Errorf("30 forks in a container limited to 20 pids = %v, want sh's fork failure", res)
	}
}
