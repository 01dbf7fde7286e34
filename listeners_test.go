package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/config"
	"skiffd/internal/sys"
)

func TestParseHost(t *testing.T) {
	valid := []struct {
		in   string
		tls  bool
		want listenAddr
	}{
		{"", false, listenAddr{"unix", "/var/run/skiffd.sock", ""}},
		{"  ", false, listenAddr{"unix", "/var/run/skiffd.sock", ""}},
		{"", true, listenAddr{"tcp", "localhost:2376", ""}},
		{"unix://", false, listenAddr{"unix", "/var/run/skiffd.sock", ""}},
		{"unix://", true, listenAddr{"unix", "/var/run/skiffd.sock", ""}},
		{"unix:///run/s.sock", false, listenAddr{"unix", "/run/s.sock", ""}},
		{"unix://path/to/socket", false, listenAddr{"unix", "path/to/socket", ""}},
		{" unix:///run/s.sock\n", false, listenAddr{"unix", "/run/s.sock", ""}},
		{"tcp://", false, listenAddr{"tcp", "localhost:2375", ""}},
		{"tcp://:", false, listenAddr{"tcp", "localhost:2375", ""}},
		{"tcp://:5555", false, listenAddr{"tcp", "localhost:5555", ""}},
		{"tcp://host:", false, listenAddr{"tcp", "host:2375", ""}},
		{"tcp://0.0.0.0", false, listenAddr{"tcp", "0.0.0.0:2375", ""}},
		// As in dockerd, only the fully defaulted address moves to 2376.
		{"tcp://0.0.0.0", true, listenAddr{"tcp", "0.0.0.0:2375", ""}},
		{"tcp://", true, listenAddr{"tcp", "localhost:2375", ""}},
		{"tcp://0.0.0.0:5555", false, listenAddr{"tcp", "0.0.0.0:5555", ""}},
		{"tcp://127.0.0.1:0", false, listenAddr{"tcp", "127.0.0.1:0", ""}},
		{"tcp://192.168:5555", false, listenAddr{"tcp", "192.168:5555", ""}},
		{"tcp://docker.com:5555", false, listenAddr{"tcp", "docker.com:5555", ""}},
		{"tcp://[::1]", false, listenAddr{"tcp", "[::1]:2375", ""}},
		{"tcp://[::1]:", false, listenAddr{"tcp", "[::1]:2375", ""}},
		{"tcp://[::1]:2375", false, listenAddr{"tcp", "[::1]:2375", ""}},
		{"tcp://[::]:2376", true, listenAddr{"tcp", "[::]:2376", ""}},
		{"tcp://[0:0:0:0:0:0:0:1]:5555", false, listenAddr{"tcp", "[0:0:0:0:0:0:0:1]:5555", ""}},
		{":", false, listenAddr{"tcp", "localhost:2375", ""}},
		{":5555", false, listenAddr{"tcp", "localhost:5555", ""}},
		{"0.0.0.1", false, listenAddr{"tcp", "0.0.0.1:2375", ""}},
		{"0.0.0.1:", false, listenAddr{"tcp", "0.0.0.1:2375", ""}},
		{"0.0.0.1:5555", false, listenAddr{"tcp", "0.0.0.1:5555", ""}},
		{"[::1]:5555", false, listenAddr{"tcp", "[::1]:5555", ""}},
		{"localhost", false, listenAddr{"tcp", "localhost:2375", ""}},
		{"localhost:5555", false, listenAddr{"tcp", "localhost:5555", ""}},
		{"fd://", false, listenAddr{"fd", "", ""}},
		{"fd://3", false, listenAddr{"fd", "3", ""}},
		{"fd://something", false, listenAddr{"fd", "something", ""}},
		// Listener policies (issue 12): options after "?", kept canonical.
		{"unix:///run/ro.sock?mode=ro", false, listenAddr{"unix", "/run/ro.sock", "mode=ro"}},
		{"unix:///run/rw.sock?mode=rw", false, listenAddr{"unix", "/run/rw.sock", ""}},
		{"unix:///run/a.sock?allow=ping,containers:read,ping", false, listenAddr{"unix", "/run/a.sock", "allow=containers:read,ping"}},
		{"unix:///run/a.sock?mode=ro&allow=events", false, listenAddr{"unix", "/run/a.sock", "allow=events&mode=ro"}},
		{"unix://?mode=ro", false, listenAddr{"unix", "/var/run/skiffd.sock", "mode=ro"}},
		{"tcp://127.0.0.1:2375?allow=ping", false, listenAddr{"tcp", "127.0.0.1:2375", "allow=ping"}},
		{":5555?mode=ro", false, listenAddr{"tcp", "localhost:5555", "mode=ro"}},
		{"fd://3?mode=ro", false, listenAddr{"fd", "3", "mode=ro"}},
	}
	for _, tt := range valid {
		t.Run(fmt.Sprintf("%q tls=%v", tt.in, tt.tls), func(t *testing.T) {
			got, err := parseHost(tt.in, tt.tls)
			if err != nil || got != tt.want {
				t.Errorf("parseHost(%q, %v) = %v, %v; want %v", tt.in, tt.tls, got, err, tt.want)
			}
		})
	}

	// The messages are dockerd's (moby daemon/pkg/opts/hosts_test.go),
	// except where skiffd is stricter (ports above 65535, escapes).
	invalid := map[string]string{
		"something with spaces":               `invalid bind address (something with spaces): parse "tcp://something with spaces": invalid character " " in host name`,
		"://":                                 `invalid bind address (://): unsupported proto ''`,
		"unknown://":                          `invalid bind address (unknown://): unsupported proto 'unknown'`,
		"udp://127.0.0.1:5555":                `invalid bind address (udp://127.0.0.1:5555): unsupported proto 'udp'`,
		"npipe://":                            `invalid bind address (npipe://): unsupported proto 'npipe'`,
		"TCP://127.0.0.1":                     `invalid bind address (TCP://127.0.0.1): unsupported proto 'TCP'`,
		"tcp://:port":                         `invalid bind address (tcp://:port): parse "tcp://:port": invalid port ":port" after host`,
		"tcp://invalid:port":                  `invalid bind address (tcp://invalid:port): parse "tcp://invalid:port": invalid port ":port" after host`,
		"tcp:a.b.c.d":                         `invalid bind address (tcp:a.b.c.d): parse "tcp://tcp:a.b.c.d": invalid port ":a.b.c.d" after host`,
		"tcp://:5555/":                        `invalid bind address (tcp://:5555/): should not contain a path element`,
		"tcp://0.0.0.0:5555/p":                `invalid bind address (tcp://0.0.0.0:5555/p): should not contain a path element`,
		"tcp://[::1]:/":                       `invalid bind address (tcp://[::1]:/): should not contain a path element`,
		" tcp://:5555/path ":                  `invalid bind address (tcp://:5555/path): should not contain a path element`,
		"localhost:5555/path":                 `invalid bind address (localhost:5555/path): should not contain a path element`,
		"tcp://unix:///run/docker.sock":       `invalid bind address (tcp://unix:///run/docker.sock): should not contain a path element`,
		"unix://tcp://127.0.0.1":              `invalid bind address (unix://tcp://127.0.0.1): invalid unix address: tcp://127.0.0.1`,
		"unix://unix://tcp://127.0.0.1":       `invalid bind address (unix://unix://tcp://127.0.0.1): invalid unix address: unix://tcp://127.0.0.1`,
		"tcp://0.0.0.0:65536":                 `invalid bind address (tcp://0.0.0.0:65536): invalid port: 65536`,
		"tcp://0.0.0.0:1234567890":            `invalid bind address (tcp://0.0.0.0:1234567890): invalid port: 1234567890`,
		"tcp://[fe80::1%25eth0]:2375":         `invalid bind address (tcp://[fe80::1%25eth0]:2375): invalid host: [fe80::1%eth0]:2375`,
		"tcp://a:b:1":                         `invalid bind address (tcp://a:b:1): invalid host: a:b:1`,
		"]":                                   `invalid bind address (]): invalid host: ]`,
		"unix:///r.sock?mode=wo":              `invalid bind address (unix:///r.sock?mode=wo): invalid listener options "mode=wo": mode must be ro or rw`,
		"unix:///r.sock?allow=contaners:read": `invalid bind address (unix:///r.sock?allow=contaners:read): invalid listener options "allow=contaners:read": unknown route group "contaners:read" (known: auth,build,containers:attach,containers:copy,containers:logs,containers:read,containers:write,events,exec,images:read,images:save,images:write,networks:read,networks:write,ping,plugins:read,plugins:write,swarm,system:read,volumes:read,volumes:write)`,
		"unix:///r.sock?allow=":               `invalid bind address (unix:///r.sock?allow=): invalid listener options "allow=": unknown route group "" (known: auth,build,containers:attach,containers:copy,containers:logs,containers:read,containers:write,events,exec,images:read,images:save,images:write,networks:read,networks:write,ping,plugins:read,plugins:write,swarm,system:read,volumes:read,volumes:write)`,
		"unix:///r.sock?ro":                   `invalid bind address (unix:///r.sock?ro): invalid listener options "ro": unknown option "ro" (mode, allow)`,
		"tcp://:1?mode=ro&mode=rw":            `invalid bind address (tcp://:1?mode=ro&mode=rw): invalid listener options "mode=ro&mode=rw": mode given more than once`,
	}
	for in, want := range invalid {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			got, err := parseHost(in, false)
			if err == nil || err.Error() != want {
				t.Errorf("parseHost(%q) = %v, %v; want error %q", in, got, err, want)
			}
		})
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"", "unix://", "unix:///run/x.sock", "tcp://", "tcp://[::1]:2375", ":5555", "fd://", "fd://3",
		"tcp://user@host:1?q#f", "tcp://a:b:1", "tcp://ü:1", "something with spaces", "tcp://0.0.0.0:65535", "x://y", "]", "tcp://[::1]]:1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, tls bool) {
		a, err := parseHost(in, tls)
		if err != nil {
			return
		}
		switch a.Proto {
		case "unix", "tcp", "fd":
		default:
			t.Fatalf("parseHost(%q) = %v: unknown proto", in, a)
		}
		if a.Proto == "tcp" {
			if _, _, err := net.SplitHostPort(a.Addr); err != nil {
				t.Fatalf("parseHost(%q) = %v: address does not split: %v", in, a, err)
			}
		}
		again, err := parseHost(a.String(), tls)
		if err != nil || again != a {
			t.Fatalf("parseHost(%q) = %v, but parseHost(%q) = %v, %v", in, a, a.String(), again, err)
		}
	})
}

