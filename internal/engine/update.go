package engine

import (
	"context"
	"errors"
	"fmt"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sysinfo"
)

// ContainerUpdate answers POST /containers/{id}/update: resources (applied
// to the running container's cgroups at once) and the restart policy.
func (e *Engine) ContainerUpdate(ctx context.Context, name string, u *types.UpdateConfig) (*types.ContainerUpdateResponse, error) {
	// As dockerd: the values asked for are checked alone first, and refused
	// with the check's bare text; what is wrong only with the container's
	// current settings is the update's error ("Cannot update container").
	asked := types.HostConfig{Resources: u.Resources, RestartPolicy: u.RestartPolicy}
	if _, err := validateHostConfig(&asked, e.features.Cgroup, cpuCount(), true); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	if c.State.RemovalInProgress || c.State.Dead {
		return nil, errdefs.Conflict(fmt.Errorf("Cannot update container %s: container is marked for removal and cannot be \"update\"", c.ID))
	}
	hc := *c.HostConfig
	r := &hc.Resources
	in := u.Resources
	if in.BlkioWeight != 0 {
		r.BlkioWeight = in.BlkioWeight
	}
	if in.CPUShares != 0 {
		r.CPUShares = in.CPUShares
	}
	if in.NanoCPUs != 0 {
		r.NanoCPUs = in.NanoCPUs
	}
	if in.CPUPeriod != 0 {
		r.CPUPeriod = in.CPUPeriod
	}
	if in.CPUQuota != 0 {
		r.CPUQuota = in.CPUQuota
	}
	if in.CpusetCpus != "" {
		r.CpusetCpus = in.CpusetCpus
	}
	if in.CpusetMems != "" {
		r.CpusetMems = in.CpusetMems
	}
	if in.CPURealtimePeriod != 0 {
		r.CPURealtimePeriod = in.CPURealtimePeriod
	}
	if in.CPURealtimeRuntime != 0 {
		r.CPURealtimeRuntime = in.CPURealtimeRuntime
	}
	if in.Memory != 0 {
		// dockerd's rule, whatever the host: a memory limit above the
		// memory+swap limit in force (none, unlimited -1, or twice the
		// memory given at create) needs a new swap limit with it.
		// Records made before create stored that default hold 0.
		cur := r.MemorySwap
		if cur == 0 && r.Memory > 0 {
			cur = 2 * r.Memory
		}
		if in.Memory > cur && in.MemorySwap == 0 {
			return nil, errdefs.Conflict(fmt.Errorf("Cannot update container %s: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", c.ID))
		}
		r.Memory = in.Memory
	}
	if in.MemorySwap != 0 {
		r.MemorySwap = in.MemorySwap
	}
	if in.MemoryReservation != 0 {
		r.MemoryReservation = in.MemoryReservation
	}
	if in.PidsLimit != nil {
		if *in.PidsLimit <= 0 {
			r.PidsLimit = nil
		} else {
			v := *in.PidsLimit
			r.PidsLimit = &v
		}
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != types.RestartPolicyDisabled {
			return nil, errdefs.Conflict(errors.New("Cannot update container " + c.ID + ": Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	warnings, err := validateHostConfig(&hc, e.features.Cgroup, cpuCount(), true)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Cannot update container %s: %w", c.ID, err))
	}
	if len(in.Devices) > 0 || len(in.Ulimits) > 0 || len(in.DeviceRequests) > 0 || len(in.BlkioWeightDevice) > 0 ||
		len(in.BlkioDeviceReadBps) > 0 || len(in.BlkioDeviceWriteBps) > 0 || len(in.BlkioDeviceReadIOps) > 0 || len(in.BlkioDeviceWriteIOps) > 0 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Cannot update container %s: skiffd does not support updating devices, per-device block IO limits or ulimits", c.ID))
	}
	cs := e.state(c.ID)
	rc := cs.run()
	if rc != nil {
		rctx, cancel := detached(ctx)
		defer cancel()
		if err := rc.Update(rctx, runtimeResources(r)); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	old := c.HostConfig
	c.HostConfig = &hc
	if err := e.containers.Save(c); err != nil {
		// Put the running container's limits back, so that the record
		// on disk (the previous one) stays the truth.
		c.HostConfig = old
		if rc != nil {
			rctx, cancel := detached(ctx)
			defer cancel()
			if rerr := rc.Update(rctx, runtimeResources(&old.Resources)); rerr != nil {
				e.logger.Warn("restoring the limits of a container whose update could not be saved", "container", c.ID, "error", rerr)
			}
		}
		return nil, err
	}
	e.logEvent(c, "update", nil)
	if warnings == nil {
		warnings = []string{}
	}
	return &types.ContainerUpdateResponse{Warnings: warnings}, nil
}

// runtimeResources is the runtime's form of a host config's limits.
func runtimeResources(r *types.Resources) spec.Resources {
	res := spec.Resources{
		Memory: r.Memory, MemorySwap: r.MemorySwap, MemoryReservation: r.MemoryReservation,
		NanoCPUs: r.NanoCPUs, CPUShares: r.CPUShares, CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, BlkioWeight: r.BlkioWeight,
		CPURealtimePeriod: r.CPURealtimePeriod, CPURealtimeRuntime: r.CPURealtimeRuntime,
	}
	if r.PidsLimit != nil {
		res.PidsLimit = *r.PidsLimit
	}
	return res
}

func cpuCount() int { return sysinfo.Read().NCPU }
