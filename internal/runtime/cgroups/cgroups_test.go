package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDetectMode checks DetectMode against the mount table, which is how
// the filesystem types under /sys/fs/cgroup can be learnt without statfs.
func TestDetectMode(t *testing.T) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fstype := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(g) >= 1 {
			fstype[f[4]] = g[0] // later mounts hide earlier ones
		}
	}
	want := Legacy
	switch {
	case fstype[DefaultRoot] == "cgroup2":
		want = Unified
	case fstype[DefaultRoot+"/unified"] == "cgroup2":
		want = Hybrid
	}
	if got := DetectMode(); got != want {
		t.Errorf("DetectMode() = %v, want %v (mount table: %q at %s, %q at unified)", got, want, fstype[DefaultRoot], DefaultRoot, fstype[DefaultRoot+"/unified"])
	}
}

func TestCreateDestroy(t *testing.T) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{Memory: 64 << 20, PidsLimit: 100, CPUShares: 512}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			paths := m.Paths()
			if len(paths) == 0 {
				t.Fatal("Paths() is empty")
			}
			_, hasV2 := paths[""]
			if hasV2 != (mode != Legacy) {
				t.Errorf("Paths() has v2 entry %v, want %v", hasV2, mode != Legacy)
			}
			for ctl, dir := range paths {
				if want := filepath.Join(m.parent, "c"); !strings.HasSuffix(dir, "/"+want) {
					t.Errorf("Paths()[%q] = %q, want a path ending in %q", ctl, dir, want)
				}
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Errorf("cgroup %s for %q missing after Create: %v", dir, ctl, err)
				}
			}
			if dir, ok := paths["cpuset"]; ok {
				if got := readTestFile(t, dir, "cpuset.cpus"); got == "" {
					t.Error("cpuset.cpus is empty: not copied from the parent")
				}
				if got := readTestFile(t, dir, "cpuset.mems"); got == "" {
					t.Error("cpuset.mems is empty: not copied from the parent")
				}
			}
			// Create is repeatable on existing cgroups (daemon restart).
			if err := m.Create(Resources{}); err != nil {
				t.Errorf("second Create() = %v", err)
			}
			if err := m.Destroy(); err != nil {
				t.Fatalf("Destroy() = %v", err)
			}
			for ctl, dir := range paths {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("cgroup %s for %q still there after Destroy (stat: %v)", dir, ctl, err)
				}
			}
			if err := m.Destroy(); err != nil {
				t.Errorf("second Destroy() = %v, want nil (idempotent)", err)
			}
		})
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		id   string
		res  Resources
	}{
		{"dotdot id", "..", Resources{}},
		{"slash id", "a/b", Resources{}},
		{"empty id", "", Resources{}},
		{"bad device type", "c", Resources{Devices: []DeviceRule{{Type: 'x', Major: 1, Minor: 1, Allow: true}}}},
		{"bad access", "c", Resources{Devices: []DeviceRule{{Type: 'c', Major: 1, Minor: 1, Access: "rx", Allow: true}}}},
		{"bad device number", "c", Resources{Devices: []DeviceRule{{Type: 'c', Major: -2, Minor: 1, Allow: true}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Manager
			if tt.id == "c" {
				m = newTestManager(t, DetectMode())
			} else {
				// Nothing can be created for a bad id, so nothing to clean.
				m = NewAt(DefaultRoot, DetectMode(), tt.id, WithParent("skiffd-test-never-created"))
			}
			if err := m.Create(tt.res); err == nil {
				t.Errorf("Create(%+v) with id %q = nil, want an error", tt.res, tt.id)
			}
		})
	}
}

