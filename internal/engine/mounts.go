package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/mountinfo"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
	"skiffd/internal/volume"
)

// runtimeData is the engine's own part of a container record (the
// record's opaque Runtime field): the mounts in the detail start needs,
// which inspect's MountPoints do not carry (tmpfs options, bind creation,
// copy-up).
type runtimeData struct {
	Mounts []volume.MountPoint `json:"Mounts,omitempty"`
	// LinkIDs are the IDs of the children of the container's legacy
	// links by alias (links.go).
	LinkIDs map[string]string `json:"LinkIDs,omitempty"`
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
	// Volumes that name no driver are the container's --volume-driver's,
	// as in dockerd: one other than local is a plugin skiffd does not
	// have, refused when a volume would be made with it.
	if d := c.HostConfig.VolumeDriver; d != "" {
		for i := range mounts {
			if mounts[i].Type == types.MountTypeVolume && mounts[i].Driver == "" {
				mounts[i].Driver = d
			}
		}
	}
	if err := e.createMountVolumes(ctx, c.ID, mounts); err != nil {
		return err
	}
	if err := e.resolveImageMounts(e.containerDir(c.ID), mounts); err != nil {
		return err
	}
	all := append(append([]volume.MountPoint{}, mounts...), tmpfs...)
	c.MountPoints = c.MountPoints[:0]
	for _, m := range mounts {
		c.MountPoints = append(c.MountPoints, m.API())
	}
	rd := loadRuntimeData(c)
	rd.Mounts = all
	return saveRuntimeData(c, rd)
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
	for _, m := range mps {
		if m.Type == types.MountTypeImage {
			if err := e.mountImage(m); err != nil {
				return nil, nil, err
			}
		}
	}
	unmountVolumes, err := e.mountVolumes(ctx, c.ID, rootfs, mps)
	if err != nil {
		return nil, nil, err
	}
	unmount := func() {
		e.detachSubpaths(c.ID)
		unmountVolumes()
	}
	for i := range mps {
		if err := e.stageSubpath(c.ID, i, &mps[i]); err != nil {
			unmount()
			return nil, nil, err
		}
	}
	ordered := append([]volume.MountPoint{}, mps...)
	volume.SortForMounting(ordered)
	var out []spec.Mount
	for _, m := range ordered {
		switch m.Type {
		case types.MountTypeTmpfs:
			out = append(out, spec.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: splitOptions(m.TmpfsOptions)})
		case types.MountTypeBind, types.MountTypeVolume, types.MountTypeImage:
			opts := bindOptions(m)
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

// bindOptions are the spec options of a bind, volume or image mount
// (propagation apart): recursive unless BindOptions.NonRecursive, and
// read-only with every submount unless read-write or
// BindOptions.ReadOnlyNonRecursive, as dockerd's WithMounts.
func bindOptions(m volume.MountPoint) []string {
	bo := m.Spec.BindOptions
	if m.Type != types.MountTypeBind {
		bo = nil
	}
	opts := []string{"rbind"}
	if bo != nil && bo.NonRecursive {
		opts[0] = "bind"
	}
	switch {
	case m.RW:
		return append(opts, "rw")
	case bo != nil && bo.ReadOnlyNonRecursive:
		return append(opts, spec.ReadOnlyTopOnly)
	}
	return append(opts, "ro")
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

// subpathDir holds the staging mounts of a container's volume subpaths.
func (e *Engine) subpathDir(id string) string {
	return filepath.Join(e.containerDir(id), "subpaths")
}

// stageSubpath resolves the subpath of a volume mount (VolumeOptions.Subpath,
// API 1.45) or an image mount (ImageOptions.Subpath) inside the mounted
// volume or image, never following a link out of it (openat2
// RESOLVE_IN_ROOT clamps them to the volume), binds what it found
// through its descriptor onto a private staging mount point under the
// container's directory, and makes m's source that mount point. The
// container binds it from there; detachSubpaths removes the staging
// mounts once the container's mount namespace has its own copy. Mounts
// without a subpath are left alone.
func (e *Engine) stageSubpath(id string, i int, m *volume.MountPoint) error {
	subpath := mountSubpath(m.Spec)
	if subpath == "" {
		return nil
	}
	root, err := syscall.Open(m.Source, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open volume %s: %w", m.Name, err)
	}
	defer syscall.Close(root)
	fd, err := sys.Openat2(root, subpath, &sys.OpenHow{Flags: sys.O_PATH | syscall.O_CLOEXEC, Resolve: sys.RESOLVE_IN_ROOT | sys.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("cannot access path %s: %w", filepath.Join(m.Source, subpath), err))
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	dir := e.subpathDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	target := filepath.Join(dir, strconv.Itoa(i))
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		err = os.Mkdir(target, 0o700)
	} else {
		err = os.WriteFile(target, nil, 0o600)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := syscall.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind volume subpath %s: %w", subpath, err)
	}
	// Private, so that detaching it here never reaches the container's
	// copy.
	if err := syscall.Mount("", target, "", syscall.MS_PRIVATE|syscall.MS_REC, ""); err != nil {
		syscall.Unmount(target, syscall.MNT_DETACH)
		return fmt.Errorf("bind volume subpath %s: %w", subpath, err)
	}
	m.Source = target
	return nil
}

// mountSubpath is the subpath a volume or image mount asks for, "" for
// the whole volume or image.
func mountSubpath(m types.Mount) string {
	switch {
	case m.Type == types.MountTypeVolume && m.VolumeOptions != nil:
		return m.VolumeOptions.Subpath
	case m.Type == types.MountTypeImage && m.ImageOptions != nil:
		return m.ImageOptions.Subpath
	}
	return ""
}

// detachSubpaths detaches the staging mounts of a container's volume
// subpaths and removes their mount points. It is called once the
// container's mount namespace holds its own binds, at the end of a run
// and before the container's directory is removed: removing a directory
// with a volume still bound below it would delete the volume's files.
func (e *Engine) detachSubpaths(id string) {
	dir := e.subpathDir(id)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		for syscall.Unmount(p, syscall.MNT_DETACH) == nil {
		}
		if err := os.Remove(p); err != nil {
			e.logger.Warn("removing a volume subpath mount point", "container", id, "path", p, "error", err)
		}
	}
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
