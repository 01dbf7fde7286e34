package shim

import (
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/nsinit"
	"skiffd/internal/runtime/spec"
)

// OpenCgroup returns the manager of the container's cgroups, or nil when
// the spec asks for none. The daemon created them; the shim places
// processes and reads the OOM flag.
func OpenCgroup(s *spec.Spec) cgroups.Manager {
	if s.Cgroup == nil {
		return nil
	}
	var opts []cgroups.Option
	if s.Cgroup.Parent != "" {
		opts = append(opts, cgroups.WithParent(s.Cgroup.Parent))
	}
	return cgroups.New(s.ID, opts...)
}

// CgroupMode maps the host's cgroup layout to init's terms.
func CgroupMode() string {
	switch cgroups.DetectMode() {
	case cgroups.Unified:
		return nsinit.CgroupV2
	case cgroups.Hybrid:
		return nsinit.CgroupHybrid
	}
	return nsinit.CgroupV1
}
