// Package types holds the Docker Engine API wire structures, with field
// names and JSON tags exactly as the API defines them. It imports nothing but
// the standard library, so both the API modules and the engine can use it.
package types

// ComponentVersion is one entry of Version.Components.
type ComponentVersion struct {
	Name    string            `json:"Name"`
	Version string            `json:"Version"`
	Details map[string]string `json:"Details,omitempty"`
}

// Version is the body of GET /version.
type Version struct {
	Platform      struct{ Name string } `json:"Platform"`
	Components    []ComponentVersion    `json:"Components,omitempty"`
	Version       string                `json:"Version"`
	APIVersion    string                `json:"ApiVersion"`
	MinAPIVersion string                `json:"MinAPIVersion,omitempty"`
	GitCommit     string                `json:"GitCommit"`
	GoVersion     string                `json:"GoVersion"`
	Os            string                `json:"Os"`
	Arch          string                `json:"Arch"`
	KernelVersion string                `json:"KernelVersion,omitempty"`
	Experimental  bool                  `json:"Experimental,omitempty"`
	BuildTime     string                `json:"BuildTime,omitempty"`
}

// PluginsInfo lists the plugins (built-in drivers) per kind.
type PluginsInfo struct {
	Volume        []string `json:"Volume"`
	Network       []string `json:"Network"`
	Authorization []string `json:"Authorization"`
	Log           []string `json:"Log"`
}

// IndexInfo describes one registry in RegistryConfig.
type IndexInfo struct {
	Name     string   `json:"Name"`
	Mirrors  []string `json:"Mirrors"`
	Secure   bool     `json:"Secure"`
	Official bool     `json:"Official"`
}

// RegistryConfig is Info.RegistryConfig.
type RegistryConfig struct {
	InsecureRegistryCIDRs []string              `json:"InsecureRegistryCIDRs"`
	IndexConfigs          map[string]*IndexInfo `json:"IndexConfigs"`
	Mirrors               []string              `json:"Mirrors"`
}

// Commit is a component's version as Info reports it.
type Commit struct {
	ID string `json:"ID"`
}

// SwarmInfo is Info.Swarm; skiffd never joins a swarm.
type SwarmInfo struct {
	NodeID           string `json:"NodeID"`
	NodeAddr         string `json:"NodeAddr"`
	LocalNodeState   string `json:"LocalNodeState"`
	ControlAvailable bool   `json:"ControlAvailable"`
	Error            string `json:"Error"`
	RemoteManagers   []any  `json:"RemoteManagers"`
}

// Runtime is an entry of Info.Runtimes.
type Runtime struct {
	Path string `json:"path,omitempty"`
}

// Info is the body of GET /info.
type Info struct {
	ID                 string             `json:"ID"`
	Containers         int                `json:"Containers"`
	ContainersRunning  int                `json:"ContainersRunning"`
	ContainersPaused   int                `json:"ContainersPaused"`
	ContainersStopped  int                `json:"ContainersStopped"`
	Images             int                `json:"Images"`
	Driver             string             `json:"Driver"`
	DriverStatus       [][2]string        `json:"DriverStatus"`
	SystemStatus       [][2]string        `json:"SystemStatus,omitempty"`
	Plugins            PluginsInfo        `json:"Plugins"`
	MemoryLimit        bool               `json:"MemoryLimit"`
	SwapLimit          bool               `json:"SwapLimit"`
	CPUCfsPeriod       bool               `json:"CpuCfsPeriod"`
	CPUCfsQuota        bool               `json:"CpuCfsQuota"`
	CPUShares          bool               `json:"CPUShares"`
	CPUSet             bool               `json:"CPUSet"`
	PidsLimit          bool               `json:"PidsLimit"`
	IPv4Forwarding     bool               `json:"IPv4Forwarding"`
	Debug              bool               `json:"Debug"`
	NFd                int                `json:"NFd"`
	OomKillDisable     bool               `json:"OomKillDisable"`
	NGoroutines        int                `json:"NGoroutines"`
	SystemTime         string             `json:"SystemTime"`
	LoggingDriver      string             `json:"LoggingDriver"`
	CgroupDriver       string             `json:"CgroupDriver"`
	CgroupVersion      string             `json:"CgroupVersion"`
	NEventsListener    int                `json:"NEventsListener"`
	KernelVersion      string             `json:"KernelVersion"`
	OperatingSystem    string             `json:"OperatingSystem"`
	OSVersion          string             `json:"OSVersion"`
	OSType             string             `json:"OSType"`
	Architecture       string             `json:"Architecture"`
	IndexServerAddress string             `json:"IndexServerAddress"`
	RegistryConfig     RegistryConfig     `json:"RegistryConfig"`
	NCPU               int                `json:"NCPU"`
	MemTotal           int64              `json:"MemTotal"`
	GenericResources   []any              `json:"GenericResources"`
	DockerRootDir      string             `json:"DockerRootDir"`
	HTTPProxy          string             `json:"HttpProxy"`
	HTTPSProxy         string             `json:"HttpsProxy"`
	NoProxy            string             `json:"NoProxy"`
	Name               string             `json:"Name"`
	Labels             []string           `json:"Labels"`
	ExperimentalBuild  bool               `json:"ExperimentalBuild"`
	ServerVersion      string             `json:"ServerVersion"`
	Runtimes           map[string]Runtime `json:"Runtimes"`
	DefaultRuntime     string             `json:"DefaultRuntime"`
	Swarm              SwarmInfo          `json:"Swarm"`
	LiveRestoreEnabled bool               `json:"LiveRestoreEnabled"`
	Isolation          string             `json:"Isolation"`
	InitBinary         string             `json:"InitBinary"`
	ContainerdCommit   Commit             `json:"ContainerdCommit"`
	RuncCommit         Commit             `json:"RuncCommit"`
	InitCommit         Commit             `json:"InitCommit"`
	SecurityOptions    []string           `json:"SecurityOptions"`
	CDISpecDirs        []string           `json:"CDISpecDirs"`
	Warnings           []string           `json:"Warnings"`
}

// ImageSummary is an entry of GET /images/json and of DiskUsage.Images.
type ImageSummary struct {
	Containers  int64             `json:"Containers"`
	Created     int64             `json:"Created"`
	ID          string            `json:"Id"`
	Labels      map[string]string `json:"Labels"`
	ParentID    string            `json:"ParentId"`
	RepoDigests []string          `json:"RepoDigests"`
	RepoTags    []string          `json:"RepoTags"`
	SharedSize  int64             `json:"SharedSize"`
	Size        int64             `json:"Size"`
}

// DiskUsage is the body of GET /system/df. Entries are raw JSON-able values
// owned by the stores that produce them.
type DiskUsage struct {
	LayersSize int64           `json:"LayersSize"`
	Images     []*ImageSummary `json:"Images"`
	Containers []any           `json:"Containers"`
	Volumes    []any           `json:"Volumes"`
	BuildCache []any           `json:"BuildCache"`
}
