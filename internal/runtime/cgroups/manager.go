package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// manager implements Manager for every Mode: each operation finds, per
// controller, the v1 hierarchy that has it or else the v2 cgroup.
type manager struct {
	root, parent, id string
	// rootParent: the parent is the hierarchies' root ("/").
	rootParent bool
	mode       Mode
	progs      *Programs // device programs shared with other managers; nil: none

	mu       sync.Mutex
	resolved bool
	err      error
	// v1 maps controller names ("memory", "name=systemd") to the container's
	// directory in the hierarchy holding them; mounts maps the same names to
	// the hierarchy's mount point.
	v1     map[string]string
	mounts map[string]string
	// v1Dirs are the container's v1 directories, one per hierarchy.
	v1Dirs []string
	// v2 is the container's v2 directory and v2Root the cgroup2 mount; both
	// are empty in Legacy mode.
	v2, v2Root string
}

// v2Wanted are the v2 controllers a container cgroup uses, enabled in its
// ancestors' cgroup.subtree_control when the kernel offers them on v2.
var v2Wanted = []string{"cpu", "cpuset", "io", "memory", "pids"}

// v2Name maps a v1 controller name to its v2 name.
func v2Name(ctl string) string {
	if ctl == "blkio" {
		return "io"
	}
	return ctl
}

// pollDeadline bounds every wait for the kernel (freeze, kill, rmdir).
const pollDeadline = 10 * time.Second

// resolve finds the hierarchies once; the caller holds m.mu.
func (m *manager) resolve() error {
	if m.resolved {
		return m.err
	}
	m.resolved = true
	m.err = m.doResolve()
	return m.err
}

func (m *manager) doResolve() error {
	if err := validName(m.id, false); err != nil {
		return fmt.Errorf("cgroup for container %q: %w", m.id, err)
	}
	if !m.rootParent {
		if err := validName(m.parent, true); err != nil {
			return fmt.Errorf("cgroup parent %q: %w", m.parent, err)
		}
	}
	rel := filepath.Join(m.parent, m.id)
	if m.mode != Unified {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("find cgroup hierarchies: %w", err)
		}
		hs, err := parseMountinfo(f, m.root)
		f.Close()
		if err != nil {
			return fmt.Errorf("find cgroup hierarchies: %w", err)
		}
		if len(hs) == 0 {
			return fmt.Errorf("find cgroup hierarchies: no cgroup v1 mount under %s", m.root)
		}
		m.v1, m.mounts = map[string]string{}, map[string]string{}
		for _, h := range hs {
			dir := filepath.Join(h.mountpoint, rel)
			m.v1Dirs = append(m.v1Dirs, dir)
			for _, c := range h.controllers {
				m.v1[c] = dir
				m.mounts[c] = h.mountpoint
			}
		}
	}
	switch m.mode {
	case Hybrid:
		m.v2Root = filepath.Join(m.root, "unified")
	case Unified:
		m.v2Root = m.root
	}
	if m.v2Root != "" {
		m.v2 = filepath.Join(m.v2Root, rel)
	}
	return nil
}

// validName checks a container id (one path element) or a parent (one or
// more elements) so that neither can leave the hierarchy.
func validName(s string, multi bool) error {
	if s == "" {
		return errors.New("empty name")
	}
	elems := []string{s}
	if multi {
		elems = strings.Split(s, "/")
	}
	for _, e := range elems {
		if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "/\x00") {
			return errors.New("invalid name")
		}
	}
	return nil
}

// controller returns the directory that serves ctl (a v1 name) and whether
// it is a v2 directory. On v2 a controller serves only when the parent has
// enabled it, which the leaf's cgroup.controllers lists.
func (m *manager) controller(ctl string) (dir string, v2, ok bool) {
	if d, ok := m.v1[ctl]; ok {
		return d, false, true
	}
	if m.v2 == "" {
		return "", false, false
	}
	s, err := readFile(m.v2, "cgroup.controllers")
	if err != nil {
		return "", false, false
	}
	if slices.Contains(strings.Fields(s), v2Name(ctl)) {
		return m.v2, true, true
	}
	return "", false, false
}

// Paths implements Manager.
func (m *manager) Paths() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.resolve() != nil {
		return nil
	}
	out := map[string]string{}
	for c, d := range m.v1 {
		out[c] = d
	}
	if m.v2 != "" {
		out[""] = m.v2
	}
	return out
}

// Create implements Manager.
func (m *manager) Create(res Resources) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	rules := res.Devices
	if rules == nil {
		rules = DefaultDevices
	}
	policy, err := compileDevicePolicy(rules)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Best effort: the cgroups are empty, so removal succeeds unless
			// something else already went wrong with the filesystem.
			_ = m.destroy()
		}
	}()
	rel := filepath.Join(m.parent, m.id)
	for _, h := range m.hierarchies() {
		if err := mkdirV1(h.mountpoint, rel, slices.Contains(h.controllers, "cpuset")); err != nil {
			return err
		}
	}
	if m.v2 != "" {
		if err := mkdirV2(m.v2Root, rel); err != nil {
			return err
		}
	}
	if err := m.setResources(res, true); err != nil {
		return err
	}
	return m.setDevices(policy)
}

