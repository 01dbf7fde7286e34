package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/api/wire"
)

// TestMain lets the test binary act as a tiny API client, run under
// another uid/gid: AUDIT_TEST_CLIENT=<socket> POSTs to /containers/x/start.
func TestMain(m *testing.M) {
	if sock := os.Getenv("AUDIT_TEST_CLIENT"); sock != "" {
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		resp, err := c.Post("http://x/v1.44/containers/web/start", "", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(os.Getpid())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testHandler mimics the chain: a fake version middleware is not needed,
// the handler annotates like the container handlers do.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.44/containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		wire.Annotate(r.Context(), "container", r.PathValue("id"), "")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	return mux
}

func resolver(ctx context.Context, kind, ref string) (string, string, []string, bool) {
	if kind == "container" && ref == "web" {
		return "0123456789abcdef", "/web", nil, true
	}
	return "", "", nil, false
}

// serveUnix serves h on a unix socket anyone may connect to.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o777)
	srv := &http.Server{Handler: h, ConnContext: ConnContext("unix://" + sock)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func readEntries(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestPeerCredentials runs two clients as two different uid/gid pairs and
// checks that each record carries the uid, gid, pid and process name the
// kernel reported for that connection.
func TestPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run clients as other users")
	}
	logPath := filepath.Join(t.TempDir(), "audit.log")
	lg, err := Open(Options{Path: logPath, Resolve: resolver})
	if err != nil {
		t.Fatal(err)
	}
	sock := serveUnix(t, Middleware(func() *Logger { return lg }, nil)(testHandler()))

	// The go-build directory is root-only: run a copy other users can exec.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(filepath.Dir(sock), "audit.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ids := []uint32{4242, 4343}
	pids := map[int]uint32{}
	for _, id := range ids {
		cmd := exec.Command(exe)
		cmd.Env = []string{"AUDIT_TEST_CLIENT=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: id, Gid: id + 1}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("client uid %d: %v", id, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		pids[pid] = id
	}
	lg.Close()
	entries := readEntries(t, logPath)
	if len(entries) != 2 {
		t.Fatalf("got %d entries, want 2: %+v", len(entries), entries)
	}
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	for _, e := range entries {
		if e.Peer.PID == nil || e.Peer.UID == nil || e.Peer.GID == nil {
			t.Fatalf("entry without credentials: %+v", e)
		}
		want, ok := pids[int(*e.Peer.PID)]
		if !ok {
			t.Fatalf("pid %d is none of the clients %v", *e.Peer.PID, pids)
		}
		if *e.Peer.UID != want || *e.Peer.GID != want+1 {
			t.Errorf("pid %d: uid/gid = %d/%d, want %d/%d", *e.Peer.PID, *e.Peer.UID, *e.Peer.GID, want, want+1)
		}
		if e.Peer.Comm != comm {
			t.Errorf("comm = %q, want %q", e.Peer.Comm, comm)
		}
		if e.Method != "POST" || e.Path != "/v1.44/containers/web/start" || e.Status != 204 {
			t.Errorf("entry = %+v", e)
		}
		if e.Object == nil || e.Object.ID != "0123456789abcdef" || e.Object.Name != "/web" || e.Object.Kind != "container" {
			t.Errorf("object = %+v", e.Object)
		}
		if !strings.HasPrefix(e.Listener, "unix://") {
			t.Errorf("listener = %q", e.Listener)
		}
	}
}

// TestReadsOnlyWhenAsked: GET is not audited unless Reads is set.
func TestReadsOnlyWhenAsked(t *testing.T) {
	for _, reads := range []bool{false, true} {
		t.Run(fmt.Sprint(reads), func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "audit.log")
			lg, err := Open(Options{Path: logPath, Reads: reads})
			if err != nil {
				t.Fatal(err)
			}
			sock := serveUnix(t, Middleware(func() *Logger { return lg }, nil)(testHandler()))
			c := unixClient(sock)
			resp, err := c.Get("http://x/_ping")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			lg.Close()
			n := len(readEntries(t, logPath))
			if want := map[bool]int{false: 0, true: 1}[reads]; n != want {
				t.Fatalf("entries = %d, want %d", n, want)
			}
		})
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// TestStuckDiskDropsInsteadOfBlocking makes the audit file a FIFO nobody
// reads: the pipe fills, the writer blocks in write(2), the queue fills,
// and requests still complete while the drop counter grows.
func TestStuckDiskDropsInsteadOfBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	lg, err := Open(Options{Path: fifo})
	if err != nil {
		t.Fatal(err)
	}
	// The writer stays blocked on the full pipe: unblock it at the end by
	// draining, so Close can return.
	t.Cleanup(func() {
		r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			done := make(chan struct{})
			go func() { io.Copy(io.Discard, r); close(done) }()
			lg.Close()
			r.Close()
			<-done
		}
	})
	sock := serveUnix(t, Middleware(func() *Logger { return lg }, nil)(testHandler()))
	c := unixClient(sock)
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	n := 0
	for lg.Dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no drops after %d requests", n)
		}
		for range 8 {
			wg.Go(func() {
				resp, err := c.Post("http://x/v1.44/containers/web/start", "", nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			})
		}
		wg.Wait()
		n += 8
	}
	// Requests keep completing promptly while the disk is stuck.
	start := time.Now()
	for range 100 {
		resp, err := c.Post("http://x/v1.44/containers/web/start", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("100 requests took %v with a stuck audit file", d)
	}
	if lg.Dropped() < 100 {
		t.Fatalf("dropped = %d, want at least the 100 requests made while full", lg.Dropped())
	}
}

// TestRotation: the file never grows past MaxSize, older content moves to
// .1 ... .N, and nothing beyond MaxFiles is kept.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	lg, err := Open(Options{Path: logPath, MaxSize: 2048, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	sock := serveUnix(t, Middleware(func() *Logger { return lg }, nil)(testHandler()))
	c := unixClient(sock)
	for range 100 {
		resp, err := c.Post("http://x/v1.44/containers/web/start", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	lg.Close()
	names, _ := filepath.Glob(logPath + "*")
	want := []string{logPath, logPath + ".1", logPath + ".2"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("files = %v, want %v", names, want)
	}
	for _, n := range names {
		fi, _ := os.Stat(n)
		if fi.Size() > 2048 || fi.Size() == 0 {
			t.Errorf("%s: size %d, want 1..2048", n, fi.Size())
		}
		for _, e := range readEntries(t, n) {
			if e.Status != 204 {
				t.Errorf("%s: bad entry %+v", n, e)
			}
		}
	}
}

// BenchmarkEncode is the writer's per-record cost, paid off the request
// path.
func BenchmarkEncode(b *testing.B) {
	uid, pid := uint32(1000), int32(4242)
	e := &Entry{Time: time.Now(), Listener: "unix:///var/run/skiffd.sock", Peer: Peer{UID: &uid, GID: &uid, PID: &pid, Comm: "docker"},
		Method: "POST", Path: "/containers/0123456789abcdef/start", APIVersion: "1.50",
		Object: &Object{Kind: "container", ID: strings.Repeat("ab", 32), Name: "/web"}, Status: 204, DurationMS: 1.5}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendJSON(buf[:0], e)
	}
}

// TestEncodeMatchesMarshal: the hand-written encoder gives exactly
// encoding/json's bytes, for plain and hostile strings and every optional
// field present or absent.
func TestEncodeMatchesMarshal(t *testing.T) {
	uid, gid, pid := uint32(0), uint32(4242), int32(7)
	odd := "a\"quote\" \\ back\n\r\t\x00\x1f <tag> & \u2028\u2029 é 日本 \xff\xfe end"
	for i, e := range []*Entry{
		{},
		{Time: time.Date(2026, 12, 7, 6, 0, 0, 123456789, time.UTC), Listener: "unix:///s", Peer: Peer{UID: &uid, GID: &gid, PID: &pid, Comm: odd},
			Method: "POST", Path: "/containers/" + odd + "/start", Query: "a=b&c=<d>", APIVersion: "1.50",
			Object: &Object{Kind: "container", ID: "abc", Name: odd}, Cmd: []string{"sh", "-c", odd}, Status: 101, Bytes: 1 << 40, DurationMS: 0.001},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), Peer: Peer{Addr: "127.0.0.1:5", CertSubject: "CN=a,O=b", CertIssuer: odd, CertSerial: "123"},
			Object: &Object{Kind: "image"}, Status: 500, DurationMS: 12345.678},
		{Peer: Peer{PID: &pid}, DurationMS: 1e21},
	} {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSON(nil, e); string(got) != string(want) {
			t.Errorf("%d: appendJSON =\n%s\nwant\n%s", i, got, want)
		}
	}
}

