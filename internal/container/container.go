// Package container keeps skiffd's container records: the Container with its
// dockerd-style state machine and waiters, a Store that finds containers by
// full ID, name or unambiguous ID prefix and persists every change
// atomically, name and ID generation, and the filtering behind
// GET /containers/json.
//
// The engine drives it; nothing here starts processes:
//
//	c := container.New(container.GenerateID())
//	c.Config, c.HostConfig, c.ImageID = cfg, hostCfg, imageID
//	c.Name = "web" // or "" for a generated adjective_surname
//	if err := store.Add(c); err != nil {
//		return err // 409 on a name clash, 400 on an invalid name
//	}
//	c.Lock()
//	c.State.SetRunning(pid, true)
//	err := store.Save(c) // durable before the client hears about it
//	c.Unlock()
//
// Locking: a Container's lock (Lock, Unlock) guards all its fields. Save,
// Delete and Rename must be called with it held; State.Wait without it.
// Listing never takes container locks: Store.Snapshots returns read-only
// copies made at the last Save, so `docker ps` does not wait behind a
// container that is busy stopping.
package container

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"skiffd/internal/api/types"
)

// Container is the persisted record of one container, stored whole in one
// file (config.v2.json), host config and state included: one rename
// replaces all of it.
type Container struct {
	// ID is 64 lower-case hex digits.
	ID string `json:"ID"`
	// Name carries its leading slash: "/web".
	Name    string    `json:"Name"`
	Created time.Time `json:"Created"`
	// Path and Args are the command after merging image defaults.
	Path       string            `json:"Path"`
	Args       []string          `json:"Args"`
	Config     *types.Config     `json:"Config"`
	HostConfig *types.HostConfig `json:"HostConfig"`
	// ImageID is the image's "sha256:..." ID; Config.Image keeps the
	// reference the client gave.
	ImageID string `json:"Image"`
	State   *State `json:"State"`

	RestartCount           int  `json:"RestartCount"`
	HasBeenStartedBefore   bool `json:"HasBeenStartedBefore"`
	HasBeenManuallyStopped bool `json:"HasBeenManuallyStopped"`

	LogPath        string `json:"LogPath"`
	ResolvConfPath string `json:"ResolvConfPath"`
	HostnamePath   string `json:"HostnamePath"`
	HostsPath      string `json:"HostsPath"`
	Driver         string `json:"Driver"`
	Platform       string `json:"Platform"`

	// NetworkSettings and MountPoints are what the engine set up, as
	// inspect reports them; the list filters network and volume read them.
	NetworkSettings *types.NetworkSettings `json:"NetworkSettings,omitempty"`
	MountPoints     []types.MountPoint     `json:"MountPoints,omitempty"`

	// Runtime is opaque engine data persisted with the record (shim
	// socket, rootfs layer, ...), so this package need not know it.
	Runtime json.RawMessage `json:"Runtime,omitempty"`

	// saved is the record last written (or read), so that Save skips a
	// record that did not change; nil before the first Save.
	saved []byte
	// legacy is set while the record on disk is in the older two-file
	// layout, which the next Save replaces.
	legacy bool
	// recordRemoved is set once Store.RemoveRecord has removed the
	// record file, and cleared when Save writes it again.
	recordRemoved bool
	// listing is set on snapshots only (see ListSummary).
	listing *listing
}

// listing is what GET /containers/json needs of a snapshot, computed once:
// a snapshot never changes, so only the status text, which depends on the
// time, is left to each request (issue 13, list rate). A list reads the
// fields before summary for every container: they come first, together,
// so that a list touches few cache lines of each container's.
type listing struct {
	once sync.Once
	// timed is set when the status text moves with the clock (a running
	// or exited container); started and finished are then the state's.
	timed             bool
	started, finished time.Time
	// status is the last status text made, with the whole seconds since
	// the start and the finish it was made for: the text depends on
	// nothing else of a snapshot, so lists within the same second reuse
	// it instead of formatting it again.
	status atomic.Pointer[listStatus]
	// cache is the list handler's (its encoding of summary).
	cache   types.ListCache
	summary types.ContainerSummary // Status left out
}

// listStatus is a status text and the times it holds for.
type listStatus struct {
	sinceStart, sinceFinish time.Duration // whole seconds
	text                    string
}

// New returns a container record with the given ID, created now, in the
// created state.
func New(id string) *Container {
	return &Container{
		ID:       id,
		Created:  time.Now().UTC(),
		State:    &State{},
		Driver:   "overlay2",
		Platform: "linux",
	}
}

// Lock takes the container's lock.
func (c *Container) Lock() { c.State.Lock() }

// Unlock releases the container's lock.
func (c *Container) Unlock() { c.State.Unlock() }

