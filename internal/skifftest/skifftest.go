// Package skifftest starts real skiffd daemons for end-to-end tests and
// drives them with the real docker CLI and with raw HTTP.
//
//	func TestMain(m *testing.M) { skifftest.Main(m) }
//
//	func TestPing(t *testing.T) {
//		d := skifftest.Start(t)
//		res := d.Docker(t, "version")
//		...
//	}
//
// The daemon binary is built once per test binary (CGO_ENABLED=0, the same
// way the README builds it). Each daemon gets its own short temp directory
// holding its socket, data root, exec root and pidfile; it is stopped and
// the directory removed in t.Cleanup.
package skifftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/mountinfo"
	"skiffd/internal/netlink"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// Main runs the tests and removes the binary built for them.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ModuleRoot finds the directory holding skiffd's go.mod, walking up from
// the test's working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module skiffd\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("skiffd go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary builds skiffd once and returns the path of the binary.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "skiffd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(buildDir, "skiffd")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building skiffd: %v", buildErr)
	}
	return binPath
}

// RequireRoot skips tests that need root when not running as root. CI runs
// as root, so these tests always run there.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// Daemon is a running skiffd.
type Daemon struct {
	Dir      string // holds everything below; removed at cleanup
	Socket   string
	Host     string // unix://<Socket>
	DataRoot string
	ExecRoot string
	Pidfile  string
	// Bridge and NFTable are the daemon's own host bridge and nf_tables
	// table, unique per daemon so parallel daemons never share them.
	Bridge, NFTable string
	// Netns, with Options.OwnNetns, is the network namespace the daemon
	// runs in (its "host"); nil when it runs in the test's.
	Netns *os.File

	cmd     *exec.Cmd
	args    []string
	env     []string
	log     syncBuffer
	exited  chan struct{}
	waitErr error
}

// Options adjusts a daemon started by StartWith.
type Options struct {
	Args []string // extra flags, after the harness's own
	Env  []string // extra environment
	// NoDefaultHost leaves out the harness's unix socket; WaitReady then
	// cannot be used, only Wait.
	NoDefaultHost bool
	// DataRoot and ExecRoot replace the daemon's own roots (in its temp
	// directory), e.g. with a small file system the test mounted. The
	// test owns them: mounts under them are not detached at cleanup, and
	// they are not removed.
	DataRoot, ExecRoot string
	// OwnNetns runs the daemon in a network namespace of its own (with
	// loopback up), so that it may forward and NAT without touching the
	// test host's sysctls; the test reaches its published ports from
	// inside that namespace (Netns). Without it the daemon runs in the
	// test's namespace with IP forwarding left alone (--ip-forward=false).
	OwnNetns bool
	// Binary, when set, is the skiffd binary to run instead of the one
	// built from the module: an older build to compare against.
	Binary string
}

// Start starts a daemon with default options and waits until it answers
// /_ping.
func Start(t testing.TB) *Daemon {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a daemon with extra flags and environment.
func StartWith(t testing.TB, opts Options) *Daemon {
	t.Helper()
	d, err := Launch(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitReady(30 * time.Second); err != nil {
		t.Fatalf("daemon did not become ready: %v\nlog:\n%s", err, d.Log())
	}
	return d
}

// Launch starts a daemon process without waiting for it to be ready; tests
// of start-up failures use it with Wait.
func Launch(t testing.TB, opts Options) (*Daemon, error) {
	t.Helper()
	RequireRoot(t)
	bin := opts.Binary
	if bin == "" {
		bin = Binary(t)
	}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "skd-")
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Dir:      dir,
		Socket:   filepath.Join(dir, "s.sock"),
		DataRoot: filepath.Join(dir, "data"),
		ExecRoot: filepath.Join(dir, "exec"),
		Pidfile:  filepath.Join(dir, "skiffd.pid"),
		exited:   make(chan struct{}),
	}
	d.Host = "unix://" + d.Socket
	if opts.DataRoot != "" {
		d.DataRoot = opts.DataRoot
	}
	if opts.ExecRoot != "" {
		d.ExecRoot = opts.ExecRoot
	}
	args := []string{"--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "--pidfile", d.Pidfile, "--debug"}
	d.Bridge, d.NFTable = "skt"+filepath.Base(dir)[4:], "skiffd-test-"+filepath.Base(dir)[4:]
	if len(d.Bridge) > 15 {
		d.Bridge = d.Bridge[:15]
	}
	args = append(args, "--bridge", d.Bridge, "--nft-table", d.NFTable)
	if opts.OwnNetns {
		ns, err := netlink.NewNetns()
		if err == nil {
			err = netlink.Do(int(ns.Fd()), func() error {
				h, err := netlink.Open(netlink.Self)
				if err != nil {
					return err
				}
				defer h.Close()
				lo, err := h.LinkByName("lo")
				if err != nil {
					return err
				}
				return h.SetUp(lo.Index)
			})
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("daemon network namespace: %w", err)
		}
		d.Netns = ns
	} else {
		args = append(args, "--ip-forward=false")
	}
	if !opts.NoDefaultHost {
		args = append(args, "-H", d.Host)
	}
	args = append(args, opts.Args...)
	d.args = args
	d.env = append(cleanEnv(), opts.Env...)
	if err := d.start(bin); err != nil {
		os.RemoveAll(dir)
		if d.Netns != nil {
			d.Netns.Close()
		}
		return nil, err
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
		d.cleanup(t)
	})
	return d, nil
}

