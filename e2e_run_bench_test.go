package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

// startRunBench starts a daemon with busybox imported and one warm-up run.
func startRunBench(b *testing.B) *skifftest.Daemon {
	b.Helper()
	d := skifftest.Start(b)
	if res := d.DockerIn(b, bytes.NewReader(skifftest.BusyboxTar(b)), "import", "-", "busybox"); res.ExitCode != 0 {
		b.Fatalf("docker import: %v", res)
	}
	if res := d.Docker(b, "run", "--rm", "--network", "none", "busybox", "true"); res.ExitCode != 0 {
		b.Fatalf("docker run: %v", res)
	}
	return d
}

// median of the samples in milliseconds.
func medianMS(s []time.Duration) float64 {
	if len(s) == 0 {
		return 0
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

// BenchmarkCLIRunRm is `docker run --rm busybox true` through the real CLI
// (its start-up included), the headline number, without a network
// and on the default bridge. It reports the median as well as the mean.
func BenchmarkCLIRunRm(b *testing.B) {
	d := startRunBench(b)
	for _, mode := range []string{"none", "default"} {
		b.Run(mode, func(b *testing.B) {
			var samples []time.Duration
			from := len(d.Log())
			for b.Loop() {
				t0 := time.Now()
				if res := d.Docker(b, "run", "--rm", "--network", mode, "busybox", "true"); res.ExitCode != 0 {
					b.Fatalf("docker run: %v", res)
				}
				samples = append(samples, time.Since(t0))
			}
			b.ReportMetric(medianMS(samples), "median-ms")
			reportSpans(b, d.Log()[from:])
		})
	}
}

// BenchmarkContainerLifecycleAPI times create, start, wait and delete over
// the unix socket (keep-alive, as the CLI's one client does) and reports
// each phase's median in milliseconds. The wait is sent after the start
// returned, so it measures the run itself plus exit delivery.
func BenchmarkContainerLifecycleAPI(b *testing.B) {
	d := startRunBench(b)
	for _, mode := range []string{"none", "default"} {
		b.Run(mode, func(b *testing.B) {
			body := `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"` + mode + `"}}`
			var create, start, wait, rm []time.Duration
			from := len(d.Log())
			for b.Loop() {
				t0 := time.Now()
				id := benchCreate(b, d, body)
				t1 := time.Now()
				if r := d.Do(b, "POST", "/v1.50/containers/"+id+"/start", nil, nil); r.Status != 204 {
					b.Fatalf("start: %d %s", r.Status, r.Body)
				}
				t2 := time.Now()
				if r := d.Do(b, "POST", "/v1.50/containers/"+id+"/wait", nil, nil); r.Status != 200 || !strings.Contains(r.Body, `"StatusCode":0`) {
					b.Fatalf("wait: %d %s", r.Status, r.Body)
				}
				t3 := time.Now()
				if r := d.Do(b, "DELETE", "/v1.50/containers/"+id, nil, nil); r.Status != 204 {
					b.Fatalf("delete: %d %s", r.Status, r.Body)
				}
				t4 := time.Now()
				create, start, wait, rm = append(create, t1.Sub(t0)), append(start, t2.Sub(t1)), append(wait, t3.Sub(t2)), append(rm, t4.Sub(t3))
			}
			b.ReportMetric(medianMS(create), "create-ms")
			b.ReportMetric(medianMS(start), "start-ms")
			b.ReportMetric(medianMS(wait), "wait-ms")
			b.ReportMetric(medianMS(rm), "rm-ms")
			reportSpans(b, d.Log()[from:])
		})
	}
}

// BenchmarkContainerRunRmAPI is the daemon's side of `docker run --rm`
// without the CLI: create with AutoRemove, the wait for condition=removed
// sent (and its headers received) before the start, as the CLI does, then
// the start, then the end of that wait. It reports each phase's median;
// removed-ms runs from the start's answer to the wait's, so it holds the
// run itself, the exit's delivery and the removal.
func BenchmarkContainerRunRmAPI(b *testing.B) {
	d := startRunBench(b)
	client := d.Client()
	body := `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none","AutoRemove":true}}`
	var create, start, removed []time.Duration
	from := len(d.Log())
	for b.Loop() {
		t0 := time.Now()
		id := benchCreate(b, d, body)
		t1 := time.Now()
		wait, err := client.Post("http://skiffd/v1.50/containers/"+id+"/wait?condition=removed", "", nil)
		if err != nil || wait.StatusCode != 200 {
			b.Fatalf("wait: %v %v", wait, err)
		}
		t2 := time.Now()
		if r := d.Do(b, "POST", "/v1.50/containers/"+id+"/start", nil, nil); r.Status != 204 {
			b.Fatalf("start: %d %s", r.Status, r.Body)
		}
		t3 := time.Now()
		out, err := io.ReadAll(wait.Body)
		wait.Body.Close()
		if err != nil || !strings.Contains(string(out), `"StatusCode":0`) {
			b.Fatalf("wait: %s %v", out, err)
		}
		t4 := time.Now()
		create, start, removed = append(create, t1.Sub(t0)), append(start, t3.Sub(t2)), append(removed, t4.Sub(t3))
	}
	b.ReportMetric(medianMS(create), "create-ms")
	b.ReportMetric(medianMS(start), "start-ms")
	b.ReportMetric(medianMS(removed), "removed-ms")
	reportSpans(b, d.Log()[from:])
}

// spanLine matches the daemon's debug span records (logged with
// msg="span" name=<phase> dur=<duration>).
var spanLine = regexp.MustCompile(`msg=span name=(\S+) .*?dur=(\S+)`)

// reportSpans reports the median of each phase the daemon logged as a span
// in log, so a benchmark shows where the time goes.
func reportSpans(b *testing.B, log string) {
	spans := map[string][]time.Duration{}
	for _, line := range strings.Split(log, "\n") {
		m := spanLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := time.ParseDuration(m[2])
		if err != nil {
			continue
		}
		spans[m[1]] = append(spans[m[1]], v)
	}
	names := make([]string, 0, len(spans))
	for n := range spans {
		names = append(names, n)
	}
	slices.Sort(names)
	var sb strings.Builder
	for _, n := range names {
		sb.WriteString(n + "=" + strconv.FormatFloat(medianMS(spans[n])*1000, 'f', 0, 64) + "µs ")
	}
	if sb.Len() > 0 {
		b.Logf("daemon spans (median, n=%d): %s", len(spans[names[0]]), sb.String())
	}
}

// TestCLIContainerStartRebuildsNetworkFiles: hostname, hosts and
// resolv.conf are written without fsync, on the promise that every start
// rebuilds them. A container whose files a power loss emptied or lost
// (simulated here: one truncated, two removed) starts with all three
// whole.
func TestCLIContainerStartRebuildsNetworkFiles(t *testing.T) {
	d := startWithBusybox(t)
	id := strings.TrimSpace(dockerOK(t, d, "create", "--name", "files", "--hostname", "h1", "--network", "none", "busybox",
		"sh", "-c", "cat /etc/hostname; grep -q '^127.0.0.1\tlocalhost' /etc/hosts && echo hosts; test -s /etc/resolv.conf && echo resolv"))
	dir := filepath.Join(d.DataRoot, "containers", id)
	if err := os.Truncate(filepath.Join(dir, "hostname"), 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"hosts", "resolv.conf"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	res := d.Docker(t, "start", "-a", "files")
	if want := "h1\nhosts\nresolv\n"; res.ExitCode != 0 || res.Stdout != want {
		t.Fatalf("docker start -a = %v, want stdout %q", res, want)
	}
}

// benchCreate creates a container from the JSON body and returns its ID.
func benchCreate(b *testing.B, d *skifftest.Daemon, body string) string {
	b.Helper()
	r := d.Do(b, "POST", "/v1.50/containers/create", strings.NewReader(body), http.Header{"Content-Type": {"application/json"}})
	var resp struct {
		ID string `json:"Id"`
	}
	if r.Status != 201 || json.Unmarshal([]byte(r.Body), &resp) != nil {
		b.Fatalf("create: %d %s", r.Status, r.Body)
	}
	return resp.ID
}
