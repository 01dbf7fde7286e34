package types

import (
	"encoding/json"
	"time"
)

// StrSlice is a list of strings that also decodes from a single JSON string,
// as Cmd, Entrypoint and Shell do on the wire: `"Cmd":"date"` is
// `"Cmd":["date"]`. It always encodes as a list (or null).
type StrSlice []string

// UnmarshalJSON accepts a list of strings, a single string or null.
func (s *StrSlice) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*s = list
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*s = StrSlice{one}
	return nil
}

// HealthConfig is Config.Healthcheck. Durations are integer nanoseconds on the
// wire; zero means "inherit from the image".
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// Config is the portable part of a container's configuration: the body of
// create (with HostConfig and NetworkingConfig beside it) and the Config of
// container inspect.
type Config struct {
	Hostname        string              `json:"Hostname"`
	Domainname      string              `json:"Domainname"`
	User            string              `json:"User"`
	AttachStdin     bool                `json:"AttachStdin"`
	AttachStdout    bool                `json:"AttachStdout"`
	AttachStderr    bool                `json:"AttachStderr"`
	ExposedPorts    map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty             bool                `json:"Tty"`
	OpenStdin       bool                `json:"OpenStdin"`
	StdinOnce       bool                `json:"StdinOnce"`
	Env             []string            `json:"Env"`
	Cmd             StrSlice            `json:"Cmd"`
	Healthcheck     *HealthConfig       `json:"Healthcheck,omitempty"`
	ArgsEscaped     bool                `json:"ArgsEscaped,omitempty"`
	Image           string              `json:"Image"`
	Volumes         map[string]struct{} `json:"Volumes"`
	WorkingDir      string              `json:"WorkingDir"`
	Entrypoint      StrSlice            `json:"Entrypoint"`
	NetworkDisabled bool                `json:"NetworkDisabled,omitempty"`
	// MacAddress is deprecated at the container level since API 1.44, which
	// moved it to the endpoint settings; old clients still send it.
	MacAddress  string            `json:"MacAddress,omitempty"`
	OnBuild     []string          `json:"OnBuild"`
	Labels      map[string]string `json:"Labels"`
	StopSignal  string            `json:"StopSignal,omitempty"`
	StopTimeout *int              `json:"StopTimeout,omitempty"`
	Shell       StrSlice          `json:"Shell,omitempty"`
}

// LogConfig names a container's log driver and its options.
type LogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
}

// RestartPolicy says what to do when a container exits: Name is "no" (or
// empty), "always", "unless-stopped" or "on-failure", the last with an
// optional MaximumRetryCount.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// The restart policy names.
const (
	RestartPolicyDisabled      = "no"
	RestartPolicyAlways        = "always"
	RestartPolicyOnFailure     = "on-failure"
	RestartPolicyUnlessStopped = "unless-stopped"
)

// PortBinding is one host address a container port is published on.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// PortMap maps a container port ("80/tcp") to its host bindings.
type PortMap map[string][]PortBinding

// WeightDevice is a per-device block IO weight.
type WeightDevice struct {
	Path   string `json:"Path"`
	Weight uint16 `json:"Weight"`
}

// ThrottleDevice is a per-device block IO rate limit.
type ThrottleDevice struct {
	Path string `json:"Path"`
	Rate uint64 `json:"Rate"`
}

// DeviceMapping exposes a host device inside the container.
type DeviceMapping struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// DeviceRequest asks a device driver (GPUs) for devices.
type DeviceRequest struct {
	Driver       string            `json:"Driver"`
	Count        int               `json:"Count"`
	DeviceIDs    []string          `json:"DeviceIDs"`
	Capabilities [][]string        `json:"Capabilities"`
	Options      map[string]string `json:"Options"`
}

// Ulimit is one resource limit (RLIMIT_*) for the container's processes.
type Ulimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

