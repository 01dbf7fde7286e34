package cgroups

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestV2FilesOnPlainDirectory covers the pure-v2 code paths that this hybrid
// test host cannot run for real (memory and pids are bound to v1 here, so
// the kernel offers no v2 memory.max or pids.max). A plain directory with
// the control files pre-created stands in for the cgroup: this checks which
// files are written with what text and how v2 counters are read, not the
// kernel's reaction. Run the real-kernel tests on a pure v2 host too.
func TestV2FilesOnPlainDirectory(t *testing.T) {
	root := t.TempDir()
	m := NewAt(root, Unified, "c", WithParent("p")).(*manager)
	if err := m.resolve(); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(root, "p", "c")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"cgroup.controllers": "cpu io memory pids\n",
		"memory.max":         "max\n",
		"memory.swap.max":    "max\n",
		"memory.low":         "0\n",
		"cpu.weight":         "100\n",
		"cpu.max":            "max 100000\n",
		"pids.max":           "max\n",
		"io.weight":          "default 100\n",
		"memory.current":     "1234\n",
		"memory.stat":        "anon 100\nfile 200\ninactive_file 50\n",
		"memory.events":      "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"pids.current":       "2\n",
		"cpu.stat":           "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 7\n",
		"io.stat":            "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(leaf, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := Resources{Memory: 64 << 20, MemoryReservation: 16 << 20, CPUShares: 1024, CPUQuota: 50000, CPUPeriod: 100000, PidsLimit: 10, BlkioWeight: 500}
	if err := m.setResources(res, true); err != nil {
		t.Fatalf("setResources(%+v) = %v", res, err)
	}
	for name, want := range map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "67108864", // total 2x memory minus memory
		"memory.low":      "16777216",
		"cpu.weight":      "39",
		"cpu.max":         "50000 100000",
		"pids.max":        "10",
		"io.weight":       "default 4950",
	} {
		b, err := os.ReadFile(filepath.Join(leaf, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats() = %v", err)
	}
	if st.Memory.Usage != 1234 || st.Memory.Stats["inactive_file"] != 50 || st.Memory.MaxUsage != 0 {
		t.Errorf("Memory = %+v", st.Memory)
	}
	if st.CPU.TotalUsage != 1500e3 || st.CPU.UsageInUsermode != 1000e3 || st.CPU.UsageInKernelmode != 500e3 ||
		st.CPU.Throttling != (ThrottlingData{Periods: 10, ThrottledPeriods: 4, ThrottledTime: 7e3}) {
		t.Errorf("CPU = %+v", st.CPU)
	}
	if st.Pids != (PidsStats{Current: 2, Limit: 10}) {
		t.Errorf("Pids = %+v, want current 2 limit 10", st.Pids)
	}
	if len(st.Blkio.IoServiceBytesRecursive) != 2 || st.Blkio.IoServiceBytesRecursive[1].Value != 20 {
		t.Errorf("Blkio = %+v", st.Blkio)
	}
	if oom, err := m.OOMKilled(); err != nil || !oom {
		t.Errorf("OOMKilled() = %v, %v; want true", oom, err)
	}

	// "max" limits read as unlimited.
	if err := os.WriteFile(filepath.Join(leaf, "memory.max"), []byte("max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leaf, "pids.max"), []byte("max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err = m.Stats(); err != nil {
		t.Fatal(err)
	}
	if st.Memory.Limit != math.MaxUint64 || st.Pids.Limit != 0 {
		t.Errorf("unlimited: Memory.Limit = %d, Pids.Limit = %d; want MaxUint64 and 0", st.Memory.Limit, st.Pids.Limit)
	}
}
