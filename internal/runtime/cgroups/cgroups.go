// Package cgroups puts containers into Linux control groups: it creates one
// cgroup per container in every hierarchy the host offers, applies Docker's
// resource limits and device policy, places processes, freezes, kills, reads
// statistics and removes the cgroups again.
//
// Three host layouts are handled by one implementation that chooses, per
// controller, where the controller lives:
//
//   - Legacy: only cgroup v1 hierarchies under /sys/fs/cgroup.
//   - Hybrid: v1 hierarchies for the controllers plus a cgroup2 mount at
//     /sys/fs/cgroup/unified. Controllers bound to v1 are used there; the v2
//     cgroup is used for placement (CLONE_INTO_CGROUP), freeze, kill and the
//     eBPF device program, which are core v2 features.
//   - Unified: pure cgroup v2.
//
// A container lives at <root>/skiffd/<id> in every hierarchy. Typical use by
// the daemon and the shim:
//
//	m := cgroups.New(id)
//	if err := m.Create(res); err != nil { ... }
//	fd, _ := m.CgroupFD() // -1 on a pure v1 host
//	attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = fd >= 0, fd
//	p, _ := os.StartProcess(...)       // child blocks on its sync socket
//	if err := m.Apply(p.Pid); err != nil { ... } // v1 hierarchies
//	... // later
//	m.Kill(); m.Destroy()
package cgroups

import "strings"

// Mode is the cgroup layout of a host.
type Mode int

// The layouts. The zero value is Legacy so that an unset Mode never claims a
// v2 mount that might not exist.
const (
	// Legacy is cgroup v1 only.
	Legacy Mode = iota
	// Hybrid is v1 controllers plus a cgroup2 mount at <root>/unified.
	Hybrid
	// Unified is pure cgroup v2 mounted at the root.
	Unified
)

// String returns the mode's name as used in log lines and docker info.
func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "unknown"
}

// DefaultRoot is where the kernel's cgroup filesystems are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// DefaultParent is the cgroup, directly under each hierarchy root, that holds
// every container's cgroup. The daemon itself must never run inside it: on v2
// a cgroup with processes cannot delegate controllers to its children.
const DefaultParent = "skiffd"

// Resources are the limits of one container, in Docker's units and with
// Docker's conventions: zero leaves a limit unset (on Create: the kernel
// default, which is unlimited; on Update: unchanged) and -1 means unlimited.
type Resources struct {
	// Memory is the hard memory limit in bytes.
	Memory int64
	// MemorySwap is memory plus swap as Docker means it. Zero on Create with
	// Memory set means twice Memory, as dockerd does when the kernel accounts
	// swap; -1 is unlimited swap.
	MemorySwap int64
	// MemoryReservation is the soft limit in bytes.
	MemoryReservation int64
	// CPUShares is the relative CPU weight (v1 units, 2..262144).
	CPUShares int64
	// CPUQuota and CPUPeriod are the CFS bandwidth in microseconds. The
	// caller converts NanoCPUs: period 100000, quota nanos*period/1e9.
	CPUQuota, CPUPeriod int64
	// CPURealtimePeriod and CPURealtimeRuntime are the real-time
	// scheduler's budget in microseconds (cgroup v1 cpu.rt_period_us and
	// cpu.rt_runtime_us; kernels with RT group scheduling only).
	CPURealtimePeriod, CPURealtimeRuntime int64
	// CpusetCpus and CpusetMems are the CPUs and memory nodes the
	// container may use, in the kernel's list format ("0-2,4"); empty
	// keeps the parent's.
	CpusetCpus, CpusetMems string
	// PidsLimit is the maximum number of tasks (threads count).
	PidsLimit int64
	// BlkioWeight is the relative block IO weight (10..1000).
	BlkioWeight uint16
	// BlkioThrottle are per-device rate limits and BlkioWeightDevice
	// per-device weights (--device-read-bps..., --blkio-weight-device),
	// by device number.
	BlkioThrottle     []ThrottleDevice
	BlkioWeightDevice []WeightDevice
	// MemorySwappiness is memory.swappiness (0..100); nil leaves the
	// kernel's. OomKillDisable turns the OOM killer off for the cgroup.
	// Both exist on cgroup v1 only: Support says where.
	MemorySwappiness *int64
	OomKillDisable   bool
	// Devices is the device allow-list, applied on top of "deny all" and in
	// order with cgroup v1 semantics. Nil means DefaultDevices. A single rule
	// {Type: 'a', Allow: true} allows every device (privileged). Update does
	// not change devices: Docker's update API has no device fields.
	Devices []DeviceRule
}

// Throttle kinds of a ThrottleDevice: what its Rate limits.
const (
	ReadBps   = "read_bps"
	WriteBps  = "write_bps"
	ReadIOps  = "read_iops"
	WriteIOps = "write_iops"
)

// ThrottleDevice is one per-device rate limit: Rate bytes (or operations)
// per second of Kind on block device Major:Minor.
type ThrottleDevice struct {
	Kind         string
	Major, Minor int64
	Rate         uint64
}