// Resources are the cgroup and rlimit settings of a container. They appear
// flattened into HostConfig and into the body of POST /containers/{id}/update.
type Resources struct {
	CPUShares int64 `json:"CpuShares"`
	Memory    int64 `json:"Memory"`
	NanoCPUs  int64 `json:"NanoCpus"`

	CgroupParent         string            `json:"CgroupParent"`
	BlkioWeight          uint16            `json:"BlkioWeight"`
	BlkioWeightDevice    []*WeightDevice   `json:"BlkioWeightDevice"`
	BlkioDeviceReadBps   []*ThrottleDevice `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []*ThrottleDevice `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []*ThrottleDevice `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []*ThrottleDevice `json:"BlkioDeviceWriteIOps"`
	CPUPeriod            int64             `json:"CpuPeriod"`
	CPUQuota             int64             `json:"CpuQuota"`
	CPURealtimePeriod    int64             `json:"CpuRealtimePeriod"`
	CPURealtimeRuntime   int64             `json:"CpuRealtimeRuntime"`
	CpusetCpus           string            `json:"CpusetCpus"`
	CpusetMems           string            `json:"CpusetMems"`
	Devices              []DeviceMapping   `json:"Devices"`
	DeviceCgroupRules    []string          `json:"DeviceCgroupRules"`
	DeviceRequests       []DeviceRequest   `json:"DeviceRequests"`

	// KernelMemory and KernelMemoryTCP are deprecated (cgroup v2 has no
	// kmem limit); old clients still send them.
	KernelMemory      int64     `json:"KernelMemory,omitempty"`
	KernelMemoryTCP   int64     `json:"KernelMemoryTCP,omitempty"`
	MemoryReservation int64     `json:"MemoryReservation"`
	MemorySwap        int64     `json:"MemorySwap"`
	MemorySwappiness  *int64    `json:"MemorySwappiness"`
	OomKillDisable    *bool     `json:"OomKillDisable"`
	PidsLimit         *int64    `json:"PidsLimit"`
	Ulimits           []*Ulimit `json:"Ulimits"`

	// CPUCount, CPUPercent and the IOMaximum fields apply to Windows only.
	CPUCount           int64  `json:"CpuCount"`
	CPUPercent         int64  `json:"CpuPercent"`
	IOMaximumIOps      uint64 `json:"IOMaximumIOps"`
	IOMaximumBandwidth uint64 `json:"IOMaximumBandwidth"`
}

// BindOptions are the options of a bind Mount.
type BindOptions struct {
	Propagation            string `json:"Propagation,omitempty"`
	NonRecursive           bool   `json:"NonRecursive,omitempty"`
	CreateMountpoint       bool   `json:"CreateMountpoint,omitempty"`
	ReadOnlyNonRecursive   bool   `json:"ReadOnlyNonRecursive,omitempty"`
	ReadOnlyForceRecursive bool   `json:"ReadOnlyForceRecursive,omitempty"`
}

// VolumeDriverConfig names the driver of a volume Mount and its options.
type VolumeDriverConfig struct {
	Name    string            `json:"Name,omitempty"`
	Options map[string]string `json:"Options,omitempty"`
}

// VolumeOptions are the options of a volume Mount.
type VolumeOptions struct {
	NoCopy       bool                `json:"NoCopy,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	Subpath      string              `json:"Subpath,omitempty"`
	DriverConfig *VolumeDriverConfig `json:"DriverConfig,omitempty"`
}

// ImageMountOptions are the options of an image Mount (API 1.48).
type ImageMountOptions struct {
	Subpath string `json:"Subpath,omitempty"`
}

// TmpfsOptions are the options of a tmpfs Mount. Mode is an os.FileMode
// number; Options are flag ([k]) or key-value ([k, v]) pairs.
type TmpfsOptions struct {
	SizeBytes int64      `json:"SizeBytes,omitempty"`
	Mode      uint32     `json:"Mode,omitempty"`
	Options   [][]string `json:"Options,omitempty"`
}

// The Mount types.
const (
	MountTypeBind   = "bind"
	MountTypeVolume = "volume"
	MountTypeTmpfs  = "tmpfs"
	MountTypeNpipe  = "npipe"
	MountTypeImage  = "image"
)

// Mount is one entry of HostConfig.Mounts (the --mount flag).
type Mount struct {
	Type          string             `json:"Type,omitempty"`
	Source        string             `json:"Source,omitempty"`
	Target        string             `json:"Target,omitempty"`
	ReadOnly      bool               `json:"ReadOnly,omitempty"`
	Consistency   string             `json:"Consistency,omitempty"`
	BindOptions   *BindOptions       `json:"BindOptions,omitempty"`
	VolumeOptions *VolumeOptions     `json:"VolumeOptions,omitempty"`
	ImageOptions  *ImageMountOptions `json:"ImageOptions,omitempty"`
	TmpfsOptions  *TmpfsOptions      `json:"TmpfsOptions,omitempty"`
}