// logBuffer collects log output from openListeners (which may log from
// one goroutine only, but a test server may log concurrently).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger logs to a buffer the test can inspect, and to the test log.
func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(io.MultiWriter(buf, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func noEnv(string) string { return "" }

// open calls openListeners and closes the listeners when the test ends.
func open(t *testing.T, cfg *config.Config, logger *slog.Logger) ([]apiListener, error) {
	t.Helper()
	ls, err := openListeners(cfg, nil, noEnv, logger)
	t.Cleanup(func() {
		for _, l := range ls {
			l.Close()
		}
	})
	return ls, err
}

// serve answers "ok from <name>" on every listener until the test ends.
func serve(t *testing.T, ls []apiListener) {
	t.Helper()
	for _, l := range ls {
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}),
			ErrorLog: log.New(t.Output(), "", 0),
		}
		go srv.Serve(l.Listener)
		t.Cleanup(func() { srv.Close() })
	}
}

// get fetches / over a unix socket or a tcp host:port and returns the body.
func get(t *testing.T, a listenAddr) (string, error) {
	t.Helper()
	tr := &http.Transport{}
	url := "http://" + a.Addr + "/"
	if a.Proto == "unix" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", a.Addr)
		}
		url = "http://skiffd/"
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// otherGroup finds a group on this host that is not the process's own, to
// prove the socket's group was changed. It skips the test when there is
// none or when the test cannot chown.
func otherGroup(t *testing.T) (name string, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing a socket's group to an arbitrary group needs root")
	}
	for _, name := range []string{"adm", "daemon", "bin", "sys", "users", "nogroup"} {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		gid, err := strconv.Atoi(g.Gid)
		if err == nil && gid != os.Getgid() {
			return name, gid
		}
	}
	t.Skip("no suitable group in /etc/group")
	return "", 0
}