func TestPlacement(t *testing.T) {
	for _, mode := range hostModes(t) {
		hows := []struct {
			name string
			how  placement
		}{{"apply", placeApply}}
		if mode != Legacy {
			hows = append(hows, struct {
				name string
				how  placement
			}{"cgroupfd+apply", placeBoth})
		}
		for _, h := range hows {
			t.Run(mode.String()+"/"+h.name, func(t *testing.T) {
				m := newTestManager(t, mode)
				if err := m.Create(Resources{}); err != nil {
					t.Fatalf("Create() = %v", err)
				}
				c := startChild(t, m, h.how, "wait")
				got := procCgroups(t, c.pid())
				want := "/" + filepath.Join(m.parent, "c")
				for ctl := range m.Paths() {
					if got[ctl] != want {
						t.Errorf("/proc/%d/cgroup %q = %q, want %q", c.pid(), ctl, got[ctl], want)
					}
				}
				pids, err := m.Pids()
				if err != nil {
					t.Fatalf("Pids() = %v", err)
				}
				if !slices.Equal(pids, []int{c.pid()}) {
					t.Errorf("Pids() = %v, want [%d]", pids, c.pid())
				}
			})
		}
	}
}

// TestCgroupFDPlacesAtClone shows that CgroupFD alone puts the child into
// the v2 cgroup from its first instruction (clone3 CLONE_INTO_CGROUP).
func TestCgroupFDPlacesAtClone(t *testing.T) {
	if DetectMode() == Legacy {
		t.Skip("no cgroup v2 on this host")
	}
	m := newTestManager(t, DetectMode())
	if err := m.Create(Resources{}); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	c := startChild(t, m, placeFD, "wait")
	if got, want := procCgroups(t, c.pid())[""], "/"+filepath.Join(m.parent, "c"); got != want {
		t.Errorf("v2 cgroup of child = %q, want %q", got, want)
	}
}

// TestEnterThreadPlacesAtFork shows that a child forked by a thread that
// called EnterThread is in every hierarchy of the container from its first
// instruction, without Apply, while the rest of the forking process stays
// where it was, and that leave takes the thread out again.
func TestEnterThreadPlacesAtFork(t *testing.T) {
	self := procCgroups(t, os.Getpid())
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			c := startChild(t, m, placeThread, "wait")
			got := procCgroups(t, c.pid())
			want := "/" + filepath.Join(m.parent, "c")
			for ctl := range m.Paths() {
				if got[ctl] != want {
					t.Errorf("/proc/%d/cgroup %q = %q, want %q", c.pid(), ctl, got[ctl], want)
				}
			}
			if now := procCgroups(t, os.Getpid()); !maps.Equal(now, self) {
				t.Errorf("the test process's cgroups moved: %v, were %v", now, self)
			}
			for _, dir := range m.Paths() {
				if pids, err := pidsUnder(dir); err != nil || !slices.Equal(pids, []int{c.pid()}) {
					t.Errorf("processes in %s = %v, %v; want only the child %d", dir, pids, err, c.pid())
				}
			}
		})
	}
}

func TestMemoryLimitOOMKill(t *testing.T) {
	m := newTestManager(t, DetectMode())
	if err := m.Create(Resources{Memory: 64 << 20}); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if oom, err := m.OOMKilled(); err != nil || oom {
		t.Fatalf("OOMKilled() before any allocation = %v, %v; want false, nil", oom, err)
	}
	c := startChild(t, m, placeBoth, "alloc")
	st := c.wait()
	if sig := killedBy(st); sig != syscall.SIGKILL {
		t.Fatalf("child allocating 200 MiB under a 64 MiB limit ended with %v, want killed by SIGKILL", st)
	}
	oom, err := m.OOMKilled()
	if err != nil || !oom {
		t.Errorf("OOMKilled() = %v, %v; want true, nil", oom, err)
	}
	st2, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats() = %v", err)
	}
	if st2.Memory.Limit != 64<<20 {
		t.Errorf("Stats().Memory.Limit = %d, want %d", st2.Memory.Limit, 64<<20)
	}
	if dir, v2, _ := m.controller("memory"); !v2 && st2.Memory.Failcnt == 0 {
		t.Errorf("Stats().Memory.Failcnt = 0 after an OOM kill (v1 %s)", dir)
	}
}

