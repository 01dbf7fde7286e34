package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// BenchmarkContainerListAPI is GET /containers/json?all=1 from one
// keep-alive client against a real daemon holding 100 created containers
// (issue 13: the list rate). The daemon runs without --debug, which would
// log every request. Each response is read whole; the first is checked.
func BenchmarkContainerListAPI(b *testing.B) {
	benchList(b, "/v1.50/containers/json?all=1", n)
}

// BenchmarkContainerListAPIFloor is BenchmarkContainerListAPI's set-up
// answering GET /_ping instead: what any request costs the daemon (HTTP,
// middlewares, the Go scheduler), which the list cannot go below.
func BenchmarkContainerListAPIFloor(b *testing.B) {
	benchList(b, "/_ping", 0)
}

// benchList is one keep-alive client sending GET path to a daemon holding
// 100 containers; the first answer must list want of them (0: not a list).
func benchList(b *testing.B, path string, want int) {
	d := skifftest.StartWith(b, skifftest.Options{Args: []string{"--debug=false"}})
	if res := d.DockerIn(b, bytes.NewReader(skifftest.BusyboxTar(b)), "import", "-", "busybox"); res.ExitCode != 0 {
		b.Fatalf("docker import: %v", res)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	for i := range n {
		body := `{"Image":"busybox","Cmd":["true"],"Labels":{"i":"` + strconv.Itoa(i) + `"},"HostConfig":{"NetworkMode":"none"}}`
		if r := d.Do(b, "POST", "/v1.50/containers/create?name=c"+strconv.Itoa(i), strings.NewReader(body), hdr); r.Status != 201 {
			b.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	b.Cleanup(func() {
		for i := range n {
			d.Do(b, "DELETE", "/v1.50/containers/c"+strconv.Itoa(i), nil, nil)
		}
	})
	tr := &http.Transport{DialContext: d.Client().Transport.(*http.Transport).DialContext, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func() []byte {
		resp, err := client.Get("http://skiffd" + path)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("list: %d %v", resp.StatusCode, err)
		}
		return body
	}
	if want > 0 {
		var list []map[string]any
		if err := json.Unmarshal(get(), &list); err != nil || len(list) != want {
			b.Fatalf("list: %d containers, %v; want %d", len(list), err, want)
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU(b, d.Pid())
	b.ResetTimer()
	var bytes int
	for b.Loop() {
		bytes = len(get())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	// The daemon's CPU time per request is steadier than req/s on a
	// machine shared with other work.
	b.ReportMetric(float64((processCPU(b, d.Pid())-cpu0).Microseconds())/float64(b.N), "daemon-cpu-µs/req")
	b.SetBytes(int64(bytes))
}

// n is how many containers the list benchmarks create.
const n = 100

// processCPU is the user and system CPU time process pid has used, from
// /proc/pid/stat (in clock ticks of 10 ms: USER_HZ is 100 on Linux).
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start
	// at the state, field 3; utime and stime are fields 14 and 15.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
