package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/mountinfo"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/volume"
)

// runtimeData is the engine's own part of a container record (the
// record's opaque Runtime field): the mounts in the detail start needs,
// which inspect's MountPoints do not carry (tmpfs options, bind creation,
// copy-up).
type runtimeData struct {
	Mounts []volume.MountPoint `json:"Mounts,omitempty"`
}

func loadRuntimeData(c *container.Container) runtimeData {
	var rd runtimeData
	if len(c.Runtime) > 0 {
		json.Unmarshal(c.Runtime, &rd)
	}
	return rd
}

func saveRuntimeData(c *container.Container, rd runtimeData) error {
	b, err := json.Marshal(rd)
	if err != nil {
		return err
	}
	c.Runtime = b
	return nil
}

// prepareMounts is the create-time part: it creates or finds the volumes
// and holds them for the container, and records the mounts.
func (e *Engine) prepareMounts(ctx context.Context, c *container.Container, mounts, tmpfs []volume.MountPoint) error {
	if err := e.createMountVolumes(ctx, c.ID, mounts); err != nil {
		return err
	}
	all := append(append([]volume.MountPoint{}, mounts...), tmpfs...)
	c.MountPoints = c.MountPoints[:0]
	for _, m := range mounts {
		c.MountPoints = append(c.MountPoints, m.API())
	}
	return saveRuntimeData(c, runtimeData{Mounts: all})
}

// startMounts is the start-time part: bind sources are checked (or
// created), volumes mounted and filled, and the mounts turned into spec
// mounts, parents first. The returned function undoes the volume mounts.
func (e *Engine) startMounts(ctx context.Context, c *container.Container, rootfs string) ([]spec.Mount, func(), error) {
	mps := loadRuntimeData(c).Mounts
	if len(mps) == 0 {
		return nil, func() {}, nil
	}
	for _, m := range mps {
		if m.Type != types.MountTypeBind {
			continue
		}
		if _, err := os.Stat(m.Source); err != nil {
			if !errors.Is(err, os.ErrNotExist) || !m.CreateSource {
				return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source))
			}
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return nil, nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
			}
		}
	}
	unmount, err := e.mountVolumes(ctx, c.ID, rootfs, mps)
	if err != nil {
		return nil, nil, err
	}
	ordered := append([]volume.MountPoint{}, mps...)
	volume.SortForMounting(ordered)
	var out []spec.Mount
	for _, m := range ordered {
		switch m.Type {
		case types.MountTypeTmpfs:
			out = append(out, spec.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: splitOptions(m.TmpfsOptions)})
		case types.MountTypeBind, types.MountTypeVolume:
			opts := []string{"rbind"}
			if m.RW {
				opts = append(opts, "rw")
			} else {
				opts = append(opts, "ro")
			}
			prop, err := e.checkPropagation(m.Source, m.Propagation)
			if err != nil {
				unmount()
				return nil, nil, err
			}
			out = append(out, spec.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: append(opts, prop)})
		}
	}
	return out, unmount, nil
}

// checkPropagation refuses, as dockerd's WithMounts does at start, a
// shared propagation on a source whose mount is not shared, and a slave
// one on a source whose mount is neither shared nor slave: the mount
// would not propagate what the client asked for. As in dockerd, a slave
// propagation on a source inside the data root (or containing it) falls
// back to private instead. It returns the propagation to use.
func (e *Engine) checkPropagation(source, prop string) (string, error) {
	switch prop {
	case "", "private", "rprivate":
		return "rprivate", nil
	case "shared", "rshared", "slave", "rslave":
	default:
		return prop, nil
	}
	path, err := filepath.EvalSymlinks(source)
	if err != nil {
		return "", fmt.Errorf("resolve bind source %s: %w", source, err)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	m, ok := mountinfo.Containing(mountinfo.Parse(string(b)), path)
	if !ok {
		return "", fmt.Errorf("could not find the mount of %s", source)
	}
	if prop == "shared" || prop == "rshared" {
		if !m.Shared() {
			return "", errdefs.InvalidParameter(fmt.Errorf("path %s is mounted on %s but it is not a shared mount", source, m.Point))
		}
		return prop, nil
	}
	if !m.Shared() && !m.Slave() {
		root := e.opts.DataRoot
		if strings.HasPrefix(source, root) || strings.HasPrefix(root, source) {
			return "rprivate", nil
		}
		return "", errdefs.InvalidParameter(fmt.Errorf("path %s is mounted on %s but it is not a shared or slave mount", source, m.Point))
	}
	return prop, nil
}

func splitOptions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// remountVolumes re-takes the volume mounts of a container that kept
// running while no daemon was there, without filling or events, and
// returns the function that releases them at its exit.
func (e *Engine) remountVolumes(c *container.Container) func() {
	s := e.volumes
	var names []string
	for _, m := range loadRuntimeData(c).Mounts {
		if m.Type != types.MountTypeVolume || m.Name == "" {
			continue
		}
		if _, err := s.Mount(m.Name, c.ID); err == nil {
			names = append(names, m.Name)
		}
	}
	return func() {
		for _, n := range names {
			s.Unmount(n, c.ID)
		}
	}
}

// mergeMounts adds the client's mounts after the spec's own, as dockerd's
// WithMounts does: a default mount whose destination a client's mount
// takes is left out, and with a client's mount on /dev (-v /dev:/dev) so
// is every default mount below /dev but /dev/shm, which follows the
// client's mounts: the container keeps its own shared memory instead of
// the bound directory's (dockerd's IPC mount is a client mount, sorted
// after /dev).
func mergeMounts(base, user []spec.Mount) []spec.Mount {
	if len(user) == 0 {
		return base
	}
	taken := map[string]bool{}
	for _, m := range user {
		taken[path.Clean(m.Destination)] = true
	}
	out := make([]spec.Mount, 0, len(base)+len(user))
	var after []spec.Mount
	for _, m := range base {
		dst := path.Clean(m.Destination)
		switch {
		case taken[dst]:
		case taken["/dev"] && dst == "/dev/shm":
			after = append(after, m)
		case taken["/dev"] && strings.HasPrefix(dst, "/dev/"):
		default:
			out = append(out, m)
		}
	}
	return append(append(out, user...), after...)
}