func TestPidsLimit(t *testing.T) {
	for _, limit := range []int64{10, 0} {
		t.Run(map[int64]string{10: "limit10", 0: "unlimited"}[limit], func(t *testing.T) {
			m := newTestManager(t, DetectMode())
			if err := m.Create(Resources{PidsLimit: limit}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			c := startChild(t, m, placeBoth, "fork")
			ok, fail := 0, 0
			for {
				s, err := c.stdout.ReadString('\n')
				if err != nil {
					break
				}
				if strings.HasPrefix(s, "ok") {
					ok++
				} else if strings.HasPrefix(s, "fail") {
					fail++
				}
			}
			c.wait()
			if limit == 0 {
				if ok != 50 {
					t.Errorf("without a pids limit, %d of 50 processes started, want all", ok)
				}
				return
			}
			// The Go child's own threads count against the limit too, so
			// fewer than 10 sleeps start; the point is that most fail.
			if ok == 0 || ok >= int(limit) {
				t.Errorf("with pids.max %d: %d processes started, %d failed; want between 1 and %d started", limit, ok, fail, limit-1)
			}
			t.Logf("pids.max %d: %d started, %d failed", limit, ok, fail)
		})
	}
}

func TestFreezeThaw(t *testing.T) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			counter := filepath.Join(t.TempDir(), "counter")
			if err := os.WriteFile(counter, make([]byte, 8), 0o600); err != nil {
				t.Fatal(err)
			}
			read := func() uint64 {
				b, err := os.ReadFile(counter)
				if err != nil || len(b) < 8 {
					t.Fatalf("read counter: %v", err)
				}
				return binary.LittleEndian.Uint64(b)
			}
			c := startChild(t, m, placeBoth, "count", counter)
			waitFor(t, "the counter to start", func() bool { return read() > 0 })

			if err := m.Freeze(); err != nil {
				t.Fatalf("Freeze() = %v", err)
			}
			before := read()
			// Observation window: a running child advances the counter by
			// thousands in this time.
			time.Sleep(300 * time.Millisecond)
			if after := read(); after != before {
				t.Errorf("counter moved from %d to %d while frozen", before, after)
			}
			if err := m.Thaw(); err != nil {
				t.Fatalf("Thaw() = %v", err)
			}
			waitFor(t, "the counter to move after Thaw", func() bool { return read() > before })
			if st := c.cmd.ProcessState; st != nil {
				t.Fatalf("child exited: %v", st)
			}
		})
	}
}

// TestFreezeUsesOneFreezer checks the choice: v2 cgroup.freeze when there
// is a v2 cgroup, and the v1 freezer left THAWED then (RUNTIME.md: the two
// freezers acting on the same tasks never report frozen).
func TestFreezeUsesOneFreezer(t *testing.T) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			startChild(t, m, placeBoth, "wait")
			if err := m.Freeze(); err != nil {
				t.Fatalf("Freeze() = %v", err)
			}
			defer m.Thaw()
			v1, hasV1 := m.v1["freezer"]
			v1State := ""
			if hasV1 {
				v1State = readTestFile(t, v1, "freezer.state")
			}
			if m.v2 != "" {
				if got := readTestFile(t, m.v2, "cgroup.freeze"); got != "1" {
					t.Errorf("v2 cgroup.freeze = %q, want 1", got)
				}
				if hasV1 && v1State != "THAWED" {
					t.Errorf("v1 freezer.state = %q, want THAWED while v2 freezes", v1State)
				}
			} else if v1State != "FROZEN" {
				t.Errorf("v1 freezer.state = %q, want FROZEN", v1State)
			}
		})
	}
}

