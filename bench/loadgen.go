//go:build ignore

// Loadgen is the bench scripts' load client and server (standard library
// only). It is excluded from the module's packages by its build tag, so
// TestDependencies and `go vet ./...` never see it; the scripts build it
// with `CGO_ENABLED=0 go build -o loadgen bench/loadgen.go`, a static
// binary that also runs inside the benchmark containers.
//
//	loadgen list  -sock S [-path P] [-d 3s] [-runs 5]   one client, req/s (median of runs)
//	loadgen api   -sock S -image I [-n 20]              create/start/wait/rm ms (medians)
//	loadgen serve [-l :5000]                            TCP sink and connect/answer server
//	loadgen tput  -addr A [-d 3s]                       one TCP stream's MB/s into serve
//	loadgen conn  -addr A [-d 3s] [-c 4]                TCP connections a second to serve
//	loadgen wait  -addr A [-d 30s]                      until serve answers at A
//
// Each measurement prints one line "name value unit" (and the runs it is
// the median of) for the scripts to read.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen list|api|serve|tput|conn [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "list":
		err = list(args)
	case "api":
		err = api(args)
	case "serve":
		err = serve(args)
	case "tput":
		err = tput(args)
	case "conn":
		err = conn(args)
	case "wait":
		err = waitServe(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// unixClient returns an HTTP client that keeps one connection to the
// daemon's unix socket alive, as the docker CLI does.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 4,
	}}
}

// median returns the middle of xs (the mean of the two middle ones for an
// even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func fmtRuns(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, " ")
}

// list sends GET path one request after another on one kept-alive
// connection for d, runs times, and prints the median requests a second.
func list(args []string) error {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	sock := fs.String("sock", "", "daemon unix socket")
	path := fs.String("path", "/containers/json?all=1", "request path")
	d := fs.Duration("d", 3*time.Second, "duration of one run")
	runs := fs.Int("runs", 5, "runs")
	fs.Parse(args)
	c := unixClient(*sock)
	get := func() (int, error) {
		resp, err := c.Get("http://docker" + *path)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", *path, resp.Status)
		}
		return int(n), err
	}
	size, err := get() // warm up; also reports the answer's size
	if err != nil {
		return err
	}
	var rates []float64
	for range *runs {
		n := 0
		start := time.Now()
		for time.Since(start) < *d {
			if _, err := get(); err != nil {
				return err
			}
			n++
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds())
	}
	fmt.Printf("list %.0f req/s (answer %d bytes; runs %s)\n", median(rates), size, fmtRuns(rates))
	return nil
}

// api creates, starts, waits for and removes n containers running `true`
// through the API, one after another, and prints each step's median
// latency. Wait is measured from the start answer to the wait answer: the
// time the daemon takes to see and report the exit. With several sockets
// (comma-separated) it measures each daemon in turn, container by
// container in an order shuffled anew each round, so that load and drift
// on the host hit every daemon alike, and prints one line per socket, in
// the order given.
func api(args []string) error {
	fs := flag.NewFlagSet("api", flag.ExitOnError)
	socks := fs.String("sock", "", "daemon unix socket(s), comma-separated")
	image := fs.String("image", "", "image with /bin/true")
	n := fs.Int("n", 20, "containers")
	pause := fs.Duration("pause", 0, "idle time before each round (a start after the daemons went quiet and gave their memory back)")
	fs.Parse(args)
	var daemons []*apiRun
	for _, sock := range strings.Split(*socks, ",") {
		daemons = append(daemons, &apiRun{c: unixClient(sock), image: *image})
	}
	for i := range *n + 1 {
		time.Sleep(*pause)
		for _, j := range rand.Perm(len(daemons)) {
			if err := daemons[j].once(i == 0); err != nil {
				return err
			}
		}
	}
	for _, d := range daemons {
		total := median(d.create) + median(d.start) + median(d.wait) + median(d.rm)
		fmt.Printf("api %.1f / %.1f / %.1f / %.1f (sum %.1f) ms, medians of %d\n",
			median(d.create), median(d.start), median(d.wait), median(d.rm), total, *n)
	}
	return nil
}

// apiRun is one daemon's part of api.
type apiRun struct {
	c                       *http.Client
	image                   string
	create, start, wait, rm []float64
}

