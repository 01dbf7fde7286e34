package volume

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

// MountPoint is one mount of a container, parsed from HostConfig.Binds,
// HostConfig.Mounts or HostConfig.Tmpfs. The engine completes it (a volume's
// Name and host Source) and reports it in inspect's Mounts through API.
type MountPoint struct {
	Type        string // types.MountTypeBind, MountTypeVolume, MountTypeTmpfs or MountTypeImage
	Source      string // bind: the host path; volume: the volume's _data once resolved; image: where the engine mounts it
	Destination string // clean absolute path in the container
	RW          bool
	Mode        string // the mode field of a -v spec ("ro,z"), "" for --mount
	Propagation string // bind only; rprivate unless asked otherwise
	Name        string // volume name ("" for an anonymous volume until created); image: the name given
	// Image is an image mount's image ID, resolved at create.
	Image  string `json:",omitempty"`
	Driver string // volume driver asked for ("" means local)
	// CopyData asks for an empty volume to be filled from the image's
	// content at Destination (false with nocopy / VolumeOptions.NoCopy).
	CopyData bool
	// CreateSource says a missing bind source is created as a directory
	// (-v and BindOptions.CreateMountpoint); --mount otherwise refuses it
	// at parse time.
	CreateSource bool
	// TmpfsOptions is the tmpfs mount's option string (flags and data),
	// for Type tmpfs only.
	TmpfsOptions string
	// Spec is the request this mount came from, in --mount form.
	Spec types.Mount
}

// API returns the mount as container inspect and list show it.
func (m MountPoint) API() types.MountPoint {
	return types.MountPoint{
		Type:        m.Type,
		Name:        m.Name,
		Source:      m.Source,
		Destination: m.Destination,
		Driver:      m.Driver,
		Mode:        m.Mode,
		RW:          m.RW,
		Propagation: m.Propagation,
	}
}

// Errors of spec parsing, worded as dockerd's.

// errTargetIsRoot refuses "/" as a destination.
var errTargetIsRoot = errors.New("invalid specification: destination can't be '/'")

func invalidSpec(spec string) error {
	return fmt.Errorf("invalid volume specification: '%s'", spec)
}

func invalidMode(mode string) error {
	return fmt.Errorf("invalid mode: %s", mode)
}

// mountConfigError is dockerd's `invalid mount config for type "bind": ...`.
type mountConfigError struct {
	typ string
	err error
}

func (e *mountConfigError) Error() string {
	return fmt.Sprintf("invalid mount config for type %q: %v", e.typ, e.err)
}

func (e *mountConfigError) Unwrap() error { return e.err }

func missingField(name string) error {
	return fmt.Errorf("field %s must not be empty", name)
}

func extraField(name string) error {
	return fmt.Errorf("field %s must not be specified", name)
}

// The mode words of a -v spec.
var (
	rwModes          = map[string]bool{"rw": true, "ro": true}
	labelModes       = map[string]bool{"z": true, "Z": true}
	propagationModes = map[string]bool{"private": true, "rprivate": true, "slave": true, "rslave": true, "shared": true, "rshared": true}
	copyModes        = map[string]bool{"nocopy": true}
	consistencyModes = map[string]bool{"consistent": true, "cached": true, "delegated": true}
)

const defaultPropagation = "rprivate"

// validMode reports whether mode is a comma list with at most one word of
// each kind (rw/ro, z/Z, a propagation, nocopy, a consistency).
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, cons int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case rwModes[o]:
			rw++
		case labelModes[o]:
			label++
		case propagationModes[o]:
			prop++
		case copyModes[o]:
			cp++
		case consistencyModes[o]:
			cons++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && cons <= 1
}

// modeWord returns the word of mode that set has, if any.
func modeWord(mode string, set map[string]bool) (string, bool) {
	for _, o := range strings.Split(mode, ",") {
		if set[o] {
			return o, true
		}
	}
	return "", false
}

