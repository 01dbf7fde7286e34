package shimclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/seccomp"
	"skiffd/internal/runtime/spec"
)

// statusFields parses /proc/self/status output.
func statusFields(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name          string
		nnp           bool
		user          string
		eff, bnd, nnV string
	}{
		{"default", false, "", "00000000a80425fb", "00000000a80425fb", "0"},
		{"nnp user", true, "user", "0000000000000000", "00000000a80425fb", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t, "cat", "/proc/self/status")
			s.Process.NoNewPrivileges = tc.nnp
			s.Process.User = tc.user
			res := run(t, rt, s)
			f := statusFields(res.stdout)
			want := map[string]string{"CapEff": tc.eff, "CapPrm": tc.eff, "CapBnd": tc.bnd, "CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": tc.nnV}
			for k, v := range want {
				if f[k] != v {
					t.Errorf("%s = %q, want %q", k, f[k], v)
				}
			}
			if tc.user == "user" && !strings.HasPrefix(f["Uid"], "1000\t") {
				t.Errorf("Uid = %q, want 1000", f["Uid"])
			}
		})
	}
}

func TestIsolation(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name string
		cmd  string
		want string
	}{
		{"masked file", "wc -c < /proc/keys; wc -c < /proc/timer_list", "0\n0\n"},
		{"masked dir", "ls -A /sys/firmware | wc -l", "0\n"},
		{"readonly proc/sys", "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo wrote || echo denied", "denied\n"},
		{"readonly sysrq", "echo h > /proc/sysrq-trigger 2>/dev/null && echo wrote || echo denied", "denied\n"},
		{"readonly sys", "touch /sys/x 2>/dev/null && echo wrote || echo denied", "denied\n"},
		// "; true" keeps sh from exec'ing ls (which would list its own
		// directory fd) and lists PID 1's fds while it waits.
		{"no host fds", "ls /proc/1/fd; true", "0\n1\n2\n"},
		{"devices", "stat -c '%n %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty",
			"/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n/dev/urandom 1:9 666\n/dev/tty 5:0 666\n"},
		{"dev links", "for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done", "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n"},
		{"processes", "exec ps -o pid,comm", "PID   COMMAND\n    1 ps\n"},
		{"root", "ls / | tr '\\n' ' '", "bin dev etc proc root sys tmp "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "masked file" {
				for _, p := range []string{"/proc/keys", "/proc/timer_list"} {
					if _, err := os.Stat(p); err != nil {
						t.Skipf("this kernel has no %s", p)
					}
				}
			}
			res := run(t, rt, newSpec(t, "sh", "-c", tc.cmd))
			if res.stdout != tc.want {
				t.Errorf("%s: stdout %q (stderr %q), want %q", tc.cmd, res.stdout, res.stderr, tc.want)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	rt := newRuntime(t)
	res := run(t, rt, newSpec(t, "cat", "/proc/mounts"))
	mounts := map[string]string{}
	for _, l := range strings.Split(res.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 {
			mounts[f[1]] = f[2] + " " + f[3]
		}
	}
	for _, tc := range []struct{ dest, typ, opts string }{
		{"/proc", "proc", "rw,nosuid,nodev,noexec"},
		{"/dev", "tmpfs", "rw,nosuid"},
		{"/dev/pts", "devpts", "rw,nosuid,noexec"},
		{"/dev/shm", "tmpfs", "rw,nosuid,nodev,noexec"},
		{"/dev/mqueue", "mqueue", "rw,nosuid,nodev,noexec"},
		{"/sys", "sysfs", "ro,nosuid,nodev,noexec"},
		{"/proc/sys", "proc", "ro,nosuid,nodev,noexec"},
		{"/proc/keys", "tmpfs", "rw,nosuid"}, // the container's /dev/null
		{"/sys/firmware", "tmpfs", "ro,relatime"},
	} {
		if _, err := os.Stat(tc.dest); err != nil {
			continue // this kernel has no such file to mask or mount over
		}
		got, ok := mounts[tc.dest]
		if !ok || !strings.HasPrefix(got, tc.typ+" "+tc.opts) {
			t.Errorf("mount %s = %q, want %q...", tc.dest, got, tc.typ+" "+tc.opts)
		}
	}
}

// defaultSeccomp compiles Docker's default profile for the default caps.
func defaultSeccomp(t *testing.T) *spec.Seccomp {
	t.Helper()
	prog, err := seccomp.Compile(seccomp.DefaultProfile(), spec.DefaultCapabilities())
	if err != nil {
		t.Fatal(err)
	}
	return spec.SeccompFilter(prog)
}

func TestSeccomp(t *testing.T) {
	rt := newRuntime(t)
	const script = "grep Seccomp: /proc/self/status | tr -d '\\t'; busybox unshare -U true 2>/dev/null && echo unshare-ok || echo unshare-denied; " +
		"mkdir /m; mount -t tmpfs t /m 2>/dev/null && echo mount-ok || echo mount-denied"
	for _, tc := range []struct {
		name string
		on   bool
		want string
	}{
		{"default profile", true, "Seccomp:2\nunshare-denied\nmount-denied\n"},
		// The control: the same commands without a filter. mount fails
		// for want of CAP_SYS_ADMIN either way.
		{"unconfined", false, "Seccomp:0\nunshare-ok\nmount-denied\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.on && !unprivilegedUserns() {
				t.Skip("this host forbids unprivileged user namespaces: no control run")
			}
			s := newSpec(t, "sh", "-c", script)
			if tc.on {
				s.Seccomp = defaultSeccomp(t)
			}
			res := run(t, rt, s)
			if res.stdout != tc.want {
				t.Errorf("stdout %q (stderr %q), want %q", res.stdout, res.stderr, tc.want)
			}
		})
	}
}

