package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/stdcopy"
)

// fake records calls and answers like a tiny engine.
type fake struct {
	calls    []string
	waitCh   chan types.WaitResponse
	logs     []types.LogMessage
	tty      bool
	attachIn string
}

func (f *fake) rec(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fake) ContainerCreate(ctx context.Context, name string, req *types.CreateRequest) (*types.CreateResponse, error) {
	f.rec("create %s %s", name, req.Config.Image)
	return &types.CreateResponse{ID: "abc"}, nil
}
func (f *fake) ContainerStart(ctx context.Context, name string) error {
	if name == "running" {
		return errdefs.NotModified(errors.New("already started"))
	}
	f.rec("start %s", name)
	return nil
}
func (f *fake) ContainerStop(ctx context.Context, name, signal string, timeout *int) error {
	t := "nil"
	if timeout != nil {
		t = fmt.Sprint(*timeout)
	}
	f.rec("stop %s %q %s", name, signal, t)
	return nil
}
func (f *fake) ContainerRestart(ctx context.Context, name, signal string, timeout *int) error {
	return nil
}
func (f *fake) ContainerKill(ctx context.Context, name, signal string) error {
	f.rec("kill %s %s", name, signal)
	return nil
}
func (f *fake) ContainerWait(ctx context.Context, name string, c types.WaitCondition) (<-chan types.WaitResponse, error) {
	if name == "missing" {
		return nil, errdefs.NotFound(errors.New("No such container: missing"))
	}
	f.rec("wait %s %s", name, c)
	return f.waitCh, nil
}
func (f *fake) ContainerRemoveLink(ctx context.Context, name string) error { return nil }

func (f *fake) ContainerRemove(ctx context.Context, name string, force, v bool) error {
	f.rec("rm %s %v %v", name, force, v)
	return nil
}
func (f *fake) ContainerPause(ctx context.Context, name string) error   { return nil }
func (f *fake) ContainerUnpause(ctx context.Context, name string) error { return nil }
func (f *fake) ContainerRename(ctx context.Context, name, newName string) error {
	f.rec("rename %s %s", name, newName)
	return nil
}
func (f *fake) ContainerInspect(ctx context.Context, name string, size bool) (*types.ContainerJSON, error) {
	return &types.ContainerJSON{}, nil
}
func (f *fake) ContainerList(ctx context.Context, opts types.ContainerListOptions, dst []types.ContainerListEntry) ([]types.ContainerListEntry, error) {
	f.rec("list all=%v limit=%d filters=%v", opts.All, opts.Limit, opts.Filters.Get("status"))
	return dst, nil
}
func (f *fake) ContainerTop(ctx context.Context, name, psArgs string) (*types.ContainerTopResponse, error) {
	return &types.ContainerTopResponse{}, nil
}
func (f *fake) ContainerStatsFollow(ctx context.Context, name string) (*types.StatsJSON, func(func(*types.StatsJSON) bool) func(), error) {
	f.rec("stats follow")
	if name == "missing" {
		return nil, nil, errdefs.NotFound(errors.New("No such container: missing"))
	}
	return &types.StatsJSON{Name: "/" + name}, func(func(*types.StatsJSON) bool) func() { return func() {} }, nil
}

