package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"skiffd/internal/netlink"
	"skiffd/internal/skifftest"
)

// BenchmarkNetworkRunRm is `docker run --rm busybox true` with no network,
// on the default bridge, on a user-defined network (embedded DNS too) and
// on an IPv6 one, the modes alternating within each iteration so that the
// machine's load weighs on all of them alike: the differences of the
// medians are what networking adds to a run. It logs the median of each
// of the daemon's spans per mode, to show where that goes.
func BenchmarkNetworkRunRm(b *testing.B) {
	d := startNetDaemonB(b)
	dockerB(b, d, "network", "create", "app")
	dockerB(b, d, "network", "create", "--ipv6", "app6")
	modes := []string{"none", "bridge", "app", "app6"}
	for _, mode := range modes {
		dockerB(b, d, "run", "--rm", "--network", mode, "busybox", "true") // warm up
	}
	samples := map[string][]time.Duration{}
	logs := map[string]*strings.Builder{}
	for _, m := range modes {
		logs[m] = &strings.Builder{}
	}
	for b.Loop() {
		for _, mode := range modes {
			from := len(d.Log())
			t0 := time.Now()
			dockerB(b, d, "run", "--rm", "--network", mode, "busybox", "true")
			samples[mode] = append(samples[mode], time.Since(t0))
			logs[mode].WriteString(d.Log()[from:])
		}
	}
	for _, mode := range modes {
		b.ReportMetric(medianMS(samples[mode]), mode+"-ms")
		if mode != "none" {
			// The median of the differences within an iteration: the
			// load varies less within one than across the run.
			diffs := make([]time.Duration, len(samples[mode]))
			for i, s := range samples[mode] {
				diffs[i] = s - samples["none"][i]
			}
			b.ReportMetric(medianMS(diffs), mode+"-adds-ms")
		}
		b.Logf("%s:", mode)
		reportSpans(b, logs[mode].String())
	}
}

// BenchmarkNetworkPublishedTCP measures TCP throughput into a container
// through a published port (DNAT, 127.0.0.1) and the rate of HTTP
// connections through it.
func BenchmarkNetworkPublishedTCP(b *testing.B) {
	d := startNetDaemonB(b)
	dockerB(b, d, "run", "-d", "--name", "sink", "-p", "127.0.0.1:9000:80", "busybox", "sh", "-c", "while true; do nc -l -p 80 >/dev/null; done")
	dockerB(b, d, "run", "-d", "--name", "web", "-p", "127.0.0.1:9001:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	dial := func(addr string) net.Conn {
		var c net.Conn
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := netlink.Do(int(d.Netns.Fd()), func() (err error) {
				c, err = net.DialTimeout("tcp", addr, 2*time.Second)
				return err
			})
			if err == nil {
				return c
			}
			if time.Now().After(deadline) {
				b.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.Run("throughput", func(b *testing.B) {
		c := dial("127.0.0.1:9000")
		defer c.Close()
		buf := make([]byte, 1<<20)
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("connections", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c := dial("127.0.0.1:9001")
			fmt.Fprintf(c, "GET /hostname HTTP/1.0\r\n\r\n")
			var one [4096]byte
			for {
				if _, err := c.Read(one[:]); err != nil {
					break
				}
			}
			c.Close()
		}
	})
}

// BenchmarkNetworkContainerToContainer is TCP throughput between two
// containers on a user-defined network (64 MiB per iteration).
func BenchmarkNetworkContainerToContainer(b *testing.B) {
	d := startNetDaemonB(b)
	dockerB(b, d, "network", "create", "app")
	dockerB(b, d, "run", "-d", "--name", "rx", "--network", "app", "busybox", "sh", "-c", "while true; do nc -l -p 5000 >/dev/null; done")
	dockerB(b, d, "run", "-d", "--name", "tx", "--network", "app", "busybox", "sleep", "1d")
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dockerB(b, d, "exec", "tx", "sh", "-c", "until dd if=/dev/zero bs=64k count=1024 2>/dev/null | nc rx 5000; do sleep 0.02; done")
	}
}

// BenchmarkNetworkRunPublished is `docker run -d -p 80` and `docker rm -f`
// of a container with 50 containers publishing ports already running: the
// nf_tables table changes by the one container's rules (issue 14), so the
// others should not slow it. rules-µs/op is the daemon's own time for the
// rule change at the start (its ports.rules span).
func BenchmarkNetworkRunPublished(b *testing.B) {
	d := startNetDaemonB(b)
	for range 50 {
		dockerB(b, d, "run", "-d", "-p", "80", "-p", "53/udp", "busybox", "sleep", "1d")
	}
	for _, step := range []string{"run", "rm"} {
		b.Run(step, func(b *testing.B) {
			from := len(d.Log())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if step == "rm" {
					b.StopTimer()
				}
				id := strings.TrimSpace(dockerB(b, d, "run", "-d", "-p", "80", "-p", "53/udp", "busybox", "sleep", "1d"))
				if step == "rm" {
					b.StartTimer()
				} else {
					b.StopTimer()
				}
				dockerB(b, d, "rm", "-f", id)
				if step == "run" {
					b.StartTimer()
				}
			}
			b.StopTimer()
			if step == "run" {
				b.ReportMetric(spanMean(d.Log()[from:], "ports.rules")/1e3, "rules-µs/op")
			}
		})
	}
}

// spanMean is the mean duration in ns of the daemon's debug spans called
// name in log.
func spanMean(log, name string) float64 {
	var sum time.Duration
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=span name="+name+" ") {
			continue
		}
		_, v, _ := strings.Cut(line, " dur=")
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil {
			sum += d
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n)
}

func dockerB(b *testing.B, d *skifftest.Daemon, args ...string) string {
	b.Helper()
	res := d.Docker(b, args...)
	if res.ExitCode != 0 {
		b.Fatalf("docker %s: %v", strings.Join(args, " "), res)
	}
	return res.Stdout
}

// startNetDaemonB is startNetDaemon for benchmarks.
func startNetDaemonB(b *testing.B) *skifftest.Daemon {
	b.Helper()
	d := skifftest.StartWith(b, skifftest.Options{OwnNetns: true})
	if res := d.DockerIn(b, bytes.NewReader(skifftest.BusyboxTar(b)), "import", "-", "busybox:latest"); res.ExitCode != 0 {
		b.Fatalf("docker import: %v", res)
	}
	b.Cleanup(func() {
		if ids := strings.Fields(d.Docker(b, "ps", "-aq").Stdout); len(ids) > 0 {
			d.Docker(b, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	return d
}
