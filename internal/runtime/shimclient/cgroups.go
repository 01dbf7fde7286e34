package shimclient

import (
	"context"
	"errors"
	"fmt"

	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
)

// Resources converts the spec's limits to the cgroup manager's, as dockerd
// does: NanoCPUs become a CFS quota over a 100 ms period.
func Resources(r spec.Resources) cgroups.Resources {
	out := cgroups.Resources{
		Memory:            r.Memory,
		MemorySwap:        r.MemorySwap,
		MemoryReservation: r.MemoryReservation,
		CPUShares:         r.CPUShares,
		CPUQuota:          r.CPUQuota,
		CPUPeriod:         r.CPUPeriod,
		PidsLimit:         r.PidsLimit,
		BlkioWeight:       r.BlkioWeight,
	}
	if r.NanoCPUs > 0 {
		out.CPUPeriod = 100000
		out.CPUQuota = r.NanoCPUs * out.CPUPeriod / 1e9
	}
	return out
}

// cgroup returns the manager of the container's cgroups, nil without.
func (c *Container) cgroup() cgroups.Manager { return shim.OpenCgroup(c.spec) }

var errNoCgroup = errdefs.NotImplemented(errors.New("the container has no cgroup"))

// Pause freezes every process of the container.
func (c *Container) Pause(ctx context.Context) error {
	cg := c.cgroup()
	if cg == nil {
		return errNoCgroup
	}
	if err := c.mustRun(ctx); err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws the container.
func (c *Container) Resume(ctx context.Context) error {
	cg := c.cgroup()
	if cg == nil {
		return errNoCgroup
	}
	return cg.Thaw()
}

// Stats reads the container's cgroup counters.
func (c *Container) Stats(ctx context.Context) (*cgroups.Stats, error) {
	cg := c.cgroup()
	if cg == nil {
		return nil, errNoCgroup
	}
	return cg.Stats()
}

// Pids lists the container's processes (host pids).
func (c *Container) Pids(ctx context.Context) ([]int, error) {
	cg := c.cgroup()
	if cg == nil {
		return nil, errNoCgroup
	}
	return cg.Pids()
}

// Update changes the limits of the running container.
func (c *Container) Update(ctx context.Context, r spec.Resources) error {
	cg := c.cgroup()
	if cg == nil {
		return errNoCgroup
	}
	return cg.Update(Resources(r))
}

func (c *Container) mustRun(ctx context.Context) error {
	st, err := c.State(ctx)
	if err != nil {
		return err
	}
	if st.Status != shim.StatusRunning {
		return errdefs.Conflict(fmt.Errorf("Container %s is not running", c.id))
	}
	return nil
}