// ParseBind parses a -v / HostConfig.Binds entry, "[src:]dst[:mode]":
//
//	/host:/ctr[:ro|rw][,z|Z][,rprivate|...]  a bind mount (created if missing)
//	name:/ctr[:ro][,nocopy]                   a named volume
//	/ctr                                      an anonymous volume
//
// Errors are InvalidParameter with dockerd's text: "invalid volume
// specification: '<spec>'", "invalid mode: <mode>", or the spec error
// followed by the mount-config error. Volume names are not checked here;
// creating the volume does that.
func ParseBind(spec string) (MountPoint, error) {
	mp, err := parseBind(spec)
	if err != nil {
		return MountPoint{}, errdefs.InvalidParameter(err)
	}
	return mp, nil
}

func parseBind(raw string) (MountPoint, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return MountPoint{}, invalidSpec(raw)
	}
	var m types.Mount
	var mode string
	switch len(arr) {
	case 1:
		m.Target = arr[0]
	case 2:
		if validMode(arr[1]) {
			// "/foo:rw" is a destination and a mode without a source.
			return MountPoint{}, invalidSpec(raw)
		}
		m.Source, m.Target = arr[0], arr[1]
	case 3:
		m.Source, m.Target, mode = arr[0], arr[1], arr[2]
	default:
		return MountPoint{}, invalidSpec(raw)
	}
	if !validMode(mode) {
		return MountPoint{}, invalidMode(mode)
	}
	if path.IsAbs(m.Source) {
		m.Type = types.MountTypeBind
	} else {
		m.Type = types.MountTypeVolume
	}
	_, ro := modeWord(mode, map[string]bool{"ro": true})
	m.ReadOnly = ro
	if _, ok := modeWord(mode, copyModes); ok {
		m.VolumeOptions = &types.VolumeOptions{NoCopy: true}
	}
	if p, ok := modeWord(mode, propagationModes); ok {
		m.BindOptions = &types.BindOptions{Propagation: p}
	}
	mp, err := parseMount(m, false)
	if err != nil {
		return MountPoint{}, fmt.Errorf("%v: %v", invalidSpec(raw), err)
	}
	mp.Mode = mode
	if mp.Type == types.MountTypeBind {
		mp.CreateSource = true
	}
	return mp, nil
}

// ParseMount validates and converts a HostConfig.Mounts entry (--mount):
// bind (the source must exist unless BindOptions.CreateMountpoint),
// volume, tmpfs and image. Errors are InvalidParameter worded as dockerd's
// `invalid mount config for type "bind": bind source path does not exist: /x`.
func ParseMount(m types.Mount) (MountPoint, error) {
	mp, err := parseMount(m, true)
	if err != nil {
		return MountPoint{}, errdefs.InvalidParameter(err)
	}
	return mp, nil
}

func parseMount(m types.Mount, checkSource bool) (MountPoint, error) {
	if err := validateMount(m, checkSource); err != nil {
		return MountPoint{}, err
	}
	if err := checkSupported(m); err != nil {
		return MountPoint{}, &mountConfigError{m.Type, err}
	}
	mp := MountPoint{
		Type:        m.Type,
		Destination: path.Clean(m.Target),
		RW:          !m.ReadOnly,
		Spec:        m,
	}
	switch m.Type {
	case types.MountTypeVolume:
		mp.Name = m.Source
		mp.CopyData = true
		if o := m.VolumeOptions; o != nil {
			if o.DriverConfig != nil {
				mp.Driver = o.DriverConfig.Name
			}
			if o.NoCopy {
				mp.CopyData = false
			}
		}
	case types.MountTypeBind:
		mp.Source = path.Clean(m.Source)
		mp.Propagation = defaultPropagation
		if m.BindOptions != nil {
			if m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
			mp.CreateSource = m.BindOptions.CreateMountpoint
		}
	case types.MountTypeImage:
		// The image's name as given; the engine resolves it at create
		// (Image) and mounts it at each start (Source). Always
		// read-only, as in dockerd.
		mp.Name = m.Source
		mp.RW = false
		mp.Propagation = defaultPropagation
	case types.MountTypeTmpfs:
		opts, err := tmpfsOptions(m.TmpfsOptions, m.ReadOnly)
		if err != nil {
			return MountPoint{}, &mountConfigError{m.Type, err}
		}
		merged, err := withTmpfsDefaults(opts)
		if err != nil {
			return MountPoint{}, &mountConfigError{m.Type, err}
		}
		mp.TmpfsOptions = merged
	}
	return mp, nil
}

