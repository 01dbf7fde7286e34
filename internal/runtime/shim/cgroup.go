package shim

import (
	"strings"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/nsinit"
	"skiffd/internal/runtime/spec"
)

// OpenCgroup returns the manager of the container's cgroups, or nil when
// the spec asks for none. The daemon created them (with its opts); the
// shim places processes and reads the OOM flag.
func OpenCgroup(s *spec.Spec, opts ...cgroups.Option) cgroups.Manager {
	if s.Cgroup == nil {
		return nil
	}
	if s.Cgroup.Parent != "" {
		opts = append(opts, cgroups.WithParent(s.Cgroup.Parent))
	}
	return cgroups.New(s.ID, opts...)
}

// cgroupMounts lists, for a v1 or hybrid host, the directories init binds
// under the container's /sys/fs/cgroup: each hierarchy's mount name (the
// first path element below the cgroup root) to the container's directory
// in it, and links for the controllers of co-mounted hierarchies.
func cgroupMounts(cg cgroups.Manager) (mounts, links map[string]string) {
	mounts, links = map[string]string{}, map[string]string{}
	for ctl, dir := range cg.Paths() {
		rel, ok := strings.CutPrefix(dir, cgroups.DefaultRoot+"/")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rel, "/")
		mounts[name] = dir
		ctl = strings.TrimPrefix(ctl, "name=")
		if ctl != "" && ctl != name && !strings.Contains(ctl, "/") {
			links[ctl] = name
		}
	}
	for l := range links {
		if _, ok := mounts[l]; ok {
			delete(links, l)
		}
	}
	return mounts, links
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
