package engine

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/runtime/cgroups"
)

// fullHost can enforce everything (a cgroup v1 host with CFQ/BFQ).
var fullHost = cgroups.Support{
	Version: "1", MemoryLimit: true, SwapLimit: true, MemoryReservation: true, MemorySwappiness: true, OomKillDisable: true,
	CPUShares: true, CPUCfs: true, CPURealtime: true, Cpuset: true, PidsLimit: true, Cpus: "0-3", Mems: "0",
	BlkioWeight: true, BlkioWeightDevice: true, BlkioReadBpsDevice: true, BlkioWriteBpsDevice: true,
	BlkioReadIOpsDevice: true, BlkioWriteIOpsDevice: true,
}

// Fake hosts of each kind verifyResources meets.
var (
	// v1NoWeight is this kind of machine: v1 hierarchies, mq-deadline disks.
	v1NoWeight = func() cgroups.Support { s := fullHost; s.BlkioWeight, s.BlkioWeightDevice = false, false; return s }()
	// v1NoSwap has no swap accounting (swapaccount=0).
	v1NoSwap = func() cgroups.Support { s := fullHost; s.SwapLimit = false; return s }()
	// v2Full is a unified host with iocost: no swappiness, OOM-kill switch or rt.
	v2Full = func() cgroups.Support {
		s := fullHost
		s.Version, s.MemorySwappiness, s.OomKillDisable, s.CPURealtime = "2", false, false, false
		return s
	}()
	// v2NoWeight is unified without iocost or BFQ.
	v2NoWeight = func() cgroups.Support { s := v2Full; s.BlkioWeight, s.BlkioWeightDevice = false, false; return s }()
	// bare has no resource controllers at all.
	bare = cgroups.Support{Version: "2"}
)

func TestVerifyResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	dev := []*types.ThrottleDevice{{Path: "/dev/vda", Rate: 1 << 20}}
	const (
		wWeight    = "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
		wSwap      = "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
		wSwappy    = "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."
		wOOM       = "Your kernel does not support OomKillDisable. OomKillDisable discarded."
		wOOMNoMem  = "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
		wMemory    = "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded."
		wKmem      = "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded."
		wPids      = "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded."
		wShares    = "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."
		wCfs       = "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded."
		wCpuset    = "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
		wReadBps   = "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."
		wWeightDev = "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."
	)
	for _, tc := range []struct {
		name   string
		host   cgroups.Support
		in     types.Resources
		update bool
		want   types.Resources // the resources after discarding
		warn   []string
		err    string // substring; "" = valid
	}{
		// Block IO weight: applied where a weighted scheduler exists,
		// discarded with dockerd's warning where not, range-checked only
		// when it is kept (dockerd's order).
		{name: "weight kept on v1 with a weighted scheduler", host: fullHost, in: types.Resources{BlkioWeight: 300}, want: types.Resources{BlkioWeight: 300}},
		{name: "weight kept on v2 with iocost", host: v2Full, in: types.Resources{BlkioWeight: 300}, want: types.Resources{BlkioWeight: 300}},
		{name: "weight discarded on v1 mq-deadline", host: v1NoWeight, in: types.Resources{BlkioWeight: 300}, want: types.Resources{}, warn: []string{wWeight}},
		{name: "weight discarded on v2 without iocost", host: v2NoWeight, in: types.Resources{BlkioWeight: 300}, want: types.Resources{}, warn: []string{wWeight}},
		{name: "weight discarded on update too", host: v1NoWeight, update: true, in: types.Resources{BlkioWeight: 300, Memory: 64 << 20}, want: types.Resources{Memory: 64 << 20}, warn: []string{wWeight}},
		{name: "weight below range", host: fullHost, in: types.Resources{BlkioWeight: 5}, err: "Range of blkio weight is from 10 to 1000"},
		{name: "weight above range", host: fullHost, in: types.Resources{BlkioWeight: 1001}, err: "Range of blkio weight is from 10 to 1000"},
		{name: "weight out of range but unsupported is only discarded", host: v1NoWeight, in: types.Resources{BlkioWeight: 5}, want: types.Resources{}, warn: []string{wWeight}},
		{name: "weight device discarded without support", host: v1NoWeight, in: types.Resources{BlkioWeightDevice: []*types.WeightDevice{{Path: "/dev/vda", Weight: 100}}},
			want: types.Resources{BlkioWeightDevice: []*types.WeightDevice{}}, warn: []string{wWeightDev}},
		{name: "throttle device kept where the host applies it", host: fullHost, in: types.Resources{BlkioDeviceReadBps: dev}, want: types.Resources{BlkioDeviceReadBps: dev}},
		{name: "throttle device discarded without support", host: bare, in: types.Resources{BlkioDeviceReadBps: dev},
			want: types.Resources{BlkioDeviceReadBps: []*types.ThrottleDevice{}}, warn: []string{wReadBps}},
		{name: "IO maximum is Windows", host: fullHost, in: types.Resources{IOMaximumIOps: 10}, err: "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"},

		// Memory and swap.
		{name: "memory minimum", host: fullHost, in: types.Resources{Memory: 1 << 20}, err: "Minimum memory limit allowed is 6MB"},
		{name: "memory without swap accounting", host: v1NoSwap, in: types.Resources{Memory: 64 << 20}, want: types.Resources{Memory: 64 << 20, MemorySwap: -1}, warn: []string{wSwap}},
		{name: "memory with unlimited swap needs no swap accounting", host: v1NoSwap, in: types.Resources{Memory: 64 << 20, MemorySwap: -1}, want: types.Resources{Memory: 64 << 20, MemorySwap: -1}},
		{name: "memory without the controller", host: bare, in: types.Resources{Memory: 64 << 20, MemorySwap: 128 << 20}, want: types.Resources{MemorySwap: -1}, warn: []string{wMemory}},
		{name: "swap below memory", host: fullHost, in: types.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, err: "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{name: "swap without memory", host: fullHost, in: types.Resources{MemorySwap: 32 << 20}, err: "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{name: "swap without memory on update", host: fullHost, update: true, in: types.Resources{MemorySwap: 32 << 20}, want: types.Resources{MemorySwap: 32 << 20}},
		{name: "reservation minimum", host: fullHost, in: types.Resources{MemoryReservation: 1 << 20}, err: "Minimum memory reservation allowed is 6MB"},
		{name: "reservation above memory", host: fullHost, in: types.Resources{Memory: 8 << 20, MemoryReservation: 16 << 20}, err: "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{name: "swappiness unset by the CLI", host: fullHost, in: types.Resources{MemorySwappiness: i64(-1)}, want: types.Resources{}},
		{name: "swappiness on v2", host: v2Full, in: types.Resources{MemorySwappiness: i64(60)}, want: types.Resources{}, warn: []string{wSwappy}},
		{name: "swappiness range", host: fullHost, in: types.Resources{MemorySwappiness: i64(101)}, err: "Invalid value: 101, valid memory swappiness range is 0-100"},
		{name: "swappiness kept on v1", host: fullHost, in: types.Resources{MemorySwappiness: i64(60)}, want: types.Resources{MemorySwappiness: i64(60)}},
		{name: "kernel memory", host: fullHost, in: types.Resources{KernelMemory: 64 << 20}, want: types.Resources{}, warn: []string{wKmem}},

		// OOM kill disable and pids.
		{name: "oom kill disable on v2", host: v2Full, in: types.Resources{Memory: 64 << 20, OomKillDisable: &yes}, want: types.Resources{Memory: 64 << 20}, warn: []string{wOOM}},
		{name: "oom kill kept on, v2", host: v2Full, in: types.Resources{OomKillDisable: &no}, want: types.Resources{}},
		{name: "oom kill disable without memory limit", host: fullHost, in: types.Resources{OomKillDisable: &yes}, want: types.Resources{OomKillDisable: &yes}, warn: []string{wOOMNoMem}},
		{name: "oom kill disable kept on v1", host: fullHost, in: types.Resources{Memory: 64 << 20, OomKillDisable: &yes}, want: types.Resources{Memory: 64 << 20, OomKillDisable: &yes}},
		{name: "pids without the controller", host: bare, in: types.Resources{PidsLimit: i64(10)}, want: types.Resources{}, warn: []string{wPids}},
		{name: "pids kept", host: fullHost, in: types.Resources{PidsLimit: i64(10)}, want: types.Resources{PidsLimit: i64(10)}},

		// CPU.
		{name: "cpus in range", host: fullHost, in: types.Resources{NanoCPUs: 1e9}, want: types.Resources{NanoCPUs: 1e9}},
		{name: "cpus beyond", host: fullHost, in: types.Resources{NanoCPUs: 5e9}, err: "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"},
		{name: "cpus without CFS", host: bare, in: types.Resources{NanoCPUs: 1e9}, err: "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"},
		{name: "cpus with quota", host: fullHost, in: types.Resources{NanoCPUs: 1e9, CPUQuota: 50000}, err: "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{name: "shares without the controller", host: bare, in: types.Resources{CPUShares: 512}, want: types.Resources{}, warn: []string{wShares}},
		{name: "negative shares", host: fullHost, in: types.Resources{CPUShares: -1}, err: "invalid CPU shares (-1): value must be a positive integer"},
		{name: "quota without CFS", host: bare, in: types.Resources{CPUQuota: 50000, CPUPeriod: 100000}, want: types.Resources{}, warn: []string{wCfs}},
		{name: "period range", host: fullHost, in: types.Resources{CPUPeriod: 10}, err: "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{name: "quota minimum", host: fullHost, in: types.Resources{CPUQuota: 10}, err: "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{name: "rt on v2", host: v2Full, in: types.Resources{CPURealtimePeriod: 1000000, CPURealtimeRuntime: 1000},
			warn: []string{"Your kernel does not support cgroup cpu real-time period. Period discarded.", "Your kernel does not support cgroup cpu real-time runtime. Runtime discarded."}},
		{name: "rt runtime above period", host: fullHost, in: types.Resources{CPURealtimePeriod: 1000, CPURealtimeRuntime: 2000}, err: "cpu real-time runtime cannot be higher than cpu real-time period"},
		{name: "rt where the host can apply it", host: fullHost, in: types.Resources{CPURealtimePeriod: 1000000, CPURealtimeRuntime: 950000}, want: types.Resources{CPURealtimePeriod: 1000000, CPURealtimeRuntime: 950000}},
		{name: "cpu percent is Windows", host: fullHost, in: types.Resources{CPUPercent: 50}, want: types.Resources{}, warn: []string{"linux does not support CPU percent. Percent discarded."}},

		// Cpusets: discarded without the controller, else refused (not applied yet).
		{name: "cpuset without the controller", host: bare, in: types.Resources{CpusetCpus: "0"}, want: types.Resources{}, warn: []string{wCpuset}},
		{name: "cpuset", host: fullHost, in: types.Resources{CpusetCpus: "0,2-3", CpusetMems: "0"}, want: types.Resources{CpusetCpus: "0,2-3", CpusetMems: "0"}},
		{name: "cpuset on update", host: v2Full, update: true, in: types.Resources{CpusetMems: "0"}, want: types.Resources{CpusetMems: "0"}},
		{name: "cpuset cpus not available", host: fullHost, in: types.Resources{CpusetCpus: "1-4"}, err: "Requested CPUs are not available - requested 1-4, available: 0-3"},
		{name: "cpuset mems not available", host: fullHost, in: types.Resources{CpusetMems: "1"}, err: "Requested memory nodes are not available - requested 1, available: 0"},
		{name: "cpuset cpus invalid", host: fullHost, in: types.Resources{CpusetCpus: "3-1"}, err: "Invalid value 3-1 for cpuset cpus"},
		{name: "cpuset mems invalid", host: fullHost, in: types.Resources{CpusetMems: "x"}, err: "Invalid value x for cpuset mems"},

		// Several at once keep dockerd's order.
		{name: "everything on a bare host", host: bare,
			in:   types.Resources{Memory: 64 << 20, PidsLimit: i64(5), CPUShares: 2, BlkioWeight: 500, CpusetCpus: "1"},
			want: types.Resources{MemorySwap: -1},
			warn: []string{wMemory, wPids, wShares, wCpuset, wWeight}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.in
			warn, err := verifyResources(tc.host, 4, &r, tc.update)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("verifyResources(%+v) = %v, want error containing %q", tc.in, err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("verifyResources(%+v) = %v, want no error", tc.in, err)
			}
			if !slices.Equal(warn, tc.warn) {
				t.Errorf("verifyResources(%+v) warnings = %q, want %q", tc.in, warn, tc.warn)
			}
			if tc.err == "" && !reflect.DeepEqual(r, tc.want) {
				t.Errorf("verifyResources(%+v) left %+v, want %+v", tc.in, r, tc.want)
			}
		})
	}
}

func TestInfoWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		host cgroups.Support
		want []string
	}{
		{"everything", fullHost, nil},
		{"v1 mq-deadline", v1NoWeight, []string{"WARNING: No blkio weight support", "WARNING: No blkio weight_device support"}},
		{"v1 no swap accounting", v1NoSwap, []string{"WARNING: No swap limit support"}},
		{"v2 iocost", v2Full, nil},
		{"v2 no weight", v2NoWeight, []string{"WARNING: No io.weight support", "WARNING: No io.weight (per device) support"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := infoWarnings(tc.host); !slices.Equal(got, tc.want) {
				t.Errorf("infoWarnings(%+v) = %q, want %q", tc.host, got, tc.want)
			}
		})
	}
}
