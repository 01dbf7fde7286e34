package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// Config is an image configuration: the OCI image config with Docker's
// extensions, with the JSON names both use. It is what image IDs are computed
// over, so a config received from elsewhere is kept as raw bytes (Image.RawConfig)
// and never re-marshalled; the struct is for reading it and for writing the
// configs skiffd creates itself (import, commit).
type Config struct {
	Comment         string           `json:"comment,omitempty"`
	Created         *time.Time       `json:"created,omitempty"`
	Container       string           `json:"container,omitempty"`
	ContainerConfig *ContainerConfig `json:"container_config,omitempty"`
	DockerVersion   string           `json:"docker_version,omitempty"`
	Author          string           `json:"author,omitempty"`
	Config          *ContainerConfig `json:"config,omitempty"`
	Architecture    string           `json:"architecture,omitempty"`
	Variant         string           `json:"variant,omitempty"`
	OS              string           `json:"os,omitempty"`
	// Parent is the legacy parent image ID that "docker build" and
	// "docker commit" record inside the config itself.
	Parent     string    `json:"parent,omitempty"`
	RootFS     *RootFS   `json:"rootfs,omitempty"`
	History    []History `json:"history,omitempty"`
	OSVersion  string    `json:"os.version,omitempty"`
	OSFeatures []string  `json:"os.features,omitempty"`
}

// ContainerConfig is the run configuration an image carries ("config") and
// the configuration of the container it was committed from
// ("container_config"). The field names and omitempty choices are those of
// Docker's container.Config, so the configs skiffd writes read like dockerd's.
type ContainerConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Healthcheck  *HealthConfig       `json:"Healthcheck,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	OnBuild      []string            `json:"OnBuild"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  *int                `json:"StopTimeout,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
}

// HealthConfig is the HEALTHCHECK of an image. Durations are nanoseconds on
// the wire, as Go's time.Duration marshals.
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// RootFS lists the layers of an image by diff ID, base first.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History is one step of how an image was built.
type History struct {
	Created    *time.Time `json:"created,omitempty"`
	Author     string     `json:"author,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
}

// ParseConfig decodes and checks a raw image config the way dockerd's image
// store does before accepting it: it must be a JSON object with a rootfs whose
// diff IDs are sha256 digests, and its history must not claim more layers than
// the rootfs has. Errors are errdefs.InvalidParameter.
func ParseConfig(raw []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image JSON: %w", err))
	}
	if c.RootFS == nil {
		return nil, errdefs.InvalidParameter(errors.New("invalid image JSON, no RootFS key"))
	}
	for _, d := range c.RootFS.DiffIDs {
		if _, err := reference.ParseDigest(d); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid diff ID %q in image config: %w", d, err))
		}
	}
	nonEmpty := 0
	for _, h := range c.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty > len(c.RootFS.DiffIDs) {
		return nil, errdefs.InvalidParameter(errors.New("too many non-empty layers in History section"))
	}
	return &c, nil
}
