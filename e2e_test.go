package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/skifftest"
	"skiffd/internal/sysinfo"
)

// TestCLIVersion: `docker version` fills the Server section and is not
// downgraded.
func TestCLIVersion(t *testing.T) {
	d := skifftest.Start(t)
	res := d.Docker(t, "version")
	if res.ExitCode != 0 {
		t.Fatalf("docker version: %v", res)
	}
	server := res.Stdout[strings.Index(res.Stdout, "Server:"):]
	for _, want := range []string{"Engine:", "API version:      1.50 (minimum version 1.24)", "Version:          " + engineVersion, "OS/Arch:          linux/" + runtime.GOARCH} {
		if !strings.Contains(server, want) {
			t.Errorf("docker version Server section lacks %q:\n%s", want, server)
		}
	}
	if strings.Contains(res.Stdout, "downgraded") {
		t.Errorf("docker version says the API was downgraded:\n%s", res.Stdout)
	}
	res = d.Docker(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.KernelVersion}}")
	if want := "1.50 " + sysinfo.Read().KernelVersion + "\n"; res.Stdout != want {
		t.Errorf("version --format = %q, want %q", res.Stdout, want)
	}
}

// TestCLIInfo: `docker info` shows real host facts.
func TestCLIInfo(t *testing.T) {
	d := skifftest.Start(t)
	res := d.Docker(t, "info", "--format", "{{json .}}")
	if res.ExitCode != 0 {
		t.Fatalf("docker info: %v", res)
	}
	var info struct {
		NCPU                                int
		MemTotal                            int64
		KernelVersion, OperatingSystem      string
		DockerRootDir, CgroupDriver, OSType string
		CgroupVersion, ID, ServerVersion    string
		Containers, Images, NEventsListener int
		Warnings                            []string
	}
	if err := json.Unmarshal([]byte(res.Stdout), &info); err != nil {
		t.Fatalf("info JSON: %v\n%s", err, res.Stdout)
	}
	h := sysinfo.Read()
	if info.NCPU != h.NCPU || info.MemTotal != h.MemTotal || info.KernelVersion != h.KernelVersion ||
		info.OperatingSystem != h.OperatingSystem || info.CgroupVersion != h.CgroupVersion {
		t.Errorf("info host facts = %d CPUs, %d bytes, kernel %q, OS %q, cgroup v%s; want %d, %d, %q, %q, v%s",
			info.NCPU, info.MemTotal, info.KernelVersion, info.OperatingSystem, info.CgroupVersion,
			h.NCPU, h.MemTotal, h.KernelVersion, h.OperatingSystem, h.CgroupVersion)
	}
	if info.DockerRootDir != d.DataRoot || info.CgroupDriver != "cgroupfs" || info.OSType != "linux" || info.ServerVersion != engineVersion {
		t.Errorf("info = root %q, cgroup driver %q, OSType %q, version %q", info.DockerRootDir, info.CgroupDriver, info.OSType, info.ServerVersion)
	}
	if info.Containers != 0 || info.Images != 0 || len(info.Warnings) == 0 {
		t.Errorf("info counts = %d containers, %d images, warnings %q; want 0, 0 and warnings for what is missing", info.Containers, info.Images, info.Warnings)
	}
	// The engine ID survives a restart: it is persisted in the data root.
	id := info.ID
	if id == "" {
		t.Fatal("info has no ID")
	}
	res = d.Docker(t, "info")
	for _, want := range []string{"Cgroup Driver: cgroupfs", "Docker Root Dir: " + d.DataRoot, "CPUs: " + strconv.Itoa(h.NCPU), "Kernel Version: " + h.KernelVersion} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("docker info lacks %q:\n%s", want, res.Stdout)
		}
	}
}

// TestCLIEvents: `docker system events --since 1m --until 0s` returns
// cleanly, and a bounded stream ends when until passes.
func TestCLIEvents(t *testing.T) {
	d := skifftest.Start(t)
	res := d.Docker(t, "system", "events", "--since", "1m", "--until", "0s")
	if res.ExitCode != 0 {
		t.Fatalf("docker system events: %v", res)
	}
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix()+1, 10)
	start := time.Now()
	res = d.Docker(t, "events", "--until", until, "--filter", "type=container")
	if res.ExitCode != 0 {
		t.Fatalf("docker events --until future: %v", res)
	}
	if time.Since(start) > time.Minute {
		t.Errorf("events stream with a near until took %v", time.Since(start))
	}
	res = d.Docker(t, "events", "--until", "0s", "--filter", "bogus=1")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "invalid filter 'bogus'") {
		t.Errorf("events with an unknown filter: %v; want an invalid filter error", res)
	}
}

