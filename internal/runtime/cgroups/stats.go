package cgroups

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// userHZ is the unit of cpuacct.stat; Linux fixes USER_HZ at 100 for user
// space on every architecture.
const userHZ = 100

// OOMKilled implements Manager.
func (m *manager) OOMKilled() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return false, err
	}
	dir, v2, ok := m.controller("memory")
	if !ok {
		return false, errors.New("read OOM kills: the memory cgroup controller is not available")
	}
	file := "memory.oom_control"
	if v2 {
		file = "memory.events"
	}
	s, err := readFile(dir, file)
	if err != nil {
		return false, fmt.Errorf("read OOM kills: %w", err)
	}
	return parseKeyValues(s)["oom_kill"] > 0, nil
}

// Stats implements Manager. A controller that is not available leaves its
// part zero.
func (m *manager) Stats() (*Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return nil, err
	}
	st := &Stats{}
	if err := m.cpuStats(&st.CPU); err != nil {
		return nil, fmt.Errorf("read cpu stats: %w", err)
	}
	if err := m.memoryStats(&st.Memory); err != nil {
		return nil, fmt.Errorf("read memory stats: %w", err)
	}
	if dir, _, ok := m.controller("pids"); ok {
		cur, err := readUint(dir, "pids.current", 0)
		if err != nil {
			return nil, fmt.Errorf("read pids stats: %w", err)
		}
		limit, err := readUint(dir, "pids.max", 0)
		if err != nil {
			return nil, fmt.Errorf("read pids stats: %w", err)
		}
		st.Pids = PidsStats{Current: cur, Limit: limit}
	}
	if err := m.blkioStats(&st.Blkio); err != nil {
		return nil, fmt.Errorf("read blkio stats: %w", err)
	}
	return st, nil
}

func (m *manager) cpuStats(cs *CPUStats) error {
	if dir, ok := m.v1["cpuacct"]; ok {
		total, err := readUint(dir, "cpuacct.usage", 0)
		if err != nil {
			return err
		}
		cs.TotalUsage = total
		percpu, err := readFile(dir, "cpuacct.usage_percpu")
		if err != nil {
			return err
		}
		if cs.PercpuUsage, err = parseUintList(percpu); err != nil {
			return fmt.Errorf("parse cpuacct.usage_percpu: %w", err)
		}
		s, err := readFile(dir, "cpuacct.stat")
		if err != nil {
			return err
		}
		kv := parseKeyValues(s)
		cs.UsageInUsermode = kv["user"] * (1e9 / userHZ)
		cs.UsageInKernelmode = kv["system"] * (1e9 / userHZ)
	}
	dir, v2, ok := m.controller("cpu")
	if !ok && m.v2 != "" && exists(m.v2, "cpu.stat") {
		// v2 reports usage in cpu.stat of every cgroup, even without the cpu
		// controller enabled.
		dir, v2, ok = m.v2, true, true
	}
	if !ok {
		return nil
	}
	s, err := readFile(dir, "cpu.stat")
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	kv := parseKeyValues(s)
	cs.Throttling.Periods = kv["nr_periods"]
	cs.Throttling.ThrottledPeriods = kv["nr_throttled"]
	if !v2 {
		cs.Throttling.ThrottledTime = kv["throttled_time"]
		return nil
	}
	cs.Throttling.ThrottledTime = kv["throttled_usec"] * 1000
	if _, ok := m.v1["cpuacct"]; !ok {
		cs.TotalUsage = kv["usage_usec"] * 1000
		cs.UsageInUsermode = kv["user_usec"] * 1000
		cs.UsageInKernelmode = kv["system_usec"] * 1000
	}
	return nil
}

func (m *manager) memoryStats(ms *MemoryStats) error {
	dir, v2, ok := m.controller("memory")
	if !ok {
		return nil
	}
	s, err := readFile(dir, "memory.stat")
	if err != nil {
		return err
	}
	ms.Stats = parseKeyValues(s)
	if v2 {
		if ms.Usage, err = readUint(dir, "memory.current", 0); err != nil {
			return err
		}
		ms.Limit, err = readUint(dir, "memory.max", math.MaxUint64)
		return err
	}
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"memory.usage_in_bytes", &ms.Usage},
		{"memory.max_usage_in_bytes", &ms.MaxUsage},
		{"memory.limit_in_bytes", &ms.Limit},
		{"memory.failcnt", &ms.Failcnt},
	} {
		if *f.dst, err = readUint(dir, f.name, 0); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) blkioStats(bs *BlkioStats) error {
	dir, v2, ok := m.controller("blkio")
	if !ok {
		return nil
	}
	if v2 {
		s, err := readFile(dir, "io.stat")
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		bs.IoServiceBytesRecursive, err = parseIoStat(s)
		return err
	}
	// Like containerd: the CFQ files when the kernel has them, else the
	// throttle layer's, which count IO of every scheduler.
	prefix := "blkio.throttle."
	if exists(dir, "blkio.io_service_bytes_recursive") {
		prefix = "blkio."
	}
	for _, f := range []struct {
		name string
		dst  *[]BlkioStatEntry
	}{
		{prefix + "io_service_bytes_recursive", &bs.IoServiceBytesRecursive},
		{prefix + "io_serviced_recursive", &bs.IoServicedRecursive},
	} {
		s, err := readFile(dir, f.name)
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return err
		}
		if *f.dst, err = parseBlkioV1(s); err != nil {
			return fmt.Errorf("parse %s: %w", f.name, err)
		}
	}
	return nil
}

// parseUintList parses space-separated numbers (cpuacct.usage_percpu).
func parseUintList(s string) ([]uint64, error) {
	var out []uint64
	for f := range strings.FieldsSeq(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// parseDevice parses "major:minor".
func parseDevice(s string) (major, minor uint64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad device %q", s)
	}
	if major, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad device %q", s)
	}
	if minor, err = strconv.ParseUint(b, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad device %q", s)
	}
	return major, minor, nil
}

// parseBlkioV1 parses v1 blkio recursive files: "8:0 Read 4096" lines and a
// final "Total 4096" line, which is skipped (it is not per device).
func parseBlkioV1(s string) ([]BlkioStatEntry, error) {
	var out []BlkioStatEntry
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (len(f) == 2 && f[0] == "Total") {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("bad line %q", line)
		}
		major, minor, err := parseDevice(f[0])
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad line %q", line)
		}
		out = append(out, BlkioStatEntry{Major: major, Minor: minor, Op: f[1], Value: v})
	}
	return out, nil
}

// parseIoStat parses v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 ...") into
// Docker's v2 io_service_bytes_recursive: a "read" and a "write" entry per
// device.
func parseIoStat(s string) ([]BlkioStatEntry, error) {
	var out []BlkioStatEntry
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		major, minor, err := parseDevice(f[0])
		if err != nil {
			return nil, err
		}
		var rbytes, wbytes uint64
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				rbytes = n
			case "wbytes":
				wbytes = n
			}
		}
		out = append(out,
			BlkioStatEntry{Major: major, Minor: minor, Op: "read", Value: rbytes},
			BlkioStatEntry{Major: major, Minor: minor, Op: "write", Value: wbytes})
	}
	return out, nil
}