// HostConfig is the host-dependent part of a container's configuration.
type HostConfig struct {
	Binds           []string          `json:"Binds"`
	ContainerIDFile string            `json:"ContainerIDFile"`
	LogConfig       LogConfig         `json:"LogConfig"`
	NetworkMode     string            `json:"NetworkMode"`
	PortBindings    PortMap           `json:"PortBindings"`
	RestartPolicy   RestartPolicy     `json:"RestartPolicy"`
	AutoRemove      bool              `json:"AutoRemove"`
	VolumeDriver    string            `json:"VolumeDriver"`
	VolumesFrom     []string          `json:"VolumesFrom"`
	ConsoleSize     [2]uint           `json:"ConsoleSize"`
	Annotations     map[string]string `json:"Annotations,omitempty"`

	CapAdd          []string          `json:"CapAdd"`
	CapDrop         []string          `json:"CapDrop"`
	CgroupnsMode    string            `json:"CgroupnsMode"`
	DNS             []string          `json:"Dns"`
	DNSOptions      []string          `json:"DnsOptions"`
	DNSSearch       []string          `json:"DnsSearch"`
	ExtraHosts      []string          `json:"ExtraHosts"`
	GroupAdd        []string          `json:"GroupAdd"`
	IpcMode         string            `json:"IpcMode"`
	Cgroup          string            `json:"Cgroup"`
	Links           []string          `json:"Links"`
	OomScoreAdj     int               `json:"OomScoreAdj"`
	PidMode         string            `json:"PidMode"`
	Privileged      bool              `json:"Privileged"`
	PublishAllPorts bool              `json:"PublishAllPorts"`
	ReadonlyRootfs  bool              `json:"ReadonlyRootfs"`
	SecurityOpt     []string          `json:"SecurityOpt"`
	StorageOpt      map[string]string `json:"StorageOpt,omitempty"`
	Tmpfs           map[string]string `json:"Tmpfs,omitempty"`
	UTSMode         string            `json:"UTSMode"`
	UsernsMode      string            `json:"UsernsMode"`
	ShmSize         int64             `json:"ShmSize"`
	Sysctls         map[string]string `json:"Sysctls,omitempty"`
	Runtime         string            `json:"Runtime,omitempty"`

	Isolation string `json:"Isolation"`

	// Resources is flattened into HostConfig on the wire.
	Resources

	Mounts        []Mount  `json:"Mounts,omitempty"`
	MaskedPaths   []string `json:"MaskedPaths"`
	ReadonlyPaths []string `json:"ReadonlyPaths"`
	// Init runs an init process as PID 1; nil means the daemon's default.
	Init *bool `json:"Init,omitempty"`
}

// EndpointIPAMConfig is the static addressing asked for on one network.
type EndpointIPAMConfig struct {
	IPv4Address  string   `json:"IPv4Address,omitempty"`
	IPv6Address  string   `json:"IPv6Address,omitempty"`
	LinkLocalIPs []string `json:"LinkLocalIPs,omitempty"`
}