func statSocket(t *testing.T, path string) (fs.FileMode, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), fi.Sys().(*syscall.Stat_t)
}

func TestUnixSocketModeAndGroup(t *testing.T) {
	group, gid := otherGroup(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "skiffd.sock")
	for _, tt := range []struct {
		name, group string
	}{{"by name", group}, {"by number", strconv.Itoa(gid)}} {
		t.Run(tt.name, func(t *testing.T) {
			logger, _ := testLogger(t)
			cfg := &config.Config{Hosts: []string{"unix://" + path}, Group: tt.group, GroupExplicit: true}
			ls, err := open(t, cfg, logger)
			if err != nil {
				t.Fatalf("openListeners(%v): %v", cfg.Hosts, err)
			}
			if len(ls) != 1 || ls[0].Addr != (listenAddr{"unix", path, ""}) {
				t.Fatalf("openListeners(%v) = %v, want one unix listener on %s", cfg.Hosts, ls, path)
			}
			mode, st := statSocket(t, path)
			if mode.Type() != fs.ModeSocket || mode.Perm() != 0o660 {
				t.Errorf("socket mode = %v, want socket 0660", mode)
			}
			if int(st.Gid) != gid || int(st.Uid) != os.Getuid() {
				t.Errorf("socket owner = %d:%d, want %d:%d", st.Uid, st.Gid, os.Getuid(), gid)
			}
			fi, err := os.Stat(filepath.Dir(path))
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("socket directory: %v, %v; want a 0755 directory", fi.Mode(), err)
			}
			serve(t, ls)
			if body, err := get(t, ls[0].Addr); err != nil || body != "ok" {
				t.Errorf("GET over %s = %q, %v; want ok", path, body, err)
			}
			// Closing removes the socket, so a stopped daemon leaves none.
			ls[0].Close()
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Close, Lstat(%s) = %v, want not exist", path, err)
			}
		})
	}
}

func TestUnixSocketGroupMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	const missing = "skiffd-no-such-group"

	// Asked for by name: an error, and no socket.
	logger, _ := testLogger(t)
	cfg := &config.Config{Hosts: []string{"unix://" + path}, Group: missing, GroupExplicit: true}
	ls, err := open(t, cfg, logger)
	want := "can't create unix socket " + path + ": group " + missing + " not found"
	if err == nil || err.Error() != want {
		t.Fatalf("openListeners with group %q = %v, %v; want error %q", missing, ls, err, want)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the error, Lstat(%s) = %v, want not exist", path, err)
	}

	// The default group gone missing: a warning, and the process's group.
	logger, logs := testLogger(t)
	cfg.GroupExplicit = false
	ls, err = open(t, cfg, logger)
	if err != nil {
		t.Fatalf("openListeners with default group missing: %v", err)
	}
	if _, st := statSocket(t, path); int(st.Gid) != os.Getgid() {
		t.Errorf("socket group = %d, want the process's %d", st.Gid, os.Getgid())
	}
	if !strings.Contains(logs.String(), "could not change group of unix socket") {
		t.Errorf("no warning about the missing group in the log:\n%s", logs)
	}
	_ = ls
}

func TestUnixSocketStaleReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// A socket left behind by a crashed daemon: bound, nobody listening.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if mode, _ := statSocket(t, path); mode.Type() != fs.ModeSocket {
		t.Fatalf("setup: %s is %v, want a socket", path, mode)
	}

	logger, _ := testLogger(t)
	ls, err := open(t, &config.Config{Hosts: []string{"unix://" + path}}, logger)
	if err != nil {
		t.Fatalf("openListeners over a stale socket: %v", err)
	}
	serve(t, ls)
	if body, err := get(t, ls[0].Addr); err != nil || body != "ok" {
		t.Errorf("GET over the replaced socket = %q, %v; want ok", body, err)
	}
}

func TestUnixSocketLiveNotStolen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	logger, _ := testLogger(t)
	ls, err := open(t, &config.Config{Hosts: []string{"unix://" + path}}, logger)
	want := "can't create unix socket " + path + ": another process is listening on it"
	if err == nil || err.Error() != want {
		t.Fatalf("openListeners over a live socket = %v, %v; want error %q", ls, err, want)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket stopped working: %v", err)
	}
	c.Close()
}

func TestUnixSocketPathNotASocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "precious")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "subdir")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, sub} {
		logger, _ := testLogger(t)
		ls, err := open(t, &config.Config{Hosts: []string{"unix://" + path}}, logger)
		if err == nil || !strings.Contains(err.Error(), "exists and is not a socket") || !strings.HasPrefix(err.Error(), "can't create unix socket "+path+": ") {
			t.Errorf("openListeners(unix://%s) = %v, %v; want a not-a-socket error", path, ls, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("regular file after refusal: %q, %v; want it intact", b, err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("directory after refusal: %v; want it intact", err)
	}
}

func TestUnixAndTCPTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	logger, _ := testLogger(t)
	cfg := &config.Config{Hosts: []string{"unix://" + path, "tcp://127.0.0.1:0", "unix://" + path}}
	ls, err := open(t, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("openListeners(%q) gave %d listeners, want 2 (duplicates dropped)", cfg.Hosts, len(ls))
	}
	if ls[0].Addr != (listenAddr{"unix", path, ""}) || ls[1].Addr.Proto != "tcp" {
		t.Fatalf("listeners = %v, %v; want unix then tcp", ls[0].Addr, ls[1].Addr)
	}
	if ls[1].Addr.Addr != ls[1].Listener.Addr().String() || strings.HasSuffix(ls[1].Addr.Addr, ":0") {
		t.Errorf("tcp listener Addr = %v, want the bound address %v", ls[1].Addr, ls[1].Listener.Addr())
	}
	serve(t, ls)
	for _, l := range ls {
		if body, err := get(t, l.Addr); err != nil || body != "ok" {
			t.Errorf("GET over %v = %q, %v; want ok", l.Addr, body, err)
		}
	}
}

func TestOpenFailureClosesOpened(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(t.TempDir(), "s.sock")
	logger, _ := testLogger(t)
	cfg := &config.Config{Hosts: []string{"unix://" + path, "tcp://" + busy.Addr().String()}}
	ls, err := open(t, cfg, logger)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("openListeners(%q) = %v, %v; want address already in use", cfg.Hosts, ls, err)
	}
	if ls != nil {
		t.Errorf("openListeners returned listeners with its error: %v", ls)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unix socket opened before the failure still exists: %v", err)
	}
}