// ShortID returns the 12-character form of the ID.
func (c *Container) ShortID() string {
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// Command returns the COMMAND column of ps: the path and the arguments,
// each argument containing a space in single quotes ("sh -c 'exit 3'").
func (c *Container) Command() string {
	if len(c.Args) == 0 {
		return c.Path
	}
	var b strings.Builder
	b.WriteString(c.Path)
	for _, a := range c.Args {
		b.WriteByte(' ')
		if strings.Contains(a, " ") {
			b.WriteString("'" + a + "'")
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// Summary returns the container as an entry of GET /containers/json, with
// the status as of now. Image is Config.Image; the engine replaces it with
// ImageID when the reference no longer names that image, as dockerd does.
// Sizes are left to the caller. Call it on a snapshot, or with c locked.
func (c *Container) Summary(now time.Time) types.ContainerSummary {
	s := types.ContainerSummary{
		ID:      c.ID,
		Names:   []string{c.Name},
		ImageID: c.ImageID,
		Command: c.Command(),
		Created: c.Created.Unix(),
		Ports:   c.ports(),
		State:   c.State.Status(),
		Status:  c.State.StringAt(now),
		Mounts:  slices.Clone(c.MountPoints),
		NetworkSettings: &types.SummaryNetworkSettings{
			Networks: map[string]*types.EndpointSettings{},
		},
	}
	if s.Mounts == nil {
		s.Mounts = []types.MountPoint{}
	}
	if c.Config != nil {
		s.Image = c.Config.Image
		s.Labels = c.Config.Labels
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if c.HostConfig != nil {
		s.HostConfig.NetworkMode = c.HostConfig.NetworkMode
		s.HostConfig.Annotations = c.HostConfig.Annotations
	}
	if c.NetworkSettings != nil {
		for name, ep := range c.NetworkSettings.Networks {
			if ep != nil {
				e := *ep
				s.NetworkSettings.Networks[name] = &e
			}
		}
	}
	return s
}

// ListSummary is Summary for a snapshot (Store.Snapshots): all but the
// status text is computed once per snapshot, and the slices and maps of the
// result are shared with every other caller, who must not modify them. On
// a container that is not a snapshot it is Summary.
func (c *Container) ListSummary(now time.Time) types.ContainerSummary {
	sum, status, _ := c.ListEntry(now)
	s := *sum
	s.Status = status
	return s
}

// ListEntry is what GET /containers/json shows of a snapshot as of now: its
// summary with the status left out, made once per snapshot and shared with
// every caller (who must not modify it), the status text, and the
// snapshot's cache slot, for the list handler's encoding of the summary. On
// a container that is not a snapshot the summary and the slot are new.
func (c *Container) ListEntry(now time.Time) (*types.ContainerSummary, string, *types.ListCache) {
	if c.listing == nil {
		s := c.Summary(now)
		status := s.Status
		s.Status = ""
		return &s, status, new(types.ListCache)
	}
	l := c.listing
	l.once.Do(func() {
		l.summary = c.Summary(now)
		l.summary.Status = ""
		st := c.State
		l.timed = st.Running || !(st.RemovalInProgress || st.Dead || st.StartedAt.IsZero() || st.FinishedAt.IsZero())
		l.started, l.finished = st.StartedAt, st.FinishedAt
		l.status.Store(&listStatus{sinceStart: now.Sub(l.started) / time.Second, sinceFinish: now.Sub(l.finished) / time.Second, text: st.StringAt(now)})
	})
	st := l.status.Load()
	if l.timed {
		// The status text reads the time only as whole seconds since
		// the start or the finish (humanDuration), truncated as
		// int(d.Seconds()) truncates.
		sinceStart := now.Sub(l.started) / time.Second
		sinceFinish := now.Sub(l.finished) / time.Second
		if st.sinceStart != sinceStart || st.sinceFinish != sinceFinish {
			st = &listStatus{sinceStart: sinceStart, sinceFinish: sinceFinish, text: c.State.StringAt(now)}
			l.status.Store(st)
		}
	}
	return &l.summary, st.text, &l.cache
}

// ports flattens NetworkSettings.Ports into ps's Ports, sorted by private
// port, protocol and public port so the output is stable.
func (c *Container) ports() []types.Port {
	out := []types.Port{}
	if c.NetworkSettings == nil {
		return out
	}
	for key, bindings := range c.NetworkSettings.Ports {
		private, proto, ok := parsePort(key)
		if !ok {
			continue
		}
		if len(bindings) == 0 {
			out = append(out, types.Port{PrivatePort: private, Type: proto})
			continue
		}
		for _, b := range bindings {
			var public uint16
			if n, ok := parsePortNumber(b.HostPort); ok {
				public = n
			}
			out = append(out, types.Port{IP: b.HostIP, PrivatePort: private, PublicPort: public, Type: proto})
		}
	}
	slices.SortFunc(out, func(a, b types.Port) int {
		if a.PrivatePort != b.PrivatePort {
			return int(a.PrivatePort) - int(b.PrivatePort)
		}
		if a.Type != b.Type {
			return strings.Compare(a.Type, b.Type)
		}
		if a.PublicPort != b.PublicPort {
			return int(a.PublicPort) - int(b.PublicPort)
		}
		return strings.Compare(a.IP, b.IP)
	})
	return out
}

// parsePort splits "80/tcp" (or "80", meaning tcp) into number and protocol.
func parsePort(s string) (uint16, string, bool) {
	num, proto, found := strings.Cut(s, "/")
	if !found || proto == "" {
		proto = "tcp"
	}
	n, ok := parsePortNumber(num)
	return n, strings.ToLower(proto), ok
}

func parsePortNumber(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	if n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// String names the container for logs and errors.
func (c *Container) String() string {
	return fmt.Sprintf("%s (%s)", c.ShortID(), c.Name)
}
