package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/spec"
)

// verifyResources is the one place where a container's resource limits
// meet what the host can enforce, for create and for update, before any
// state is touched. It mirrors dockerd (verifyPlatformContainerResources in
// daemon/daemon_unix.go and validateResources in runconfig): what the
// host's cgroups cannot enforce (host, probed once at start-up) is
// discarded from r with dockerd's warning, values out of range are errors
// with dockerd's text. ncpu bounds NanoCPUs. update relaxes the check that a swap
// limit needs a memory limit, because an update merges into a container's
// existing limits.
//
// It does not look at devices, ulimits or anything outside Resources.
func verifyResources(host cgroups.Support, ncpu int, r *types.Resources, update bool) (warnings []string, _ error) {
	// The CLI sends -1 to mean "unset".
	if r.MemorySwappiness != nil && *r.MemorySwappiness == -1 {
		r.MemorySwappiness = nil
	}

	// Memory.
	if r.Memory != 0 && r.Memory < minMemory {
		return warnings, errors.New("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && !host.MemoryLimit {
		warnings = append(warnings, "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.Memory = 0
		r.MemorySwap = -1
	}
	if r.Memory > 0 && r.MemorySwap != -1 && !host.SwapLimit {
		warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		r.MemorySwap = -1
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return warnings, errors.New("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 && !update {
		return warnings, errors.New("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && !host.MemorySwappiness {
		warnings = append(warnings, "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
		r.MemorySwappiness = nil
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100) {
		return warnings, fmt.Errorf("Invalid value: %v, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	if r.MemoryReservation > 0 && !host.MemoryReservation {
		warnings = append(warnings, "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.MemoryReservation = 0
	}
	if r.MemoryReservation > 0 && r.MemoryReservation < minMemory {
		return warnings, errors.New("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return warnings, errors.New("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	// Kernel memory limits are deprecated (dockerd ignores them from API
	// 1.42); skiffd never sets them, so they are discarded the way dockerd
	// discards them on a kernel without kmem accounting.
	if r.KernelMemory > 0 && !host.KernelMemory {
		warnings = append(warnings, "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	if r.KernelMemoryTCP > 0 && !host.KernelMemory {
		warnings = append(warnings, "Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	r.KernelMemory, r.KernelMemoryTCP = 0, 0
	if r.OomKillDisable != nil && !host.OomKillDisable {
		// Asking for the OOM killer to stay on needs no warning.
		if *r.OomKillDisable {
			warnings = append(warnings, "Your kernel does not support OomKillDisable. OomKillDisable discarded.")
		}
		r.OomKillDisable = nil
	}
	if r.OomKillDisable != nil && *r.OomKillDisable && r.Memory == 0 {
		warnings = append(warnings, "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
	}
	if r.PidsLimit != nil && !host.PidsLimit {
		if *r.PidsLimit > 0 {
			warnings = append(warnings, "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
		}
		r.PidsLimit = nil
	}

	// CPU.
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return warnings, errors.New("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return warnings, errors.New("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.NanoCPUs > 0 && !host.CPUCfs {
		return warnings, errors.New("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")
	}
	if r.NanoCPUs != 0 && (r.NanoCPUs < 0 || r.NanoCPUs > int64(ncpu)*1e9) {
		return warnings, fmt.Errorf("Range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", ncpu)
	}
	if r.CPUShares < 0 && host.CPUShares {
		return warnings, fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUShares > 0 && !host.CPUShares {
		warnings = append(warnings, "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
		r.CPUShares = 0
	}
	if (r.CPUPeriod != 0 || r.CPUQuota != 0) && !host.CPUCfs {
		warnings = append(warnings, "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
		r.CPUPeriod, r.CPUQuota = 0, 0
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return warnings, errors.New("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return warnings, errors.New("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CPUPercent > 0 {
		warnings = append(warnings, "linux does not support CPU percent. Percent discarded.")
		r.CPUPercent = 0
	}
	// dockerd refuses real-time limits without RT group scheduling, with
	// these texts; skiffd discards them with the same texts as warnings,
	// as it does every limit the host cannot enforce (issue 15).
	if r.CPURealtimePeriod != 0 && !host.CPURealtime {
		warnings = append(warnings, "Your kernel does not support cgroup cpu real-time period. Period discarded.")
		r.CPURealtimePeriod = 0
	}
	if r.CPURealtimeRuntime != 0 && !host.CPURealtime {
		warnings = append(warnings, "Your kernel does not support cgroup cpu real-time runtime. Runtime discarded.")
		r.CPURealtimeRuntime = 0
	}
	if r.CPURealtimePeriod < 0 || r.CPURealtimeRuntime < 0 {
		return warnings, errors.New("invalid CPU real-time period or runtime: value must be positive")
	}
	if r.CPURealtimePeriod != 0 && r.CPURealtimeRuntime != 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return warnings, errors.New("cpu real-time runtime cannot be higher than cpu real-time period")
	}

	// Cpusets.
	if (r.CpusetCpus != "" || r.CpusetMems != "") && !host.Cpuset {
		warnings = append(warnings, "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
		r.CpusetCpus, r.CpusetMems = "", ""
	}
	if ok, err := listSubset(r.CpusetCpus, host.Cpus); err != nil {
		return warnings, fmt.Errorf("Invalid value %s for cpuset cpus", r.CpusetCpus)
	} else if !ok {
		return warnings, fmt.Errorf("Requested CPUs are not available - requested %s, available: %s", r.CpusetCpus, host.Cpus)
	}
	if ok, err := listSubset(r.CpusetMems, host.Mems); err != nil {
		return warnings, fmt.Errorf("Invalid value %s for cpuset mems", r.CpusetMems)
	} else if !ok {
		return warnings, fmt.Errorf("Requested memory nodes are not available - requested %s, available: %s", r.CpusetMems, host.Mems)
	}

	// Block IO.
	if r.BlkioWeight > 0 && !host.BlkioWeight {
		warnings = append(warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return warnings, errors.New("Range of blkio weight is from 10 to 1000")
	}
	if r.IOMaximumBandwidth != 0 || r.IOMaximumIOps != 0 {
		return warnings, errors.New("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
	}
	if len(r.BlkioWeightDevice) > 0 && !host.BlkioWeightDevice {
		warnings = append(warnings, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		r.BlkioWeightDevice = []*types.WeightDevice{}
	}
	if len(r.BlkioDeviceReadBps) > 0 && !host.BlkioReadBpsDevice {
		warnings = append(warnings, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.")
		r.BlkioDeviceReadBps = []*types.ThrottleDevice{}
	}
	if len(r.BlkioDeviceWriteBps) > 0 && !host.BlkioWriteBpsDevice {
		warnings = append(warnings, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.")
		r.BlkioDeviceWriteBps = []*types.ThrottleDevice{}
	}
	if len(r.BlkioDeviceReadIOps) > 0 && !host.BlkioReadIOpsDevice {
		warnings = append(warnings, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.")
		r.BlkioDeviceReadIOps = []*types.ThrottleDevice{}
	}
	if len(r.BlkioDeviceWriteIOps) > 0 && !host.BlkioWriteIOpsDevice {
		warnings = append(warnings, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.")
		r.BlkioDeviceWriteIOps = []*types.ThrottleDevice{}
	}
	return warnings, nil
}

// infoWarnings lists, as dockerd's GET /info does, the resource limits this
// host cannot enforce. dockerd 20.10 printed the blkio lines on cgroup v1
// too; later versions dropped them there, but a missing weight is exactly
// what an operator of a mq-deadline host needs to see, so skiffd keeps them.
func infoWarnings(host cgroups.Support) []string {
	var w []string
	add := func(ok bool, msg string) {
		if !ok {
			w = append(w, "WARNING: "+msg)
		}
	}
	v2 := host.Version == "2"
	add(host.MemoryLimit, "No memory limit support")
	add(host.SwapLimit, "No swap limit support")
	// cgroup v2 has no OOM-killer switch; dockerd does not warn there.
	add(host.OomKillDisable || v2, "No oom kill disable support")
	add(host.CPUCfs, "No cpu cfs quota support")
	add(host.CPUCfs, "No cpu cfs period support")
	add(host.CPUShares, "No cpu shares support")
	add(host.Cpuset, "No cpuset support")
	if v2 {
		add(host.BlkioWeight, "No io.weight support")
		add(host.BlkioWeightDevice, "No io.weight (per device) support")
		add(host.BlkioReadBpsDevice, "No io.max (rbps) support")
		add(host.BlkioWriteBpsDevice, "No io.max (wbps) support")
		add(host.BlkioReadIOpsDevice, "No io.max (riops) support")
		add(host.BlkioWriteIOpsDevice, "No io.max (wiops) support")
	} else {
		add(host.BlkioWeight, "No blkio weight support")
		add(host.BlkioWeightDevice, "No blkio weight_device support")
		add(host.BlkioReadBpsDevice, "No blkio throttle.read_bps_device support")
		add(host.BlkioWriteBpsDevice, "No blkio throttle.write_bps_device support")
		add(host.BlkioReadIOpsDevice, "No blkio throttle.read_iops_device support")
		add(host.BlkioWriteIOpsDevice, "No blkio throttle.write_iops_device support")
	}
	return w
}

// minMemory is dockerd's lowest memory limit.
const minMemory = 6 * 1024 * 1024

// listSubset tells whether the kernel list requested ("0-2,4") names only
// members of the list available, as dockerd's IsCpusetCpusAvailable does;
// an empty request is always available. Its error is for a request that is
// not a list.
func listSubset(requested, available string) (bool, error) {
	if requested == "" {
		return true, nil
	}
	req, err := parseList(requested)
	if err != nil {
		return false, err
	}
	avail, err := parseList(available)
	if err != nil {
		return false, nil
	}
	for n := range req {
		if !avail[n] {
			return false, nil
		}
	}
	return true, nil
}

// parseList parses a kernel list of numbers and ranges ("0-2,4").
func parseList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	if s == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid format: %s", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid format: %s", s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("invalid format: %s", s)
		}
		for n := a; n <= b; n++ {
			out[n] = true
		}
	}
	return out, nil
}

// blkioDevices adds the per-device block IO limits and weights of r
// (--device-read-bps, --blkio-weight-device...) to out by device number,
// each path's found on the host as dockerd does at start; a path that
// is not a block device is refused.
func blkioDevices(out *spec.Resources, r types.Resources) error {
	devno := func(p string) (int64, int64, error) {
		d, err := hostDevice(p, p)
		if err == nil && d.Type != "b" {
			err = errors.New("not a block device")
		}
		if err != nil {
			return 0, 0, errdefs.InvalidParameter(fmt.Errorf("block IO device %s: %w", p, err))
		}
		return int64(d.Major), int64(d.Minor), nil
	}
	for _, l := range []struct {
		kind string
		devs []*types.ThrottleDevice
	}{
		{cgroups.ReadBps, r.BlkioDeviceReadBps}, {cgroups.WriteBps, r.BlkioDeviceWriteBps},
		{cgroups.ReadIOps, r.BlkioDeviceReadIOps}, {cgroups.WriteIOps, r.BlkioDeviceWriteIOps},
	} {
		for _, d := range l.devs {
			if d == nil {
				continue
			}
			maj, min, err := devno(d.Path)
			if err != nil {
				return err
			}
			out.BlkioThrottle = append(out.BlkioThrottle, spec.ThrottleDevice{Kind: l.kind, Major: maj, Minor: min, Rate: d.Rate})
		}
	}
	for _, d := range r.BlkioWeightDevice {
		if d == nil {
			continue
		}
		maj, min, err := devno(d.Path)
		if err != nil {
			return err
		}
		out.BlkioWeightDevice = append(out.BlkioWeightDevice, spec.WeightDevice{Major: maj, Minor: min, Weight: d.Weight})
	}
	return nil
}
