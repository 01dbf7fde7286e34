package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"skiffd/internal/skifftest"
)

// BenchmarkContainerListAPI is GET /containers/json?all=1 from one
// keep-alive client against a real daemon holding 100 created containers
// (issue 13: the list rate). The daemon runs without --debug, which would
// log every request. Each response is read whole; the first is checked.
func BenchmarkContainerListAPI(b *testing.B) {
	d := skifftest.StartWith(b, skifftest.Options{Args: []string{"--debug=false"}})
	if res := d.DockerIn(b, bytes.NewReader(skifftest.BusyboxTar(b)), "import", "-", "busybox"); res.ExitCode != 0 {
		b.Fatalf("docker import: %v", res)
	}
	const n = 100
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
		resp, err := client.Get("http://skiffd/v1.50/containers/json?all=1")
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
	var list []map[string]any
	if err := json.Unmarshal(get(), &list); err != nil || len(list) != n {
		b.Fatalf("list: %d containers, %v; want %d", len(list), err, n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int
	for b.Loop() {
		bytes = len(get())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.SetBytes(int64(bytes))
}
