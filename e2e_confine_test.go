package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/skifftest"
)

// mountinfoLine is one line of /proc/<pid>/mountinfo.
type mountinfoLine struct {
	point, opts, fstype string
}

func parseMountinfo(t *testing.T, s string) []mountinfoLine {
	t.Helper()
	var out []mountinfoLine
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 1 {
			t.Fatalf("malformed mountinfo line %q", l)
		}
		out = append(out, mountinfoLine{point: f[4], opts: f[5], fstype: g[0]})
	}
	return out
}

// TestCLIHostNetworkSysfs: with --network host the container's /sys is a
// fresh sysfs, read-only with everything below it, and none of the host's
// file systems under /sys (tracefs, debugfs, securityfs, the host's cgroup
// hierarchies...) is reachable, let alone writable (issue 9, item 1). Only
// the container's mountinfo is read: nothing is written anywhere.
func TestCLIHostNetworkSysfs(t *testing.T) {
	d := startWithBusybox(t)
	// What the runtime itself mounts below /sys: the cgroup view and the
	// masks.
	own := func(p string) bool {
		return p == "/sys/fs/cgroup" || strings.HasPrefix(p, "/sys/fs/cgroup/") ||
			p == "/sys/firmware" || p == "/sys/devices/virtual/powercap"
	}
	for _, net := range []string{"host", "bridge"} {
		t.Run(net, func(t *testing.T) {
			out := dockerOK(t, d, "run", "--rm", "--network", net, "busybox", "cat", "/proc/self/mountinfo")
			sawSys := false
			for _, m := range parseMountinfo(t, out) {
				if m.point != "/sys" && !strings.HasPrefix(m.point, "/sys/") {
					continue
				}
				if !slices.Contains(strings.Split(m.opts, ","), "ro") {
					t.Errorf("%s (%s) is mounted %s in the container, want read-only", m.point, m.fstype, m.opts)
				}
				if m.point == "/sys" {
					sawSys = true
					if m.fstype != "sysfs" {
						t.Errorf("/sys is %s, want sysfs", m.fstype)
					}
					continue
				}
				if !own(m.point) {
					t.Errorf("the host's %s (%s) is mounted in the container, want a fresh sysfs without it", m.point, m.fstype)
				}
			}
			if !sawSys {
				t.Errorf("no /sys in the container's mountinfo:\n%s", out)
			}
		})
	}
}

// TestCLIReadonlyBindRecursive: a read-only bind (-v dir:/mnt:ro and
// --mount ...,readonly) is read-only all the way down, a file system
// mounted below the source included (issue 9, item 1); the CLI's
// bind-recursive options (dockerd's BindOptions) are honoured, with
// dockerd's version rule and conflict. The only host file system written
// is the test's own tmpfs.
func TestCLIReadonlyBindRecursive(t *testing.T) {
	d := startWithBusybox(t)
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", sub, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(sub, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", sub, err)
		}
	})
	for _, tc := range []struct{ name, flag, value string }{
		{"volume ro", "-v", dir + ":/mnt:ro"},
		{"mount readonly", "--mount", "type=bind,source=" + dir + ",target=/mnt,readonly"},
		{"mount bind-recursive=readonly", "--mount", "type=bind,source=" + dir + ",target=/mnt,readonly,bind-recursive=readonly,bind-propagation=rprivate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := d.Docker(t, "run", "--rm", tc.flag, tc.value, "busybox", "sh", "-c",
				"echo x > /mnt/sub/x; echo y > /mnt/y; grep -E ' /mnt(/sub)? ' /proc/self/mountinfo")
			if n := strings.Count(res.Stderr, "Read-only file system"); n != 2 {
				t.Errorf("writes below a read-only bind = %v, want two read-only errors", res)
			}
			for _, f := range []string{filepath.Join(sub, "x"), filepath.Join(dir, "y")} {
				if _, err := os.Lstat(f); err == nil {
					t.Errorf("%s was written through a read-only bind", f)
					os.Remove(f)
				}
			}
		})
	}

	// bind-recursive=writable (ReadOnlyNonRecursive): the bound mount is
	// read-only, its submount keeps its flags, as dockerd.
	res := d.Docker(t, "run", "--rm", "--mount", "type=bind,source="+dir+",target=/mnt,readonly,bind-recursive=writable", "busybox", "sh", "-c",
		"echo x > /mnt/sub/x && echo written; echo y > /mnt/y")
	if res.Stdout != "written\n" || strings.Count(res.Stderr, "Read-only file system") != 1 {
		t.Errorf("bind-recursive=writable: %v, want the submount written and the top refused", res)
	}
	if b, err := os.ReadFile(filepath.Join(sub, "x")); err != nil || string(b) != "x\n" {
		t.Errorf("the submount's file: %q, %v", b, err)
	}
	os.Remove(filepath.Join(sub, "x"))
	if _, err := os.Lstat(filepath.Join(dir, "y")); err == nil {
		t.Errorf("the top of a bind-recursive=writable bind was written")
	}

	// bind-recursive=disabled (NonRecursive): the submount is not bound
	// along; the container sees the directory under it.
	if err := os.WriteFile(filepath.Join(sub, "on-tmpfs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := dockerOK(t, d, "run", "--rm", "--mount", "type=bind,source="+dir+",target=/mnt,bind-recursive=disabled", "busybox", "sh", "-c",
		"ls -A /mnt/sub; grep -c ' /mnt/sub ' /proc/self/mountinfo; true"); out != "0\n" {
		t.Errorf("bind-recursive=disabled: %q, want an empty directory and no submount", out)
	}
	os.Remove(filepath.Join(sub, "on-tmpfs"))

	r := d.Do(t, "POST", "/v1.43/containers/create", strings.NewReader(`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"`+dir+`","Target":"/mnt","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}]}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != 400 || !strings.Contains(r.Body, "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer") {
		t.Errorf("ReadOnlyForceRecursive with API 1.43: %d %s", r.Status, r.Body)
	}
	r = d.Do(t, "POST", "/containers/create", strings.NewReader(`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"`+dir+`","Target":"/mnt","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true,"ReadOnlyNonRecursive":true}}]}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != 400 || !strings.Contains(r.Body, "mount options conflict: ReadOnlyNonRecursive") {
		t.Errorf("both read-only bind options: %d %s", r.Status, r.Body)
	}
}

// TestCLIExecRlimitsAndOOMScore: docker exec runs with its container's
// --ulimit and --oom-score-adj (issue 9, item 2).
func TestCLIExecRlimitsAndOOMScore(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "lim", "--ulimit", "nofile=123:456", "--oom-score-adj", "321", "busybox", "sleep", "1000")
	out := dockerOK(t, d, "exec", "lim", "sh", "-c", "grep 'Max open files' /proc/self/limits; cat /proc/self/oom_score_adj")
	if !regexp.MustCompile(`^Max open files +123 +456 +files *\n321\n$`).MatchString(out) {
		t.Errorf("exec's open files limit and OOM score = %q, want 123, 456 and 321", out)
	}
}

