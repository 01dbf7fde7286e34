package types

// The event types: the Type of an EventMessage and the values of the `type`
// filter of GET /events. skiffd emits the engine ones (container, image,
// volume, network, daemon, plugin); the swarm and builder ones exist so that
// filters naming them are understood.
const (
	BuilderEventType   = "builder"
	ConfigEventType    = "config"
	ContainerEventType = "container"
	DaemonEventType    = "daemon"
	ImageEventType     = "image"
	NetworkEventType   = "network"
	NodeEventType      = "node"
	PluginEventType    = "plugin"
	SecretEventType    = "secret"
	ServiceEventType   = "service"
	VolumeEventType    = "volume"
)

// The event actions, the Action of an EventMessage, as dockerd spells them.
// Exec and health actions are prefixes: dockerd sends
// "exec_create: /bin/sh -c 'echo hi'" and "health_status: healthy", and the
// `event` filter matches those by prefix.
const (
	EventActionAttach       = "attach"
	EventActionCommit       = "commit"
	EventActionConnect      = "connect"
	EventActionCopy         = "copy"
	EventActionArchivePath  = "archive-path"
	EventActionExtractToDir = "extract-to-dir"
	EventActionCreate       = "create"
	EventActionDelete       = "delete"
	EventActionDestroy      = "destroy"
	EventActionDetach       = "detach"
	EventActionDie          = "die"
	EventActionDisconnect   = "disconnect"
	EventActionExecCreate   = "exec_create"
	EventActionExecDetach   = "exec_detach"
	EventActionExecDie      = "exec_die"
	EventActionExecStart    = "exec_start"
	EventActionExport       = "export"
	EventActionHealthStatus = "health_status"
	EventActionImport       = "import"
	EventActionKill         = "kill"
	EventActionLoad         = "load"
	EventActionMount        = "mount"
	EventActionOOM          = "oom"
	EventActionPause        = "pause"
	EventActionPrune        = "prune"
	EventActionPull         = "pull"
	EventActionPush         = "push"
	EventActionReload       = "reload"
	EventActionRemove       = "remove"
	EventActionRename       = "rename"
	EventActionResize       = "resize"
	EventActionRestart      = "restart"
	EventActionSave         = "save"
	EventActionStart        = "start"
	EventActionStop         = "stop"
	EventActionTag          = "tag"
	EventActionTop          = "top"
	EventActionUnmount      = "unmount"
	EventActionUnpause      = "unpause"
	EventActionUntag        = "untag"
	EventActionUpdate       = "update"
)

// EventActor is the object an event is about: its ID and attributes (for a
// container its name, image and labels; for a die event also exitCode).
type EventActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// EventMessage is one event of GET /events, a JSON object per line.
//
// Status, ID and From repeat Action, Actor.ID and the image of container and
// image events for clients older than the Actor format; API 1.52 dropped
// them, so the handler clears them for such requests.
type EventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	Type   string     `json:"Type"`
	Action string     `json:"Action"`
	Actor  EventActor `json:"Actor"`
	// Scope is "local" for engine events ("swarm" would be cluster events).
	Scope string `json:"scope,omitempty"`

	Time     int64 `json:"time,omitempty"`
	TimeNano int64 `json:"timeNano,omitempty"`
}
