package wire

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer collects the server's error log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProgressFinishKeepsConnectionUsable: a progress stream whose handler
// stops reading the body early (a tar reader stops at the end-of-archive
// blocks) must leave the keep-alive connection usable for the next request,
// without net/http's "invalid concurrent Body.Read call" panic.
func TestProgressFinishKeepsConnectionUsable(t *testing.T) {
	var logBuf lockedBuffer
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := NewProgress(w)
		defer p.Finish(r)
		p.Start()
		buf := make([]byte, 10)
		io.ReadFull(r.Body, buf)
		p.Status("read " + string(buf))
	}))
	srv.Config.ErrorLog = log.New(&logBuf, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)

	client := srv.Client()
	body := strings.Repeat("0123456789", 10000)
	for i := 0; i < 20; i++ {
		res, err := client.Post(srv.URL, "application/x-tar", strings.NewReader(body))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("request %d: reading the answer: %v", i, err)
		}
		if want := `{"status":"read 0123456789"}` + "\r\n"; string(got) != want {
			t.Fatalf("request %d answered %q, want %q", i, got, want)
		}
	}
	srv.Close()
	if s := logBuf.String(); strings.Contains(s, "panic") {
		t.Fatalf("the server panicked:\n%s", s)
	}
}
