package shimclient

import (
	"path/filepath"
	"strings"
	"testing"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/spec"
)

// TestCgroupDirMounts checks, on a v1 or hybrid host, each of the
// container's cgroup directories in its mountinfo: one mount per
// hierarchy at /sys/fs/cgroup/<mount name>, whose root is the container's
// own cgroup there, read-only, nosuid, nodev and noexec. (init binds them
// with open_tree, mount_setattr and move_mount; issue 13.)
func TestCgroupDirMounts(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("a pure cgroup v2 host mounts cgroup2, no directories") // TestCgroupFS covers it
	}
	rt := newRuntime(t)
	s := newSpec(t, "cat", "/proc/self/mountinfo")
	s.Cgroup = &spec.Cgroup{Parent: cgroupParent(t)}
	paths := cgroups.New(s.ID, cgroups.WithParent(s.Cgroup.Parent)).Paths()
	res := run(t, rt, s)
	got := map[string][]string{} // mount point -> fields
	for _, l := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 6 && strings.HasPrefix(f[4], "/sys/fs/cgroup/") {
			got[f[4]] = f
		}
	}
	want := map[string]bool{}
	for ctl, dir := range paths {
		rel, ok := strings.CutPrefix(dir, cgroups.DefaultRoot+"/")
		if !ok {
			t.Fatalf("%s cgroup %s is not under %s", ctl, dir, cgroups.DefaultRoot)
		}
		name, root, _ := strings.Cut(rel, "/")
		mp := filepath.Join("/sys/fs/cgroup", name)
		want[mp] = true
		f, ok := got[mp]
		if !ok {
			t.Errorf("no mount at %s (%s); mountinfo:\n%s", mp, ctl, res.stdout)
			continue
		}
		if f[3] != "/"+root {
			t.Errorf("%s: root %s, want the container's cgroup /%s", mp, f[3], root)
		}
		opts := "," + f[5] + ","
		for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !strings.Contains(opts, ","+o+",") {
				t.Errorf("%s: options %s, want %s among them", mp, f[5], o)
			}
		}
	}
	for mp := range got {
		if !want[mp] {
			t.Errorf("unexpected mount at %s: %v", mp, got[mp])
		}
	}
}

// TestDiscardCgroupsInvalidParent: a record whose cgroup parent could
// never hold a cgroup (one made before create refused it) does not keep
// its container from being removed.
func TestDiscardCgroupsInvalidParent(t *testing.T) {
	if err := (&Runtime{}).DiscardCgroups("abc", "/../escape"); err != nil {
		t.Errorf("DiscardCgroups under an invalid parent = %v, want nothing to do", err)
	}
}