// WeightDevice is one per-device block IO weight (10..1000).
type WeightDevice struct {
	Major, Minor int64
	Weight       uint16
}

// DeviceRule is one device cgroup rule, as in `devices.allow`.
type DeviceRule struct {
	// Type is 'a' (all devices), 'b' (block) or 'c' (char).
	Type byte
	// Major and Minor are the device numbers; -1 matches any.
	Major, Minor int64
	// Access is a combination of 'r', 'w' and 'm' (mknod); empty means "rwm".
	Access string
	// Allow says whether the rule allows or denies the access.
	Allow bool
}

// Wildcard matches any major or minor number in a DeviceRule.
const Wildcard = -1

// DefaultDevices is the device policy of a default (non-privileged) Docker
// container, i.e. what dockerd asks for and runc adds, after runc's "deny
// all" start:
//
//   - moby daemon/pkg/oci/defaults.go DefaultLinuxSpec: deny all, then allow
//     c 1:5, 1:3, 1:9, 1:8, 5:0, 5:1 rwm, and deny c 10:229 (fuse) rwm.
//   - runc libcontainer/specconv/spec_linux.go AllowedDevices, appended to
//     every container: mknod of any char and block device (c *:* m,
//     b *:* m), c 1:3, 1:8, 1:7, 5:0, 1:5, 1:9 rwm, c 136:* rwm (pts) and
//     c 5:2 rwm (ptmx).
//
// tun (c 10:200) is not in the list: runc removed it from AllowedDevices
// in 1.2. The resulting set lets container root mknod any node but open only
// these devices.
var DefaultDevices = []DeviceRule{
	{Type: 'a', Major: Wildcard, Minor: Wildcard, Access: "rwm", Allow: false},
	{Type: 'c', Major: 1, Minor: 5, Access: "rwm", Allow: true},
	{Type: 'c', Major: 1, Minor: 3, Access: "rwm", Allow: true},
	{Type: 'c', Major: 1, Minor: 9, Access: "rwm", Allow: true},
	{Type: 'c', Major: 1, Minor: 8, Access: "rwm", Allow: true},
	{Type: 'c', Major: 5, Minor: 0, Access: "rwm", Allow: true},
	{Type: 'c', Major: 5, Minor: 1, Access: "rwm", Allow: true},
	{Type: 'c', Major: 10, Minor: 229, Access: "rwm", Allow: false},
	{Type: 'c', Major: Wildcard, Minor: Wildcard, Access: "m", Allow: true},
	{Type: 'b', Major: Wildcard, Minor: Wildcard, Access: "m", Allow: true},
	{Type: 'c', Major: 1, Minor: 7, Access: "rwm", Allow: true},
	{Type: 'c', Major: 136, Minor: Wildcard, Access: "rwm", Allow: true},
	{Type: 'c', Major: 5, Minor: 2, Access: "rwm", Allow: true},
}

// Manager controls the cgroups of one container. Its methods are safe for
// concurrent use.
type Manager interface {
	// Create makes the container's cgroups in every hierarchy it uses (v1
	// cpuset copies cpus/mems from the parent; v2 enables the controllers
	// it needs in the ancestors' cgroup.subtree_control) and applies res
	// and the device policy. On failure it removes what it created. Calling
	// it again on existing cgroups reapplies everything but stacks another
	// v2 device program next to the old one (both must allow an access), so
	// a restarted container should get Destroy first.
	Create(res Resources) error
	// CgroupFD opens the container's v2 cgroup directory for
	// SysProcAttr.UseCgroupFD (clone3 CLONE_INTO_CGROUP). It returns -1 and
	// no error when there is no v2 cgroup (Legacy). The caller closes the fd.
	CgroupFD() (int, error)
	// Apply moves pid (a whole thread group) into every hierarchy. Writing
	// to the v2 cgroup.procs of a cgroup the process is already in, because
	// CgroupFD placed it, is a no-op for the kernel.
	Apply(pid int) error
	// EnterThread moves the calling OS thread alone into the container's
	// v1 hierarchies, so that a process it then forks starts in them, and
	// returns leave, which moves the thread back to where it was. The
	// caller has locked its goroutine to the thread until leave returns,
	// places the child in the v2 cgroup with CgroupFD, and calls leave
	// even when the fork fails: a thread left behind (the runtime cannot
	// retire the main thread, say) would put its whole process in the
	// container's cgroup.procs. Unlike Apply, it costs no RCU grace
	// period: a thread that moves itself (it writes "0" to tasks) takes no
	// thread-group lock, whereas each of Apply's writes waits for one and
	// stalls the mover's forks and execs meanwhile. On a host without v1
	// hierarchies it moves nothing.
	EnterThread() (leave func() error, err error)
	// Update changes the limits of a running container; zero fields are left
	// alone and Devices is ignored.
	Update(res Resources) error
	// Freeze stops every process in the container and returns once they are
	// all frozen. It uses exactly one freezer: v2 cgroup.freeze when the v2
	// cgroup has it, else v1 freezer.state.
	Freeze() error
	// Thaw resumes the processes stopped by Freeze.
	Thaw() error
	// Kill sends SIGKILL to every process in the container and waits until
	// none is left alive (zombies waiting for their parent do not count).
	Kill() error
	// Pids lists the processes (thread group ids) in the container's cgroup
	// and its descendants.
	Pids() ([]int, error)
	// Stats reads the counters Docker's stats API reports.
	Stats() (*Stats, error)
	// OOMKilled reports whether the kernel's OOM killer has killed a process
	// of this container (memory.oom_control or memory.events oom_kill > 0).
	OOMKilled() (bool, error)
	// Destroy removes every cgroup directory of the container. Processes
	// must be gone; it is idempotent and leaves the shared parent alone.
	Destroy() error
	// Paths maps each controller to the container's directory: v1 keys are
	// the names in /proc/<pid>/cgroup ("memory", "name=systemd", ...) and the
	// v2 directory has the key "" (the "0::" line). Nil if the host's
	// hierarchies cannot be read.
	Paths() map[string]string
}