// start starts the daemon process.
func (d *Daemon) start(bin string) error {
	d.cmd = exec.Command(bin, d.args...)
	d.cmd.Env = d.env
	d.cmd.Stdout = &d.log
	d.cmd.Stderr = &d.log
	if err := d.startCmd(d.cmd); err != nil {
		return err
	}
	exited := make(chan struct{})
	d.exited = exited
	cmd := d.cmd
	go func() {
		d.waitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

// Relaunch starts the daemon again, with the same flags, socket and roots,
// after it exited (Kill, Stop) and waits until it answers /_ping. The
// Daemon then stands for the new process; its log goes on in Log.
func (d *Daemon) Relaunch(t testing.TB) {
	t.Helper()
	d.RelaunchWith(t, d.cmd.Path)
}

// RelaunchWithArgs is Relaunch with args added to the daemon's flags (a
// flag given again overrides the earlier one), for this and later
// relaunches.
func (d *Daemon) RelaunchWithArgs(t testing.TB, args ...string) {
	t.Helper()
	d.args = append(d.args, args...)
	d.Relaunch(t)
}

// RelaunchWith is Relaunch running the skiffd binary bin (Binary, or
// another build), e.g. to compare two builds on the same roots.
func (d *Daemon) RelaunchWith(t testing.TB, bin string) {
	t.Helper()
	select {
	case <-d.exited:
	default:
		t.Fatal("Relaunch: the daemon still runs")
	}
	os.Remove(d.Socket)
	if err := d.start(bin); err != nil {
		t.Fatalf("relaunching the daemon: %v", err)
	}
	if err := d.WaitReady(30 * time.Second); err != nil {
		t.Fatalf("relaunched daemon did not become ready: %v\nlog:\n%s", err, d.Log())
	}
}

// cleanup leaves nothing of the daemon behind: its containers keep running
// after the daemon stops (live restore), so they are removed through the
// API first — by a fresh daemon on the same roots when a test killed this
// one. Then mounts under the directory are detached, so that removing it
// can never reach through a mount into files that are not the test's.
func (d *Daemon) cleanup(t testing.TB) {
	select {
	case <-d.exited:
		if d.hasContainerRecords() {
			d.relaunchAndRemoveContainers(t)
		}
	default:
		d.removeContainers()
		d.Stop()
	}
	d.removeNetworking(t)
	if err := unmountUnder(d.Dir); err != nil {
		t.Errorf("cleanup: %v; leaving %s in place", err, d.Dir)
		return
	}
	os.RemoveAll(d.Dir)
}

// startCmd starts cmd in the daemon's network namespace: forked from a
// thread that joined it, which the child inherits.
func (d *Daemon) startCmd(cmd *exec.Cmd) error {
	if d.Netns == nil {
		return cmd.Start()
	}
	return netlink.Do(int(d.Netns.Fd()), cmd.Start)
}

// removeNetworking deletes the daemon's bridge and nf_tables table (a
// stopped daemon leaves them for its containers, as dockerd leaves
// docker0) and its network namespace.
func (d *Daemon) removeNetworking(t testing.TB) {
	ns := netlink.Self
	if d.Netns != nil {
		ns = int(d.Netns.Fd())
	}
	if h, err := netlink.Open(ns); err == nil {
		if l, err := h.LinkByName(d.Bridge); err == nil {
			if err := h.DeleteLink(l.Index); err != nil {
				t.Errorf("cleanup: deleting bridge %s: %v", d.Bridge, err)
			}
		}
		h.Close()
	}
	if nft, err := netlink.OpenNFT(ns, d.NFTable); err == nil {
		// The ip table, and the ip6 one of IPv6 networks.
		for _, fam := range []netlink.Family{netlink.FamilyIP, netlink.FamilyIP6} {
			if tables, err := nft.Tables(fam); err == nil && slices.Contains(tables, fam.String()+" "+d.NFTable) {
				b := nft.Batch()
				b.DelTable(fam)
				if err := nft.Commit(b); err != nil {
					t.Errorf("cleanup: deleting nf_tables table %s %s: %v", fam, d.NFTable, err)
				}
			}
		}
		nft.Close()
	}
	if d.Netns != nil {
		d.Netns.Close()
	}
}

// hasContainerRecords reports whether the data root holds containers.
func (d *Daemon) hasContainerRecords() bool {
	entries, _ := os.ReadDir(filepath.Join(d.DataRoot, "containers"))
	return len(entries) > 0
}

// removeContainers force-removes every container the daemon knows.
func (d *Daemon) removeContainers() {
	c := d.Client()
	c.Timeout = time.Minute
	resp, err := c.Get("http://skiffd/containers/json?all=1")
	if err != nil {
		return
	}
	var list []struct{ Id string }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	for _, ctr := range list {
		req, _ := http.NewRequest("DELETE", "http://skiffd/containers/"+ctr.Id+"?force=1&v=1", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// relaunchAndRemoveContainers starts the daemon again on the same roots,
// removes its containers and stops it.
func (d *Daemon) relaunchAndRemoveContainers(t testing.TB) {
	os.Remove(d.Socket)
	nd := &Daemon{Dir: d.Dir, Socket: d.Socket, Host: d.Host, DataRoot: d.DataRoot, ExecRoot: d.ExecRoot, Pidfile: d.Pidfile, exited: make(chan struct{})}
	nd.cmd = exec.Command(d.cmd.Path, d.args...)
	nd.cmd.Env = d.env
	nd.cmd.Stdout, nd.cmd.Stderr = &nd.log, &nd.log
	if err := d.startCmd(nd.cmd); err != nil {
		t.Errorf("cleanup: relaunching the daemon: %v", err)
		return
	}
	go func() {
		nd.waitErr = nd.cmd.Wait()
		close(nd.exited)
	}()
	if err := nd.WaitReady(30 * time.Second); err != nil {
		t.Errorf("cleanup: relaunched daemon: %v\n%s", err, nd.Log())
		nd.cmd.Process.Kill()
		<-nd.exited
		return
	}
	nd.removeContainers()
	nd.Stop()
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := mountinfo.Unescape(f[4])
		if strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			return fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	return nil
}

// cleanEnv is the test's environment without anything that would point a
// daemon or CLI elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_CONFIG", "LISTEN_PID", "LISTEN_FDS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// WaitReady polls /_ping until the daemon answers OK, it exits, or timeout
// passes. Polling is readiness detection, not synchronisation by sleeping:
// it returns the moment the condition holds.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	c := d.Client()
	for {
		resp, err := c.Get("http://skiffd/_ping")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "OK" {
				return nil
			}
		}
		select {
		case <-d.exited:
			return fmt.Errorf("daemon exited: %v", d.waitErr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no /_ping answer after %v (last error %v)", timeout, err)
		}
	}
}

// Wait waits for the daemon process to exit and returns its exit error.
func (d *Daemon) Wait(timeout time.Duration) error {
	select {
	case <-d.exited:
		return d.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("daemon still running after %v", timeout)
	}
}

// Exited is closed when the daemon process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Pid is the daemon's process ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits for a graceful exit, killing the daemon if
// it takes longer than 30 s. It returns the exit error (nil for exit 0).
func (d *Daemon) Stop() error {
	select {
	case <-d.exited:
		return d.waitErr
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return d.waitErr
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("daemon ignored SIGTERM for 30s")
	}
}

// Kill ends the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.exited
}

// Log returns everything the daemon has written to stdout and stderr.
func (d *Daemon) Log() string { return d.log.String() }

// Client returns an HTTP client that reaches the daemon's unix socket for
// any URL.
func (d *Daemon) Client() *http.Client {
	return UnixClient(d.Socket)
}

// UnixClient returns an HTTP client that dials socket for every request.
func UnixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends one raw HTTP request to the daemon and reads the whole answer.
// path includes any /vX.Y prefix and query.
func (d *Daemon) Do(t testing.TB, method, path string, body io.Reader, header http.Header) Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://skiffd"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := d.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Result is the outcome of one docker CLI invocation.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// DockerPath returns the docker CLI, failing the test when it is missing:
// .ci/run installs it, so its absence is a broken machine, not a skip.
func DockerPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("docker CLI not found on PATH (.ci/run installs it): %v", err)
	}
	return p
}

// Docker runs the real docker CLI against the daemon with stdin empty.
func (d *Daemon) Docker(t testing.TB, args ...string) Result {
	t.Helper()
	return d.DockerIn(t, nil, args...)
}

// DockerIn runs the docker CLI with the given stdin, bounded to 2 minutes.
func (d *Daemon) DockerIn(t testing.TB, stdin io.Reader, args ...string) Result {
	t.Helper()
	return d.docker(t, d.Host, stdin, args...)
}

// DockerHost runs the docker CLI against another of the daemon's listeners.
func (d *Daemon) DockerHost(t testing.TB, host string, args ...string) Result {
	t.Helper()
	return d.docker(t, host, nil, args...)
}

func (d *Daemon) docker(t testing.TB, host string, stdin io.Reader, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, DockerPath(t), args...)
	cfgDir := filepath.Join(d.Dir, "docker-config")
	os.MkdirAll(cfgDir, 0o700)
	cmd.Env = append(cleanEnv(), "DOCKER_HOST="+host, "DOCKER_CONFIG="+cfgDir)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// syncBuffer is a bytes.Buffer safe for the process's writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