// EndpointSettings describes a container's attachment to one network, both
// as asked for at create and as reported by inspect and list.
type EndpointSettings struct {
	IPAMConfig          *EndpointIPAMConfig `json:"IPAMConfig"`
	Links               []string            `json:"Links"`
	Aliases             []string            `json:"Aliases"`
	MacAddress          string              `json:"MacAddress"`
	DriverOpts          map[string]string   `json:"DriverOpts"`
	GwPriority          int                 `json:"GwPriority"`
	NetworkID           string              `json:"NetworkID"`
	EndpointID          string              `json:"EndpointID"`
	Gateway             string              `json:"Gateway"`
	IPAddress           string              `json:"IPAddress"`
	IPPrefixLen         int                 `json:"IPPrefixLen"`
	IPv6Gateway         string              `json:"IPv6Gateway"`
	GlobalIPv6Address   string              `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int                 `json:"GlobalIPv6PrefixLen"`
	DNSNames            []string            `json:"DNSNames"`
}

// NetworkingConfig is the NetworkingConfig of the create body: the endpoint
// settings per network name.
type NetworkingConfig struct {
	EndpointsConfig map[string]*EndpointSettings `json:"EndpointsConfig"`
}

// CreateRequest is the body of POST /containers/create: the Config fields at
// the top level, with HostConfig and NetworkingConfig beside them. Config is
// nil when the body carried none of its fields, which dockerd refuses
// ("config cannot be empty in order to create a container").
type CreateRequest struct {
	*Config
	HostConfig       *HostConfig       `json:"HostConfig,omitempty"`
	NetworkingConfig *NetworkingConfig `json:"NetworkingConfig,omitempty"`
	// Platform is the create's platform parameter ("os[/arch[/variant]]",
	// empty when not given), which the image must match.
	Platform string `json:"-"`
}

// CreateResponse is the body of a 201 from POST /containers/create.
// Warnings encodes as [] when empty, as dockerd sends it.
type CreateResponse struct {
	ID       string   `json:"Id"`
	Warnings []string `json:"Warnings"`
}

// HealthcheckResult is one probe of a container's healthcheck.
type HealthcheckResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// The health states (Health.Status and the `health` filter of ps).
const (
	HealthNone      = "none"
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is a container's healthcheck status and recent probes.
type Health struct {
	Status        string               `json:"Status"`
	FailingStreak int                  `json:"FailingStreak"`
	Log           []*HealthcheckResult `json:"Log"`
}

// ContainerState is the State of container inspect. Times are RFC 3339 with
// nanoseconds, "0001-01-01T00:00:00Z" when unset.
type ContainerState struct {
	Status     string  `json:"Status"`
	Running    bool    `json:"Running"`
	Paused     bool    `json:"Paused"`
	Restarting bool    `json:"Restarting"`
	OOMKilled  bool    `json:"OOMKilled"`
	Dead       bool    `json:"Dead"`
	Pid        int     `json:"Pid"`
	ExitCode   int     `json:"ExitCode"`
	Error      string  `json:"Error"`
	StartedAt  string  `json:"StartedAt"`
	FinishedAt string  `json:"FinishedAt"`
	Health     *Health `json:"Health,omitempty"`
}

// MountPoint is a mount as container inspect and list report it.
type MountPoint struct {
	Type        string `json:"Type,omitempty"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// Address is an IP address and prefix length.
type Address struct {
	Addr      string `json:"Addr"`
	PrefixLen int    `json:"PrefixLen"`
}

// NetworkSettings is the NetworkSettings of container inspect. The top-level
// address fields repeat the default bridge network's endpoint, for clients
// older than Networks; dockerd keeps them (deprecated) and so do we.
type NetworkSettings struct {
	Bridge                 string    `json:"Bridge"`
	SandboxID              string    `json:"SandboxID"`
	HairpinMode            bool      `json:"HairpinMode"`
	LinkLocalIPv6Address   string    `json:"LinkLocalIPv6Address"`
	LinkLocalIPv6PrefixLen int       `json:"LinkLocalIPv6PrefixLen"`
	Ports                  PortMap   `json:"Ports"`
	SandboxKey             string    `json:"SandboxKey"`
	SecondaryIPAddresses   []Address `json:"SecondaryIPAddresses"`
	SecondaryIPv6Addresses []Address `json:"SecondaryIPv6Addresses"`

	EndpointID          string `json:"EndpointID"`
	Gateway             string `json:"Gateway"`
	GlobalIPv6Address   string `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int    `json:"GlobalIPv6PrefixLen"`
	IPAddress           string `json:"IPAddress"`
	IPPrefixLen         int    `json:"IPPrefixLen"`
	IPv6Gateway         string `json:"IPv6Gateway"`
	MacAddress          string `json:"MacAddress"`

	Networks map[string]*EndpointSettings `json:"Networks"`
}

// ContainerJSON is the body of GET /containers/{id}/json. SizeRw and
// SizeRootFs are present only when asked for with size=1.
type ContainerJSON struct {
	ID              string           `json:"Id"`
	Created         string           `json:"Created"`
	Path            string           `json:"Path"`
	Args            []string         `json:"Args"`
	State           *ContainerState  `json:"State"`
	Image           string           `json:"Image"`
	ResolvConfPath  string           `json:"ResolvConfPath"`
	HostnamePath    string           `json:"HostnamePath"`
	HostsPath       string           `json:"HostsPath"`
	LogPath         string           `json:"LogPath"`
	Name            string           `json:"Name"`
	RestartCount    int              `json:"RestartCount"`
	Driver          string           `json:"Driver"`
	Platform        string           `json:"Platform"`
	MountLabel      string           `json:"MountLabel"`
	ProcessLabel    string           `json:"ProcessLabel"`
	AppArmorProfile string           `json:"AppArmorProfile"`
	ExecIDs         []string         `json:"ExecIDs"`
	HostConfig      *HostConfig      `json:"HostConfig"`
	GraphDriver     GraphDriverData  `json:"GraphDriver"`
	SizeRw          *int64           `json:"SizeRw,omitempty"`
	SizeRootFs      *int64           `json:"SizeRootFs,omitempty"`
	Mounts          []MountPoint     `json:"Mounts"`
	Config          *Config          `json:"Config"`
	NetworkSettings *NetworkSettings `json:"NetworkSettings"`
}

// Port is a container port and where it is published, in ps output.
type Port struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// SummaryHostConfig is the HostConfig of a ContainerSummary.
type SummaryHostConfig struct {
	NetworkMode string            `json:"NetworkMode,omitempty"`
	Annotations map[string]string `json:"Annotations,omitempty"`
}

// SummaryNetworkSettings is the NetworkSettings of a ContainerSummary.
type SummaryNetworkSettings struct {
	Networks map[string]*EndpointSettings `json:"Networks"`
}

// ContainerSummary is an entry of GET /containers/json. SizeRw and SizeRootFs
// are left out when zero, which is also how dockerd answers without size=1.
type ContainerSummary struct {
	ID              string                  `json:"Id"`
	Names           []string                `json:"Names"`
	Image           string                  `json:"Image"`
	ImageID         string                  `json:"ImageID"`
	Command         string                  `json:"Command"`
	Created         int64                   `json:"Created"`
	Ports           []Port                  `json:"Ports"`
	SizeRw          int64                   `json:"SizeRw,omitempty"`
	SizeRootFs      int64                   `json:"SizeRootFs,omitempty"`
	Labels          map[string]string       `json:"Labels"`
	State           string                  `json:"State"`
	Status          string                  `json:"Status"`
	HostConfig      SummaryHostConfig       `json:"HostConfig"`
	NetworkSettings *SummaryNetworkSettings `json:"NetworkSettings"`
	Mounts          []MountPoint            `json:"Mounts"`
}

// WaitCondition is the condition query parameter of POST
// /containers/{id}/wait.
type WaitCondition string

// The wait conditions. An empty condition means WaitConditionNotRunning.
const (
	WaitConditionNotRunning WaitCondition = "not-running"
	WaitConditionNextExit   WaitCondition = "next-exit"
	WaitConditionRemoved    WaitCondition = "removed"
)

// WaitExitError is the Error of a WaitResponse.
type WaitExitError struct {
	Message string `json:"Message,omitempty"`
}

// WaitResponse is the body of POST /containers/{id}/wait. Error is null
// unless the wait itself failed; dockerd always sends the key.
type WaitResponse struct {
	Error      *WaitExitError `json:"Error"`
	StatusCode int64          `json:"StatusCode"`
}

// ContainersPruneReport is the body of POST /containers/prune.
type ContainersPruneReport struct {
	ContainersDeleted []string `json:"ContainersDeleted"`
	SpaceReclaimed    uint64   `json:"SpaceReclaimed"`
}

// ContainerTopResponse is the body of GET /containers/{id}/top: one row of
// ps columns per process, under Titles.
type ContainerTopResponse struct {
	Processes [][]string `json:"Processes"`
	Titles    []string   `json:"Titles"`
}

// UpdateConfig is the body of POST /containers/{id}/update: the resources
// flattened, and the restart policy.
type UpdateConfig struct {
	Resources
	RestartPolicy RestartPolicy `json:"RestartPolicy"`
}

// ContainerUpdateResponse is the body of POST /containers/{id}/update.
type ContainerUpdateResponse struct {
	Warnings []string `json:"Warnings"`
}

// ThrottlingData is the CPU throttling of a container's cgroup.
type ThrottlingData struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time"`
}

// CPUUsage is the CPU time a container used, in nanoseconds.
type CPUUsage struct {
	TotalUsage        uint64   `json:"total_usage"`
	PercpuUsage       []uint64 `json:"percpu_usage,omitempty"`
	UsageInKernelmode uint64   `json:"usage_in_kernelmode"`
	UsageInUsermode   uint64   `json:"usage_in_usermode"`
}

// CPUStats is the cpu_stats (and precpu_stats) of a stats sample.
type CPUStats struct {
	CPUUsage       CPUUsage       `json:"cpu_usage"`
	SystemUsage    uint64         `json:"system_cpu_usage,omitempty"`
	OnlineCPUs     uint32         `json:"online_cpus,omitempty"`
	ThrottlingData ThrottlingData `json:"throttling_data"`
}

// MemoryStats is the memory_stats of a stats sample. Stats holds the
// counters of memory.stat by name.
type MemoryStats struct {
	Usage             uint64            `json:"usage,omitempty"`
	MaxUsage          uint64            `json:"max_usage,omitempty"`
	Stats             map[string]uint64 `json:"stats,omitempty"`
	Failcnt           uint64            `json:"failcnt,omitempty"`
	Limit             uint64            `json:"limit,omitempty"`
	Commit            uint64            `json:"commitbytes,omitempty"`
	CommitPeak        uint64            `json:"commitpeakbytes,omitempty"`
	PrivateWorkingSet uint64            `json:"privateworkingset,omitempty"`
}

// BlkioStatEntry is one block IO counter of one device.
type BlkioStatEntry struct {
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}

// BlkioStats is the blkio_stats of a stats sample; dockerd sends every list,
// empty ones as [].
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioStatEntry `json:"io_service_bytes_recursive"`
	IoServicedRecursive     []BlkioStatEntry `json:"io_serviced_recursive"`
	IoQueuedRecursive       []BlkioStatEntry `json:"io_queue_recursive"`
	IoServiceTimeRecursive  []BlkioStatEntry `json:"io_service_time_recursive"`
	IoWaitTimeRecursive     []BlkioStatEntry `json:"io_wait_time_recursive"`
	IoMergedRecursive       []BlkioStatEntry `json:"io_merged_recursive"`
	IoTimeRecursive         []BlkioStatEntry `json:"io_time_recursive"`
	SectorsRecursive        []BlkioStatEntry `json:"sectors_recursive"`
}

