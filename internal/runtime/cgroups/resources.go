package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Update implements Manager.
func (m *manager) Update(res Resources) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	return m.setResources(res, false)
}

// setResources writes every non-zero limit of res. create selects Docker's
// create-time defaults (swap twice the memory).
func (m *manager) setResources(res Resources, create bool) error {
	if err := m.setMemory(res, create); err != nil {
		return err
	}
	if err := m.setCPU(res); err != nil {
		return err
	}
	if err := m.setCPURealtime(res); err != nil {
		return err
	}
	if err := m.setCpuset(res); err != nil {
		return err
	}
	if err := m.setPids(res); err != nil {
		return err
	}
	return m.setBlkio(res)
}

func errNoController(ctl, what string) error {
	return fmt.Errorf("cannot set %s: the %s cgroup controller is not available", what, ctl)
}

func (m *manager) setMemory(res Resources, create bool) error {
	if res.Memory == 0 && res.MemorySwap == 0 && res.MemoryReservation == 0 && res.MemorySwappiness == nil && !res.OomKillDisable {
		return nil
	}
	dir, v2, ok := m.controller("memory")
	if !ok {
		// Unlimited swap alone is what a host without the controller
		// gives anyway (dockerd stores -1 when it discards a memory limit).
		if res.Memory == 0 && res.MemoryReservation == 0 && res.MemorySwap == -1 {
			return nil
		}
		return errNoController("memory", "memory limits")
	}
	if v2 {
		return setMemoryV2(dir, res, create)
	}
	return setMemoryV1(dir, res, create)
}

const (
	v1MemLimit = "memory.limit_in_bytes"
	v1MemSwap  = "memory.memsw.limit_in_bytes"
)

// setMemoryV1 follows runc's fs memory controller. memsw (memory+swap) must
// never be below the memory limit, so when both change the write order
// depends on whether the limits grow or shrink. Without swap accounting
// (no memsw file) a swap limit is dropped, as dockerd drops it with a
// warning.
func setMemoryV1(dir string, res Resources, create bool) error {
	swap := res.MemorySwap
	hasSwap := exists(dir, v1MemSwap)
	switch {
	case !hasSwap:
		swap = 0
	case create && swap == 0 && res.Memory > 0:
		swap = 2 * res.Memory
	case res.Memory == -1 && swap == 0:
		swap = -1
	}
	writeMem := func() error {
		if res.Memory == 0 {
			return nil
		}
		err := writeFile(dir, v1MemLimit, strconv.FormatInt(res.Memory, 10))
		if errors.Is(err, syscall.EBUSY) {
			usage, _ := readUint(dir, "memory.usage_in_bytes", 0)
			peak, _ := readUint(dir, "memory.max_usage_in_bytes", 0)
			return fmt.Errorf("unable to set memory limit to %d (current usage: %d, peak usage: %d)", res.Memory, usage, peak)
		}
		if err != nil {
			return fmt.Errorf("set memory limit: %w", err)
		}
		return nil
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		if err := writeFile(dir, v1MemSwap, strconv.FormatInt(swap, 10)); err != nil {
			return fmt.Errorf("set memory+swap limit: %w", err)
		}
		return nil
	}
	swapFirst := false
	if res.Memory != 0 && swap != 0 {
		cur, err := readUint(dir, v1MemLimit, 0)
		if err != nil {
			return fmt.Errorf("set memory limit: %w", err)
		}
		swapFirst = swap == -1 || cur < uint64(swap)
	}
	if swapFirst {
		if err := writeSwap(); err != nil {
			return err
		}
		if err := writeMem(); err != nil {
			return err
		}
	} else {
		if err := writeMem(); err != nil {
			return err
		}
		if err := writeSwap(); err != nil {
			return err
		}
	}
	if res.MemoryReservation != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(res.MemoryReservation, 10)); err != nil {
			return fmt.Errorf("set memory reservation: %w", err)
		}
	}
	if res.MemorySwappiness != nil {
		if err := writeFile(dir, "memory.swappiness", strconv.FormatInt(*res.MemorySwappiness, 10)); err != nil {
			return fmt.Errorf("set memory swappiness: %w", err)
		}
	}
	if res.OomKillDisable {
		if err := writeFile(dir, "memory.oom_control", "1"); err != nil {
			return fmt.Errorf("disable the OOM killer: %w", err)
		}
	}
	return nil
}