// TestCLIExecNprocLimit: --ulimit nproc holds for docker exec, so an exec
// cannot fork past it. RLIMIT_NPROC counts the processes of a real uid,
// so the container runs as a uid of its own.
func TestCLIExecNprocLimit(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "run", "-d", "--name", "np", "-u", "4321", "--ulimit", "nproc=10:10", "busybox", "sleep", "1000")
	res := d.Docker(t, "exec", "np", "sh", "-c",
		"grep 'Max processes' /proc/self/limits; i=0; while [ $i -lt 20 ]; do sleep 1000 </dev/null >/dev/null 2>&1 & i=$((i+1)); done")
	if !regexp.MustCompile(`^Max processes +10 +10 +processes *\n$`).MatchString(res.Stdout) {
		t.Errorf("exec's process limit = %q, want 10 10", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "can't fork") {
		t.Errorf("20 forks in an exec limited to 10 processes = %v, want sh's fork failure", res)
	}
}

// devEntry is what TestCLIDevBindMount compares of a file: everything a
// mknod, unlink, symlink, chown or chmod would change.
type devEntry struct {
	mode          uint32
	uid, gid      uint32
	ino, rdev     uint64
	ctime, mtime  syscall.Timespec
	content, link string
}

func snapshotDir(t *testing.T, dir string) map[string]devEntry {
	t.Helper()
	out := map[string]devEntry{}
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		e := devEntry{mode: st.Mode, uid: st.Uid, gid: st.Gid, ino: st.Ino, rdev: uint64(st.Rdev), ctime: st.Ctim, mtime: st.Mtim}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content = string(b)
		case syscall.S_IFLNK:
			e.link, _ = os.Readlink(p)
		}
		out[p] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(before, after map[string]devEntry) []string {
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diffs = append(diffs, p+" was removed")
		case a != b:
			diffs = append(diffs, fmt.Sprintf("%s changed: %+v -> %+v", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, p+" was created")
		}
	}
	slices.Sort(diffs)
	return diffs
}

