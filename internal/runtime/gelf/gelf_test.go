package gelf

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMessage(t *testing.T) {
	w := &Writer{cfg: Config{Host: "h1"}, extra: []byte(`"_container_name":"web","_tag":"abc"`)}
	at := time.Date(2026, 12, 7, 9, 5, 6, 123456789, time.UTC)
	got := string(w.Message("stderr", []byte("a \"quoted\" line\n"), at))
	want := `{"version":"1.1","host":"h1","short_message":"a \"quoted\" line","timestamp":1796634306.123,"level":3,"_container_name":"web","_tag":"abc"}`
	if got != want {
		t.Errorf("Message =\n%s\nwant\n%s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Errorf("not JSON: %v", err)
	}
}

// readUDP reads one GELF message from pc: a datagram, or its chunks,
// decompressed with decomp.
func readUDP(t *testing.T, pc net.PacketConn, decomp func(io.Reader) (io.Reader, error)) map[string]any {
	t.Helper()
	buf := make([]byte, 65536)
	var data []byte
	for total, got := -1, 0; total < 0 || got < total; got++ {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		b := buf[:n]
		if len(b) > 12 && b[0] == 0x1e && b[1] == 0x0f {
			if int(b[10]) != got {
				t.Fatalf("chunk %d arrived as %d", got, b[10])
			}
			total = int(b[11])
			data = append(data, b[12:]...)
			continue
		}
		data, total = append(data, b...), 1
	}
	r, err := decomp(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSendUDPAndTCP: a line reaches an endpoint the test runs, gzipped,
// zlibbed, plain or chunked over UDP, NUL-delimited over TCP.
func TestSendUDPAndTCP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	gz := func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
	zl := func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }
	plain := func(r io.Reader) (io.Reader, error) { return r, nil }
	big := strings.Repeat("0123456789abcdef", 2000) // sent plain, so in chunks
	for _, tc := range []struct {
		comp   string
		decomp func(io.Reader) (io.Reader, error)
		line   string
	}{{"gzip", gz, "hello"}, {"zlib", zl, "hello"}, {"none", plain, "hello"}, {"none", plain, big}} {
		w, err := Dial(Config{Proto: "udp", Address: pc.LocalAddr().String(), Compression: tc.comp, Level: 1, Host: "h", Extra: map[string]any{"_tag": "t"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Send("stdout", []byte(tc.line+"\n")); err != nil {
			t.Fatal(err)
		}
		m := readUDP(t, pc, tc.decomp)
		if m["short_message"] != tc.line || m["level"] != float64(6) || m["_tag"] != "t" || m["version"] != "1.1" {
			t.Errorf("%s: received %.200v", tc.comp, m)
		}
		w.Close()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w, err := Dial(Config{Proto: "tcp", Address: ln.Addr().String(), Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w.Send("stderr", []byte("one\n"))
	w.Send("stdout", []byte("\n")) // empty: nothing
	w.Send("stdout", []byte("two\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, want := range []string{"one", "two"} {
		b, err := br.ReadBytes(0)
		var m map[string]any
		if err != nil || json.Unmarshal(b[:len(b)-1], &m) != nil || m["short_message"] != want {
			t.Errorf("over tcp: %q, %v; want %q", b, err, want)
		}
	}
}