// TestDetachedStream: a stream detached from its handler (wire.Detach:
// events, stats, logs -f) is audited and observed once, when it ends, with
// status 200, the route pattern, its body bytes and its whole duration, as
// when the handler served it to the end.
func TestDetachedStream(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.log")
	lg, err := Open(Options{Path: logPath, Reads: true})
	if err != nil {
		t.Fatal(err)
	}
	streams := make(chan *wire.DetachedStream, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		ds, err := wire.Detach(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		streams <- ds
	})
	type observed struct {
		pattern string
		status  int
		d       time.Duration
	}
	obs := make(chan observed, 2)
	h := Middleware(func() *Logger { return lg }, func(pattern string, status int, d time.Duration) {
		obs <- observed{pattern, status, d}
	})(PatternRecorder(mux))
	c := unixClient(serveUnix(t, h))
	resp, err := c.Get("http://x/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ds := <-streams
	ds.Send([]byte("0123456789\n"))
	const held = 50 * time.Millisecond
	time.Sleep(held) // the stream's duration, not a synchronisation
	select {
	case o := <-obs:
		t.Fatalf("observed %v while the stream is open", o)
	default:
	}
	ds.Send([]byte("abc\n"))
	ds.End()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	o := <-obs
	if o.pattern != "GET /events" || o.status != 200 || o.d < held {
		t.Errorf("observed %+v, want GET /events, 200, at least %v", o, held)
	}
	lg.Close()
	es := readEntries(t, logPath)
	if len(es) != 1 || es[0].Status != 200 || es[0].Bytes != 15 || es[0].DurationMS < float64(held.Milliseconds()) {
		t.Errorf("entries %+v, want one of status 200, 15 bytes, at least %v", es, held)
	}
	select {
	case o := <-obs:
		t.Errorf("observed twice: %+v", o)
	default:
	}
}
