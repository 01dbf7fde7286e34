package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// execWithListenPID lets the test binary stand in for systemd's last step
// before running a socket-activated service: with SKIFFD_TEST_EXEC=<bin>
// it sets LISTEN_PID to its own pid and execs bin in place (exec keeps the
// pid and the passed descriptors), as systemd does.
func init() {
	bin := os.Getenv("SKIFFD_TEST_EXEC")
	if bin == "" {
		return
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKIFFD_TEST_EXEC=") {
			env = append(env, kv)
		}
	}
	env = append(env, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), env)
	os.Stderr.WriteString("exec " + bin + ": " + err.Error() + "\n")
	os.Exit(127)
}

// TestE2ESystemdNotify runs the daemon as systemd would: its API socket
// passed as fd 3 with LISTEN_FDS/LISTEN_PID, and $NOTIFY_SOCKET pointing at
// a datagram socket the test reads. The daemon reports READY=1 once the
// API answers, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
// SIGHUP, and STOPPING=1 when SIGTERM starts the shutdown.
func TestE2ESystemdNotify(t *testing.T) {
	skifftest.RequireRoot(t)
	bin := skifftest.Binary(t)
	dir, err := os.MkdirTemp("", "skd-sd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	sock := filepath.Join(dir, "api.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	lf, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	defer lf.Close()

	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	recv := func() string {
		t.Helper()
		notify.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := notify.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}

	// --bridge=none: this daemon is started without skifftest, which gives
	// each daemon a bridge and nf_tables table of its own and removes them;
	// the default ones would be left on the host.
	cmd := exec.Command(os.Args[0], "-H", "fd://", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "skiffd.pid"), "--config-file", filepath.Join(dir, "daemon.json"), "--bridge=none")
	os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o600)
	cmd.Env = append(os.Environ(), "SKIFFD_TEST_EXEC="+bin, "LISTEN_FDS=1", "NOTIFY_SOCKET="+notifyPath)
	cmd.ExtraFiles = []*os.File{lf}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})

	if got := recv(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// READY means the API answers on the passed socket.
	resp, err := skifftest.UnixClient(sock).Get("http://x/_ping")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/_ping after READY=1: %v %v", resp, err)
	}
	resp.Body.Close()

	cmd.Process.Signal(syscall.SIGHUP)
	if got := recv(); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`).MatchString(got) {
		t.Errorf("on SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := recv(); got != "READY=1" {
		t.Errorf("after the reload: %q, want READY=1", got)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if got := recv(); got != "STOPPING=1" {
		t.Errorf("on SIGTERM: %q, want STOPPING=1", got)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}
}
