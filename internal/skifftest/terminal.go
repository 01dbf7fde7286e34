package skifftest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/pty"
)

// Terminal is the docker CLI running on a pseudo-terminal, as a person at a
// shell would run `docker run -it` or `docker exec -it`.
type Terminal struct {
	t      testing.TB
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan error
}

// DockerTerminal starts the docker CLI with args on a new pseudo-terminal
// of rows x cols; the terminal is closed and the CLI killed at cleanup.
func (d *Daemon) DockerTerminal(t testing.TB, rows, cols uint16, args ...string) *Terminal {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Resize(slave, rows, cols); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(DockerPath(t), args...)
	cmd.Env = append(cleanEnv(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(d.Dir, "docker-config"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	tm := &Terminal{t: t, master: master, cmd: cmd, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { tm.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		master.Close()
	})
	return tm
}

// Type sends keystrokes.
func (tm *Terminal) Type(s string) { io.WriteString(tm.master, s) }

// Output is everything the terminal has shown so far.
func (tm *Terminal) Output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// Expect waits until s has appeared on the terminal (at most 30 s).
func (tm *Terminal) Expect(s string) {
	tm.t.Helper()
	tm.WaitFor(fmt.Sprintf("%q on the terminal", s), func() bool { return strings.Contains(tm.Output(), s) })
}

// WaitFor polls cond until it holds, failing the test after 30 s. It is
// condition detection, returning the moment cond is true.
func (tm *Terminal) WaitFor(what string, cond func() bool) {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %s; terminal:\n%q", what, tm.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Resize changes the terminal's size; the CLI sees SIGWINCH.
func (tm *Terminal) Resize(rows, cols uint16) error { return pty.Resize(tm.master, rows, cols) }

// ExitCode waits for the CLI to exit (at most 30 s) and returns its code.
func (tm *Terminal) ExitCode() int {
	tm.t.Helper()
	select {
	case err := <-tm.done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		default:
			tm.t.Fatalf("docker on a terminal: %v", err)
		}
	case <-time.After(30 * time.Second):
		tm.cmd.Process.Kill()
		tm.t.Fatalf("docker on a terminal did not exit; terminal:\n%q", tm.Output())
	}
	return -1
}