// v2Limit formats a limit for a v2 file: -1 is "max", 0 is "leave alone".
func v2Limit(v int64) string {
	switch {
	case v == 0:
		return ""
	case v < 0:
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// swapV2 converts Docker's memory+swap total into memory.swap.max, which
// counts swap alone (runc ConvertMemorySwapToCgroupV2Value). "" leaves the
// file alone.
func swapV2(memSwap, mem int64) (string, error) {
	switch {
	case memSwap == 0:
		if mem == -1 {
			return "max", nil
		}
		return "", nil
	case memSwap == -1:
		return "max", nil
	case mem == 0 || mem == -1:
		return "", errors.New("unable to set swap limit without memory limit")
	case memSwap < mem:
		return "", errors.New("memory+swap limit should be >= memory limit")
	}
	return strconv.FormatInt(memSwap-mem, 10), nil
}

func setMemoryV2(dir string, res Resources, create bool) error {
	// cgroup v2 has neither; dockerd (and the engine) discard them first.
	if res.MemorySwappiness != nil {
		return errors.New("cannot set memory swappiness: cgroup v2 has no memory.swappiness")
	}
	if res.OomKillDisable {
		return errors.New("cannot disable the OOM killer: cgroup v2 has no memory.oom_control")
	}
	memSwap := res.MemorySwap
	hasSwap := exists(dir, "memory.swap.max")
	if create && memSwap == 0 && res.Memory > 0 && hasSwap {
		memSwap = 2 * res.Memory
	}
	swap, err := swapV2(memSwap, res.Memory)
	if err != nil {
		return err
	}
	if swap != "" && hasSwap {
		if err := writeFile(dir, "memory.swap.max", swap); err != nil {
			return fmt.Errorf("set swap limit: %w", err)
		}
	}
	if v := v2Limit(res.Memory); v != "" {
		if err := writeFile(dir, "memory.max", v); err != nil {
			return fmt.Errorf("set memory limit: %w", err)
		}
	}
	if v := v2Limit(res.MemoryReservation); v != "" {
		if err := writeFile(dir, "memory.low", v); err != nil {
			return fmt.Errorf("set memory reservation: %w", err)
		}
	}
	return nil
}

// cpuWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000)
// linearly, the conversion runc and crun used for years.
func cpuWeight(shares int64) int64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// cpuMax formats v2 cpu.max from CFS quota and period; a quota of zero or
// less is "max".
func cpuMax(quota, period int64) string {
	s := "max"
	if quota > 0 {
		s = strconv.FormatInt(quota, 10)
	}
	if period != 0 {
		s += " " + strconv.FormatInt(period, 10)
	}
	return s
}

func (m *manager) setCPU(res Resources) error {
	if res.CPUShares == 0 && res.CPUQuota == 0 && res.CPUPeriod == 0 {
		return nil
	}
	dir, v2, ok := m.controller("cpu")
	if !ok {
		return errNoController("cpu", "CPU limits")
	}
	if v2 {
		if res.CPUShares != 0 {
			if err := writeFile(dir, "cpu.weight", strconv.FormatInt(cpuWeight(res.CPUShares), 10)); err != nil {
				return fmt.Errorf("set cpu weight: %w", err)
			}
		}
		if res.CPUQuota != 0 || res.CPUPeriod != 0 {
			if err := writeFile(dir, "cpu.max", cpuMax(res.CPUQuota, res.CPUPeriod)); err != nil {
				return fmt.Errorf("set cpu quota: %w", err)
			}
		}
		return nil
	}
	if res.CPUShares != 0 {
		if err := writeFile(dir, "cpu.shares", strconv.FormatInt(res.CPUShares, 10)); err != nil {
			return fmt.Errorf("set cpu shares: %w", err)
		}
		// The kernel clamps silently; report it like runc does.
		got, err := readUint(dir, "cpu.shares", 0)
		if err != nil {
			return fmt.Errorf("set cpu shares: %w", err)
		}
		if int64(got) < res.CPUShares {
			return fmt.Errorf("the maximum allowed cpu-shares is %d", got)
		} else if int64(got) > res.CPUShares {
			return fmt.Errorf("the minimum allowed cpu-shares is %d", got)
		}
	}
	// A new period can be rejected while the old quota does not fit it
	// (and the other way round), so on EINVAL write the quota first.
	quotaDone := false
	if res.CPUPeriod != 0 {
		err := writeFile(dir, "cpu.cfs_period_us", strconv.FormatInt(res.CPUPeriod, 10))
		if errors.Is(err, syscall.EINVAL) && res.CPUQuota != 0 {
			if err := writeFile(dir, "cpu.cfs_quota_us", strconv.FormatInt(res.CPUQuota, 10)); err != nil {
				return fmt.Errorf("set cpu quota: %w", err)
			}
			quotaDone = true
			err = writeFile(dir, "cpu.cfs_period_us", strconv.FormatInt(res.CPUPeriod, 10))
		}
		if err != nil {
			return fmt.Errorf("set cpu period: %w", err)
		}
	}
	if res.CPUQuota != 0 && !quotaDone {
		if err := writeFile(dir, "cpu.cfs_quota_us", strconv.FormatInt(res.CPUQuota, 10)); err != nil {
			return fmt.Errorf("set cpu quota: %w", err)
		}
	}
	return nil
}

func (m *manager) setPids(res Resources) error {
	if res.PidsLimit == 0 {
		return nil
	}
	dir, _, ok := m.controller("pids")
	if !ok {
		return errNoController("pids", "the pids limit")
	}
	if err := writeFile(dir, "pids.max", v2Limit(res.PidsLimit)); err != nil {
		return fmt.Errorf("set pids limit: %w", err)
	}
	return nil
}

// ioWeight converts a v1 blkio weight (10..1000) to v2 io.weight (1..10000)
// as runc does.
func ioWeight(w uint16) uint64 {
	return 1 + (uint64(w)-10)*9999/990
}

func (m *manager) setBlkio(res Resources) error {
	if err := m.setBlkioWeight(res); err != nil {
		return err
	}
	if err := m.setBlkioWeightDevices(res.BlkioWeightDevice); err != nil {
		return err
	}
	return m.setBlkioThrottle(res.BlkioThrottle)
}

// setBlkioThrottle writes per-device rate limits: v1 one
// blkio.throttle.<kind>_device file per kind, "MAJ:MIN RATE" a write; v2
// io.max, "MAJ:MIN rbps=N wbps=N riops=N wiops=N" a device. The kernel
// refuses a device that is not a whole disk (ENODEV), as with runc.
func (m *manager) setBlkioThrottle(ts []ThrottleDevice) error {
	if len(ts) == 0 {
		return nil
	}
	dir, v2, ok := m.controller("blkio")
	if !ok {
		return errNoController("blkio", "block IO limits")
	}
	for _, t := range ts {
		var file, val string
		dev := strconv.FormatInt(t.Major, 10) + ":" + strconv.FormatInt(t.Minor, 10)
		rate := strconv.FormatUint(t.Rate, 10)
		if v2 {
			key, ok := map[string]string{ReadBps: "rbps", WriteBps: "wbps", ReadIOps: "riops", WriteIOps: "wiops"}[t.Kind]
			if !ok {
				return fmt.Errorf("unknown block IO limit %q", t.Kind)
			}
			file, val = "io.max", dev+" "+key+"="+rate
		} else {
			switch t.Kind {
			case ReadBps, WriteBps, ReadIOps, WriteIOps:
			default:
				return fmt.Errorf("unknown block IO limit %q", t.Kind)
			}
			file, val = "blkio.throttle."+t.Kind+"_device", dev+" "+rate
		}
		if err := writeFile(dir, file, val); err != nil {
			return fmt.Errorf("set the %s limit of device %s: %w", t.Kind, dev, err)
		}
	}
	return nil
}

// setBlkioWeightDevices writes per-device weights where the IO scheduler
// has them: v1 blkio.weight_device or blkio.bfq.weight_device, v2
// io.bfq.weight (the v1 range) or io.weight (converted).
func (m *manager) setBlkioWeightDevices(ws []WeightDevice) error {
	if len(ws) == 0 {
		return nil
	}
	dir, v2, ok := m.controller("blkio")
	if !ok {
		return errNoController("blkio", "block IO weights")
	}
	for _, w := range ws {
		if w.Weight < 10 || w.Weight > 1000 {
			return fmt.Errorf("invalid blkio weight %d: range is 10 to 1000", w.Weight)
		}
		dev := strconv.FormatInt(w.Major, 10) + ":" + strconv.FormatInt(w.Minor, 10)
		val := dev + " " + strconv.FormatUint(uint64(w.Weight), 10)
		var file string
		switch {
		case !v2 && exists(dir, "blkio.weight_device"):
			file = "blkio.weight_device"
		case !v2 && exists(dir, "blkio.bfq.weight_device"):
			file = "blkio.bfq.weight_device"
		case v2 && exists(dir, "io.bfq.weight"):
			file = "io.bfq.weight"
		case v2 && exists(dir, "io.weight"):
			file, val = "io.weight", dev+" "+strconv.FormatUint(ioWeight(w.Weight), 10)
		default:
			return errors.New("cannot set a device's blkio weight: no IO scheduler with weights (CFQ or BFQ) on this host")
		}
		if err := writeFile(dir, file, val); err != nil {
			return fmt.Errorf("set the blkio weight of device %s: %w", dev, err)
		}
	}
	return nil
}

func (m *manager) setBlkioWeight(res Resources) error {
	if res.BlkioWeight == 0 {
		return nil
	}
	if res.BlkioWeight < 10 || res.BlkioWeight > 1000 {
		return fmt.Errorf("invalid blkio weight %d: range is 10 to 1000", res.BlkioWeight)
	}
	dir, v2, ok := m.controller("blkio")
	if !ok {
		return errNoController("blkio", "the blkio weight")
	}
	w := strconv.FormatUint(uint64(res.BlkioWeight), 10)
	var file, val string
	switch {
	case !v2 && exists(dir, "blkio.weight"):
		file, val = "blkio.weight", w
	case !v2 && exists(dir, "blkio.bfq.weight"):
		file, val = "blkio.bfq.weight", w
	case v2 && exists(dir, "io.bfq.weight"):
		// BFQ takes the v1 range unchanged.
		file, val = "io.bfq.weight", w
	case v2 && exists(dir, "io.weight"):
		file, val = "io.weight", "default "+strconv.FormatUint(ioWeight(res.BlkioWeight), 10)
	default:
		return errors.New("cannot set the blkio weight: no IO scheduler with weights (CFQ or BFQ) on this host")
	}
	if err := writeFile(dir, file, val); err != nil {
		return fmt.Errorf("set blkio weight: %w", err)
	}
	return nil
}

// setCpuset writes the container's CPUs and memory nodes: cpuset.cpus and
// cpuset.mems on both versions (v1 cgroups got their parent's at Create,
// as a v1 cpuset refuses tasks without them).
func (m *manager) setCpuset(res Resources) error {
	if res.CpusetCpus == "" && res.CpusetMems == "" {
		return nil
	}
	dir, _, ok := m.controller("cpuset")
	if !ok {
		return errNoController("cpuset", "cpusets")
	}
	if res.CpusetCpus != "" {
		if err := writeFile(dir, "cpuset.cpus", res.CpusetCpus); err != nil {
			return fmt.Errorf("set cpuset cpus: %w", err)
		}
	}
	if res.CpusetMems != "" {
		if err := writeFile(dir, "cpuset.mems", res.CpusetMems); err != nil {
			return fmt.Errorf("set cpuset mems: %w", err)
		}
	}
	return nil
}

// setCPURealtime writes the real-time budget (cgroup v1 only: v2 has no
// RT group scheduling). A v1 cgroup starts with no real-time runtime and a
// child's runtime cannot exceed its parent's, so each level between the
// hierarchy's root and the container that has none first gets the root's
// budget, as dockerd does with its --cpu-rt-runtime (initCPURtController):
// the kernel refuses this when the root's budget is already given to
// other cgroups, and the container's write then fails with its error.
func (m *manager) setCPURealtime(res Resources) error {
	if res.CPURealtimePeriod == 0 && res.CPURealtimeRuntime == 0 {
		return nil
	}
	dir, v2, ok := m.controller("cpu")
	if !ok || v2 || !exists(dir, "cpu.rt_runtime_us") {
		return errors.New("cannot set real-time CPU limits: the kernel has no real-time group scheduling")
	}
	if res.CPURealtimeRuntime != 0 {
		m.grantRealtime(dir)
	}
	if res.CPURealtimePeriod != 0 {
		if err := writeFile(dir, "cpu.rt_period_us", strconv.FormatInt(res.CPURealtimePeriod, 10)); err != nil {
			return fmt.Errorf("set cpu real-time period: %w", err)
		}
	}
	if res.CPURealtimeRuntime != 0 {
		if err := writeFile(dir, "cpu.rt_runtime_us", strconv.FormatInt(res.CPURealtimeRuntime, 10)); err != nil {
			return fmt.Errorf("set cpu real-time runtime: %w", err)
		}
	}
	return nil
}

// grantRealtime gives each ancestor of the container's cpu cgroup dir,
// below the hierarchy's root, that has no real-time runtime the root's
// period and runtime. Failures are left for the container's own write to
// report.
func (m *manager) grantRealtime(dir string) {
	var mount string
	for _, h := range m.hierarchies() {
		if slices.Contains(h.controllers, "cpu") {
			mount = h.mountpoint
		}
	}
	rel, err := filepath.Rel(mount, filepath.Dir(dir))
	if mount == "" || err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return
	}
	period, err1 := readFile(mount, "cpu.rt_period_us")
	runtime, err2 := readFile(mount, "cpu.rt_runtime_us")
	if err1 != nil || err2 != nil {
		return
	}
	level := mount
	for elem := range strings.SplitSeq(rel, "/") {
		level = filepath.Join(level, elem)
		if cur, err := readUint(level, "cpu.rt_runtime_us", 0); err != nil || cur != 0 {
			continue
		}
		_ = writeFile(level, "cpu.rt_period_us", strings.TrimSpace(period))
		_ = writeFile(level, "cpu.rt_runtime_us", strings.TrimSpace(runtime))
	}
}