// TestCLIDevBindMount: a bind mount on /dev (-v dir:/dev) gets no device
// setup: no node is created, replaced or chowned there and no fd, stdin,
// stdout or stderr link added (issue 9, item 3); the container's own
// /dev/shm is mounted into it, as dockerd does. A temporary directory
// stands in for the host's /dev, which is never touched. With a regular
// file named null there, masking refuses to bind it over the masked paths
// and the start fails, instead of showing the file's content at
// /proc/interrupts and the other masked paths (the CVE-2025-31133 shape).
func TestCLIDevBindMount(t *testing.T) {
	d := startWithBusybox(t)
	setup := func(t *testing.T, realNull bool) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "sentinel"), []byte("sentinel\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		// The mount points a real /dev has: the container's /dev/shm
		// is mounted on shm.
		for _, sub := range []string{"pts", "shm"} {
			if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("/nowhere", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		// A device node the runtime would otherwise replace (char 5:0,
		// owned by 7:7, mode 0600 where the runtime wants root and 0666).
		if err := syscall.Mknod(filepath.Join(dir, "tty"), syscall.S_IFCHR|0o600, 5<<8); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(filepath.Join(dir, "tty"), 7, 7); err != nil {
			t.Fatal(err)
		}
		null := filepath.Join(dir, "null")
		if realNull {
			err := syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3)
			if err == nil {
				err = os.Chmod(null, 0o666)
			}
			if err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(null, []byte("FAKE-NULL-CONTENT\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("real null", func(t *testing.T) {
		dir := setup(t, true)
		before := snapshotDir(t, dir)
		out := dockerOK(t, d, "run", "--rm", "-v", dir+":/dev", "busybox", "sh", "-c", "cat /dev/sentinel; wc -c < /proc/interrupts; stat -f -c %T /dev/shm")
		if out != "sentinel\n0\ntmpfs\n" {
			t.Errorf("container with /dev bound from %s printed %q, want the sentinel, an empty (masked) /proc/interrupts and its own tmpfs on /dev/shm", dir, out)
		}
		for _, diff := range diffSnapshots(before, snapshotDir(t, dir)) {
			t.Errorf("the bound /dev changed: %s", diff)
		}
	})

	// --privileged would add every host device to the setup.
	t.Run("privileged", func(t *testing.T) {
		dir := setup(t, true)
		before := snapshotDir(t, dir)
		out := dockerOK(t, d, "run", "--rm", "--privileged", "-v", dir+":/dev", "busybox", "cat", "/dev/sentinel")
		if out != "sentinel\n" {
			t.Errorf("privileged container with /dev bound from %s printed %q, want the sentinel", dir, out)
		}
		for _, diff := range diffSnapshots(before, snapshotDir(t, dir)) {
			t.Errorf("the bound /dev changed: %s", diff)
		}
	})

	t.Run("fake null", func(t *testing.T) {
		dir := setup(t, false)
		before := snapshotDir(t, dir)
		res := d.Docker(t, "run", "--rm", "-v", dir+":/dev", "busybox", "sh", "-c",
			"cat /proc/interrupts /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug 2>/dev/null")
		t.Logf("run with a fake /dev/null: %v", res)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "/dev/null is not the null device") {
			t.Errorf("run with a regular file as /dev/null = %v, want a start failure naming /dev/null", res)
		}
		if strings.Contains(res.Stdout+res.Stderr, "FAKE-NULL-CONTENT") {
			t.Errorf("a masked path showed the fake /dev/null's content: %v", res)
		}
		for _, diff := range diffSnapshots(before, snapshotDir(t, dir)) {
			t.Errorf("the bound /dev changed: %s", diff)
		}
	})
}

// TestCLIPrivilegedHostDev: a privileged container gets the host's devices
// as nodes in its own /dev and leaves the host's /dev alone. The host's
// /dev is only read (lstat of its entries before and after).
func TestCLIPrivilegedHostDev(t *testing.T) {
	skifftest.RequireRoot(t)
	d := startWithBusybox(t)
	snap := func() map[string]devEntry {
		ents, err := os.ReadDir("/dev")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]devEntry{}
		for _, e := range ents {
			var st syscall.Stat_t
			p := filepath.Join("/dev", e.Name())
			if syscall.Lstat(p, &st) != nil {
				continue
			}
			// Not mtime: writing to a terminal updates its mtime. Not a
			// directory's times either: /dev/pts and /dev/shm change
			// whenever anyone opens a pty or a shared memory file.
			out[p] = devEntry{mode: st.Mode, uid: st.Uid, gid: st.Gid, ino: st.Ino, rdev: uint64(st.Rdev)}
			if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
				out[p] = devEntry{mode: st.Mode, uid: st.Uid, gid: st.Gid, ino: st.Ino, rdev: uint64(st.Rdev), ctime: st.Ctim}
			}
		}
		return out
	}
	before := snap()
	out := dockerOK(t, d, "run", "--rm", "--privileged", "busybox", "sh", "-c", "ls -l /dev/null /dev/tty >/dev/null && echo ok")
	if out != "ok\n" {
		t.Errorf("privileged run printed %q", out)
	}
	after := snap()
	// Entries other processes of the host add or remove meanwhile (loop
	// devices, ttys) are not the container's doing: only entries present
	// both times are compared.
	for p, b := range before {
		if a, ok := after[p]; ok && a != b {
			t.Errorf("the host's %s changed: %+v -> %+v", p, b, a)
		}
	}
	for _, name := range []string{"fd", "stdin", "stdout", "stderr", "core"} {
		p := filepath.Join("/dev", name)
		if _, had := before[p]; !had {
			if _, has := after[p]; has {
				t.Errorf("the host's /dev got a %s link", name)
			}
		}
	}
}