// checkSupported refuses a volume subpath that leaves the volume (as
// dockerd does), and read-only bind options that contradict each other
// (dockerd's start-time error, found here at create). A forced recursive
// read-only bind is what a read-only bind is anyway: skiffd makes every
// submount read-only, with a remount of each on kernels before 5.12.
func checkSupported(m types.Mount) error {
	if o := m.VolumeOptions; o != nil && o.Subpath != "" && !filepath.IsLocal(o.Subpath) {
		return errors.New("subpath must be a relative path within the volume")
	}
	if o := m.BindOptions; o != nil && m.ReadOnly && o.ReadOnlyNonRecursive && o.ReadOnlyForceRecursive {
		return errors.New("mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive")
	}
	return nil
}

// validateMount is dockerd's ValidateMountConfig for Linux.
func validateMount(m types.Mount, checkSource bool) error {
	if err := validateTarget(m.Target); err != nil {
		return &mountConfigError{m.Type, err}
	}
	fail := func(err error) error { return &mountConfigError{m.Type, err} }
	switch m.Type {
	case types.MountTypeBind:
		if m.Source == "" {
			return fail(missingField("Source"))
		}
		if o := m.BindOptions; o != nil && o.Propagation != "" && !propagationModes[o.Propagation] {
			return fail(fmt.Errorf("invalid propagation mode: %s", o.Propagation))
		}
		if m.VolumeOptions != nil {
			return fail(extraField("VolumeOptions"))
		}
		if m.ImageOptions != nil {
			return fail(extraField("ImageOptions"))
		}
		if m.TmpfsOptions != nil {
			return fail(extraField("TmpfsOptions"))
		}
		if err := validateAbsolute(m.Source); err != nil {
			return fail(err)
		}
		if checkSource {
			_, err := os.Stat(m.Source)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fail(err)
			}
			create := m.BindOptions != nil && m.BindOptions.CreateMountpoint
			if err != nil && !create {
				return fail(fmt.Errorf("bind source path does not exist: %s", m.Source))
			}
		}
	case types.MountTypeVolume:
		if m.BindOptions != nil {
			return fail(extraField("BindOptions"))
		}
		if m.ImageOptions != nil {
			return fail(extraField("ImageOptions"))
		}
		if m.TmpfsOptions != nil {
			return fail(extraField("TmpfsOptions"))
		}
		if o := m.VolumeOptions; o != nil && o.Subpath != "" {
			if m.Source == "" {
				return fail(errors.New("must not set Subpath when using anonymous volumes"))
			}
			if !filepath.IsLocal(o.Subpath) {
				return fail(errors.New("subpath must be a relative path within the volume"))
			}
		}
	case types.MountTypeTmpfs:
		if m.BindOptions != nil {
			return fail(extraField("BindOptions"))
		}
		if m.VolumeOptions != nil {
			return fail(extraField("VolumeOptions"))
		}
		if m.ImageOptions != nil {
			return fail(extraField("ImageOptions"))
		}
		if m.Source != "" {
			return fail(extraField("Source"))
		}
		if _, err := tmpfsOptions(m.TmpfsOptions, m.ReadOnly); err != nil {
			return fail(err)
		}
	case types.MountTypeImage:
		if m.Source == "" {
			return fail(missingField("Source"))
		}
		if m.BindOptions != nil {
			return fail(extraField("BindOptions"))
		}
		if m.VolumeOptions != nil {
			return fail(extraField("VolumeOptions"))
		}
		if m.TmpfsOptions != nil {
			return fail(extraField("TmpfsOptions"))
		}
		if o := m.ImageOptions; o != nil && o.Subpath != "" && !filepath.IsLocal(o.Subpath) {
			return fail(errors.New("subpath must be a relative path within the volume"))
		}
	default:
		return fail(errors.New("mount type unknown"))
	}
	return nil
}

