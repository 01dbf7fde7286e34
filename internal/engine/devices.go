package engine

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// hostDevice describes the device node at p (symlinks followed) for the
// container path dst, or an error if p is not a device.
func hostDevice(p, dst string) (spec.Device, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return spec.Device{}, fmt.Errorf("error gathering device information while adding custom device %q: %w", p, err)
	}
	var typ string
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFCHR:
		typ = "c"
	case syscall.S_IFBLK:
		typ = "b"
	default:
		return spec.Device{}, fmt.Errorf("error gathering device information while adding custom device %q: not a device node", p)
	}
	return spec.Device{Path: dst, Type: typ, Major: sys.Major(st.Rdev), Minor: sys.Minor(st.Rdev), Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}, nil
}

// defaultDeviceRules is the cgroup device policy of a default container,
// in the spec's form.
func defaultDeviceRules() []spec.DeviceRule {
	out := make([]spec.DeviceRule, 0, len(cgroups.DefaultDevices))
	for _, r := range cgroups.DefaultDevices {
		out = append(out, spec.DeviceRule{Allow: r.Allow, Type: string(r.Type), Major: r.Major, Minor: r.Minor, Access: r.Access})
	}
	return out
}

// applyDevices adds --device mappings and --device-cgroup-rule rules to s.
func applyDevices(s *spec.Spec, devices []types.DeviceMapping, rules []string) error {
	if len(devices) == 0 && len(rules) == 0 {
		return nil
	}
	policy := s.Cgroup.Resources.Devices
	if policy == nil {
		policy = defaultDeviceRules()
	}
	for _, d := range devices {
		dst := d.PathInContainer
		if dst == "" {
			dst = d.PathOnHost
		}
		if !path.IsAbs(dst) {
			return fmt.Errorf("%s is not an absolute path", dst)
		}
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return fmt.Errorf("invalid device cgroup permissions %q", perms)
		}
		dev, err := hostDevice(d.PathOnHost, path.Clean(dst))
		if err != nil {
			return err
		}
		s.Devices = append(s.Devices, dev)
		policy = append(policy, spec.DeviceRule{Allow: true, Type: dev.Type, Major: int64(dev.Major), Minor: int64(dev.Minor), Access: perms})
	}
	for _, r := range rules {
		rule, err := parseDeviceRule(r)
		if err != nil {
			return err
		}
		policy = append(policy, rule)
	}
	s.Cgroup.Resources.Devices = policy
	return nil
}

// parseDeviceRule reads a --device-cgroup-rule: "c 1:3 rwm", "b *:* m",
// "a".
func parseDeviceRule(r string) (spec.DeviceRule, error) {
	bad := fmt.Errorf("invalid device cgroup rule format: '%s'", r)
	f := strings.Fields(r)
	if len(f) == 0 || len(f) > 3 || (f[0] != "a" && f[0] != "b" && f[0] != "c") {
		return spec.DeviceRule{}, bad
	}
	rule := spec.DeviceRule{Allow: true, Type: f[0], Major: -1, Minor: -1, Access: "rwm"}
	if len(f) == 1 {
		return rule, nil
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return spec.DeviceRule{}, bad
	}
	num := func(s string) (int64, error) {
		if s == "*" {
			return -1, nil
		}
		return strconv.ParseInt(s, 10, 32)
	}
	var err error
	if rule.Major, err = num(maj); err != nil || rule.Major < -1 {
		return spec.DeviceRule{}, bad
	}
	if rule.Minor, err = num(min); err != nil || rule.Minor < -1 {
		return spec.DeviceRule{}, bad
	}
	if len(f) == 3 {
		if f[2] == "" || strings.Trim(f[2], "rwm") != "" {
			return spec.DeviceRule{}, bad
		}
		rule.Access = f[2]
	}
	return rule, nil
}

// makePrivileged gives s what docker run --privileged gives: every
// capability, no seccomp filter, no masked or read-only paths, writable
// /sys and cgroup file systems, every host device and access to all.
func makePrivileged(s *spec.Spec, allCaps []string) error {
	s.Process.Capabilities = allCaps
	s.Seccomp = nil
	s.MaskedPaths, s.ReadonlyPaths = nil, nil
	for i, m := range s.Mounts {
		if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
			opts := make([]string, 0, len(m.Options))
			for _, o := range m.Options {
				if o == "ro" {
					o = "rw"
				}
				opts = append(opts, o)
			}
			s.Mounts[i].Options = opts
		}
	}
	devs, err := hostDevices()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range s.Devices {
		have[d.Path] = true
	}
	for _, d := range devs {
		if !have[d.Path] {
			s.Devices = append(s.Devices, d)
		}
	}
	s.Cgroup.Resources.Devices = []spec.DeviceRule{{Allow: true, Type: "a", Major: -1, Minor: -1, Access: "rwm"}}
	return nil
}

// hostDevices lists the device nodes directly in the host's /dev (the
// runtime creates nodes only there; subdirectories such as /dev/cpu are
// left out).
func hostDevices() ([]spec.Device, error) {
	ents, err := os.ReadDir("/dev")
	if err != nil {
		return nil, err
	}
	var out []spec.Device
	for _, d := range ents {
		p := "/dev/" + d.Name()
		if d.Type()&fs.ModeDevice == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			continue
		}
		if dev, err := hostDevice(p, p); err == nil {
			out = append(out, dev)
		}
	}
	return out, nil
}
