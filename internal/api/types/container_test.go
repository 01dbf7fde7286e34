package types

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"
)

// TestCreateRequestDecode decodes the body the docker CLI sent for
// `docker run -d --name trace-opts --restart unless-stopped --memory 64m
// --cpus 0.5 --pids-limit 50 --label trace=1 --hostname trace-host busybox
// sleep 300` (shared/api-traces/run-options.txt), which carries fields this
// package does not model (GwPriority, DNSNames...), and checks what the
// engine relies on.
func TestCreateRequestDecode(t *testing.T) {
	body, err := os.ReadFile("testdata/create-run-options.json")
	if err != nil {
		t.Fatal(err)
	}
	var req CreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if req.Config == nil || req.HostConfig == nil || req.NetworkingConfig == nil {
		t.Fatalf("decoded %+v: want Config, HostConfig and NetworkingConfig", req)
	}
	hc := req.HostConfig
	checks := []struct {
		name      string
		got, want any
	}{
		{"Hostname", req.Hostname, "trace-host"},
		{"Image", req.Image, "busybox"},
		{"Cmd", []string(req.Cmd), []string{"sleep", "300"}},
		{"Entrypoint", req.Entrypoint == nil, true},
		{"Labels[trace]", req.Labels["trace"], "1"},
		{"RestartPolicy", hc.RestartPolicy, RestartPolicy{Name: "unless-stopped"}},
		{"Memory", hc.Memory, int64(64 << 20)},
		{"NanoCpus", hc.NanoCPUs, int64(500000000)},
		{"PidsLimit", *hc.PidsLimit, int64(50)},
		{"MemorySwappiness", *hc.MemorySwappiness, int64(-1)},
		{"OomKillDisable", *hc.OomKillDisable, false},
		{"NetworkMode", hc.NetworkMode, "default"},
		{"ConsoleSize", hc.ConsoleSize, [2]uint{0, 0}},
		{"AutoRemove", hc.AutoRemove, false},
		{"Init", hc.Init == nil, true},
		{"EndpointsConfig", slices.Collect(maps.Keys(req.NetworkingConfig.EndpointsConfig)), []string{"default"}},
	}
	for _, c := range checks {
		g, _ := json.Marshal(c.got)
		w, _ := json.Marshal(c.want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s = %s, want %s", c.name, g, w)
		}
	}
}

func TestCreateRequestEmptyConfig(t *testing.T) {
	var req CreateRequest
	if err := json.Unmarshal([]byte(`{"HostConfig":{"Memory":1}}`), &req); err != nil {
		t.Fatal(err)
	}
	if req.Config != nil {
		t.Errorf("Config = %+v, want nil for a body without Config fields", req.Config)
	}
	if req.HostConfig == nil || req.HostConfig.Memory != 1 {
		t.Errorf("HostConfig = %+v, want Memory 1", req.HostConfig)
	}
}

func TestStrSlice(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`{"Cmd":["a","b c"]}`, []string{"a", "b c"}},
		{`{"Cmd":"date"}`, []string{"date"}},
		{`{"Cmd":null}`, nil},
		{`{"Cmd":[]}`, []string{}},
		{`{}`, nil},
	}
	for _, tt := range tests {
		var c Config
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if !slices.Equal(c.Cmd, tt.want) || (c.Cmd == nil) != (tt.want == nil) {
			t.Errorf("Unmarshal(%s).Cmd = %#v, want %#v", tt.in, c.Cmd, tt.want)
		}
	}
	var c Config
	if err := json.Unmarshal([]byte(`{"Cmd":3}`), &c); err == nil {
		t.Errorf("Unmarshal of a number into Cmd succeeded, want an error")
	}
	b, err := json.Marshal(Config{Cmd: StrSlice{"x"}})
	if err != nil || !bytes.Contains(b, []byte(`"Cmd":["x"]`)) {
		t.Errorf("Marshal = %s, %v; want Cmd as a list", b, err)
	}
}

