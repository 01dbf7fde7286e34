package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/skifftest"
)

// leftovers lists what is left on the host of container id: its shim
// (found by its argv, which names the container's runtime directory),
// processes in its cgroups, the cgroups themselves and its mounts.
func leftovers(id string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile("/proc/" + p.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
				continue // a zombie holds nothing
			}
		}
		cmd, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		args := strings.Split(string(cmd), "\x00")
		if len(args) >= 3 && args[1] == "shim" && strings.Contains(args[2], id) {
			out = append(out, "shim process "+p.Name())
			continue
		}
		if cg, _ := os.ReadFile("/proc/" + p.Name() + "/cgroup"); bytes.Contains(cg, []byte(id)) {
			out = append(out, "process "+p.Name()+" in the container's cgroup: "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	for _, pat := range []string{"/sys/fs/cgroup/*/" + id, "/sys/fs/cgroup/*/*/" + id, "/sys/fs/cgroup/*/*/*/" + id} {
		dirs, _ := filepath.Glob(pat)
		for _, d := range dirs {
			out = append(out, "cgroup "+d)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, id) {
			out = append(out, "mount "+l)
		}
	}
	return out
}

// shimProcesses lists the processes whose argv names the container's shim.
func shimProcesses(id string) []string {
	var out []string
	for _, l := range leftovers(id) {
		if strings.HasPrefix(l, "shim process ") {
			out = append(out, l)
		}
	}
	return out
}

// waitNone polls until list() is empty, failing the test with what is left
// after the deadline.
func waitNone(t *testing.T, what string, timeout time.Duration, list func() []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := list()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still there after %v:\n%s", what, timeout, strings.Join(left, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shimRequest sends one request to the container's shim, as the daemon
// does, and returns the connection after a successful answer.
func shimRequest(t *testing.T, dir string, req shim.Request) (net.Conn, *bufio.Reader) {
	t.Helper()
	addr, release, err := shim.SocketAddr(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", addr)
	release()
	if err != nil {
		t.Fatalf("dial the shim: %v", err)
	}
	req.Version = shim.ProtocolVersion
	b, _ := json.Marshal(&req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("shim %s: %v", req.Op, err)
	}
	var resp shim.Response
	if err := json.Unmarshal(line, &resp); err != nil || resp.Error != "" {
		t.Fatalf("shim %s: %s (%v)", req.Op, line, err)
	}
	return c, r
}

// TestCLIShimLeavesAfterDaemonDiedDuringExecStart: the daemon dies between
// attaching to an exec and starting it (issue 9, item 5). The exec start
// goes exec → attach → start over the shim's socket within microseconds,
// so the test speaks for the daemon up to the attach, then kills it. The
// container then exits: its shim must fail the exec that never started and
// leave; a new daemon removes the container and nothing of it is left.
func TestCLIShimLeavesAfterDaemonDiedDuringExecStart(t *testing.T) {
	d1 := skifftest.Start(t)
	importBusybox(t, d1)
	dockerOK(t, d1, "run", "-d", "--name", "victim", "busybox", "sleep", "1000")
	id := inspectField(t, d1, "victim", "{{.Id}}")
	pid, _ := strconv.Atoi(inspectField(t, d1, "victim", "{{.State.Pid}}"))
	dir := filepath.Join(d1.ExecRoot, "containers", id)

	c1, _ := shimRequest(t, dir, shim.Request{Op: shim.OpExec, Exec: "e1", Process: &spec.Process{Args: []string{"echo", "never"}, Cwd: "/"}})
	c1.Close()
	att, _ := shimRequest(t, dir, shim.Request{Op: shim.OpAttach, Exec: "e1", Stdout: true, Stderr: true})
	// The daemon dies now; its connections go with it.
	d1.Kill()
	att.Close()

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitNone(t, "the shim after its container exited", 20*time.Second, func() []string { return shimProcesses(id) })
	if st, err := shim.ReadState(dir); err != nil || st.Status != shim.StatusStopped || st.ExitCode != 137 {
		t.Fatalf("state left by the shim = %+v, %v; want stopped with 137", st, err)
	}

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}})
	removeAllAtEnd(t, d2)
	waitFor(t, "the exit to be recorded", func() bool {
		return inspectField(t, d2, "victim", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
	})
	dockerOK(t, d2, "rm", "victim")
	waitNone(t, "what the removed container left", 20*time.Second, func() []string { return leftovers(id) })
}

// TestCLIShimLeavesWithOrphanHoldingOutput: with --pid host a background
// process of the container outlives its init and holds its stdout. The
// shim kills it, as containerd does for a container without a pid
// namespace of its own, and leaves once the exit is recorded; docker wait
// and docker rm work.
func TestCLIShimLeavesWithOrphanHoldingOutput(t *testing.T) {
	d := startWithBusybox(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"host", []string{"--pid", "host"}},
		{"container", []string{"--pid", "container:holder"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "container" {
				dockerOK(t, d, "run", "-d", "--name", "holder", "busybox", "sleep", "1000")
				defer d.Docker(t, "rm", "-f", "holder")
			}
			name := "orphan-" + tc.name
			args := append([]string{"run", "-d", "--name", name}, tc.args...)
			args = append(args, "busybox", "sh", "-c", "sleep 1000 & echo started; exit 3")
			dockerOK(t, d, args...)
			// The exit's handling must not wait for the orphan: a shim
			// that waited for its EOF kept the container locked (inspect,
			// logs, rm) for the daemon's 30 s timeout.
			begin := time.Now()
			id := inspectField(t, d, name, "{{.Id}}")
			if got := strings.TrimSpace(dockerOK(t, d, "wait", name)); got != "3" {
				t.Fatalf("docker wait = %q, want 3", got)
			}
			// The shim drains for at most drainIdle (2 s) once nothing
			// moves; the rest is slack for a loaded machine.
			waitNone(t, "the shim and the orphan after the exit", 10*time.Second, func() []string {
				var out []string
				for _, l := range leftovers(id) {
					if strings.HasPrefix(l, "shim process ") || strings.HasPrefix(l, "process ") {
						out = append(out, l)
					}
				}
				return out
			})
			if out := dockerOK(t, d, "logs", name); out != "started\n" {
				t.Errorf("logs = %q, want started", out)
			}
			dockerOK(t, d, "rm", name)
			if took := time.Since(begin); took > 10*time.Second {
				t.Errorf("inspect, wait, logs and rm took %v after the exit, want well under 10s", took)
			}
			waitNone(t, "what the removed container left", 20*time.Second, func() []string { return leftovers(id) })
		})
	}
}

