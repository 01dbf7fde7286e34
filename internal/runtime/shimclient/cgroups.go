package shimclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
)

// Resources converts the spec's limits to the cgroup manager's, as dockerd
// does: NanoCPUs become a CFS quota over a 100 ms period.
func Resources(r spec.Resources) cgroups.Resources {
	out := cgroups.Resources{
		Memory:             r.Memory,
		MemorySwap:         r.MemorySwap,
		MemoryReservation:  r.MemoryReservation,
		CPUShares:          r.CPUShares,
		CPUQuota:           r.CPUQuota,
		CPUPeriod:          r.CPUPeriod,
		CPURealtimePeriod:  r.CPURealtimePeriod,
		CPURealtimeRuntime: r.CPURealtimeRuntime,
		CpusetCpus:         r.CpusetCpus,
		CpusetMems:         r.CpusetMems,
		PidsLimit:          r.PidsLimit,
		BlkioWeight:        r.BlkioWeight,
		MemorySwappiness:   r.MemorySwappiness,
		OomKillDisable:     r.OomKillDisable,
	}
	for _, t := range r.BlkioThrottle {
		out.BlkioThrottle = append(out.BlkioThrottle, cgroups.ThrottleDevice{Kind: t.Kind, Major: t.Major, Minor: t.Minor, Rate: t.Rate})
	}
	for _, w := range r.BlkioWeightDevice {
		out.BlkioWeightDevice = append(out.BlkioWeightDevice, cgroups.WeightDevice{Major: w.Major, Minor: w.Minor, Weight: w.Weight})
	}
	for _, d := range r.Devices {
		t := byte('a')
		if d.Type != "" {
			t = d.Type[0]
		}
		out.Devices = append(out.Devices, cgroups.DeviceRule{Type: t, Major: d.Major, Minor: d.Minor, Access: d.Access, Allow: d.Allow})
	}
	if r.NanoCPUs > 0 {
		out.CPUPeriod = 100000
		out.CPUQuota = r.NanoCPUs * out.CPUPeriod / 1e9
	}
	return out
}

// cgroup returns the manager of the container's cgroups, nil without.
func (c *Container) cgroup() cgroups.Manager {
	return shim.OpenCgroup(c.spec, cgroups.WithPrograms(c.r.progs))
}

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

// Paused reports whether the container's cgroup is frozen, from the
// kernel's own record, so it is right after a daemon restart. It reads the
// freezer the cgroups package uses: v2 cgroup.freeze where the container
// has a v2 cgroup with it, else v1 freezer.state.
func (c *Container) Paused(ctx context.Context) (bool, error) {
	cg := c.cgroup()
	if cg == nil {
		return false, nil
	}
	paths := cg.Paths()
	if dir, ok := paths[""]; ok {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); err == nil {
			return strings.TrimSpace(string(b)) == "1", nil
		}
	}
	if dir, ok := paths["freezer"]; ok {
		b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return false, err
		}
		return strings.TrimSpace(string(b)) != "THAWED", nil
	}
	return false, nil
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

// DiscardCgroups kills what runs in the cgroups of container id (below
// parent, "" for the default) and removes them, for a container whose
// runtime directory is gone (an exec root wiped under a stopped daemon):
// with no spec left, only the engine knows where they are. Cgroups that
// do not exist are not an error.
func (r *Runtime) DiscardCgroups(id, parent string) error {
	var opts []cgroups.Option
	if parent != "" {
		if cgroups.ValidParent(parent) != nil {
			return nil // no cgroup can have been made below it
		}
		opts = append(opts, cgroups.WithParent(parent))
	}
	cg := cgroups.New(id, opts...)
	if err := cg.Kill(); err != nil {
		return err
	}
	return cg.Destroy()
}
