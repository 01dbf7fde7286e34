package syslog

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 5, 6, 123456789, time.UTC)
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		cfg  Config
		line string
		want string
	}{
		{Config{Tag: "abc"}, "hello\n", "<30>Dec  7 09:05:06 abc[" + pid + "]: hello\n"},
		{Config{Tag: "abc"}, "partial", "<30>Dec  7 09:05:06 abc[" + pid + "]: partial\n"},
		{Config{Tag: "abc", Format: "rfc3164", Hostname: "h1"}, "x\n", "<30>Dec  7 09:05:06 h1 abc[" + pid + "]: x\n"},
		{Config{Tag: "abc", Format: "rfc5424", Hostname: "h1"}, "x\n", "<30>1 2026-12-07T09:05:06Z h1 abc " + pid + " abc - x\n"},
		{Config{Tag: "abc", Format: "rfc5424micro", Hostname: "h1"}, "x\n", "<30>1 2026-12-07T09:05:06.123456Z h1 abc " + pid + " abc - x\n"},
	} {
		w := &Writer{cfg: tc.cfg, pid: os.Getpid()}
		if got := string(w.Format(30, []byte(tc.line), at)); got != tc.want {
			t.Errorf("Format(%+v, %q) = %q, want %q", tc.cfg, tc.line, got, tc.want)
		}
	}
	w := &Writer{cfg: Config{Tag: "t", Format: "rfc5424", Proto: "tcp+tls", Hostname: "h"}, pid: 7}
	if got := string(w.Format(30, []byte("x"), at)); got != "39 <30>1 2026-12-07T09:05:06Z h t 7 t - x\n" {
		t.Errorf("octet-counted = %q", got)
	}
}

// TestSendUnixgramAndTCP: lines reach a server the test runs, stdout as
// info and stderr as err of the facility, empty lines not at all; a
// stream server that goes away and comes back gets the next line after
// a reconnection.
func TestSendUnixgramAndTCP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	w, err := Dial(Config{Proto: "unixgram", Address: sock, Facility: 16, Tag: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, l := range []struct{ stream, line string }{{"stdout", "out\n"}, {"stderr", "err\n"}, {"stdout", "\n"}, {"stdout", "last\n"}} {
		if err := w.Send(l.stream, []byte(l.line)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1024)
	for _, want := range []string{`^<134>\w{3} [ \d]\d \d\d:\d\d:\d\d web\[\d+\]: out\n$`, `^<131>.* web\[\d+\]: err\n$`, `^<134>.*: last\n$`} {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil || !regexp.MustCompile(want).Match(buf[:n]) {
			t.Errorf("received %q, %v; want %s", buf[:n], err, want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	tw, err := Dial(Config{Proto: "tcp", Address: addr, Facility: 3, Tag: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tw.Send("stdout", []byte("one\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || !regexp.MustCompile(`t\[\d+\]: one\n$`).Match(buf[:n]) {
		t.Errorf("over tcp: %q, %v", buf[:n], err)
	}
	// The server drops the connection; the next lines find it gone and
	// reconnect.
	c.Close()
	// The first write after the peer closed may still be taken by the
	// kernel; the lines that follow find the connection reset.
	accepted := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-accepted:
				return
			default:
				tw.Send("stdout", []byte("two\n"))
			}
		}
	}()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c2, err := ln.Accept()
	close(accepted)
	<-sent
	if err != nil {
		t.Fatalf("no reconnection: %v", err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err = c2.Read(buf)
	if err != nil || !regexp.MustCompile(`: two\n`).Match(buf[:n]) {
		t.Errorf("after reconnecting: %q, %v", buf[:n], err)
	}
	ln.Close()
}
