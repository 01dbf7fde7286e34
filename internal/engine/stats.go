package engine

import (
	"bytes"
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/sysinfo"
)

// clockTicks is USER_HZ, the unit of /proc/stat (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// ContainerStats answers GET /containers/{id}/stats: samples of the
// container's cgroup counters, each with the previous one as precpu_stats.
// A container that does not run gets empty samples, as from dockerd.
func (e *Engine) ContainerStats(ctx context.Context, name string, stream, oneShot bool, emit func(*types.StatsJSON) error) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	var prev *types.StatsJSON
	sample := func() *types.StatsJSON {
		s := e.statsSample(c)
		if prev != nil {
			s.PreCPUStats = prev.CPUStats
			s.PreRead = prev.Read
		}
		prev = s
		return s
	}
	if !stream {
		first := sample()
		if oneShot {
			return emit(first)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
		return emit(sample())
	}
	defer e.streams.begin()()
	// The first sample now; the next ones from the collector, which
	// samples every container with streams once a second.
	c.Lock()
	removed := c.State.IsRemoved()
	c.Unlock()
	if removed {
		return nil
	}
	if err := emit(sample()); err != nil {
		return nil
	}
	sub, cancel := e.stats.subscribe(c, e.statsSamples)
	defer cancel()
	for {
		select {
		case s := <-sub.ch:
			c.Lock()
			removed := c.State.IsRemoved()
			c.Unlock()
			if removed {
				return nil // the container is gone: so is its stream
			}
			// The sample is shared with the container's other streams:
			// fill in this stream's previous sample on a copy.
			own := *s
			own.PreCPUStats, own.PreRead = prev.CPUStats, prev.Read
			prev = &own
			if err := emit(&own); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// ContainerStatsFollow answers a stats stream that has no goroutine of its
// own (issue 13, memory per stream): it returns the container's first
// sample now and follow, which subscribes emit to the samples the
// collector takes every second, given on its goroutine and shared with
// the container's other streams (emit must not block nor change them).
// emit is given nil once the container has been removed: the stream ends
// then. follow's stop (also called when emit reports false) ends the
// subscription. A container removed already has no first sample (nil) and
// no stream, as ContainerStats.
func (e *Engine) ContainerStatsFollow(ctx context.Context, name string) (*types.StatsJSON, func(emit func(*types.StatsJSON) bool) (stop func()), error) {
	c, err := e.get(name)
	if err != nil {
		return nil, nil, err
	}
	c.Lock()
	removed := c.State.IsRemoved()
	c.Unlock()
	if removed {
		return nil, nil, nil
	}
	first := e.statsSample(c)
	follow := func(emit func(*types.StatsJSON) bool) func() {
		end := e.streams.begin()
		var once sync.Once
		var cancel func()
		stopped := make(chan struct{})
		stop := func() {
			once.Do(func() {
				<-stopped // cancel is set
				cancel()
				end()
			})
		}
		cancel = e.stats.subscribeFunc(c, e.statsSamples, func(s *types.StatsJSON) {
			c.Lock()
			removed := c.State.IsRemoved()
			c.Unlock()
			if removed {
				emit(nil) // the container is gone: so is its stream
				stop()
				return
			}
			if !emit(s) {
				stop()
			}
		})
		close(stopped)
		return stop
	}
	return first, follow, nil
}

// statsSamples reads one sample of each container in cs, the host's
// counters once for all of them.
func (e *Engine) statsSamples(cs map[*container.Container]bool) map[*container.Container]*types.StatsJSON {
	h := &hostStats{}
	out := make(map[*container.Container]*types.StatsJSON, len(cs))
	for c := range cs {
		out[c] = e.statsSampleWith(c, h)
	}
	return out
}

// hostStats are the host's counters a sample carries, read lazily: a
// sample of a container that does not run has none.
type hostStats struct {
	read     bool
	usage    uint64
	cpus     uint32
	memTotal int64
}

func (h *hostStats) get() *hostStats {
	if !h.read {
		h.read = true
		h.usage, h.cpus = procStat()
		h.memTotal = hostMemTotal()
	}
	return h
}

// statsSample reads one sample.
func (e *Engine) statsSample(cc *container.Container) *types.StatsJSON {
	return e.statsSampleWith(cc, &hostStats{})
}

// statsSampleWith reads one sample, with the host's counters from h.
func (e *Engine) statsSampleWith(cc *container.Container, h *hostStats) *types.StatsJSON {
	out := &types.StatsJSON{}
	out.Read = time.Now().UTC()
	cc.Lock()
	out.Name, out.ID = cc.Name, cc.ID
	cc.Unlock()
	out.Networks = nil
	out.BlkioStats = types.BlkioStats{
		IoServiceBytesRecursive: []types.BlkioStatEntry{}, IoServicedRecursive: []types.BlkioStatEntry{},
		IoQueuedRecursive: []types.BlkioStatEntry{}, IoServiceTimeRecursive: []types.BlkioStatEntry{},
		IoWaitTimeRecursive: []types.BlkioStatEntry{}, IoMergedRecursive: []types.BlkioStatEntry{},
		IoTimeRecursive: []types.BlkioStatEntry{}, SectorsRecursive: []types.BlkioStatEntry{},
	}
	cs := e.state(cc.ID)
	rc := cs.run()
	if rc == nil {
		out.Read = time.Time{}
		return out
	}
	st, err := rc.Stats(context.Background())
	if err != nil {
		return out
	}
	fillStats(out, st, h.get().memTotal)
	cc.Lock()
	pid := cc.State.Pid
	noNet := cc.HostConfig != nil && cc.HostConfig.NetworkMode == "none"
	cc.Unlock()
	if !noNet {
		// With --network none the namespace holds only lo, which is
		// never reported: no netlink socket (and its 64 KiB buffer) a
		// sample.
		out.Networks = e.networkStats(pid)
	}
	host := h.get()
	out.CPUStats.SystemUsage, out.CPUStats.OnlineCPUs = host.usage, host.cpus
	return out
}

// fillStats maps the cgroup counters to Docker's stats.
func fillStats(out *types.StatsJSON, st *cgroups.Stats, memTotal int64) {
	out.CPUStats.CPUUsage = types.CPUUsage{
		TotalUsage:        st.CPU.TotalUsage,
		PercpuUsage:       st.CPU.PercpuUsage,
		UsageInKernelmode: st.CPU.UsageInKernelmode,
		UsageInUsermode:   st.CPU.UsageInUsermode,
	}
	out.CPUStats.ThrottlingData = types.ThrottlingData{
		Periods:          st.CPU.Throttling.Periods,
		ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods,
		ThrottledTime:    st.CPU.Throttling.ThrottledTime,
	}
	limit := st.Memory.Limit
	if limit == 0 || limit == math.MaxUint64 || (memTotal > 0 && limit > uint64(memTotal)) {
		limit = uint64(memTotal)
	}
	out.MemoryStats = types.MemoryStats{
		Usage:    st.Memory.Usage,
		MaxUsage: st.Memory.MaxUsage,
		Failcnt:  st.Memory.Failcnt,
		Limit:    limit,
		Stats:    st.Memory.Stats,
	}
	out.PidsStats = types.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	for _, b := range st.Blkio.IoServiceBytesRecursive {
		out.BlkioStats.IoServiceBytesRecursive = append(out.BlkioStats.IoServiceBytesRecursive, types.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	for _, b := range st.Blkio.IoServicedRecursive {
		out.BlkioStats.IoServicedRecursive = append(out.BlkioStats.IoServicedRecursive, types.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
}

// hostMemTotal is the host's memory, for the limit of an unlimited
// container (sysinfo.Read would also read os-release and uname a sample).
func hostMemTotal() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return sysinfo.Read().MemTotal
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// procStat reads /proc/stat once for the host's total CPU time in
// nanoseconds (its cpu line, as dockerd computes it) and the number of
// online CPUs (its cpuN lines).
func procStat() (usage uint64, cpus uint32) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, uint32(sysinfo.Read().NCPU)
	}
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\n"))
		if !bytes.HasPrefix(l, []byte("cpu")) {
			continue
		}
		if len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			cpus++
			continue
		}
		fields := strings.Fields(string(l))
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		usage = ticks * (1e9 / clockTicks)
	}
	return usage, cpus
}
