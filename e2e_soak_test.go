package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// daemonUsage is what the daemon holds: goroutines and open fds as its
// /info reports them (dockerd's NGoroutines and NFd), and its resident
// memory from /proc.
type daemonUsage struct {
	goroutines, fds int
	rssKiB          int
}

func (u daemonUsage) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, RSS %d KiB", u.goroutines, u.fds, u.rssKiB)
}

// fdKinds counts pid's open files by what they are (socket, pipe,
// anon_inode:..., or the path), for a failure message.
func fdKinds(pid int) map[string]int {
	kinds := map[string]int{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	sockets := socketKinds(pid)
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if k, rest, ok := strings.Cut(l, ":["); ok {
			l = k
			if k == "socket" {
				if kind, ok := sockets[strings.TrimSuffix(rest, "]")]; ok {
					l = "socket " + kind
				}
			}
		}
		kinds[l]++
	}
	return kinds
}

// socketKinds names the sockets of pid's network namespace by inode, for
// telling what a daemon's leftover sockets are: unix ones with their
// state and bound path (a client end has none), netlink ones, TCP ones.
func socketKinds(pid int) map[string]string {
	out := map[string]string{}
	read := func(table string, inodeCol int, name func(f []string) string) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return
		}
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) <= inodeCol {
				continue
			}
			out[f[inodeCol]] = name(f)
		}
	}
	read("unix", 6, func(f []string) string {
		path := ""
		if len(f) > 7 {
			path = " " + f[7]
		}
		return "unix st=" + f[5] + path
	})
	read("netlink", 9, func(f []string) string { return "netlink proto=" + f[1] })
	read("tcp", 9, func(f []string) string { return "tcp st=" + f[3] })
	return out
}

func usage(t *testing.T, d *skifftest.Daemon) daemonUsage {
	t.Helper()
	r := d.Do(t, "GET", "/v1.50/info", nil, nil)
	var info struct{ NGoroutines, NFd int }
	if err := json.Unmarshal([]byte(r.Body), &info); err != nil || r.Status != 200 {
		t.Fatalf("info: %d %s", r.Status, r.Body)
	}
	u := daemonUsage{goroutines: info.NGoroutines, fds: info.NFd}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			u.rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return u
}

