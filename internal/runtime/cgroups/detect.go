package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"

	"skiffd/internal/mountinfo"
)

// Filesystem magic numbers from linux/magic.h.
const (
	cgroup2SuperMagic = 0x63677270
	cgroupSuperMagic  = 0x27e0eb
)

// DetectMode tells the layout of this host from the filesystem types under
// DefaultRoot: cgroup2 there is Unified, cgroup2 at unified/ is Hybrid,
// anything else is Legacy.
func DetectMode() Mode {
	return detectMode(DefaultRoot)
}

func detectMode(root string) Mode {
	if fsMagic(root) == cgroup2SuperMagic {
		return Unified
	}
	if fsMagic(filepath.Join(root, "unified")) == cgroup2SuperMagic {
		return Hybrid
	}
	return Legacy
}

// fsMagic returns the f_type of the filesystem holding path, or 0.
func fsMagic(path string) uint32 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0
	}
	// Statfs_t.Type is int64, int32 or uint32 depending on GOARCH; magic
	// numbers are 32-bit.
	return uint32(st.Type)
}

// hierarchy is one mounted cgroup v1 hierarchy.
type hierarchy struct {
	mountpoint  string
	controllers []string // as in /proc/<pid>/cgroup: "cpu", "cpuacct", "name=systemd"
}

// v1Controllers are the subsystem names a v1 mount's super options can carry;
// every other option ("rw", "xattr", "release_agent=...", ...) is not a
// controller.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "net_cls": true, "net_prio": true, "blkio": true,
	"perf_event": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
}

// parseMountinfo returns the cgroup v1 hierarchies mounted directly under
// root, in mount order, reading /proc/<pid>/mountinfo format (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup cgroup rw,memory
//
// Hierarchies mounted twice count once (the first mount).
func parseMountinfo(r io.Reader, root string) ([]hierarchy, error) {
	root = filepath.Clean(root)
	var out []hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1024*1024)
	for sc.Scan() {
		// Only cgroup mounts are looked at more closely: the others (a
		// host's overlays, one or more per running container) cost no
		// allocation. A shim resolves its container's cgroups with
		// this, and what it allocates stays for its lifetime (issue 13).
		b := sc.Bytes()
		i := bytes.Index(b, []byte(" - "))
		if i < 0 || !bytes.HasPrefix(b[i+3:], []byte("cgroup")) {
			continue
		}
		line := string(b)
		pre, post := line[:i], line[i+3:]
		fields := strings.Fields(pre)
		tail := strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 || tail[0] != "cgroup" {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if filepath.Dir(mp) != root || mp == root {
			continue
		}
		var ctls []string
		for opt := range strings.SplitSeq(tail[2], ",") {
			if v1Controllers[opt] || (strings.HasPrefix(opt, "name=") && len(opt) > len("name=")) {
				ctls = append(ctls, opt)
			}
		}
		if len(ctls) == 0 {
			continue
		}
		key := strings.Join(ctls, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, hierarchy{mountpoint: mp, controllers: ctls})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}
