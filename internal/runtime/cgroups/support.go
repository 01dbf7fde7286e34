package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Support tells which resource controls the host's cgroups can enforce, as
// dockerd's pkg/sysinfo does (its cgroup v1 and v2 variants). The daemon
// probes once at start-up and consults the result at create and update:
// what the host cannot enforce is discarded with dockerd's warning instead
// of failing when the container starts.
//
// Each field answers "would a write by this package take effect here", so a
// field is true only where the manager finds the file it writes.
type Support struct {
	// Version is "1" when the resource controllers live on v1 hierarchies
	// (legacy and hybrid hosts) and "2" on a unified host.
	Version string `json:"version"`

	MemoryLimit       bool `json:"memoryLimit"`
	SwapLimit         bool `json:"swapLimit"`
	MemoryReservation bool `json:"memoryReservation"`
	MemorySwappiness  bool `json:"memorySwappiness"`
	OomKillDisable    bool `json:"oomKillDisable"`
	// KernelMemory is always false: the kernel deprecated kmem limits in
	// 5.4 (cgroup v1 only; v2 has none) and this package never sets them.
	KernelMemory bool `json:"kernelMemory"`

	CPUShares   bool `json:"cpuShares"`
	CPUCfs      bool `json:"cpuCfs"`
	CPURealtime bool `json:"cpuRealtime"`
	Cpuset      bool `json:"cpuset"`
	PidsLimit   bool `json:"pidsLimit"`
	// Cpus and Mems are the CPUs and memory nodes a container's cpuset
	// may name, as the root cpuset cgroup has them ("0-3"); empty without
	// cpuset support. dockerd's pkg/sysinfo reads the same.
	Cpus string `json:"cpus,omitempty"`
	Mems string `json:"mems,omitempty"`

	// BlkioWeight needs an IO scheduler with weights: CFQ (gone since
	// Linux 5.0) or BFQ, or on v2 the iocost controller. Hosts whose
	// disks use mq-deadline, kyber or none have the blkio/io controller
	// but no weight file.
	BlkioWeight          bool `json:"blkioWeight"`
	BlkioWeightDevice    bool `json:"blkioWeightDevice"`
	BlkioReadBpsDevice   bool `json:"blkioReadBpsDevice"`
	BlkioWriteBpsDevice  bool `json:"blkioWriteBpsDevice"`
	BlkioReadIOpsDevice  bool `json:"blkioReadIOpsDevice"`
	BlkioWriteIOpsDevice bool `json:"blkioWriteIOpsDevice"`
}

// Probe reports what the cgroup filesystems mounted under DefaultRoot can
// enforce. It reads only; it creates no cgroup.
func Probe() Support {
	return probeAt(DefaultRoot, DetectMode(), "/proc/self/mountinfo", "/sys/block")
}

