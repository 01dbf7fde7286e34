package types

// ProgressMessage is one line of dockerd's JSON progress stream for pulls
// and pushes (jsonmessage.JSONMessage), its fields in dockerd's order:
//
//	{"status":"Downloading","progressDetail":{"current":32768,"total":1028093},"progress":"[=>   ]  32.77kB/1.028MB","id":"e06c24d7f0d8"}
//
// ProgressDetail is nil for messages without one ("Pulling from x") and
// empty, sent as {}, for per-layer steps ("Pull complete").
type ProgressMessage struct {
	Status         string          `json:"status,omitempty"`
	ProgressDetail *ProgressDetail `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ID             string          `json:"id,omitempty"`
	Aux            any             `json:"aux,omitempty"`
}

// ProgressDetail is the byte count of a transfer step.
type ProgressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// PushResult is the aux of a push's last message, as dockerd sends it.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// ImagePullOptions are the parameters of POST /images/create?fromImage=.
type ImagePullOptions struct {
	FromImage string // "127.0.0.1:5000/lib/app", possibly with :tag or @digest
	Tag       string // a tag, or a digest ("sha256:..."), or ""
	Platform  string // "os[/arch[/variant]]", "" for the host's
	// RegistryAuth is the X-Registry-Auth header as received.
	RegistryAuth string
}

// ImagePushOptions are the parameters of POST /images/{name}/push.
type ImagePushOptions struct {
	Name         string
	Tag          string // "" pushes every tag of the repository
	RegistryAuth string
}

// AuthConfig is the body of POST /auth (and the decoded X-Registry-Auth).
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// AuthResponse answers POST /auth.
type AuthResponse struct {
	Status        string `json:"Status"`
	IdentityToken string `json:"IdentityToken,omitempty"`
}

// SearchResult is one entry of GET /images/search.
type SearchResult struct {
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	Name        string `json:"name"`
	IsAutomated bool   `json:"is_automated"`
	Description string `json:"description"`
}

// DistributionInspect is GET /distribution/{name}/json: the descriptor of
// what the reference names in its registry, and the platforms it is for.
type DistributionInspect struct {
	Descriptor DistributionDescriptor `json:"Descriptor"`
	Platforms  []Platform             `json:"Platforms"`
}

// DistributionDescriptor is the OCI descriptor of a manifest or index.
type DistributionDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Platform is an OCI platform, as in image indexes and image configs.
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}