func TestKillAndPids(t *testing.T) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			var want []int
			var children []*child
			for range 3 {
				c := startChild(t, m, placeBoth, "wait")
				children = append(children, c)
				want = append(want, c.pid())
			}
			got, err := m.Pids()
			if err != nil {
				t.Fatalf("Pids() = %v", err)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Pids() = %v, want %v", got, want)
			}
			if err := m.Kill(); err != nil {
				t.Fatalf("Kill() = %v", err)
			}
			for _, c := range children {
				if st := c.wait(); killedBy(st) != syscall.SIGKILL {
					t.Errorf("child %d ended with %v, want SIGKILL", c.pid(), st)
				}
			}
			if got, err := m.Pids(); err != nil || len(got) != 0 {
				t.Errorf("Pids() after Kill = %v, %v; want none", got, err)
			}
			if err := m.Destroy(); err != nil {
				t.Errorf("Destroy() after Kill = %v", err)
			}
		})
	}
}

// TestKillFrozen kills a paused container: the processes must die without a
// Thaw, as `docker kill` of a paused container does.
func TestKillFrozen(t *testing.T) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			c := startChild(t, m, placeBoth, "wait")
			if err := m.Freeze(); err != nil {
				t.Fatalf("Freeze() = %v", err)
			}
			if err := m.Kill(); err != nil {
				t.Fatalf("Kill() of a frozen container = %v", err)
			}
			if st := c.wait(); killedBy(st) != syscall.SIGKILL {
				t.Errorf("frozen child ended with %v, want SIGKILL", st)
			}
		})
	}
}

func TestStats(t *testing.T) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{Memory: 256 << 20, PidsLimit: 64}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			c := startChild(t, m, placeBoth, "spin")
			if got := c.line(t); got != "spinning" {
				t.Fatalf("child said %q", got)
			}
			var st *Stats
			waitFor(t, "CPU usage to show", func() bool {
				var err error
				if st, err = m.Stats(); err != nil {
					t.Fatalf("Stats() = %v", err)
				}
				return st.CPU.TotalUsage > 50e6 && st.CPU.UsageInUsermode > 0
			})
			if st.Memory.Usage < 32<<20 {
				t.Errorf("Memory.Usage = %d, want at least the child's 32 MiB", st.Memory.Usage)
			}
			if st.Memory.Limit != 256<<20 {
				t.Errorf("Memory.Limit = %d, want %d", st.Memory.Limit, 256<<20)
			}
			if len(st.Memory.Stats) == 0 {
				t.Error("Memory.Stats is empty")
			}
			if st.Pids.Current < 1 || st.Pids.Limit != 64 {
				t.Errorf("Pids = %+v, want current >= 1 and limit 64", st.Pids)
			}
			if _, ok := m.v1["cpuacct"]; ok && len(st.CPU.PercpuUsage) == 0 {
				t.Error("CPU.PercpuUsage is empty with v1 cpuacct")
			}
			t.Logf("stats: cpu %+v memory usage %d", st.CPU.TotalUsage, st.Memory.Usage)
		})
	}
}

