package types

// ImageConfig is the runtime configuration an image carries, as API 1.50
// shows it in image inspect (the OCI image config fields).
type ImageConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Healthcheck  any                 `json:"Healthcheck,omitempty"`
	OnBuild      []string            `json:"OnBuild"`
	Shell        []string            `json:"Shell,omitempty"`
}

// GraphDriverData names the storage driver and its directories.
type GraphDriverData struct {
	Data map[string]string `json:"Data"`
	Name string            `json:"Name"`
}

// RootFS lists an image's layers by diff ID.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers,omitempty"`
}

// ImageMetadata is local, non-content information about an image.
type ImageMetadata struct {
	LastTagTime string `json:"LastTagTime,omitempty"`
}

// ImageInspect is the body of GET /images/{name}/json.
type ImageInspect struct {
	ID            string          `json:"Id"`
	RepoTags      []string        `json:"RepoTags"`
	RepoDigests   []string        `json:"RepoDigests"`
	Parent        string          `json:"Parent"`
	Comment       string          `json:"Comment"`
	Created       string          `json:"Created,omitempty"`
	DockerVersion string          `json:"DockerVersion"`
	Author        string          `json:"Author"`
	Config        *ImageConfig    `json:"Config"`
	Architecture  string          `json:"Architecture"`
	Variant       string          `json:"Variant,omitempty"`
	Os            string          `json:"Os"`
	OsVersion     string          `json:"OsVersion,omitempty"`
	Size          int64           `json:"Size"`
	GraphDriver   GraphDriverData `json:"GraphDriver"`
	RootFS        RootFS          `json:"RootFS"`
	Metadata      ImageMetadata   `json:"Metadata"`
}

// ImageHistoryItem is an entry of GET /images/{name}/history.
type ImageHistoryItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

// ImageDeleteItem is an entry of DELETE /images/{name}: exactly one field set.
type ImageDeleteItem struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
}

// ImagesPruneReport is the body of POST /images/prune.
type ImagesPruneReport struct {
	ImagesDeleted  []ImageDeleteItem `json:"ImagesDeleted"`
	SpaceReclaimed uint64            `json:"SpaceReclaimed"`
}