// once creates, starts, waits for and removes one container; warm runs
// are not counted.
func (a *apiRun) once(warm bool) error {
	c := a.c
	do := func(method, path string, body any, out any) error {
		var r io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, "http://docker"+path, r)
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	cfg := map[string]any{
		"Image":      a.image,
		"Cmd":        []string{"true"},
		"HostConfig": map[string]any{"NetworkMode": "none"},
	}
	ms := func(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
	{
		var created struct{ Id string }
		t := time.Now()
		if err := do("POST", "/containers/create", cfg, &created); err != nil {
			return err
		}
		tc := ms(t)
		t = time.Now()
		if err := do("POST", "/containers/"+created.Id+"/start", nil, nil); err != nil {
			return err
		}
		ts := ms(t)
		t = time.Now()
		var status struct{ StatusCode int }
		if err := do("POST", "/containers/"+created.Id+"/wait", nil, &status); err != nil {
			return err
		}
		tw := ms(t)
		t = time.Now()
		if err := do("DELETE", "/containers/"+created.Id, nil, nil); err != nil {
			return err
		}
		tr := ms(t)
		if warm {
			return nil // the first run warms caches
		}
		a.create, a.start, a.wait, a.rm = append(a.create, tc), append(a.start, ts), append(a.wait, tw), append(a.rm, tr)
	}
	return nil
}

// serve accepts TCP connections. The client's first byte picks the mode:
// 'T' reads everything until the client half-closes, then answers the
// byte count (8 bytes, big endian); 'C' answers one byte and closes first,
// so TIME_WAIT stays on the server side and the client never runs out of
// ports.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("l", ":5000", "listen address")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var mode [1]byte
			if _, err := io.ReadFull(c, mode[:]); err != nil {
				return
			}
			switch mode[0] {
			case 'T':
				n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(n))
				c.Write(b[:])
			case 'C':
				c.Write([]byte{'c'})
			}
		}()
	}
}

// tput writes to serve for d, half-closes and waits for serve's byte
// count: the rate is of bytes that arrived, not bytes buffered.
func tput(args []string) error {
	fs := flag.NewFlagSet("tput", flag.ExitOnError)
	addr := fs.String("addr", "", "serve's address")
	d := fs.Duration("d", 3*time.Second, "duration")
	fs.Parse(args)
	c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	buf[0] = 'T'
	start := time.Now()
	if _, err := c.Write(buf[:1]); err != nil {
		return err
	}
	for time.Since(start) < *d {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var b [8]byte
	if _, err := io.ReadFull(bufio.NewReader(c), b[:]); err != nil {
		return fmt.Errorf("reading the byte count: %w", err)
	}
	n := binary.BigEndian.Uint64(b[:])
	fmt.Printf("tput %.0f MB/s (%d bytes in %.2fs)\n", float64(n)/time.Since(start).Seconds()/1e6, n, time.Since(start).Seconds())
	return nil
}

// conn opens connections to serve from c clients for d; each sends one
// byte and reads the answer and serve's close, so a connection counts only
// once it reached serve (through a proxy too).
func conn(args []string) error {
	fs := flag.NewFlagSet("conn", flag.ExitOnError)
	addr := fs.String("addr", "", "serve's address")
	d := fs.Duration("d", 3*time.Second, "duration")
	clients := fs.Int("c", 4, "concurrent clients")
	fs.Parse(args)
	var total atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < *d {
				if err := oneConn(*addr); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("conn %.0f conn/s (%d in %.2fs, %d clients)\n", float64(total.Load())/time.Since(start).Seconds(), total.Load(), time.Since(start).Seconds(), *clients)
	return nil
}

// waitServe polls serve at addr until it answers (through a published
// port, the proxy or the DNAT rule must be in place too) or d has passed.
func waitServe(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	addr := fs.String("addr", "", "serve's address")
	d := fs.Duration("d", 30*time.Second, "deadline")
	fs.Parse(args)
	deadline := time.Now().Add(*d)
	for {
		err := oneConn(*addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer at %s after %v: %w", *addr, *d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func oneConn(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'C'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) {
		return fmt.Errorf("waiting for the server's close: %v", err)
	}
	return nil
}