// openAndDrop sends one raw request, waits for the answer's header (the
// stream has begun) and hangs up.
func openAndDrop(d *skifftest.Daemon, method, path string, upgrade bool) error {
	c, err := net.Dial("unix", d.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := method + " " + path + " HTTP/1.1\r\nHost: skiffd\r\n"
	if upgrade {
		req += "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s %s: %v", method, path, err)
	}
	want := "200"
	if upgrade {
		want = "101"
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != want {
		return fmt.Errorf("%s %s: %q, want %s", method, path, status, want)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if l == "\r\n" {
			return nil
		}
	}
}

// TestSoakDroppedStreams: clients that open a stream and go away leave
// nothing behind in the daemon (issue 9, item 6). 1,000 of them open and
// drop attach (to a created container and to a running one that writes
// nothing), logs -f, events and stats; afterwards the daemon's goroutines,
// fds and memory return to what they were before.
func TestSoakDroppedStreams(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "create", "--name", "idle", "busybox", "sleep", "1000")
	dockerOK(t, d, "run", "-d", "--name", "silent", "busybox", "sleep", "1000")

	kinds := []struct {
		method, path string
		upgrade      bool
	}{
		{"POST", "/v1.50/containers/idle/attach?stream=1&stdout=1&stderr=1", true},
		{"POST", "/v1.50/containers/silent/attach?stream=1&stdout=1&stderr=1", true},
		{"GET", "/v1.50/containers/silent/logs?follow=1&stdout=1&stderr=1", false},
		{"GET", "/v1.50/events", false},
		{"GET", "/v1.50/containers/silent/stats?stream=1", false},
	}
	const concurrency = 50
	round := func(n int) {
		t.Helper()
		sem := make(chan struct{}, concurrency)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for i := range n {
			k := kinds[i%len(kinds)]
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := openAndDrop(d, k.method, k.path, k.upgrade); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d of %d clients failed, first: %v", len(errs), n, errs[0])
		}
	}
	var base daemonUsage
	settle := func(what string, accept func(u daemonUsage) bool) daemonUsage {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			u := usage(t, d)
			if accept(u) {
				return u
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the daemon holds %v, baseline %v; its fds: %v", what, u, base, fdKinds(d.Pid()))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var prev daemonUsage
	base = settle("settling before the soak", func(u daemonUsage) bool {
		stable := u.goroutines == prev.goroutines && u.fds == prev.fds
		prev = u
		return stable
	})
	if n, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Pid())); err != nil || abs(len(n)-base.fds) > 5 {
		t.Errorf("/info NFd = %d, /proc/%d/fd holds %d", base.fds, d.Pid(), len(n))
	}
	t.Logf("baseline: %v", base)
	// The first half lets the daemon reach the size such a burst needs
	// (buffers, the heap the runtime keeps, the event history's share):
	// memory is compared with what it holds after it; goroutines and fds
	// with what it held before any client came.
	round(500)
	t.Logf("after 500 clients: %v", usage(t, d))
	base.rssKiB = settle("after 500 dropped streams", func(u daemonUsage) bool {
		return u.goroutines <= base.goroutines+10 && u.fds <= base.fds+10
	}).rssKiB

	start := time.Now()
	round(500)
	t.Logf("500 more clients in %v; right after: %v", time.Since(start), usage(t, d))
	end := settle("after 500 more dropped streams", func(u daemonUsage) bool {
		return u.goroutines <= base.goroutines+5 && u.fds <= base.fds+5 && u.rssKiB <= base.rssKiB+4*1024
	})
	t.Logf("settled: %v", end)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestDroppedExecStreams: clients that start an exec of a silent process
// and go away (after half-closing, as the docker CLI does without -i) no
// longer hold the exec's stream in the daemon; the processes run on, as
// with dockerd.
func TestDroppedExecStreams(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "silent", "busybox", "sleep", "1000")
	const n = 20
	hdr := map[string][]string{"Content-Type": {"application/json"}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var ids []string
	for range n {
		r := d.Do(t, "POST", "/v1.50/containers/silent/exec", strings.NewReader(`{"Cmd":["tail","-f","/dev/null"],"AttachStdout":true,"AttachStderr":true}`), hdr)
		var resp struct{ Id string }
		if r.Status != 201 || json.Unmarshal([]byte(r.Body), &resp) != nil {
			t.Fatalf("exec create: %d %s", r.Status, r.Body)
		}
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		body := `{"Detach":false,"Tty":false}`
		fmt.Fprintf(c, "POST /v1.50/exec/%s/start HTTP/1.1\r\nHost: skiffd\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n%s", resp.Id, len(body), body)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(status, " 101 ") {
			t.Fatalf("exec start: %q %v", status, err)
		}
		c.(*net.UnixConn).CloseWrite()
		ids = append(ids, resp.Id)
	}
	// Running is true from the start request on (as in dockerd), before
	// the process and its stream are set up; the pid is there once they
	// are, and only then does the count below hold every stream.
	waitFor(t, "every exec to have started", func() bool {
		for _, id := range ids {
			var m struct {
				Running bool
				Pid     int
			}
			r := d.Do(t, "GET", "/v1.50/exec/"+id+"/json", nil, nil)
			if json.Unmarshal([]byte(r.Body), &m) != nil || !m.Running || m.Pid == 0 {
				return false
			}
		}
		return true
	})
	open := usage(t, d)
	t.Logf("with %d exec streams open: %v", n, open)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// Each stream held at least a goroutine and two fds (the client's
	// connection and the one to the shim).
	deadline := time.Now().Add(20 * time.Second)
	for {
		u := usage(t, d)
		if u.goroutines <= open.goroutines-n && u.fds <= open.fds-2*n {
			t.Logf("after the clients left: %v", u)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the clients left the daemon holds %v; with them %v", u, open)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range ids {
		if body := d.Do(t, "GET", "/v1.50/exec/"+id+"/json", nil, nil).Body; !strings.Contains(body, `"Running":true`) {
			t.Errorf("exec %s after its client left: %s", id, body)
		}
	}
}