func TestTCPWithoutVerification(t *testing.T) {
	verifying := &config.Config{TLS: true, TLSVerify: true, TLSExplicit: true}
	tests := []struct {
		name    string
		host    string
		cfg     config.Config
		verify  bool   // pass a tls.Config that verifies clients
		wantErr string // substring; "" for success
		wantLog string // substring of the log; "" for none expected
		noLog   string // must not appear in the log
	}{
		{name: "non-loopback refused", host: "tcp://0.0.0.0:0",
			wantErr: "refusing to listen on tcp://0.0.0.0:0: binding to an IP address without --tlsverify"},
		{name: "non-loopback ipv6 refused", host: "tcp://[::]:0", wantErr: "refusing to listen on tcp://[::]:0"},
		{name: "tls=false opts in", host: "tcp://0.0.0.0:0", cfg: config.Config{TLSExplicit: true},
			wantLog: "API is accessible without encryption"},
		{name: "tlsverify=false opts in", host: "tcp://0.0.0.0:0", cfg: config.Config{TLS: true, TLSExplicit: true},
			wantLog: "API is accessible without TLS client verification"},
		{name: "loopback only warns", host: "tcp://127.0.0.1:0",
			wantLog: "Binding to IP address without --tlsverify is insecure", noLog: "API is accessible"},
		{name: "localhost only warns", host: "tcp://localhost:0", wantLog: "Binding to IP address without --tlsverify is insecure"},
		{name: "verified clients need no opt-in", host: "tcp://0.0.0.0:0", cfg: *verifying, verify: true,
			noLog: "Binding to IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := testLogger(t)
			// A unix socket first proves the refusal comes before anything
			// is opened.
			path := filepath.Join(t.TempDir(), "s.sock")
			cfg := tt.cfg
			cfg.Hosts = []string{"unix://" + path, tt.host}
			var tc *tls.Config
			if tt.verify {
				tc = newTestPKI(t).serverConfig(t)
			}
			ls, err := openListeners(&cfg, tc, noEnv, logger)
			t.Cleanup(func() {
				for _, l := range ls {
					l.Close()
				}
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openListeners(%q) = %v, %v; want error containing %q", cfg.Hosts, ls, err, tt.wantErr)
				}
				if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("refused start created %s: %v", path, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("openListeners(%q): %v", cfg.Hosts, err)
			}
			if len(ls) != 2 {
				t.Fatalf("openListeners(%q) gave %d listeners, want 2", cfg.Hosts, len(ls))
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs)
			}
			if tt.noLog != "" && strings.Contains(logs.String(), tt.noLog) {
				t.Errorf("log has %q:\n%s", tt.noLog, logs)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1":            true,
		"127.0.0.5":            true,
		"::1":                  true,
		"localhost":            true,
		"0.0.0.0":              false,
		"::":                   false,
		"10.1.2.3":             false,
		"192.168.0.1":          false,
		"fe80::1":              false,
		"no-such-host.invalid": false,
	}
	for host, want := range tests {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// freeFD returns a descriptor number at or above from that is not open, so
// a test can dup onto it without clobbering one the test binary uses.
func freeFDs(t *testing.T, from, n int) int {
	t.Helper()
next:
	for start := from; start < from+1000; start++ {
		for fd := start; fd < start+n; fd++ {
			if _, err := sys.Fcntl(fd, syscall.F_GETFD, 0); err == nil {
				continue next
			}
		}
		return start
	}
	t.Fatal("no free descriptors")
	return -1
}

// stageFDs dups the given listeners onto consecutive free descriptors
// without FD_CLOEXEC, as systemd hands them over, and returns the first.
func stageFDs(t *testing.T, ls ...net.Listener) int {
	t.Helper()
	first := freeFDs(t, 500, len(ls))
	for i, l := range ls {
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Dup3(int(f.Fd()), first+i, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		fd := first + i
		t.Cleanup(func() { syscall.Close(fd) })
	}
	return first
}

func activationEnv(pid, n int) func(string) string {
	return func(k string) string {
		switch k {
		case "LISTEN_PID":
			return strconv.Itoa(pid)
		case "LISTEN_FDS":
			return strconv.Itoa(n)
		}
		return ""
	}
}

func TestActivation(t *testing.T) {
	var sockets []net.Listener
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		sockets = append(sockets, l)
	}
	first := stageFDs(t, sockets...)

	act := newActivationAt(activationEnv(os.Getpid(), 3), first)
	for fd := first; fd < first+3; fd++ {
		if flags, err := sys.Fcntl(fd, syscall.F_GETFD, 0); err != nil || flags&syscall.FD_CLOEXEC == 0 {
			t.Errorf("fd %d flags = %#x, %v; want FD_CLOEXEC set", fd, flags, err)
		}
	}

	errTests := []struct{ addr, want string }{
		{"x", "failed to parse systemd fd address: should be a number: x"},
		{strconv.Itoa(first + 3), "too few socket activated files passed in by systemd"},
		{strconv.Itoa(first - 1), "too few socket activated files passed in by systemd"},
	}
	for _, tt := range errTests {
		if ls, err := act.take(tt.addr); err == nil || err.Error() != tt.want {
			t.Errorf("take(%q) = %v, %v; want error %q", tt.addr, ls, err, tt.want)
		}
	}

	// fd://N takes exactly N ...
	second := strconv.Itoa(first + 1)
	ls, err := act.take(second)
	if err != nil || len(ls) != 1 || ls[0].Addr != (listenAddr{"fd", second, ""}) {
		t.Fatalf("take(%q) = %v, %v; want one listener", second, ls, err)
	}
	defer ls[0].Close()
	if ls[0].Listener.Addr().String() != sockets[1].Addr().String() {
		t.Errorf("fd %s listens on %v, want %v", second, ls[0].Listener.Addr(), sockets[1].Addr())
	}
	if _, err := act.take(second); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("second take(%q) error = %v, want already used", second, err)
	}
	// ... and fd:// takes the rest, in order.
	rest, err := act.take("")
	for _, l := range rest {
		defer l.Close()
	}
	if err != nil || len(rest) != 2 || rest[0].Addr.Addr != strconv.Itoa(first) || rest[1].Addr.Addr != strconv.Itoa(first+2) {
		t.Fatalf("take(\"\") = %v, %v; want fds %d and %d", rest, err, first, first+2)
	}
	if _, err := act.take("*"); err == nil {
		t.Errorf("take(\"*\") with every fd taken succeeded, want error")
	}
	// The originals were released: only the duplicates in the listeners
	// remain.
	if _, err := sys.Fcntl(first+1, syscall.F_GETFD, 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("fd %d after take: %v, want EBADF", first+1, err)
	}
}

func TestActivationNotForUs(t *testing.T) {
	const noSockets = "no sockets found via socket activation: make sure the service was started by systemd"
	for name, getenv := range map[string]func(string) string{
		"no variables":    noEnv,
		"another pid":     activationEnv(os.Getpid()+1, 2),
		"zero fds":        activationEnv(os.Getpid(), 0),
		"absurd fd count": activationEnv(os.Getpid(), 1<<30),
	} {
		act := newActivationAt(getenv, 1<<20)
		if ls, err := act.take(""); err == nil || err.Error() != noSockets {
			t.Errorf("%s: take(\"\") = %v, %v; want %q", name, ls, err, noSockets)
		}
		logger, _ := testLogger(t)
		if ls, err := openListeners(&config.Config{Hosts: []string{"fd://"}}, nil, getenv, logger); err == nil || err.Error() != noSockets {
			t.Errorf("%s: openListeners(fd://) = %v, %v; want %q", name, ls, err, noSockets)
		}
	}
}

// TestSocketActivation passes two real sockets to a child process as fds 3
// and 4, the way systemd does, and has the child open them with
// openListeners. Only a child can have sockets at 3 and 4 without
// disturbing descriptors this test binary already uses.
func TestSocketActivation(t *testing.T) {
	var files []*os.File
	var addrs []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
		addrs = append(addrs, l.Addr().String())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSocketActivationChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SKIFFD_TEST_ACTIVATION="+strings.Join(addrs, ","))
	cmd.ExtraFiles = files
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSocketActivationChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestSocketActivationChild is the child half of TestSocketActivation.
func TestSocketActivationChild(t *testing.T) {
	want, ok := os.LookupEnv("SKIFFD_TEST_ACTIVATION")
	if !ok {
		t.Skip("runs only as TestSocketActivation's child")
	}
	addrs := strings.Split(want, ",")
	getenv := activationEnv(os.Getpid(), 2)

	logger, _ := testLogger(t)
	cfg := &config.Config{Hosts: []string{"fd://4", "fd://"}}
	ls, err := openListeners(cfg, nil, getenv, logger)
	if err != nil {
		t.Fatalf("openListeners(%q): %v", cfg.Hosts, err)
	}
	if len(ls) != 2 {
		t.Fatalf("openListeners(%q) gave %d listeners, want 2", cfg.Hosts, len(ls))
	}
	for i, want := range []struct {
		fd   string
		addr string
	}{{"4", addrs[1]}, {"3", addrs[0]}} {
		if ls[i].Addr != (listenAddr{"fd", want.fd, ""}) || ls[i].Listener.Addr().String() != want.addr {
			t.Errorf("listener %d = %v on %v, want fd://%s on %s", i, ls[i].Addr, ls[i].Listener.Addr(), want.fd, want.addr)
		}
	}
	serve(t, ls)
	for _, l := range ls {
		if body, err := get(t, listenAddr{"tcp", l.Listener.Addr().String(), ""}); err != nil || body != "ok" {
			t.Errorf("GET over %v = %q, %v; want ok", l.Addr, body, err)
		}
	}
}

// TestUnixSocketBurst connects 1,000 clients to the daemon's unix socket at
// once, before anything accepts, as a burst of CLI invocations or a compose
// up does (issue 9, item 13). Go dials non-blocking, so a connect that finds
// the accept queue full fails at once with EAGAIN instead of waiting: the
// queue must be as deep as the kernel allows (net.core.somaxconn), not
// syscall.SOMAXCONN (128). With the 1,000 connections still open and idle,
// a new client's /_ping must be answered.
func TestUnixSocketBurst(t *testing.T) {
	n := 1000
	if b, err := os.ReadFile("/proc/sys/net/core/somaxconn"); err == nil {
		// A host whose kernel limit is lower cannot queue 1,000; ask for
		// what it allows (the listen backlog admits one more than its size).
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && max+1 < n {
			t.Logf("net.core.somaxconn is %d; connecting %d clients", max, max+1)
			n = max + 1
		}
	}
	logger, _ := testLogger(t)
	path := filepath.Join(t.TempDir(), "s.sock")
	ls, err := open(t, &config.Config{Hosts: []string{"unix://" + path}}, logger)
	if err != nil {
		t.Fatal(err)
	}

	conns := make([]net.Conn, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			conns[i], errs[i] = net.Dial("unix", path)
		})
	}
	close(start)
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed < 3 {
				t.Errorf("connection %d: %v", i, err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent connections to the unix socket failed", failed, n)
	}

	srv := &apiServer{handler: testServerHandler(t, &fakeBackend{}), logger: logger, grace: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		<-served
	})
	// The deadline only keeps a broken daemon from hanging the test.
	client := unixClient(path)
	client.Timeout = 30 * time.Second
	resp, err := client.Get("http://skiffd/_ping")
	if err != nil {
		t.Fatalf("GET /_ping with %d idle connections open: %v", n, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Fatalf("GET /_ping with %d idle connections open = %d %q, want 200 OK", n, resp.StatusCode, body)
	}
}

// activationSecurityCases are TestSocketActivationTCPSecurity's cases, run
// one per child process: a socket systemd passed on fd 3 must meet the same
// rule as a tcp:// host (issue 9, item 4).
var activationSecurityCases = []struct {
	name    string
	network string // of the passed socket: tcp4, tcp6 or unix
	addr    string
	cfg     config.Config
	verify  bool   // pass a tls.Config that verifies clients
	wantErr string // substring; "" for success
	wantLog string // substring of the log; "" for none expected
	noLog   string // must not appear in the log
}{
	{name: "non-loopback refused", network: "tcp4", addr: "0.0.0.0:0",
		wantErr: "refusing to listen on fd://3 (tcp://%ADDR%): binding to an IP address without --tlsverify gives root access on this machine to everyone who has access to your network; " +
			"generate TLS certificates and use --tlsverify, or explicitly specify '--tls=false' or '--tlsverify=false' to accept the risk"},
	{name: "non-loopback ipv6 refused", network: "tcp6", addr: "[::]:0", wantErr: "refusing to listen on fd://3 (tcp://%ADDR%)"},
	{name: "tls=false opts in", network: "tcp4", addr: "0.0.0.0:0", cfg: config.Config{TLSExplicit: true},
		wantLog: "API is accessible without encryption"},
	{name: "tlsverify=false opts in", network: "tcp4", addr: "0.0.0.0:0", cfg: config.Config{TLS: true, TLSExplicit: true},
		wantLog: "API is accessible without TLS client verification"},
	{name: "loopback only warns", network: "tcp4", addr: "127.0.0.1:0",
		wantLog: "Binding to IP address without --tlsverify is insecure", noLog: "API is accessible"},
	{name: "verified clients need no opt-in", network: "tcp4", addr: "0.0.0.0:0",
		cfg: config.Config{TLS: true, TLSVerify: true, TLSExplicit: true}, verify: true, noLog: "Binding to IP address"},
	{name: "unix socket is not tcp", network: "unix", noLog: "Binding to IP address"},
}

// TestSocketActivationTCPSecurity passes one socket to a child process as
// fd 3, as systemd does, and has the child open it with fd:// beside a unix
// socket. A TCP socket on a non-loopback address without client
// verification is refused with the tcp:// message, and the unix socket
// opened before it is gone again; --tls=false or --tlsverify=false let it
// through with the loud warning.
func TestSocketActivationTCPSecurity(t *testing.T) {
	for _, tt := range activationSecurityCases {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr
			if tt.network == "unix" {
				addr = filepath.Join(t.TempDir(), "activated.sock")
			}
			l, err := net.Listen(tt.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			f, err := l.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestSocketActivationTCPSecurityChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "SKIFFD_TEST_ACTIVATION_CASE="+tt.name, "SKIFFD_TEST_ACTIVATION_ADDR="+l.Addr().String())
			cmd.ExtraFiles = []*os.File{f}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestSocketActivationTCPSecurityChild") {
				t.Fatalf("child: %v\n%s", err, out)
			}
		})
	}
}