func validateTarget(target string) error {
	if target == "" {
		return missingField("Target")
	}
	if path.Clean(target) == "/" {
		return errTargetIsRoot
	}
	return validateAbsolute(target)
}

// validateAbsolute requires an absolute path. dockerd reads a backslash as
// "/" here (a leftover for Windows clients) while keeping the path as given;
// skiffd treats a backslash as the file name character it is on Linux, so
// a destination like `\x` is refused as relative instead of accepted.
func validateAbsolute(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", p)
	}
	return nil
}

// tmpfsOptions turns TmpfsOptions into a mount option string as dockerd's
// ConvertTmpfsOptions does: ro, mode= in octal, size= with the largest
// binary suffix that divides it, then the exec/noexec flags.
func tmpfsOptions(o *types.TmpfsOptions, readOnly bool) (string, error) {
	var opts []string
	if readOnly {
		opts = append(opts, "ro")
	}
	if o != nil && o.Mode != 0 {
		opts = append(opts, fmt.Sprintf("mode=%o", o.Mode))
	}
	if o != nil && o.SizeBytes != 0 {
		size, suffix := o.SizeBytes, ""
		for _, u := range []struct {
			suffix string
			div    int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if size%u.div == 0 {
				size, suffix = size/u.div, u.suffix
				break
			}
		}
		opts = append(opts, fmt.Sprintf("size=%d%s", size, suffix))
	}
	if o != nil {
		for _, kv := range o.Options {
			if len(kv) < 1 || len(kv) > 2 {
				return "", errors.New("invalid option array length")
			}
			if kv[0] != "exec" && kv[0] != "noexec" {
				return "", errors.New("invalid option: " + kv[0])
			}
			opts = append(opts, strings.Join(kv, "="))
		}
	}
	return strings.Join(opts, ","), nil
}

// tmpfsDefaults are the options every container tmpfs gets before the
// user's: the same as dockerd's.
var tmpfsDefaults = []string{"noexec", "nosuid", "nodev", defaultPropagation}

func withTmpfsDefaults(user string) (string, error) {
	opts := slices.Clone(tmpfsDefaults)
	if user != "" {
		opts = append(opts, strings.Split(user, ",")...)
	}
	merged, err := MergeTmpfsOptions(opts)
	if err != nil {
		return "", err
	}
	return strings.Join(merged, ","), nil
}

// ParseTmpfs converts HostConfig.Tmpfs (destination → "size=1m,mode=1777")
// into tmpfs mount points sorted by destination. Destinations must be
// absolute and not "/"; options must be ones tmpfs takes.
func ParseTmpfs(tmpfs map[string]string) ([]MountPoint, error) {
	dests := slices.Sorted(maps.Keys(tmpfs))
	out := make([]MountPoint, 0, len(dests))
	for _, dest := range dests {
		if err := validateTarget(dest); err != nil {
			if dest == "" {
				err = validateAbsolute(dest)
			}
			return nil, errdefs.InvalidParameter(err)
		}
		merged, err := withTmpfsDefaults(tmpfs[dest])
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		rw := true
		for _, o := range strings.Split(merged, ",") {
			switch o {
			case "ro":
				rw = false
			case "rw":
				rw = true
			}
		}
		out = append(out, MountPoint{
			Type:         types.MountTypeTmpfs,
			Destination:  path.Clean(dest),
			RW:           rw,
			TmpfsOptions: merged,
			Spec:         types.Mount{Type: types.MountTypeTmpfs, Target: dest, ReadOnly: !rw},
		})
	}
	return out, nil
}
