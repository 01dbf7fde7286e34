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
	"slices"

	"skiffd/internal/binwire"
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
	Type  string
	Error string
	Pid   int
	// Spans, on ready, are how long init's phases took, in nanoseconds
	// by name (the daemon's debug trace).
	Spans map[string]int64
}

// Cgroup modes, as the shim detected them.
const (
	CgroupV1     = "v1"
	CgroupHybrid = "hybrid"
	CgroupV2     = "v2"
)

// InitConfig is the first message the shim sends to init.
type InitConfig struct {
	Spec *spec.Spec
	// CgroupMode decides how the cgroup namespace is made: on v2 it came
	// with the clone; on v1 and hybrid init unshares it after the shim
	// placed it in its cgroups (between ready and go).
	CgroupMode string
	// CgroupMounts maps directories of /sys/fs/cgroup inside (memory,
	// cpu,cpuacct, unified, ...) to the container's own cgroup directories
	// on the host, bound read-only on v1 and hybrid hosts, where a cgroup2
	// mount alone would not show the v1 controllers; CgroupLinks are
	// symlinks for co-mounted controllers (cpu -> cpu,cpuacct).
	CgroupMounts map[string]string
	CgroupLinks  map[string]string
}

// ExecConfig is the first message the shim sends to the exec helper. The
// helper's fd 3 is the sync socket and fd 4 a pidfd of the container's
// init, whose namespaces it joins.
type ExecConfig struct {
	Process spec.Process
	// Namespaces are the container's namespace types the helper joins.
	Namespaces []string
	Seccomp    *spec.Seccomp
}

// The sync channel's messages travel in binary form (see package
// binwire): init and the exec helper are fresh processes on every start
// and exec, and encoding/json's first use cost init some 0.3 ms of each.
// Both ends are the same binary: a shim execs init from its own.

// AppendBinary implements the binary form (Conn.Send).
func (c InitConfig) AppendBinary(e *binwire.Encoder) {
	e.Bool(c.Spec != nil)
	if c.Spec != nil {
		c.Spec.AppendBinary(e)
	}
	e.String(c.CgroupMode)
	e.StringMap(c.CgroupMounts)
	e.StringMap(c.CgroupLinks)
}

// DecodeBinary implements the binary form (Conn.Recv).
func (c *InitConfig) DecodeBinary(d *binwire.Decoder) {
	if d.Bool() {
		c.Spec = new(spec.Spec)
		c.Spec.DecodeBinary(d)
	}
	c.CgroupMode = d.String()
	c.CgroupMounts = d.StringMap()
	c.CgroupLinks = d.StringMap()
}

// AppendBinary implements the binary form (Conn.Send).
func (c ExecConfig) AppendBinary(e *binwire.Encoder) {
	c.Process.AppendBinary(e)
	e.Strings(c.Namespaces)
	c.Seccomp.AppendBinary(e)
}

// DecodeBinary implements the binary form (Conn.Recv).
func (c *ExecConfig) DecodeBinary(d *binwire.Decoder) {
	c.Process.DecodeBinary(d)
	c.Namespaces = d.Strings()
	c.Seccomp = spec.DecodeSeccompBinary(d)
}

// AppendBinary implements the binary form (Conn.Send).
func (m Message) AppendBinary(e *binwire.Encoder) {
	e.String(m.Type)
	e.String(m.Error)
	e.Int(int64(m.Pid))
	names := make([]string, 0, len(m.Spans))
	for name := range m.Spans {
		names = append(names, name)
	}
	slices.Sort(names)
	e.Uint(uint64(len(names)))
	for _, name := range names {
		e.String(name)
		e.Int(m.Spans[name])
	}
}

// DecodeBinary implements the binary form (Conn.Recv).
func (m *Message) DecodeBinary(d *binwire.Decoder) {
	m.Type = d.String()
	m.Error = d.String()
	m.Pid = int(d.Int())
	if n := d.Len(); n > 0 {
		m.Spans = make(map[string]int64, n)
		for range n {
			name := d.String()
			m.Spans[name] = d.Int()
		}
	}
}