// TestSocketActivationTCPSecurityChild is the child half of
// TestSocketActivationTCPSecurity.
func TestSocketActivationTCPSecurityChild(t *testing.T) {
	name, ok := os.LookupEnv("SKIFFD_TEST_ACTIVATION_CASE")
	if !ok {
		t.Skip("runs only as TestSocketActivationTCPSecurity's child")
	}
	for _, tt := range activationSecurityCases {
		if tt.name != name {
			continue
		}
		logger, logs := testLogger(t)
		path := filepath.Join(t.TempDir(), "s.sock")
		cfg := tt.cfg
		cfg.Hosts = []string{"unix://" + path, "fd://"}
		var tc *tls.Config
		if tt.verify {
			tc = newTestPKI(t).serverConfig(t)
		}
		ls, err := openListeners(&cfg, tc, activationEnv(os.Getpid(), 1), logger)
		t.Cleanup(func() {
			for _, l := range ls {
				l.Close()
			}
		})
		if tt.wantErr != "" {
			want := strings.ReplaceAll(tt.wantErr, "%ADDR%", os.Getenv("SKIFFD_TEST_ACTIVATION_ADDR"))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("openListeners(%q) = %v, %v; want error containing %q", cfg.Hosts, ls, err, want)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("refused start left %s: %v", path, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("openListeners(%q): %v", cfg.Hosts, err)
		}
		if len(ls) != 2 || ls[1].Addr != (listenAddr{"fd", "3", ""}) {
			t.Fatalf("openListeners(%q) = %v, want the unix socket and fd://3", cfg.Hosts, ls)
		}
		if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
			t.Errorf("log lacks %q:\n%s", tt.wantLog, logs)
		}
		if tt.noLog != "" && strings.Contains(logs.String(), tt.noLog) {
			t.Errorf("log has %q:\n%s", tt.noLog, logs)
		}
		return
	}
	t.Fatalf("no case %q", name)
}