// TestCLIShimLeavesWhenItsDirectoryIsRemoved: a shim whose runtime
// directory is removed under it (its daemon gone, the exec root wiped)
// can no longer be reached or record anything: it kills its container and
// leaves. A new daemon then finds the container stopped and removes it
// without leaving its cgroups or mounts.
func TestCLIShimLeavesWhenItsDirectoryIsRemoved(t *testing.T) {
	d1 := skifftest.Start(t)
	importBusybox(t, d1)
	dockerOK(t, d1, "run", "-d", "--name", "wiped", "busybox", "sleep", "1000")
	id := inspectField(t, d1, "wiped", "{{.Id}}")
	d1.Kill()
	if err := os.RemoveAll(filepath.Join(d1.ExecRoot, "containers", id)); err != nil {
		t.Fatal(err)
	}
	waitNone(t, "the shim and the container's processes", 10*time.Second, func() []string {
		var out []string
		for _, l := range leftovers(id) {
			if strings.HasPrefix(l, "shim process ") || strings.HasPrefix(l, "process ") {
				out = append(out, l)
			}
		}
		return out
	})

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--data-root", d1.DataRoot, "--exec-root", d1.ExecRoot}})
	removeAllAtEnd(t, d2)
	if got := inspectField(t, d2, "wiped", "{{.State.Status}}"); got != "exited" {
		t.Fatalf("status after the restart = %q, want exited", got)
	}
	dockerOK(t, d2, "rm", "wiped")
	waitNone(t, "what the removed container left", 20*time.Second, func() []string { return leftovers(id) })
}
