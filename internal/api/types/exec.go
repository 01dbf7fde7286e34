package types

// ExecConfig is the body of POST /containers/{id}/exec.
type ExecConfig struct {
	User         string   `json:"User"`
	Privileged   bool     `json:"Privileged"`
	Tty          bool     `json:"Tty"`
	ConsoleSize  *[2]uint `json:"ConsoleSize,omitempty"`
	AttachStdin  bool     `json:"AttachStdin"`
	AttachStderr bool     `json:"AttachStderr"`
	AttachStdout bool     `json:"AttachStdout"`
	Detach       bool     `json:"Detach"`
	DetachKeys   string   `json:"DetachKeys"`
	Env          []string `json:"Env"`
	WorkingDir   string   `json:"WorkingDir"`
	Cmd          []string `json:"Cmd"`
}

// ExecStartCheck is the body of POST /exec/{id}/start.
type ExecStartCheck struct {
	Detach      bool     `json:"Detach"`
	Tty         bool     `json:"Tty"`
	ConsoleSize *[2]uint `json:"ConsoleSize,omitempty"`
}

// IDResponse answers creations that return only an ID (exec create).
type IDResponse struct {
	ID string `json:"Id"`
}

// ExecProcessConfig describes an exec's process in ExecInspect.
type ExecProcessConfig struct {
	Tty        bool     `json:"tty"`
	Entrypoint string   `json:"entrypoint"`
	Arguments  []string `json:"arguments"`
	Privileged *bool    `json:"privileged,omitempty"`
	User       string   `json:"user,omitempty"`
}

// ExecInspect is the body of GET /exec/{id}/json. ExitCode is null while
// the process runs.
type ExecInspect struct {
	ID            string            `json:"ID"`
	Running       bool              `json:"Running"`
	ExitCode      *int              `json:"ExitCode"`
	ProcessConfig ExecProcessConfig `json:"ProcessConfig"`
	OpenStdin     bool              `json:"OpenStdin"`
	OpenStderr    bool              `json:"OpenStderr"`
	OpenStdout    bool              `json:"OpenStdout"`
	CanRemove     bool              `json:"CanRemove"`
	ContainerID   string            `json:"ContainerID"`
	DetachKeys    string            `json:"DetachKeys"`
	Pid           int               `json:"Pid"`
}