// hierarchies lists the v1 hierarchies with their controllers.
func (m *manager) hierarchies() []hierarchy {
	byMount := map[string]*hierarchy{}
	var out []*hierarchy
	for c, mp := range m.mounts {
		h := byMount[mp]
		if h == nil {
			h = &hierarchy{mountpoint: mp}
			byMount[mp] = h
			out = append(out, h)
		}
		h.controllers = append(h.controllers, c)
	}
	res := make([]hierarchy, 0, len(out))
	for _, h := range out {
		res = append(res, *h)
	}
	slices.SortFunc(res, func(a, b hierarchy) int { return strings.Compare(a.mountpoint, b.mountpoint) })
	return res
}

// mkdirV1 creates mount/rel level by level. In a cpuset hierarchy each new
// level gets its parent's cpus and mems, because a v1 cpuset cgroup starts
// with none and refuses tasks until both are set.
//
// Where the levels above exist (every container after the first) the
// container's own directory is the one made: a new cgroup has no cpus or
// mems to keep, so those are copied from the parent without a look.
func mkdirV1(mount, rel string, cpuset bool) error {
	leaf := filepath.Join(mount, rel)
	if err := os.Mkdir(leaf, 0o755); err == nil {
		if cpuset {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				val, err := readFile(filepath.Dir(leaf), f)
				if err == nil {
					err = writeFile(leaf, f, strings.TrimSpace(val))
				}
				if err != nil {
					return fmt.Errorf("create cgroup: copy %s from parent: %w", f, err)
				}
			}
		}
		return nil
	}
	dir := mount
	for elem := range strings.SplitSeq(rel, "/") {
		parent := dir
		dir = filepath.Join(dir, elem)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
		if cpuset {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				cur, err := readFile(dir, f)
				if err != nil {
					return fmt.Errorf("create cgroup: %w", err)
				}
				if strings.TrimSpace(cur) != "" {
					continue
				}
				val, err := readFile(parent, f)
				if err != nil {
					return fmt.Errorf("create cgroup: %w", err)
				}
				if err := writeFile(dir, f, strings.TrimSpace(val)); err != nil {
					return fmt.Errorf("create cgroup: copy %s from parent: %w", f, err)
				}
			}
		}
	}
	return nil
}

// mkdirV2 creates root/rel, enabling in every ancestor the wanted
// controllers that the kernel offers on v2. On a hybrid host the controllers
// bound to v1 are not offered, so nothing is written there. A controller
// that cannot be enabled is not an error here: setting a limit that needs it
// fails later with a clear message.
func mkdirV2(root, rel string) error {
	dir := root
	for elem := range strings.SplitSeq(rel, "/") {
		avail, err := readFile(dir, "cgroup.controllers")
		if err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		enabled, err := readFile(dir, "cgroup.subtree_control")
		if err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		for _, c := range v2Wanted {
			if slices.Contains(strings.Fields(avail), c) && !slices.Contains(strings.Fields(enabled), c) {
				_ = writeFile(dir, "cgroup.subtree_control", "+"+c)
			}
		}
		dir = filepath.Join(dir, elem)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	return nil
}

// setDevices installs the device policy in the v1 devices cgroup and as an
// eBPF program on the v2 cgroup. Having neither is an error: without a
// policy, container root with CAP_MKNOD can open any host device.
func (m *manager) setDevices(p devicePolicy) error {
	v1dir, hasV1 := m.v1["devices"]
	if hasV1 {
		defFile, excFile, exceptions := p.v1Writes()
		if err := writeFile(v1dir, defFile, "a"); err != nil {
			return fmt.Errorf("set device policy: %w", err)
		}
		if err := writeLines(v1dir, excFile, exceptions); err != nil {
			return fmt.Errorf("set device policy: %w", err)
		}
	}
	if m.v2 == "" {
		if !hasV1 {
			return errors.New("set device policy: no devices cgroup controller on this host")
		}
		return nil
	}
	err := installDeviceProgram(m.v2, p, m.progs)
	if err != nil && hasV1 && errors.Is(err, errBPFUnsupported) {
		// Hybrid host on a kernel without cgroup BPF: the v1 controller
		// enforces the same policy for every access.
		return nil
	}
	if err != nil {
		return fmt.Errorf("set device policy: %w", err)
	}
	return nil
}

// CgroupFD implements Manager.
func (m *manager) CgroupFD() (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return -1, err
	}
	if m.v2 == "" {
		return -1, nil
	}
	fd, err := syscall.Open(m.v2, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %w", m.v2, err)
	}
	return fd, nil
}

// Apply implements Manager.
func (m *manager) Apply(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	dirs := slices.Clone(m.v1Dirs)
	if m.v2 != "" {
		dirs = append(dirs, m.v2)
	}
	for _, d := range dirs {
		if err := writeFile(d, "cgroup.procs", fmt.Sprint(pid)); err != nil {
			return fmt.Errorf("move process %d into cgroup: %w", pid, err)
		}
	}
	return nil
}