func (f *fake) ContainerStats(ctx context.Context, name string, stream, oneShot bool, emit func(*types.StatsJSON) error) error {
	f.rec("stats %v %v", stream, oneShot)
	if name == "missing" {
		return errdefs.NotFound(errors.New("No such container: missing"))
	}
	return emit(&types.StatsJSON{Name: "/" + name})
}
func (f *fake) ContainerResize(ctx context.Context, name string, h, w int) error {
	f.rec("resize %d %d", h, w)
	return nil
}
func (f *fake) ContainerUpdate(ctx context.Context, name string, cfg *types.UpdateConfig) (*types.ContainerUpdateResponse, error) {
	return &types.ContainerUpdateResponse{}, nil
}
func (f *fake) ContainersPrune(ctx context.Context, ef filters.Args) (*types.ContainersPruneReport, error) {
	return &types.ContainersPruneReport{}, nil
}
func (f *fake) ContainerLogs(ctx context.Context, name string, opts types.ContainerLogsOptions, out types.LogSink) error {
	f.rec("logs tail=%d follow=%v", opts.Tail, opts.Follow)
	out.Begin(f.tty)
	for _, m := range f.logs {
		if m.Err != nil {
			return m.Err
		}
		if err := out.Record(m.Stream, m.Line, m.Time); err != nil {
			return err
		}
	}
	return nil
}
func (f *fake) ContainerAttach(ctx context.Context, name string, cfg *types.AttachConfig) error {
	if name == "missing" {
		return errdefs.NotFound(errors.New("No such container: missing"))
	}
	stdin, stdout, stderr, err := cfg.GetStreams(f.tty)
	if err != nil {
		return err
	}
	in, _ := io.ReadAll(stdin)
	f.attachIn = string(in)
	stdout.Write([]byte("out:" + string(in)))
	stderr.Write([]byte("err"))
	return nil
}

