package metrics

import (
	"runtime"
	"testing"
	"time"

	"skiffd/internal/metrics/promtext"
)

// TestExposition renders requests with awkward route labels and a
// collector, and checks the text with the strict parser.
func TestExposition(t *testing.T) {
	r := New()
	r.ObserveRequest("GET /containers/{id}/json", 200, 3*time.Millisecond)
	r.ObserveRequest("GET /containers/{id}/json", 404, 700*time.Millisecond)
	r.ObserveRequest(`odd "route" \ with`+"\nnewline", 500, 20*time.Second)
	r.ObserveRequest("", 404, time.Millisecond)
	r.Collect(func(w *Writer) {
		w.Gauge("engine_daemon_container_states_containers", "Containers by state.", L("state", "running"), 2, L("state", "stopped"), 1.0)
	})
	fams, err := promtext.Parse(string(r.Expose()))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Expose())
	}
	req := fams["engine_daemon_api_requests_total"]
	if req == nil || req.Type != "counter" || len(req.Samples) != 4 {
		t.Fatalf("requests family = %+v", req)
	}
	found := false
	for _, s := range req.Samples {
		if s.Labels["route"] == `odd "route" \ with`+"\nnewline" && s.Labels["code"] == "500" && s.Value == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("escaped route label did not round-trip: %+v", req.Samples)
	}
	h := fams["engine_daemon_api_request_duration_seconds"]
	var inf, le001 float64
	for _, s := range h.Samples {
		if s.Labels["route"] == "GET /containers/{id}/json" && s.Name == h.Name+"_bucket" {
			switch s.Labels["le"] {
			case "+Inf":
				inf = s.Value
			case "0.005":
				le001 = s.Value
			}
		}
	}
	if inf != 2 || le001 != 1 {
		t.Errorf("histogram +Inf=%v le=0.005 %v, want 2 and 1", inf, le001)
	}
	if fams["go_goroutines"] == nil || fams["go_memory_total_bytes"].Samples[0].Value <= 0 {
		t.Errorf("runtime metrics missing")
	}
}

// TestParserRejects makes sure the parser is strict where it matters.
func TestParserRejects(t *testing.T) {
	for name, text := range map[string]string{
		"no TYPE":       "# HELP a x\na 1\n",
		"bad escape":    "# HELP a x\n# TYPE a gauge\na{l=\"\\q\"} 1\n",
		"non monotonic": "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"inf != count":  "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
		"split family":  "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",
		"bad value":     "# HELP a x\n# TYPE a gauge\na one\n",
	} {
		if _, err := promtext.Parse(text); err == nil {
			t.Errorf("%s: Parse accepted %q", name, text)
		}
	}
}

// TestExposeAllocatesLittle: a scrape of a daemon that has served a few
// routes allocates little beyond its text (each help text and label value
// built a strings.Replacer before: ~0.5 MB a scrape of skiffd, a collection
// every few scrapes of an idle daemon, issue 13).
func TestExposeAllocatesLittle(t *testing.T) {
	r := New()
	for _, route := range []string{"GET /containers/json", "GET /containers/{id}/json", "POST /containers/create", "GET /_ping"} {
		r.ObserveRequest(route, 200, time.Millisecond)
	}
	r.Collect(func(w *Writer) {
		w.Gauge("engine_daemon_container_states_containers", "Containers by state.", L("state", "running"), 2, L("state", "stopped"), 1.0)
	})
	size := len(r.Expose())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	const n = 20
	for range n {
		r.Expose()
	}
	runtime.ReadMemStats(&ms)
	if per := (ms.TotalAlloc - before) / n; per > uint64(16*size) {
		t.Errorf("a scrape of %d bytes of text allocated %d bytes, want at most %d", size, per, 16*size)
	}
}
