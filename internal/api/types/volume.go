package types

// VolumeUsageData is how much a volume holds and how many containers refer
// to it. Only GET /system/df fills it; Size is -1 when it could not be
// measured.
type VolumeUsageData struct {
	Size     int64 `json:"Size"`
	RefCount int64 `json:"RefCount"`
}

// Volume is a volume as inspect, list and create answer it. Labels and
// Options are null, not {}, when the volume has none, as dockerd sends them.
type Volume struct {
	CreatedAt  string            `json:"CreatedAt,omitempty"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	Status     map[string]any    `json:"Status,omitempty"`
	UsageData  *VolumeUsageData  `json:"UsageData,omitempty"`
}

// VolumeCreateOptions is the body of POST /volumes/create. Compose leaves
// out Driver; the CLI always sends it.
type VolumeCreateOptions struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	DriverOpts map[string]string `json:"DriverOpts"`
	Labels     map[string]string `json:"Labels"`
	// ClusterVolumeSpec (API 1.42) asks for a swarm cluster volume; skiffd
	// has no swarm, so only its presence matters.
	ClusterVolumeSpec any `json:"ClusterVolumeSpec,omitempty"`
}

// VolumeListResponse is the body of GET /volumes.
type VolumeListResponse struct {
	Volumes  []*Volume `json:"Volumes"`
	Warnings []string  `json:"Warnings"`
}

// VolumesPruneReport is the body of POST /volumes/prune.
type VolumesPruneReport struct {
	VolumesDeleted []string `json:"VolumesDeleted"`
	SpaceReclaimed uint64   `json:"SpaceReclaimed"`
}