func serve(t *testing.T, f *fake, method, pattern string, h func(Backend) wire.HandlerFunc) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc(method+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(f)(w, r); err != nil {
			wire.WriteError(w, errdefs.Status(err), err.Error())
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (*http.Response, string) {
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestCreate(t *testing.T) {
	f := &fake{}
	srv := serve(t, f, "POST", "/containers/create", Create)
	resp, body := do(t, srv, "POST", "/containers/create?name=web", `{"Image":"busybox","Cmd":["true"],"HostConfig":{}}`)
	if resp.StatusCode != 201 || body != `{"Id":"abc","Warnings":[]}`+"\n" || f.calls[0] != "create web busybox" {
		t.Errorf("create = %d %q, calls %q", resp.StatusCode, body, f.calls)
	}
	resp, body = do(t, srv, "POST", "/containers/create", ``)
	if resp.StatusCode != 400 || !strings.Contains(body, "config cannot be empty") {
		t.Errorf("empty create = %d %q", resp.StatusCode, body)
	}
	resp, _ = do(t, srv, "POST", "/containers/create", `{"Image":`)
	if resp.StatusCode != 400 {
		t.Errorf("malformed create = %d, want 400", resp.StatusCode)
	}
}

func TestStartStopKill(t *testing.T) {
	f := &fake{}
	mux := http.NewServeMux()
	for pattern, h := range map[string]func(Backend) wire.HandlerFunc{
		"POST /containers/{id}/start": Start, "POST /containers/{id}/stop": Stop, "POST /containers/{id}/kill": Kill,
		"DELETE /containers/{id}": Remove, "POST /containers/{id}/rename": Rename, "POST /containers/{id}/resize": Resize,
		"GET /containers/json": List,
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			if v := r.Header.Get("X-Version"); v != "" {
				r = r.WithContext(wire.WithVersion(ctx, v))
			}
			if err := h(f)(w, r); err != nil {
				wire.WriteError(w, errdefs.Status(err), err.Error())
			}
		})
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		method, path, version string
		status                int
		call                  string
	}{
		{"POST", "/containers/web/start", "", 204, "start web"},
		{"POST", "/containers/running/start", "", 304, ""},
		{"POST", "/containers/web/stop?t=1&signal=SIGINT", "", 204, `stop web "SIGINT" 1`},
		{"POST", "/containers/web/stop?signal=SIGINT", "1.41", 204, `stop web "" nil`}, // dropped below 1.42
		{"POST", "/containers/web/stop?t=x", "", 400, ""},
		{"POST", "/containers/web/kill?signal=HUP", "", 204, "kill web HUP"},
		{"DELETE", "/containers/web?force=1&v=True", "", 204, "rm web true true"},
		{"DELETE", "/containers/web?force=False", "", 204, "rm web false false"},
		{"POST", "/containers/web/rename?name=web2", "", 204, "rename web web2"},
		{"POST", "/containers/web/resize?h=40&w=120", "", 200, "resize 40 120"},
		{"POST", "/containers/web/resize?h=x&w=1", "", 400, ""},
		{"GET", "/containers/json?all=1&limit=3&filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D", "", 200, "list all=true limit=3 filters=[exited]"},
	}
	for _, tt := range tests {
		f.calls = nil
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if tt.version != "" {
			req.Header.Set("X-Version", tt.version)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		call := ""
		if len(f.calls) > 0 {
			call = f.calls[0]
		}
		if resp.StatusCode != tt.status || call != tt.call {
			t.Errorf("%s %s = %d %q (call %q), want %d, call %q", tt.method, tt.path, resp.StatusCode, body, call, tt.status, tt.call)
		}
		if (tt.status == 204 || tt.status == 304) && len(body) != 0 {
			t.Errorf("%s %s: body %q on %d", tt.method, tt.path, body, tt.status)
		}
	}
}

// TestWaitFlushesHeadersFirst: the client sees 200 and its headers before
// the container exits, as docker run needs.
func TestWaitFlushesHeadersFirst(t *testing.T) {
	f := &fake{waitCh: make(chan types.WaitResponse, 1)}
	srv := serve(t, f, "POST", "/containers/{id}/wait", Wait)
	resp, err := http.Post(srv.URL+"/containers/web/wait?condition=removed", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || f.calls[0] != "wait web removed" {
		t.Fatalf("wait = %d, calls %q", resp.StatusCode, f.calls)
	}
	f.waitCh <- types.WaitResponse{StatusCode: 3}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `{"Error":null,"StatusCode":3}`+"\n" {
		t.Errorf("wait body = %q", body)
	}
	r2, b2 := do(t, srv, "POST", "/containers/missing/wait", "")
	if r2.StatusCode != 404 || !strings.Contains(b2, "No such container: missing") {
		t.Errorf("wait missing = %d %q", r2.StatusCode, b2)
	}
	r3, _ := do(t, srv, "POST", "/containers/web/wait?condition=bogus", "")
	if r3.StatusCode != 400 {
		t.Errorf("wait bogus condition = %d, want 400", r3.StatusCode)
	}
}

func TestLogsFraming(t *testing.T) {
	ts := time.Date(2026, 11, 26, 8, 44, 43, 123456789, time.UTC)
	f := &fake{logs: []types.LogMessage{{Stream: "stdout", Line: []byte("out 1\n"), Time: ts}, {Stream: "stderr", Line: []byte("err 1\n"), Time: ts}}}
	srv := serve(t, f, "GET", "/containers/{id}/logs", Logs)
	resp, body := do(t, srv, "GET", "/containers/web/logs?stdout=1&stderr=1&tail=2&timestamps=1", "")
	want := "\x01\x00\x00\x00\x00\x00\x00\x252026-11-26T08:44:43.123456789Z out 1\n" + "\x02\x00\x00\x00\x00\x00\x00\x252026-11-26T08:44:43.123456789Z err 1\n"
	if resp.StatusCode != 200 || body != want || f.calls[0] != "logs tail=2 follow=false" {
		t.Errorf("logs = %d %q (calls %q), want %q", resp.StatusCode, body, f.calls, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != wire.MediaTypeMultiplexedStream {
		t.Errorf("logs Content-Type = %q", ct)
	}
	f.tty, f.calls = true, nil
	_, body = do(t, srv, "GET", "/containers/web/logs?stdout=1&tail=all", "")
	if body != "out 1\nerr 1\n" || f.calls[0] != "logs tail=-1 follow=false" {
		t.Errorf("tty logs = %q, calls %q", body, f.calls)
	}
	resp, body = do(t, srv, "GET", "/containers/web/logs", "")
	if resp.StatusCode != 400 || !strings.Contains(body, "you must choose at least one stream") {
		t.Errorf("logs without streams = %d %q", resp.StatusCode, body)
	}
}

func TestStats(t *testing.T) {
	f := &fake{}
	srv := serve(t, f, "GET", "/containers/{id}/stats", Stats)
	resp, body := do(t, srv, "GET", "/containers/web/stats?stream=0", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"name":"/web"`) || f.calls[0] != "stats false false" {
		t.Errorf("stats = %d %q, calls %q", resp.StatusCode, body, f.calls)
	}
	resp, _ = do(t, srv, "GET", "/containers/missing/stats", "")
	if resp.StatusCode != 404 {
		t.Errorf("stats missing = %d", resp.StatusCode)
	}
}

// TestAttach: the engine validates before any hijack; then stdin (with
// half-close) reaches it and output comes back framed.
func TestAttach(t *testing.T) {
	f := &fake{}
	srv := serve(t, f, "POST", "/containers/{id}/attach", Attach)
	resp, body := do(t, srv, "POST", "/containers/missing/attach?stream=1&stdout=1", "")
	if resp.StatusCode != 404 || !strings.Contains(body, "No such container") {
		t.Errorf("attach missing = %d %q", resp.StatusCode, body)
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "POST /containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.HasPrefix(status, "HTTP/1.1 101 UPGRADED") {
		t.Fatalf("status line %q", status)
	}
	for {
		line, _ := br.ReadString('\n')
		if line == "\r\n" || line == "" {
			break
		}
	}
	io.WriteString(conn, "hello")
	conn.(*net.TCPConn).CloseWrite()
	var out, errb strings.Builder
	if _, err := stdcopy.Copy(&out, &errb, br); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out:hello" || errb.String() != "err" || f.attachIn != "hello" {
		t.Errorf("attach stdout %q stderr %q stdin seen %q", out.String(), errb.String(), f.attachIn)
	}
}

// countingWriter counts the writes and flushes a handler makes.
type countingWriter struct {
	*httptest.ResponseRecorder
	writes, flushes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.ResponseRecorder.Write(p)
}
func (c *countingWriter) Flush() { c.flushes++; c.ResponseRecorder.Flush() }

// TestLogsBatched: lines that are all ready go out in few large writes
// (issue 13: one write and flush per line held logs to 19 MB/s), and
// nothing is lost or reordered; timestamps have dockerd's fixed nine
// fractional digits; details=1 puts the (empty) attributes and a space first.
func TestLogsBatched(t *testing.T) {
	ts := time.Date(2026, 11, 26, 8, 44, 43, 500000000, time.UTC)
	const n = 5000
	f := &fake{}
	var want strings.Builder
	for i := range n {
		stream, id := "stdout", byte(1)
		if i%7 == 0 {
			stream, id = "stderr", 2
		}
		line := fmt.Sprintf("line %d\n", i)
		f.logs = append(f.logs, types.LogMessage{Stream: stream, Line: []byte(line), Time: ts})
		payload := "2026-11-26T08:44:43.500000000Z  " + line
		want.WriteString(string([]byte{id, 0, 0, 0, 0, 0, 0, byte(len(payload))}) + payload)
	}
	r := httptest.NewRequest("GET", "/containers/web/logs?stdout=1&stderr=1&timestamps=1&details=1", nil)
	r.SetPathValue("id", "web")
	w := &countingWriter{ResponseRecorder: httptest.NewRecorder()}
	if err := Logs(f)(w, r); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if got := w.Body.String(); got != want.String() {
		t.Errorf("logs body differs: got %d bytes %q..., want %d bytes %q...", len(got), got[:min(len(got), 80)], want.Len(), want.String()[:80])
	}
	// ~200 KB of frames: a handful of 64 KiB batches, not 5000 writes.
	if w.writes > 10 || w.flushes > 12 {
		t.Errorf("logs of %d lines made %d writes and %d flushes, want at most 10 and 12", n, w.writes, w.flushes)
	}
}

// TestLogsFramesMergedForCLI: for the docker CLI, consecutive records of
// one stream share a frame (issue 13: the CLI's demultiplexer pays a write
// per frame), with or without timestamps, and the streams demultiplex to
// exactly what they were; any other client gets dockerd's frame per record.
func TestLogsFramesMergedForCLI(t *testing.T) {
	ts := time.Date(2026, 11, 26, 8, 44, 43, 500000000, time.UTC)
	const n = 5000
	f := &fake{}
	var wantOut, wantErr strings.Builder
	for i := range n {
		line := fmt.Sprintf("line %d\n", i)
		if i%100 < 10 {
			f.logs = append(f.logs, types.LogMessage{Stream: "stderr", Line: []byte(line), Time: ts})
			wantErr.WriteString(line)
		} else {
			f.logs = append(f.logs, types.LogMessage{Stream: "stdout", Line: []byte(line), Time: ts})
			wantOut.WriteString(line)
		}
	}
	for _, tc := range []struct {
		agent, query string
		maxFrames    int
	}{
		{"Docker-Client/28.3.3 (linux)", "", 200},
		{"Docker-Client/28.3.3 (linux)", "&timestamps=1", 200},
		{"docker-sdk-python/7.1.0", "", n},
		{"", "", n},
	} {
		r := httptest.NewRequest("GET", "/containers/web/logs?stdout=1&stderr=1"+tc.query, nil)
		r.Header.Set("User-Agent", tc.agent)
		r.SetPathValue("id", "web")
		w := httptest.NewRecorder()
		if err := Logs(f)(w, r); err != nil {
			t.Fatalf("Logs: %v", err)
		}
		body := w.Body.Bytes()
		frames := 0
		for b := body; len(b) >= 8; b = b[8+int(binary.BigEndian.Uint32(b[4:8])):] {
			frames++
		}
		var out, errb strings.Builder
		if _, err := stdcopy.Copy(&out, &errb, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		gotOut, gotErr := out.String(), errb.String()
		if tc.query != "" {
			gotOut, gotErr = stripStamps(gotOut), stripStamps(gotErr)
		}
		if gotOut != wantOut.String() || gotErr != wantErr.String() {
			t.Errorf("%q%s: demultiplexed %d/%d bytes, want %d/%d", tc.agent, tc.query, len(gotOut), len(gotErr), wantOut.Len(), wantErr.Len())
		}
		if frames > tc.maxFrames || (tc.maxFrames == n && frames != n) {
			t.Errorf("%q%s: %d frames for %d records, want %s %d", tc.agent, tc.query, frames, n, map[bool]string{true: "exactly", false: "at most"}[tc.maxFrames == n], tc.maxFrames)
		}
	}
}

// stripStamps removes the "<time> " that timestamps=1 puts before each line.
func stripStamps(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if _, rest, ok := strings.Cut(l, " "); ok {
			b.WriteString(rest)
		}
	}
	return b.String()
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// TestLogsFollowerBatchReused: a follower's batch buffer, let go of each
// time the follower catches up (Idle) so that an idle stream holds none,
// is taken back from a pool at its next run rather than grown anew by
// append (issue 13: a dozen allocations a run of a busy follower).
func TestLogsFollowerBatchReused(t *testing.T) {
	l := &logWriter{w: &discardWriter{h: http.Header{}}, frame: -1, batch: logBatch, following: true}
	line := []byte("the quick brown fox jumps over the lazy d\n")
	ts := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	run := func() {
		for range 2000 { // ~100 KB of frames: a batch sent, and a part at Idle
			if err := l.Record("stdout", line, ts); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Idle(); err != nil {
			t.Fatal(err)
		}
		if l.buf != nil {
			t.Fatalf("after Idle the follower holds a buffer of %d bytes", cap(l.buf))
		}
	}
	run()
	// The race detector drops a quarter of what is put in a sync.Pool.
	if allocs := testing.AllocsPerRun(20, run); allocs > 1 {
		t.Errorf("a run of a follower made %.1f allocations, want at most 1", allocs)
	}
}
