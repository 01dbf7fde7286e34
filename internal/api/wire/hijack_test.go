package wire

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHijack: the answer header is dockerd's (101 UPGRADED or legacy 200),
// stdin sent together with the request is not lost, and the stream is raw
// both ways with half-close.
func TestHijack(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.50")
		conn, err := Hijack(w, r, StreamMediaType(r.Context(), false), r.URL.Path == "/exec")
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		in, _ := io.ReadAll(conn) // until the client half-closes
		conn.Write([]byte("echo:" + string(in)))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path, upgrade, status string
		apiHeader             bool
	}{
		{"/attach", "Upgrade: tcp\r\nConnection: Upgrade\r\n", "HTTP/1.1 101 UPGRADED", false},
		{"/exec", "Upgrade: tcp\r\nConnection: Upgrade\r\n", "HTTP/1.1 101 UPGRADED", true},
		{"/attach", "", "HTTP/1.1 200 OK", false},
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(conn, "POST "+tc.path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"+tc.upgrade+"\r\nstdin-bytes")
		conn.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(conn)
		status, _ := br.ReadString('\n')
		if strings.TrimSpace(status) != tc.status {
			t.Errorf("%s upgrade=%q: status %q, want %q", tc.path, tc.upgrade, status, tc.status)
		}
		var headers []string
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
			headers = append(headers, strings.TrimSpace(line))
		}
		joined := strings.Join(headers, "|")
		if !strings.Contains(joined, "Content-Type: "+MediaTypeMultiplexedStream) {
			t.Errorf("headers %q lack the multiplexed media type", joined)
		}
		if got := strings.Contains(joined, "Api-Version: 1.50"); got != tc.apiHeader {
			t.Errorf("%s: Api-Version header present = %v, want %v", tc.path, got, tc.apiHeader)
		}
		if strings.Contains(joined, "Content-Length") || strings.Contains(joined, "Transfer-Encoding") {
			t.Errorf("hijacked answer has framing headers: %q", joined)
		}
		body, _ := io.ReadAll(br)
		if string(body) != "echo:stdin-bytes" {
			t.Errorf("stream body = %q, want %q", body, "echo:stdin-bytes")
		}
		conn.Close()
	}
}

func TestStreamMediaType(t *testing.T) {
	old := WithVersion(context.Background(), "1.41")
	if StreamMediaType(old, false) != MediaTypeRawStream || StreamMediaType(context.Background(), false) != MediaTypeMultiplexedStream ||
		StreamMediaType(context.Background(), true) != MediaTypeRawStream {
		t.Error("StreamMediaType does not follow API 1.42's rule")
	}
}