// probeAt is Probe for cgroup filesystems under root in the given layout,
// with the mount table and the block device directory as parameters so
// that tests can feed fake hosts.
func probeAt(root string, mode Mode, mountinfo, sysBlock string) Support {
	s := Support{Version: "1"}
	v1 := map[string]string{} // controller -> hierarchy mount point
	if mode != Unified {
		if f, err := os.Open(mountinfo); err == nil {
			hs, _ := parseMountinfo(f, root)
			f.Close()
			for _, h := range hs {
				for _, c := range h.controllers {
					v1[c] = h.mountpoint
				}
			}
		}
	}
	var v2Root string
	var v2Ctl []string
	switch mode {
	case Unified:
		v2Root = root
		s.Version = "2"
	case Hybrid:
		v2Root = filepath.Join(root, "unified")
	}
	if v2Root != "" {
		c, _ := readFile(v2Root, "cgroup.controllers")
		v2Ctl = strings.Fields(c)
	}
	weightSched := weightedScheduler(sysBlock)

	// has tells whether the cgroups of controller ctl carry one of names.
	// A v1 hierarchy serves first, as in the manager; else the v2 root if it
	// offers the controller. Many files exist only below the root cgroup
	// (the kernel's CFTYPE_NOT_ON_ROOT), so existing child cgroups are
	// looked at too.
	has := func(ctl string, names ...string) bool {
		if mp, ok := v1[ctl]; ok {
			return anyCgroupHas(mp, "", names)
		}
		if slices.Contains(v2Ctl, v2Name(ctl)) {
			return anyCgroupHas(v2Root, v2Name(ctl), names)
		}
		return false
	}
	_, memV1 := v1["memory"]
	_, cpuV1 := v1["cpu"]
	_, blkioV1 := v1["blkio"]
	_, cpusetV1 := v1["cpuset"]
	_, pidsV1 := v1["pids"]

	switch {
	case memV1:
		s.MemoryLimit = has("memory", v1MemLimit)
		s.SwapLimit = has("memory", v1MemSwap)
		s.MemoryReservation = has("memory", "memory.soft_limit_in_bytes")
		s.MemorySwappiness = has("memory", "memory.swappiness")
		s.OomKillDisable = has("memory", "memory.oom_control")
	case slices.Contains(v2Ctl, "memory"):
		// v2 has no swappiness and no OOM-killer switch, as dockerd says.
		s.MemoryLimit, s.MemoryReservation = true, true
		s.SwapLimit = has("memory", "memory.swap.max")
	}
	switch {
	case cpuV1:
		s.CPUShares = has("cpu", "cpu.shares")
		s.CPUCfs = has("cpu", "cpu.cfs_quota_us")
		s.CPURealtime = has("cpu", "cpu.rt_period_us")
	case slices.Contains(v2Ctl, "cpu"):
		s.CPUShares, s.CPUCfs = true, true
	}
	s.Cpuset = cpusetV1 || slices.Contains(v2Ctl, "cpuset")
	switch {
	case cpusetV1:
		s.Cpus, _ = readFile(v1["cpuset"], "cpuset.cpus")
		s.Mems, _ = readFile(v1["cpuset"], "cpuset.mems")
	case s.Cpuset:
		s.Cpus, _ = readFile(v2Root, "cpuset.cpus.effective")
		s.Mems, _ = readFile(v2Root, "cpuset.mems.effective")
	}
	s.Cpus, s.Mems = strings.TrimSpace(s.Cpus), strings.TrimSpace(s.Mems)
	s.PidsLimit = pidsV1 || slices.Contains(v2Ctl, "pids")
	switch {
	case blkioV1:
		s.BlkioWeight = has("blkio", "blkio.weight", "blkio.bfq.weight") || weightSched
		s.BlkioWeightDevice = has("blkio", "blkio.weight_device", "blkio.bfq.weight_device")
		s.BlkioReadBpsDevice = has("blkio", "blkio.throttle.read_bps_device")
		s.BlkioWriteBpsDevice = has("blkio", "blkio.throttle.write_bps_device")
		s.BlkioReadIOpsDevice = has("blkio", "blkio.throttle.read_iops_device")
		s.BlkioWriteIOpsDevice = has("blkio", "blkio.throttle.write_iops_device")
	case slices.Contains(v2Ctl, "io"):
		// io.cost.qos lives on the root only and exists when the iocost
		// controller, which provides io.weight, is built in.
		s.BlkioWeight = has("blkio", "io.weight", "io.bfq.weight") || exists(v2Root, "io.cost.qos") || weightSched
		s.BlkioWeightDevice = s.BlkioWeight
		s.BlkioReadBpsDevice, s.BlkioWriteBpsDevice = true, true
		s.BlkioReadIOpsDevice, s.BlkioWriteIOpsDevice = true, true
	}
	return s
}

// anyCgroupHas tells whether dir or one of its direct child cgroups holds
// one of names. On v2 (ctl set) a child counts only when the controller is
// enabled for it, which its cgroup.controllers lists.
func anyCgroupHas(dir, ctl string, names []string) bool {
	for _, n := range names {
		if exists(dir, n) {
			return true
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		child := filepath.Join(dir, e.Name())
		if ctl != "" {
			c, err := readFile(child, "cgroup.controllers")
			if err != nil || !slices.Contains(strings.Fields(c), ctl) {
				continue
			}
		}
		for _, n := range names {
			if exists(child, n) {
				return true
			}
		}
	}
	return false
}

// weightedScheduler tells whether the kernel has registered an IO scheduler
// with cgroup weights (BFQ, or CFQ before Linux 5.0): its blkcg policy, and
// so the weight files of every non-root cgroup, come with it. A disk's
// queue/scheduler lists every registered scheduler, e.g.
// "[mq-deadline] kyber bfq none".
func weightedScheduler(sysBlock string) bool {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return false
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(sysBlock, e.Name(), "queue", "scheduler"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			switch strings.Trim(f, "[]") {
			case "bfq", "cfq":
				return true
			}
		}
	}
	return false
}
