package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"skiffd/internal/skifftest"
)

// daemonGauge reads one unlabelled gauge from the daemon's /metrics.
func daemonGauge(t *testing.T, metricsAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not in /metrics", name)
	return 0
}

// TestE2EStreamGoroutines: an open stream costs the daemon a fixed, small
// number of goroutines, each with a stack it keeps for as long as the
// stream is open (issue 13, memory per stream). Every stream has net/http's
// two (the connection's and its background read); a logs follower adds one
// for its inotify watch and nothing for waiting on the container's exit;
// events and stats add none.
func TestE2EStreamGoroutines(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--metrics-addr", "127.0.0.1:0"}})
	removeAllAtEnd(t, d)
	importBusybox(t, d)
	metricsAddr := logAddr(t, d, "metrics listen", "")
	dockerOK(t, d, "run", "-d", "--name", "talker", "--network", "none", "busybox", "sh", "-c", "while :; do echo tick; sleep 1; done")

	const n = 10
	for _, tc := range []struct {
		kind, path string
		perStream  int
	}{
		{"logs follow", "/v1.50/containers/talker/logs?stdout=1&follow=1&tail=0", 3},
		{"events", "/v1.50/events", 2},
		{"stats", "/v1.50/containers/talker/stats", 2},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			base := daemonGauge(t, metricsAddr, "go_goroutines")
			ctx, cancel := context.WithCancel(context.Background())
			client := &http.Client{Transport: &http.Transport{DialContext: d.Client().Transport.(*http.Transport).DialContext}}
			var bodies []io.Closer
			defer func() {
				cancel()
				for _, b := range bodies {
					b.Close()
				}
				// The streams' goroutines end with them.
				waitFor(t, "stream goroutines to end", func() bool {
					return daemonGauge(t, metricsAddr, "go_goroutines") <= base
				})
			}()
			for range n {
				req, err := http.NewRequestWithContext(ctx, "GET", "http://skiffd"+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: status %d", tc.path, resp.StatusCode)
				}
			}
			// Each stream answered its headers: what it waits on was set
			// up before (a follower's wait for the container's exit
			// included); its goroutines (net/http's two, and a follower's
			// inotify watch) start soon after if not before.
			min := float64(2 * n)
			if tc.perStream > 2 {
				min = float64(tc.perStream * n)
			}
			var got float64
			waitFor(t, "the streams' goroutines", func() bool {
				got = daemonGauge(t, metricsAddr, "go_goroutines") - base
				return got >= min
			})
			if per := got / n; per > float64(tc.perStream) {
				t.Errorf("%d %s streams: %.0f more goroutines (%.1f a stream), want at most %d a stream", n, tc.kind, got, per, tc.perStream)
			}
		})
	}
}
