package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost builds a cgroup tree under a temp root: files maps paths below
// the root ("memory/memory.limit_in_bytes", "unified/cgroup.controllers")
// to contents; v1 lists the v1 hierarchies to put into the fake mount
// table; sched is the scheduler line of the one fake disk.
func fakeHost(t *testing.T, v1 []string, files map[string]string, sched string) (root, mountinfo, sysBlock string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "cgroup")
	var mi strings.Builder
	for i, h := range v1 {
		fmt.Fprintf(&mi, "%d 1 0:%d / %s rw - cgroup cgroup rw,%s\n", 30+i, 30+i, filepath.Join(root, h), h)
		if err := os.MkdirAll(filepath.Join(root, h), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mountinfo = filepath.Join(base, "mountinfo")
	if err := os.WriteFile(mountinfo, []byte(mi.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sysBlock = filepath.Join(base, "block")
	if err := os.MkdirAll(filepath.Join(sysBlock, "vda", "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sysBlock, "vda", "queue", "scheduler"), []byte(sched+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, mountinfo, sysBlock
}

// v1Files is a cgroup v1 host like the kernel's: every controller file on
// the root, swap accounting on, throttling on, no weight file (mq-deadline).
func v1Files() map[string]string {
	return map[string]string{
		"memory/memory.limit_in_bytes":                      "",
		"memory/memory.memsw.limit_in_bytes":                "",
		"memory/memory.soft_limit_in_bytes":                 "",
		"memory/memory.swappiness":                          "",
		"memory/memory.oom_control":                         "",
		"cpu/cpu.shares":                                    "",
		"cpu/cpu.cfs_quota_us":                              "",
		"cpu/cpu.rt_period_us":                              "",
		"blkio/blkio.throttle.read_bps_device":              "",
		"blkio/blkio.throttle.write_bps_device":             "",
		"blkio/blkio.throttle.read_iops_device":             "",
		"blkio/blkio.throttle.write_iops_device":            "",
		"blkio/system.slice/blkio.throttle.read_bps_device": "",
	}
}

func TestProbe(t *testing.T) {
	allV1 := []string{"memory", "cpu", "cpuset", "blkio", "pids"}
	v1Want := Support{
		Version: "1", MemoryLimit: true, SwapLimit: true, MemoryReservation: true, MemorySwappiness: true, OomKillDisable: true,
		CPUShares: true, CPUCfs: true, CPURealtime: true, Cpuset: true, PidsLimit: true,
		BlkioReadBpsDevice: true, BlkioWriteBpsDevice: true, BlkioReadIOpsDevice: true, BlkioWriteIOpsDevice: true,
	}
	with := func(m map[string]string, set map[string]string, del ...string) map[string]string {
		for k, v := range set {
			m[k] = v
		}
		for _, k := range del {
			delete(m, k)
		}
		return m
	}
	v2Want := Support{
		Version: "2", MemoryLimit: true, SwapLimit: true, MemoryReservation: true,
		CPUShares: true, CPUCfs: true, Cpuset: true, PidsLimit: true,
		BlkioReadBpsDevice: true, BlkioWriteBpsDevice: true, BlkioReadIOpsDevice: true, BlkioWriteIOpsDevice: true,
	}
	v2Files := func() map[string]string {
		return map[string]string{
			"cgroup.controllers":              "cpuset cpu io memory pids",
			"system.slice/cgroup.controllers": "cpu io memory pids",
			"system.slice/memory.swap.max":    "max",
		}
	}
	tests := []struct {
		name  string
		mode  Mode
		v1    []string
		files map[string]string
		sched string
		want  func(Support) Support
	}{
		{"v1 mq-deadline", Legacy, allV1, v1Files(), "[mq-deadline] kyber none", func(s Support) Support { return s }},
		{"v1 weight file in a child cgroup (BFQ)", Legacy, allV1,
			with(v1Files(), map[string]string{"blkio/system.slice/blkio.bfq.weight": "", "blkio/system.slice/blkio.bfq.weight_device": ""}),
			"mq-deadline kyber [bfq] none",
			func(s Support) Support { s.BlkioWeight, s.BlkioWeightDevice = true, true; return s }},
		{"v1 CFQ weight on the root", Legacy, allV1, with(v1Files(), map[string]string{"blkio/blkio.weight": ""}), "noop deadline [cfq]",
			func(s Support) Support { s.BlkioWeight = true; return s }},
		{"v1 BFQ registered, no child cgroup yet", Legacy, allV1, v1Files(), "[mq-deadline] bfq none",
			func(s Support) Support { s.BlkioWeight = true; return s }},
		{"v1 without swap accounting", Legacy, allV1, with(v1Files(), nil, "memory/memory.memsw.limit_in_bytes"), "none",
			func(s Support) Support { s.SwapLimit = false; return s }},
		{"v1 without memory, pids and blkio hierarchies", Legacy, []string{"cpu", "cpuset"}, v1Files(), "none",
			func(s Support) Support {
				s.MemoryLimit, s.SwapLimit, s.MemoryReservation, s.MemorySwappiness, s.OomKillDisable, s.PidsLimit = false, false, false, false, false, false
				s.BlkioReadBpsDevice, s.BlkioWriteBpsDevice, s.BlkioReadIOpsDevice, s.BlkioWriteIOpsDevice = false, false, false, false
				return s
			}},
		{"hybrid: controllers on v1, empty v2", Hybrid, allV1, with(v1Files(), map[string]string{"unified/cgroup.controllers": ""}), "[mq-deadline] kyber",
			func(s Support) Support { return s }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, mi, blk := fakeHost(t, tt.v1, tt.files, tt.sched)
			if got, want := probeAt(root, tt.mode, mi, blk), tt.want(v1Want); got != want {
				t.Errorf("probeAt() = %+v\nwant %+v", got, want)
			}
		})
	}

	v2Tests := []struct {
		name  string
		files map[string]string
		sched string
		want  func(Support) Support
	}{
		{"v2 mq-deadline, no iocost", v2Files(), "[mq-deadline] kyber none", func(s Support) Support { return s }},
		{"v2 io.weight in a child cgroup", with(v2Files(), map[string]string{"system.slice/io.weight": "default 100"}), "[none]",
			func(s Support) Support { s.BlkioWeight, s.BlkioWeightDevice = true, true; return s }},
		{"v2 io.weight where io is not enabled does not count",
			with(v2Files(), map[string]string{"user.slice/io.weight": "default 100", "user.slice/cgroup.controllers": "memory"}), "[none]",
			func(s Support) Support { return s }},
		{"v2 iocost built in, no child cgroup yet", with(v2Files(), map[string]string{"io.cost.qos": ""}, "system.slice/cgroup.controllers", "system.slice/memory.swap.max"), "[none]",
			func(s Support) Support { s.BlkioWeight, s.BlkioWeightDevice, s.SwapLimit = true, true, false; return s }},
		{"v2 without swap accounting", with(v2Files(), nil, "system.slice/memory.swap.max"), "none",
			func(s Support) Support { s.SwapLimit = false; return s }},
		{"v2 without io and cpuset", with(v2Files(), map[string]string{"cgroup.controllers": "cpu memory pids"}), "bfq",
			func(s Support) Support {
				s.Cpuset = false
				s.BlkioReadBpsDevice, s.BlkioWriteBpsDevice, s.BlkioReadIOpsDevice, s.BlkioWriteIOpsDevice = false, false, false, false
				return s
			}},
	}
	for _, tt := range v2Tests {
		t.Run(tt.name, func(t *testing.T) {
			root, mi, blk := fakeHost(t, nil, tt.files, tt.sched)
			if got, want := probeAt(root, Unified, mi, blk), tt.want(v2Want); got != want {
				t.Errorf("probeAt() = %+v\nwant %+v", got, want)
			}
		})
	}
}