// unprivilegedUserns reports whether a process without CAP_SYS_ADMIN may
// create a user namespace on this host (the control case of TestSeccomp).
func unprivilegedUserns() bool {
	for _, c := range []struct{ file, bad string }{
		{"/proc/sys/kernel/unprivileged_userns_clone", "0"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"},
		{"/proc/sys/user/max_user_namespaces", "0"},
	} {
		if b, err := os.ReadFile(c.file); err == nil && strings.TrimSpace(string(b)) == c.bad {
			return false
		}
	}
	return true
}

// cgroupParent returns a cgroup parent of the test's own and removes it
// (in every hierarchy) at the end of the test, after the containers.
func cgroupParent(t *testing.T) string {
	t.Helper()
	var rnd [6]byte
	rand.Read(rnd[:])
	parent := "skiffd-test-" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		for _, dir := range cgroups.New("x", cgroups.WithParent(parent)).Paths() {
			p := filepath.Dir(dir)
			if filepath.Base(p) != parent {
				continue
			}
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Errorf("remove test cgroup parent: %v", err)
			}
		}
	})
	return parent
}

func TestCgroupLimits(t *testing.T) {
	rt := newRuntime(t)
	parent := cgroupParent(t)
	t.Run("memory", func(t *testing.T) {
		s := newSpec(t, "sh", "-c", "head -c 200m /dev/zero | tail")
		s.Cgroup = &spec.Cgroup{Parent: parent, Resources: spec.Resources{Memory: 64 << 20, MemorySwap: 64 << 20}}
		res := run(t, rt, s)
		if res.exit.Code != 137 || !res.exit.OOMKilled {
			t.Errorf("exit %d, OOMKilled %v; want 137, true", res.exit.Code, res.exit.OOMKilled)
		}
	})
	t.Run("pids", func(t *testing.T) {
		s := newSpec(t, "sh", "-c", "for i in $(seq 30); do sleep 1000 & done; echo done")
		s.Cgroup = &spec.Cgroup{Parent: parent, Resources: spec.Resources{PidsLimit: 20}}
		res := run(t, rt, s)
		if !strings.Contains(res.stderr, "can't fork") {
			t.Errorf("stderr %q, want fork failures", res.stderr)
		}
	})
	t.Run("placement", func(t *testing.T) {
		s := newSpec(t, "cat", "/proc/self/cgroup")
		s.Namespaces = append(s.Namespaces, spec.Namespace{Type: spec.CgroupNamespace})
		s.Cgroup = &spec.Cgroup{Parent: parent}
		res := run(t, rt, s)
		for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("cgroup line %q, want the namespace root /", l)
			}
		}
	})
}