// TestResourceFiles reads back what Create and Update wrote. The blkio
// weight needs a weighted IO scheduler, which not every host has: Probe
// says which, and the manager must agree with it, applying the weight where
// Probe promises it and refusing it with a clear error (creating nothing)
// where it does not.
func TestResourceFiles(t *testing.T) {
	m := newTestManager(t, DetectMode())
	sup := Probe()
	t.Logf("Probe() = %+v", sup)
	res := Resources{
		Memory: 64 << 20, MemoryReservation: 32 << 20,
		CPUShares: 512, CPUQuota: 150000, CPUPeriod: 100000,
		PidsLimit: 42, BlkioWeight: 300,
	}
	// Swappiness and the OOM-killer switch exist on v1 only; Probe says so.
	swappiness := int64(30)
	if sup.MemorySwappiness {
		res.MemorySwappiness = &swappiness
	}
	res.OomKillDisable = sup.OomKillDisable
	if !sup.BlkioWeight {
		err := m.Create(res)
		if err == nil || !strings.Contains(err.Error(), "no IO scheduler with weights") {
			t.Fatalf("Create(%+v) without a weighted IO scheduler = %v, want the no-scheduler error", res, err)
		}
		for _, d := range m.Paths() {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed Create left cgroup %s behind (stat: %v)", d, err)
			}
		}
		res.BlkioWeight = 0
	}
	if err := m.Create(res); err != nil {
		t.Fatalf("Create(%+v) = %v", res, err)
	}
	type file struct{ ctl, name, want string }
	check := func(files []file) {
		t.Helper()
		for _, f := range files {
			dir, _, ok := m.controller(f.ctl)
			if !ok {
				t.Errorf("controller %s not available", f.ctl)
				continue
			}
			if got := readTestFile(t, dir, f.name); got != f.want {
				t.Errorf("%s = %q, want %q", f.name, got, f.want)
			}
		}
	}
	var files []file
	if _, v2, _ := m.controller("cpu"); v2 {
		files = append(files, file{"cpu", "cpu.weight", "20"}, file{"cpu", "cpu.max", "150000 100000"})
	} else {
		files = append(files, file{"cpu", "cpu.shares", "512"}, file{"cpu", "cpu.cfs_quota_us", "150000"}, file{"cpu", "cpu.cfs_period_us", "100000"})
	}
	if _, v2, _ := m.controller("memory"); v2 {
		files = append(files, file{"memory", "memory.max", "67108864"}, file{"memory", "memory.low", "33554432"})
	} else {
		files = append(files, file{"memory", "memory.limit_in_bytes", "67108864"}, file{"memory", "memory.soft_limit_in_bytes", "33554432"})
		if sup.MemorySwappiness {
			files = append(files, file{"memory", "memory.swappiness", "30"})
		}
		if dir, _, _ := m.controller("memory"); sup.OomKillDisable {
			if got := readTestFile(t, dir, "memory.oom_control"); !strings.Contains(got, "oom_kill_disable 1") {
				t.Errorf("memory.oom_control = %q, want oom_kill_disable 1", got)
			}
		}
		if dir, _, _ := m.controller("memory"); exists(dir, v1MemSwap) {
			files = append(files, file{"memory", v1MemSwap, "134217728"}) // dockerd's default: twice the memory
		}
	}
	files = append(files, file{"pids", "pids.max", "42"})
	if sup.BlkioWeight {
		dir, v2, ok := m.controller("blkio")
		switch {
		case !ok:
			t.Error("Probe() promises a blkio weight but the manager finds no blkio controller")
		case !v2 && exists(dir, "blkio.weight"):
			files = append(files, file{"blkio", "blkio.weight", "300"})
		case !v2 && exists(dir, "blkio.bfq.weight"):
			files = append(files, file{"blkio", "blkio.bfq.weight", "300"})
		case v2 && exists(dir, "io.bfq.weight"):
			files = append(files, file{"blkio", "io.bfq.weight", "default 300"})
		case v2 && exists(dir, "io.weight"):
			files = append(files, file{"blkio", "io.weight", "default 2930"})
		default:
			t.Error("Probe() promises a blkio weight but the container cgroup has no weight file")
		}
	}
	check(files)

	// Update: a smaller quota and more memory (memsw first, since it must
	// stay above the memory limit), unlimited pids, shares unchanged.
	upd := Resources{Memory: 512 << 20, MemorySwap: 1 << 30, CPUQuota: 50000, CPUPeriod: 100000, PidsLimit: -1}
	if err := m.Update(upd); err != nil {
		t.Fatalf("Update(%+v) = %v", upd, err)
	}
	files = files[:0]
	if _, v2, _ := m.controller("cpu"); v2 {
		files = append(files, file{"cpu", "cpu.weight", "20"}, file{"cpu", "cpu.max", "50000 100000"})
	} else {
		files = append(files, file{"cpu", "cpu.shares", "512"}, file{"cpu", "cpu.cfs_quota_us", "50000"})
	}
	if dir, v2, _ := m.controller("memory"); v2 {
		files = append(files, file{"memory", "memory.max", "536870912"})
	} else {
		files = append(files, file{"memory", "memory.limit_in_bytes", "536870912"})
		if exists(dir, v1MemSwap) {
			files = append(files, file{"memory", v1MemSwap, "1073741824"})
		}
	}
	files = append(files, file{"pids", "pids.max", "max"})
	check(files)
}