// StorageStats is the storage_stats of a stats sample (Windows only; Linux
// sends {}).
type StorageStats struct {
	ReadCountNormalized  uint64 `json:"read_count_normalized,omitempty"`
	ReadSizeBytes        uint64 `json:"read_size_bytes,omitempty"`
	WriteCountNormalized uint64 `json:"write_count_normalized,omitempty"`
	WriteSizeBytes       uint64 `json:"write_size_bytes,omitempty"`
}

// NetworkStats is the traffic of one interface of a container.
type NetworkStats struct {
	RxBytes    uint64 `json:"rx_bytes"`
	RxPackets  uint64 `json:"rx_packets"`
	RxErrors   uint64 `json:"rx_errors"`
	RxDropped  uint64 `json:"rx_dropped"`
	TxBytes    uint64 `json:"tx_bytes"`
	TxPackets  uint64 `json:"tx_packets"`
	TxErrors   uint64 `json:"tx_errors"`
	TxDropped  uint64 `json:"tx_dropped"`
	EndpointID string `json:"endpoint_id,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
}

// PidsStats is the pids_stats of a stats sample; Limit 0 means unlimited.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Stats is one sample of a container's resource usage. PreRead and
// PreCPUStats repeat the previous sample so clients can compute rates; they
// are zero in the first sample of a stream.
type Stats struct {
	Read         time.Time    `json:"read"`
	PreRead      time.Time    `json:"preread"`
	PidsStats    PidsStats    `json:"pids_stats"`
	BlkioStats   BlkioStats   `json:"blkio_stats"`
	NumProcs     uint32       `json:"num_procs"`
	StorageStats StorageStats `json:"storage_stats"`
	CPUStats     CPUStats     `json:"cpu_stats"`
	PreCPUStats  CPUStats     `json:"precpu_stats"`
	MemoryStats  MemoryStats  `json:"memory_stats"`
}

// StatsJSON is one object of GET /containers/{id}/stats: a Stats sample with
// the container's name ("/web"), ID and per-interface network counters.
type StatsJSON struct {
	Stats
	Name     string                  `json:"name,omitempty"`
	ID       string                  `json:"id,omitempty"`
	Networks map[string]NetworkStats `json:"networks,omitempty"`
}