// TestCgroupPlacementAtCreate checks that a created container's init is in
// every one of its cgroups and alone there: the shim thread that forked
// it into its v1 cgroups has left them again.
func TestCgroupPlacementAtCreate(t *testing.T) {
	rt := newRuntime(t)
	parent := cgroupParent(t)
	for range 3 {
		s := newSpec(t, "true")
		s.Cgroup = &spec.Cgroup{Parent: parent}
		c := create(t, rt, s)
		paths := cgroups.New(s.ID, cgroups.WithParent(parent)).Paths()
		if len(paths) == 0 {
			t.Fatal("no cgroup paths")
		}
		for ctl, dir := range paths {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if got, want := strings.TrimSpace(string(b)), strconv.Itoa(c.InitPid()); err != nil || got != want {
				t.Errorf("%q cgroup.procs = %q, %v; want init %s alone", ctl, got, err, want)
			}
		}
	}
}

// TestCgroupFS checks the container's /sys/fs/cgroup: read-only, and on
// v1 and hybrid hosts the container's own v1 directories (its memory limit
// is visible where JVMs look for it).
func TestCgroupFS(t *testing.T) {
	rt := newRuntime(t)
	s := newSpec(t, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; ls /sys/fs/cgroup/pids >/dev/null && echo pids; mkdir /sys/fs/cgroup/x 2>/dev/null || echo ro")
	s.Cgroup = &spec.Cgroup{Parent: cgroupParent(t), Resources: spec.Resources{Memory: 64 << 20}}
	res := run(t, rt, s)
	want := "67108864\npids\nro\n"
	if cgroups.DetectMode() == cgroups.Unified {
		want = "67108864\nro\n"
	}
	if res.stdout != want {
		t.Errorf("stdout %q (stderr %q), want %q", res.stdout, res.stderr, want)
	}
}

// TestNestedDevice creates a device below a subdirectory of /dev
// (docker run --device /dev/net/tun).
func TestNestedDevice(t *testing.T) {
	rt := newRuntime(t)
	s := newSpec(t, "stat", "-c", "%n %t:%T %a", "/dev/net/tun")
	s.Devices = append(s.Devices, spec.Device{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, Mode: 0o666})
	res := run(t, rt, s)
	if want := "/dev/net/tun a:c8 666\n"; res.stdout != want {
		t.Errorf("stdout %q (stderr %q), want %q", res.stdout, res.stderr, want)
	}
}

// TestStatsAndUpdate reads a running container's counters and changes its
// memory limit while it runs.
func TestStatsAndUpdate(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	s := newSpec(t, "sh", "-c", "echo ready; read x; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	s.Process.OpenStdin = true
	s.Cgroup = &spec.Cgroup{Parent: cgroupParent(t), Resources: spec.Resources{Memory: 64 << 20, PidsLimit: 100}}
	l := startLive(t, rt, s)
	l.expect(t, "ready")
	st, err := l.c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage == 0 || st.Memory.Limit != 64<<20 || st.Pids.Current < 1 || st.Pids.Limit != 100 {
		t.Errorf("Stats = memory %d/%d, pids %d/%d; want usage > 0, limit 64 MiB, pids >= 1, limit 100", st.Memory.Usage, st.Memory.Limit, st.Pids.Current, st.Pids.Limit)
	}
	pids, err := l.c.Pids(ctx)
	if err != nil || len(pids) != 1 {
		t.Errorf("Pids = %v, %v; want the one shell", pids, err)
	}
	if err := l.c.Update(ctx, spec.Resources{Memory: 96 << 20}); err != nil {
		t.Fatal(err)
	}
	l.st.Write([]byte("\n"))
	l.expect(t, "100663296")
}

// TestNoFdLeakIntoShim opens a pipe without close-on-exec in the daemon
// (as an fd inherited from a shell would be) and checks that neither the
// shim nor the container holds it.
func TestNoFdLeakIntoShim(t *testing.T) {
	rt := newRuntime(t)
	var p [2]int
	if err := syscall.Pipe2(p[:], 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(p[0]); syscall.Close(p[1]) })
	leaked, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", p[1]))
	if err != nil {
		t.Fatal(err)
	}
	s := newSpec(t, "sh", "-c", "echo up; exec sleep 100000")
	l := startLive(t, rt, s)
	l.expect(t, "up")
	st, err := l.c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{st.ShimPid, st.InitPid} {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); target == leaked {
				t.Errorf("process %d holds the daemon's %s as fd %s", pid, leaked, e.Name())
			}
		}
	}
}