// keysInOrder returns the top-level keys of a JSON object in document order.
func keysInOrder(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestContainerJSONShape checks that what we encode for inspect has the
// top-level keys of dockerd's answer, in the same order, and that a
// dockerd answer survives a decode/encode round trip in its nested objects.
func TestContainerJSONShape(t *testing.T) {
	body, err := os.ReadFile("testdata/inspect.json")
	if err != nil {
		t.Fatal(err)
	}
	var got ContainerJSON
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if got.State == nil || got.State.Status != "running" || got.State.Pid != 5212 {
		t.Errorf("State = %+v, want running with Pid 5212", got.State)
	}
	if got.Name != "/trace-x" || got.Config == nil || got.Config.Hostname != "7028f5e504b1" {
		t.Errorf("Name %q, Config %+v: want /trace-x with hostname 7028f5e504b1", got.Name, got.Config)
	}
	if got.HostConfig == nil || got.HostConfig.ShmSize != 67108864 || len(got.HostConfig.MaskedPaths) != 10 {
		t.Errorf("HostConfig = %+v, want ShmSize 64 MiB and 10 masked paths", got.HostConfig)
	}
	if n := got.NetworkSettings.Networks["bridge"]; n == nil || n.IPAddress != "172.17.0.2" {
		t.Errorf("Networks[bridge] = %+v, want IPAddress 172.17.0.2", n)
	}

	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if w, g := keysInOrder(t, body), keysInOrder(t, out); !slices.Equal(g, w) {
		t.Errorf("top-level keys:\n got %v\nwant %v", g, w)
	}

	// Nested objects: every key dockerd 20.10 sent must come back, except
	// the kernel-memory fields that API 1.50 leaves out when zero.
	for _, k := range []string{"State", "Config", "HostConfig", "NetworkSettings", "GraphDriver"} {
		var w, g map[string]json.RawMessage
		if err := json.Unmarshal(pick(t, body, k), &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(pick(t, out, k), &g); err != nil {
			t.Fatal(err)
		}
		for key, wv := range w {
			if key == "KernelMemory" || key == "KernelMemoryTCP" {
				continue
			}
			gv, ok := g[key]
			if !ok {
				t.Errorf("%s.%s missing after round trip", k, key)
				continue
			}
			if !jsonCovers(t, gv, wv) {
				t.Errorf("%s.%s = %s, want %s", k, key, gv, wv)
			}
		}
	}
}

func pick(t *testing.T, obj []byte, key string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	return m[key]
}

// jsonCovers reports whether got holds everything want holds: the same
// scalars and lists, and objects with at least want's keys (API 1.50 adds
// keys such as GwPriority and DNSNames to what 20.10 sent).
func jsonCovers(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return covers(g, w)
}

func covers(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !covers(g[k], wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !covers(g[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return got == want
	}
}

func TestWaitResponseEncoding(t *testing.T) {
	b, err := json.Marshal(WaitResponse{StatusCode: 7})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Error":null,"StatusCode":7}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s (dockerd's bytes in wait.txt)", b, want)
	}
	b, _ = json.Marshal(CreateResponse{ID: "x", Warnings: []string{}})
	if want := `{"Id":"x","Warnings":[]}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
}

func TestContainerSummaryOmitsZeroSizes(t *testing.T) {
	b, err := json.Marshal(ContainerSummary{ID: "x", SizeRootFs: 5})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("SizeRw")) || !bytes.Contains(b, []byte(`"SizeRootFs":5`)) {
		t.Errorf("Marshal = %s, want SizeRootFs without SizeRw as in ps.txt", b)
	}
}

func TestStatsJSONKeys(t *testing.T) {
	b, err := json.Marshal(StatsJSON{Name: "/x", ID: "y"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name", "id"}
	if got := keysInOrder(t, b); !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v (stats.txt order)", got, want)
	}
}