// TestRawPingAndVersions: what curl sees.
func TestRawPingAndVersions(t *testing.T) {
	d := skifftest.Start(t)
	r := d.Do(t, "GET", "/_ping", nil, nil)
	if r.Status != 200 || r.Body != "OK" {
		t.Fatalf("GET /_ping = %d %q", r.Status, r.Body)
	}
	for k, want := range map[string]string{"Api-Version": "1.50", "Ostype": "linux", "Docker-Experimental": "false",
		"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache", "Server": "Docker/" + engineVersion + " (linux)"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("/_ping %s = %q, want %q", k, got, want)
		}
	}
	r = d.Do(t, "GET", "/v1.99/info", nil, nil)
	if want := `{"message":"client version 1.99 is too new. Maximum supported API version is 1.50"}` + "\n"; r.Status != 400 || r.Body != want {
		t.Errorf("GET /v1.99/info = %d %q, want 400 %q", r.Status, r.Body, want)
	}
	r = d.Do(t, "GET", "/v1.12/info", nil, nil)
	if r.Status != 400 || !strings.Contains(r.Body, "client version 1.12 is too old") {
		t.Errorf("GET /v1.12/info = %d %q", r.Status, r.Body)
	}
	r = d.Do(t, "GET", "/v1.50/no/such/endpoint", nil, nil)
	if r.Status != 404 || r.Body != `{"message":"page not found"}`+"\n" {
		t.Errorf("unknown path = %d %q", r.Status, r.Body)
	}
	// docker inspect probes plugins and swarm; they must fail fast and cleanly.
	res := d.Docker(t, "node", "ls")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "This node is not a swarm manager") {
		t.Errorf("docker node ls: %v", res)
	}
}

// TestSocketModeAndGroup: the unix socket is 0660 and owned by the -G group.
func TestSocketModeAndGroup(t *testing.T) {
	g, err := user.LookupGroup("daemon")
	if err != nil {
		t.Fatalf("group daemon: %v", err)
	}
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"-G", "daemon"}})
	var st syscall.Stat_t
	if err := syscall.Stat(d.Socket, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o660 || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		t.Errorf("socket mode = %o, want socket 0660", st.Mode)
	}
	if strconv.Itoa(int(st.Gid)) != g.Gid || st.Uid != 0 {
		t.Errorf("socket owner = %d:%d, want 0:%s", st.Uid, st.Gid, g.Gid)
	}
}

// TestUnixAndTCPTogether: one daemon, two listeners, both serve the CLI.
func TestCLIUnixAndTCPTogether(t *testing.T) {
	port := freePort(t)
	sock := "unix://" + t.TempDir() + "/both.sock"
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"-H", sock, "-H", fmt.Sprintf("tcp://127.0.0.1:%d", port)}})
	for _, host := range []string{sock, fmt.Sprintf("tcp://127.0.0.1:%d", port)} {
		res := d.DockerHost(t, host, "version", "--format", "{{.Server.APIVersion}}")
		if res.ExitCode != 0 || res.Stdout != "1.50\n" {
			t.Errorf("docker -H %s version: %v", host, res)
		}
	}
	if !strings.Contains(d.Log(), "without --tlsverify is insecure") {
		t.Errorf("loopback tcp without TLS did not warn; log:\n%s", d.Log())
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSecondDaemonRefused: a second daemon on the same pidfile or the same
// data root refuses to start and names the reason; the first keeps running.
func TestSecondDaemonRefused(t *testing.T) {
	first := skifftest.Start(t)
	pid := strconv.Itoa(first.Pid())
	sameData, err := skifftest.Launch(t, skifftest.Options{Args: []string{"--data-root", first.DataRoot}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sameData.Wait(30 * time.Second); err == nil {
		t.Fatal("second daemon on the same data root exited 0")
	}
	if !strings.Contains(sameData.Log(), "skiffd (pid "+pid+") is already using "+first.DataRoot) {
		t.Errorf("second daemon log lacks the data-root refusal:\n%s", sameData.Log())
	}
	samePid, err := skifftest.Launch(t, skifftest.Options{Args: []string{"--pidfile", first.Pidfile}})
	if err != nil {
		t.Fatal(err)
	}
	if err := samePid.Wait(30 * time.Second); err == nil {
		t.Fatal("second daemon on the same pidfile exited 0")
	}
	if !strings.Contains(samePid.Log(), "skiffd is already running (pid "+pid+")") {
		t.Errorf("second daemon log lacks the pidfile refusal:\n%s", samePid.Log())
	}
	if r := first.Do(t, "GET", "/_ping", nil, nil); r.Status != 200 {
		t.Errorf("first daemon stopped answering: %d", r.Status)
	}
	// The refused daemons removed nothing of the first one's.
	if _, err := os.Stat(first.Pidfile); err != nil {
		t.Errorf("first daemon's pidfile: %v", err)
	}
}

// TestGracefulStopRemovesFiles: SIGTERM ends the daemon with status 0 and
// removes its socket and pidfile.
func TestGracefulStopRemovesFiles(t *testing.T) {
	d := skifftest.Start(t)
	if err := d.Stop(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.Log())
	}
	for _, p := range []string{d.Socket, d.Pidfile} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after shutdown (%v)", p, err)
		}
	}
}