func TestDevicesV1List(t *testing.T) {
	requireRoot(t)
	m := newTestManager(t, Legacy)
	if err := m.Create(Resources{}); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	dir, ok := m.v1["devices"]
	if !ok {
		t.Skip("no v1 devices controller")
	}
	got := strings.Split(readTestFile(t, dir, "devices.list"), "\n")
	slices.Sort(got)
	want := []string{
		"b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
		"c 136:* rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("devices.list = %q, want %q", got, want)
	}
}

// TestDevicePolicyEnforced runs a child in the container's cgroups that
// opens and creates device nodes. The host's /dev/net/tun (c 10:200) is not
// in the default list; /dev/null is.
func TestDevicePolicyEnforced(t *testing.T) {
	requireRoot(t)
	type variant struct {
		name  string
		mode  Mode
		setup func(t *testing.T) (Manager, placement)
	}
	var variants []variant
	for _, mode := range hostModes(t) {
		name := map[Mode]string{Legacy: "v1-lists", Hybrid: "v1-lists+bpf", Unified: "bpf"}[mode]
		variants = append(variants, variant{name: name, mode: mode, setup: func(t *testing.T) (Manager, placement) {
			m := newTestManager(t, mode)
			if err := m.Create(Resources{}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			return m, placeBoth
		}})
	}
	if mode := DetectMode(); mode != Legacy {
		// The program another container loaded, kept in Programs: the
		// second cgroup attaches it, loads none, and is as closed.
		variants = append(variants, variant{name: "bpf-shared", mode: mode, setup: func(t *testing.T) (Manager, placement) {
			progs := NewPrograms()
			t.Cleanup(progs.Close)
			var m *manager
			for range 2 {
				m = newTestManager(t, mode)
				m.progs = progs
				if err := m.Create(Resources{}); err != nil {
					t.Fatalf("Create() = %v", err)
				}
			}
			if n := len(progs.fds); n != 1 {
				t.Errorf("Programs keeps %d programs after two containers with the same rules, want 1", n)
			}
			if mode == Hybrid {
				// In the v2 cgroup only: the program alone decides.
				return m, placeFD
			}
			return m, placeBoth
		}})
	}
	if DetectMode() == Hybrid {
		// Only the eBPF program: a v2 cgroup made by hand, with the process
		// left in the root of every v1 hierarchy, where devices are allowed.
		variants = append(variants, variant{name: "bpf-only", mode: Hybrid, setup: func(t *testing.T) (Manager, placement) {
			m := newTestManager(t, Hybrid)
			if err := m.resolve(); err != nil {
				t.Fatal(err)
			}
			if err := mkdirV2(m.v2Root, filepath.Join(m.parent, m.id)); err != nil {
				t.Fatal(err)
			}
			p, err := compileDevicePolicy(DefaultDevices)
			if err != nil {
				t.Fatal(err)
			}
			if err := installDeviceProgram(m.v2, p, nil); err != nil {
				t.Fatalf("installDeviceProgram() = %v", err)
			}
			return m, placeFD
		}})
	}
	dir := t.TempDir()
	tun := filepath.Join(dir, "tun")
	// makedev(10, 200)
	if err := syscall.Mknod(tun, syscall.S_IFCHR|0o600, 10<<8|200); err != nil {
		t.Fatalf("mknod on the host: %v", err)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m, how := v.setup(t)
			made := filepath.Join(t.TempDir(), "tun2")
			c := startChild(t, m, how, "devices", "open:/dev/null", "open:"+tun, "open:/dev/net/tun", "mknod:"+made+":10:200")
			want := []string{
				"open:/dev/null ok",
				"open:" + tun + " " + errnoString(syscall.EPERM),
				"open:/dev/net/tun " + errnoString(syscall.EPERM),
				// Docker allows mknod of any char device (runc's c *:* m).
				"mknod:" + made + ":10:200 ok",
			}
			for _, w := range want {
				if got := c.line(t); got != w {
					t.Errorf("child: %q, want %q", got, w)
				}
			}
			c.wait()
		})
	}
	// A policy without the mknod wildcard refuses mknod as well.
	for _, mode := range hostModes(t) {
		t.Run(mode.String()+"/no-mknod", func(t *testing.T) {
			m := newTestManager(t, mode)
			rules := []DeviceRule{{Type: 'a', Allow: false}, {Type: 'c', Major: 1, Minor: 3, Access: "rwm", Allow: true}}
			if err := m.Create(Resources{Devices: rules}); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			made := filepath.Join(t.TempDir(), "tun3")
			c := startChild(t, m, placeBoth, "devices", "mknod:"+made+":10:200", "open:/dev/null", "open:/dev/zero")
			for _, w := range []string{
				"mknod:" + made + ":10:200 " + errnoString(syscall.EPERM),
				"open:/dev/null ok",
				"open:/dev/zero " + errnoString(syscall.EPERM),
			} {
				if got := c.line(t); got != w {
					t.Errorf("child: %q, want %q", got, w)
				}
			}
			c.wait()
		})
	}
}

