// Package metrics serves the daemon's metrics in the Prometheus text
// exposition format, version 0.0.4, written here by hand (no client
// library: skiffd is standard library only). Issue 12, item 4.
//
//	reg := metrics.New()
//	reg.Collect(func(w *metrics.Writer) { w.Gauge("engine_containers", "...", metrics.L("state", "running"), 3) })
//	handler = audit.Middleware(logger, reg.ObserveRequest)(handler)
//	http.Serve(ln, reg.Handler())
//
// API request counts and latencies are kept here; everything else is read
// at scrape time by the collectors the daemon registers.
package metrics

import (
	"bytes"
	"math"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the API latency
// histograms (Prometheus' defaults).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type reqKey struct {
	pattern string
	status  int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

// Registry holds the request metrics and the scrape-time collectors.
type Registry struct {
	mu         sync.Mutex
	requests   map[reqKey]uint64
	latency    map[string]*histogram
	collectors []func(*Writer)
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{requests: map[reqKey]uint64{}, latency: map[string]*histogram{}}
}

// Collect registers f to add samples at every scrape.
func (r *Registry) Collect(f func(*Writer)) {
	r.mu.Lock()
	r.collectors = append(r.collectors, f)
	r.mu.Unlock()
}

// ObserveRequest counts one API request. pattern is the route pattern
// ("GET /containers/{id}/json"), "" for an unrouted request.
func (r *Registry) ObserveRequest(pattern string, status int, d time.Duration) {
	if pattern == "" {
		pattern = "unmatched"
	}
	sec := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets, sec)
	r.mu.Lock()
	r.requests[reqKey{pattern, status}]++
	h := r.latency[pattern]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		r.latency[pattern] = h
	}
	h.counts[i]++
	h.sum += sec
	h.count++
	r.mu.Unlock()
}

// Handler serves GET /metrics.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(r.Expose())
	})
	return mux
}

// Expose renders every metric.
func (r *Registry) Expose() []byte {
	w := &Writer{}
	r.mu.Lock()
	keys := make([]reqKey, 0, len(r.requests))
	for k := range r.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b reqKey) int {
		if c := strings.Compare(a.pattern, b.pattern); c != 0 {
			return c
		}
		return a.status - b.status
	})
	w.header("engine_daemon_api_requests_total", "API requests by route pattern and status code.", "counter")
	for _, k := range keys {
		w.sample("engine_daemon_api_requests_total", []string{"route", k.pattern, "code", strconv.Itoa(k.status)}, float64(r.requests[k]))
	}
	patterns := make([]string, 0, len(r.latency))
	for p := range r.latency {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	const hn = "engine_daemon_api_request_duration_seconds"
	w.header(hn, "API request latency by route pattern.", "histogram")
	for _, p := range patterns {
		h := r.latency[p]
		var cum uint64
		for i, le := range latencyBuckets {
			cum += h.counts[i]
			w.sample(hn+"_bucket", []string{"route", p, "le", formatFloat(le)}, float64(cum))
		}
		w.sample(hn+"_bucket", []string{"route", p, "le", "+Inf"}, float64(h.count))
		w.sample(hn+"_sum", []string{"route", p}, h.sum)
		w.sample(hn+"_count", []string{"route", p}, float64(h.count))
	}
	collectors := slices.Clone(r.collectors)
	r.mu.Unlock()

	goRuntime(w)
	for _, c := range collectors {
		c(w)
	}
	return w.buf.Bytes()
}

// goRuntime adds goroutines, threads and memory from runtime/metrics: the
// classes that say where an idle daemon's or an open stream's memory goes
// (issue 13): heap objects, goroutine stacks, heap pages held but unused,
// pages given back to the system, and the heap goal of the next collection.
func goRuntime(w *Writer) {
	w.Gauge("go_goroutines", "Number of goroutines that currently exist.", nil, float64(runtime.NumGoroutine()))
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/sched/threads/total:threads"},
	}
	metrics.Read(samples)
	val := func(s metrics.Sample) float64 {
		if s.Value.Kind() == metrics.KindUint64 {
			return float64(s.Value.Uint64())
		}
		return 0
	}
	w.Gauge("go_memory_total_bytes", "All memory mapped by the Go runtime.", nil, val(samples[0]))
	w.Gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", nil, val(samples[1]))
	w.Counter("go_gc_cycles_total", "Completed GC cycles.", nil, val(samples[2]))
	w.Gauge("go_memstats_stack_inuse_bytes", "Bytes of goroutine stacks.", nil, val(samples[3]))
	w.Gauge("go_memstats_heap_unused_bytes", "Bytes of heap spans in use but not holding objects.", nil, val(samples[4]))
	w.Gauge("go_memstats_heap_free_bytes", "Bytes of free heap pages not yet returned to the system.", nil, val(samples[5]))
	w.Gauge("go_memstats_heap_released_bytes", "Bytes of free heap pages returned to the system.", nil, val(samples[6]))
	w.Gauge("go_memstats_next_gc_bytes", "Heap size at which the next collection starts.", nil, val(samples[7]))
	w.Gauge("go_threads", "Number of OS threads the runtime created.", nil, val(samples[8]))
}

// Labels is a flat list of name, value pairs.
type Labels []string

// L makes Labels from name, value pairs.
func L(pairs ...string) Labels { return pairs }

// Writer accumulates exposition text. A metric family must be written in
// one go: header, then all its samples.
type Writer struct {
	buf bytes.Buffer
}

func (w *Writer) header(name, help, typ string) {
	w.buf.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n# TYPE " + name + " " + typ + "\n")
}

func (w *Writer) sample(name string, labels []string, v float64) {
	w.buf.WriteString(name)
	if len(labels) > 0 {
		w.buf.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			w.buf.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
		}
		w.buf.WriteByte('}')
	}
	w.buf.WriteString(" " + formatFloat(v) + "\n")
}

// Gauge writes a gauge family with one sample per labels/value pair:
// args alternate Labels and float64.
func (w *Writer) Gauge(name, help string, labels Labels, v float64, more ...any) {
	w.family(name, help, "gauge", labels, v, more)
}

// Counter writes a counter family, like Gauge.
func (w *Writer) Counter(name, help string, labels Labels, v float64, more ...any) {
	w.family(name, help, "counter", labels, v, more)
}

func (w *Writer) family(name, help, typ string, labels Labels, v float64, more []any) {
	w.header(name, help, typ)
	w.sample(name, labels, v)
	for i := 0; i+1 < len(more); i += 2 {
		w.sample(name, more[i].(Labels), more[i+1].(float64))
	}
}

// The escapers are built once: a strings.Replacer is safe for concurrent
// use, and building one per help text or label value made each scrape
// allocate some 0.5 MB (a collection every few scrapes of an idle daemon).
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