// EnterThread implements Manager.
func (m *manager) EnterThread() (leave func() error, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return nil, err
	}
	hs := m.hierarchies()
	if len(hs) == 0 {
		return func() error { return nil }, nil
	}
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("move thread into cgroup: %w", err)
	}
	// The thread's cgroup in each hierarchy, by controller.
	cur := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue
		}
		for c := range strings.SplitSeq(f[1], ",") {
			cur[c] = f[2]
		}
	}
	back := make([]string, 0, len(hs))
	for _, h := range hs {
		p, ok := cur[h.controllers[0]]
		if !ok {
			return nil, fmt.Errorf("move thread into cgroup: no %s line in /proc/thread-self/cgroup", h.controllers[0])
		}
		back = append(back, filepath.Join(h.mountpoint, p))
	}
	leave = func() error {
		var first error
		for _, d := range back {
			if err := writeFile(d, "tasks", "0"); err != nil && first == nil {
				first = fmt.Errorf("move thread out of the container's cgroup: %w", err)
			}
		}
		return first
	}
	for _, d := range m.v1Dirs {
		if err := writeFile(d, "tasks", "0"); err != nil {
			leave()
			return nil, fmt.Errorf("move thread into cgroup: %w", err)
		}
	}
	return leave, nil
}

// procsDir is the directory whose cgroup.procs lists the container's
// processes: the v2 cgroup, which every placement joins, or else a v1
// hierarchy.
func (m *manager) procsDir() string {
	if m.v2 != "" {
		return m.v2
	}
	for _, c := range []string{"pids", "freezer", "memory", "cpu", "devices"} {
		if d, ok := m.v1[c]; ok {
			return d
		}
	}
	if len(m.v1Dirs) > 0 {
		return m.v1Dirs[0]
	}
	return ""
}

// Pids implements Manager.
func (m *manager) Pids() ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return nil, err
	}
	return pidsUnder(m.procsDir())
}

// pidsUnder lists cgroup.procs of dir and all its descendants.
func pidsUnder(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	pids, err := parsePids(s)
	if err != nil {
		return nil, fmt.Errorf("list processes: %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sub, err := pidsUnder(filepath.Join(dir, e.Name()))
		if err != nil {
			if isNotExist(err) {
				continue // removed meanwhile
			}
			return nil, err
		}
		pids = append(pids, sub...)
	}
	return pids, nil
}

// alive filters pids down to processes that still run: zombies wait only
// for their parent to reap them and can no longer be signalled.
func alive(pids []int) []int {
	var out []int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The state follows the last ')' of the command name.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		if st := s[i+2]; st == 'Z' || st == 'X' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// Kill implements Manager.
func (m *manager) Kill() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	dir := m.procsDir()
	if dir == "" {
		return errors.New("kill container processes: no cgroup")
	}
	if _, err := os.Stat(dir); isNotExist(err) {
		return nil // never created or already destroyed: nothing can run there
	}
	useKillFile := m.v2 != "" && exists(m.v2, "cgroup.kill")
	if useKillFile {
		if err := writeFile(m.v2, "cgroup.kill", "1"); err != nil {
			return fmt.Errorf("kill container processes: %w", err)
		}
	}
	deadline := time.Now().Add(pollDeadline)
	wait := time.Millisecond
	for {
		pids, err := pidsUnder(dir)
		if err != nil {
			return fmt.Errorf("kill container processes: %w", err)
		}
		live := alive(pids)
		if len(live) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill container processes: %d still running after %v", len(live), pollDeadline)
		}
		if !useKillFile {
			m.killV1(live)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// killV1 sends SIGKILL to pids. A v1 freezer stops new forks while the
// signals go out, as runc does; frozen tasks die once thawed.
func (m *manager) killV1(pids []int) {
	fdir, hasFreezer := m.v1["freezer"]
	if hasFreezer {
		_ = writeFile(fdir, "freezer.state", "FROZEN")
		if more, err := pidsUnder(m.procsDir()); err == nil {
			pids = append(pids, more...)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if hasFreezer {
		_ = writeFile(fdir, "freezer.state", "THAWED")
	}
}

// Destroy implements Manager.
func (m *manager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	return m.destroy()
}

func (m *manager) destroy() error {
	dirs := slices.Clone(m.v1Dirs)
	if m.v2 != "" {
		dirs = append(dirs, m.v2)
	}
	var errs []error
	for _, d := range dirs {
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroup removes a cgroup directory and any child cgroups, deepest
// first. cgroupfs removes a directory with rmdir(2) although it lists
// control files. A cgroup whose last task is still exiting reports EBUSY for
// a moment, so that is retried until pollDeadline.
func removeCgroup(dir string) error {
	entries, err := os.ReadDir(dir)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(pollDeadline)
	wait := time.Millisecond
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}
