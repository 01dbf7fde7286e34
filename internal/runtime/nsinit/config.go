// Package nsinit is the code that runs inside a container's namespaces:
// the `init` role (set up the root file system, pivot_root, mask paths,
// open the TTY, wait for the shim's go, drop privileges, execve the
// entrypoint) and the `exec-helper` role (join a running container's
// namespaces on one thread and fork the target with CLONE_PARENT, so that
// it becomes the shim's child).
//
// Both run on the process's locked main thread (the roles package locks it
// in init()) and never start goroutines of their own: namespace, root,
// credential and seccomp state is per thread.
package nsinit

import (
	"encoding/json"

	"skiffd/internal/runtime/spec"
)

// Message types on the sync channel.
const (
	MsgReady = "ready" // init: set up, waiting for go
	MsgGo    = "go"    // shim: exec the entrypoint
	MsgPty   = "pty"   // init/helper: the pty master is attached
	MsgError = "error" // init/helper: failed; Error says why
	MsgPid   = "pid"   // helper: the target was started as Pid
)

// Message is what init and the helper report to the shim.
type Message struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	// Spans, on ready, are how long init's phases took, in nanoseconds
	// by name (the daemon's debug trace).
	Spans map[string]int64 `json:"spans,omitempty"`
}

// Cgroup modes, as the shim detected them.
const (
	CgroupV1     = "v1"
	CgroupHybrid = "hybrid"
	CgroupV2     = "v2"
)

// InitConfig is the first message the shim sends to init.
type InitConfig struct {
	Spec *spec.Spec `json:"spec"`
	// CgroupMode decides how the cgroup namespace is made: on v2 it came
	// with the clone; on v1 and hybrid init unshares it after the shim
	// placed it in its cgroups (between ready and go).
	CgroupMode string `json:"cgroupMode"`
	// CgroupMounts maps directories of /sys/fs/cgroup inside (memory,
	// cpu,cpuacct, unified, ...) to the container's own cgroup directories
	// on the host, bound read-only on v1 and hybrid hosts, where a cgroup2
	// mount alone would not show the v1 controllers; CgroupLinks are
	// symlinks for co-mounted controllers (cpu -> cpu,cpuacct).
	CgroupMounts map[string]string `json:"cgroupMounts,omitempty"`
	CgroupLinks  map[string]string `json:"cgroupLinks,omitempty"`
	// RawSpec, when set, is sent in place of Spec: the JSON of the
	// same spec, as the shim read it from spec.json (see MarshalJSON).
	RawSpec json.RawMessage `json:"-"`
}

// MarshalJSON encodes the config, with RawSpec, when set, as the spec.
// The shim sends the spec it read as it is: encoding it again would build
// encoding/json's encoders for every spec type, some 50 KiB that a shim
// keeps for its lifetime (issue 13). init decodes either the same way.
func (c InitConfig) MarshalJSON() ([]byte, error) {
	type plain InitConfig // without this method
	if c.RawSpec == nil {
		return json.Marshal(plain(c))
	}
	// The outer Spec, less deeply nested, hides plain's.
	return json.Marshal(struct {
		plain
		Spec json.RawMessage `json:"spec"`
	}{plain(c), c.RawSpec})
}

// ExecConfig is the first message the shim sends to the exec helper. The
// helper's fd 3 is the sync socket and fd 4 a pidfd of the container's
// init, whose namespaces it joins.
type ExecConfig struct {
	Process spec.Process `json:"process"`
	// Namespaces are the container's namespace types the helper joins.
	Namespaces []string      `json:"namespaces"`
	Seccomp    *spec.Seccomp `json:"seccomp,omitempty"`
}