// wholeDisk is the device number of a whole disk of this host, the only
// kind of block device the kernel takes IO limits for; false without one.
func wholeDisk(t *testing.T) (maj, min int64, ok bool) {
	t.Helper()
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil {
			return maj, min, true
		}
	}
	return 0, 0, false
}

// TestBlkioThrottleFiles: per-device rate limits land in the kernel's
// files (v1 blkio.throttle.*_device, v2 io.max) where the host has them,
// and Create fails where it has not.
func TestBlkioThrottleFiles(t *testing.T) {
	maj, min, ok := wholeDisk(t)
	if !ok {
		t.Fatal("no whole disk under /sys/block on this host")
	}
	m := newTestManager(t, DetectMode())
	sup := Probe()
	res := Resources{BlkioThrottle: []ThrottleDevice{
		{Kind: ReadBps, Major: maj, Minor: min, Rate: 1 << 20},
		{Kind: WriteIOps, Major: maj, Minor: min, Rate: 100},
	}}
	err := m.Create(res)
	if !sup.BlkioReadBpsDevice || !sup.BlkioWriteIOpsDevice {
		if err == nil {
			t.Fatalf("Create with IO limits on a host without them succeeded (Probe %+v)", sup)
		}
		return
	}
	if err != nil {
		t.Fatalf("Create(%+v) = %v", res, err)
	}
	dir, v2, ok := m.controller("blkio")
	if !ok {
		t.Fatal("no blkio controller")
	}
	dev := fmt.Sprintf("%d:%d", maj, min)
	if v2 {
		got := readTestFile(t, dir, "io.max")
		if !strings.Contains(got, dev+" rbps=1048576 wbps=max riops=max wiops=100") {
			t.Errorf("io.max = %q, want %s's read bytes and write operations limited", got, dev)
		}
		return
	}
	for name, want := range map[string]string{"blkio.throttle.read_bps_device": dev + " 1048576", "blkio.throttle.write_iops_device": dev + " 100"} {
		if got := readTestFile(t, dir, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := readTestFile(t, dir, "blkio.throttle.write_bps_device"); got != "" {
		t.Errorf("blkio.throttle.write_bps_device = %q, want no limit", got)
	}
}