// Option changes how New and NewAt lay out cgroups.
type Option func(*manager)

// WithParent puts the container under parent (one or more path elements)
// instead of DefaultParent. Tests use their own parent, e.g.
// "skiffd-test-<random>".
// ValidParent checks a cgroup parent as a manager would take it: one or
// more path elements below each hierarchy's root, with or without a
// leading slash ("/" is the root itself), none of which can leave it.
func ValidParent(parent string) error {
	if p := strings.Trim(parent, "/"); p != "" {
		return validName(p, true)
	}
	return nil
}

func WithParent(parent string) Option {
	// dockerd's cgroupfs driver takes "/kubepods/pod1" and "kubepods/pod1"
	// alike, relative to each hierarchy's root; "/" is the root itself.
	return func(m *manager) { m.parent = strings.Trim(parent, "/"); m.rootParent = m.parent == "" }
}

// WithPrograms has the manager take device programs from progs (see
// Programs) instead of loading its own.
func WithPrograms(progs *Programs) Option {
	return func(m *manager) { m.progs = progs }
}

// New returns the manager of container id on this host, with the layout
// from DetectMode and the cgroup filesystems under DefaultRoot. Nothing is
// touched until a method is called.
func New(id string, opts ...Option) Manager {
	return NewAt(DefaultRoot, DetectMode(), id, opts...)
}

// NewAt returns the manager of container id for cgroup filesystems mounted
// under root in the given layout. A Legacy manager on a hybrid host uses the
// v1 hierarchies only.
func NewAt(root string, mode Mode, id string, opts ...Option) Manager {
	m := &manager{root: root, mode: mode, parent: DefaultParent, id: id}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Stats are a container's counters in the shape of Docker's stats API
// (moby api/types/container/stats.go): cpu_stats, memory_stats, pids_stats
// and blkio_stats. Values are raw: the caller adds system_cpu_usage,
// online_cpus and networks, and clips an unlimited memory limit to the
// machine's memory as dockerd does.
type Stats struct {
	CPU    CPUStats
	Memory MemoryStats
	Pids   PidsStats
	Blkio  BlkioStats
}

// CPUStats is Docker's cpu_stats without the system-wide fields. Times are in
// nanoseconds.
type CPUStats struct {
	// TotalUsage is v1 cpuacct.usage or v2 cpu.stat usage_usec.
	TotalUsage uint64
	// PercpuUsage is v1 cpuacct.usage_percpu; v2 has no per-CPU usage.
	PercpuUsage []uint64
	// UsageInKernelmode and UsageInUsermode come from v1 cpuacct.stat (clock
	// ticks) or v2 cpu.stat system_usec and user_usec.
	UsageInKernelmode uint64
	UsageInUsermode   uint64
	Throttling        ThrottlingData
}

// ThrottlingData is Docker's throttling_data, from cpu.stat.
type ThrottlingData struct {
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledTime    uint64 // nanoseconds
}

// MemoryStats is Docker's memory_stats. On v2, MaxUsage and Failcnt stay
// zero, as with dockerd, and Stats holds the v2 memory.stat keys (anon, file,
// inactive_file, ...) where v1 has cache, rss, total_inactive_file, ....
type MemoryStats struct {
	Usage    uint64
	MaxUsage uint64
	Limit    uint64 // math.MaxUint64 when v2 says "max"
	Failcnt  uint64
	Stats    map[string]uint64
}

// PidsStats is Docker's pids_stats; Limit is 0 when unlimited.
type PidsStats struct {
	Current uint64
	Limit   uint64
}

// BlkioStats is Docker's blkio_stats. v2 fills IoServiceBytesRecursive only,
// with ops "read" and "write", as dockerd does; v1 copies the kernel's ops
// ("Read", "Write", "Sync", "Async", "Discard", "Total").
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioStatEntry
	IoServicedRecursive     []BlkioStatEntry
}

// BlkioStatEntry is one device counter.
type BlkioStatEntry struct {
	Major uint64
	Minor uint64
	Op    string
	Value uint64
}
