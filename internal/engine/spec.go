package engine

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/caps"
	"skiffd/internal/runtime/seccomp"
	"skiffd/internal/runtime/spec"
)

// defaultPath is the PATH a container gets when neither the image nor the
// client sets one (dockerd's oci.DefaultPathEnv).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// dockerdNetSysctls are the sysctls dockerd sets in a network namespace
// of the container's own, and their values. They set per-namespace knobs
// of IPv4 as a whole, none of an interface's, so they do not hold the
// network's wiring back (hasNetSysctl).
var dockerdNetSysctls = map[string]string{
	"net.ipv4.ping_group_range":           "0 2147483647",
	"net.ipv4.ip_unprivileged_port_start": "0",
}

func defaultMaskedPaths() []string   { return spec.DefaultMaskedPaths() }
func defaultReadonlyPaths() []string { return spec.DefaultReadonlyPaths() }

// buildSpec turns a container's record into the runtime spec of its next
// run, rooted at rootfs.
func (e *Engine) buildSpec(c *container.Container, rootfs string) (*spec.Spec, error) {
	cfg, hc := c.Config, c.HostConfig
	s := spec.Default(c.ID, rootfs)
	s.Hostname = cfg.Hostname
	s.Domainname = cfg.Domainname
	s.ReadonlyRoot = hc.ReadonlyRootfs
	s.MaskedPaths = slices.Clone(hc.MaskedPaths)
	s.ReadonlyPaths = slices.Clone(hc.ReadonlyPaths)

	p := &s.Process
	p.Args = append([]string{c.Path}, c.Args...)
	links, _ := e.legacyLinks(c) // prepareNetwork failed the start if they do not resolve
	p.Env = containerEnv(append(linkEnv(links), cfg.Env...), cfg.Hostname, cfg.Tty)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	// dockerd creates a missing WorkingDir (docker run -w /new/dir works).
	p.CreateCwd = cfg.WorkingDir != ""
	// --init: a reaping, signal-forwarding PID 1 starts the process; a
	// container that does not say gets the daemon's --init.
	p.Init = e.opts.Init
	if hc.Init != nil {
		p.Init = *hc.Init
	}
	p.User = cfg.User
	p.AdditionalGroups = slices.Clone(hc.GroupAdd)
	p.Terminal = cfg.Tty
	p.ConsoleHeight, p.ConsoleWidth = uint16(hc.ConsoleSize[0]), uint16(hc.ConsoleSize[1])
	p.OpenStdin = cfg.OpenStdin
	p.StdinOnce = cfg.StdinOnce
	capList, err := capabilities(hc.CapAdd, hc.CapDrop)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	p.Capabilities = capList
	if hc.OomScoreAdj != 0 {
		adj := hc.OomScoreAdj
		p.OOMScoreAdj = &adj
	}
	for _, u := range hc.Ulimits {
		name, _ := rlimitName(u.Name)
		p.Rlimits = append(p.Rlimits, spec.Rlimit{Type: name, Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
	}
	// The daemon's --default-ulimit for those the container does not set
	// (dockerd's mergeUlimits).
	for _, d := range e.opts.DefaultUlimits {
		if slices.ContainsFunc(hc.Ulimits, func(u *types.Ulimit) bool { return u != nil && u.Name == d.Name }) {
			continue
		}
		name, _ := rlimitName(d.Name)
		p.Rlimits = append(p.Rlimits, spec.Rlimit{Type: name, Hard: uint64(d.Hard), Soft: uint64(d.Soft)})
	}

	// no-new-privileges and the seccomp profile: the daemon's defaults,
	// unless the container's security options say (for no-new-privileges
	// the last one that does wins, as in dockerd).
	so := securityOpts{noNewPrivs: e.opts.NoNewPrivileges}
	switch {
	case e.opts.SeccompProfile == "unconfined":
		so.seccompUnconfined = true
	case len(e.opts.SeccompProfileJSON) > 0:
		so.seccompProfile = string(e.opts.SeccompProfileJSON)
	}
	for _, opt := range hc.SecurityOpt {
		o, err := parseSecurityOpt(opt)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		if o.noNewPrivsSet {
			so.noNewPrivs = o.noNewPrivs
		}
		if o.seccompUnconfined {
			so.seccompUnconfined, so.seccompProfile = true, ""
		}
		if o.seccompProfile != "" {
			so.seccompUnconfined, so.seccompProfile = false, o.seccompProfile
		}
	}
	p.NoNewPrivileges = so.noNewPrivs
	if !so.seccompUnconfined && !hc.Privileged {
		filter, err := e.seccompFilter(so.seccompProfile, capList)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		s.Seccomp = spec.SeccompFilter(filter)
	}

	// Namespaces.
	var ns []spec.Namespace
	for _, n := range s.Namespaces {
		switch {
		case n.Type == spec.NetworkNamespace && hc.NetworkMode == "host":
		case n.Type == spec.PIDNamespace && hc.PidMode == "host":
		case n.Type == spec.IPCNamespace && hc.IpcMode == "host":
		case n.Type == spec.UTSNamespace && (hc.UTSMode == "host" || hc.NetworkMode == "host"):
		default:
			var err error
			switch {
			case n.Type == spec.NetworkNamespace && strings.HasPrefix(hc.NetworkMode, "container:"):
				n.Path, err = e.joinNamespace(c.ID, hc.NetworkMode, "net", "network")
			case n.Type == spec.IPCNamespace && strings.HasPrefix(hc.IpcMode, "container:"):
				n.Path, err = e.joinNamespace(c.ID, hc.IpcMode, "ipc", "IPC")
			case n.Type == spec.PIDNamespace && strings.HasPrefix(hc.PidMode, "container:"):
				n.Path, err = e.joinNamespace(c.ID, hc.PidMode, "pid", "PID")
			}
			if err != nil {
				return nil, err
			}
			ns = append(ns, n)
		}
	}
	if hc.CgroupnsMode != "host" {
		ns = append(ns, spec.Namespace{Type: spec.CgroupNamespace})
	}
	s.Namespaces = ns
	if hc.NetworkMode == "host" || hc.UTSMode == "host" {
		s.Hostname = ""
	}

	// /dev/shm as dockerd has it: a bind of the host directory a shared
	// IPC namespace's shm is in (shmSource), none with IPC mode none,
	// else a tmpfs of the container's size.
	shm, err := e.shmSource(c)
	if err != nil {
		return nil, err
	}
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m spec.Mount) bool { return m.Destination == "/dev/shm" && hc.IpcMode == "none" })
	for i, m := range s.Mounts {
		if m.Destination != "/dev/shm" {
			continue
		}
		if shm != "" {
			s.Mounts[i] = spec.Mount{Destination: "/dev/shm", Type: "bind", Source: shm, Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
			continue
		}
		opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") })
		s.Mounts[i].Options = append(opts, fmt.Sprintf("size=%dk", hc.ShmSize/1024))
	}
	for _, f := range []struct{ src, dst string }{
		{c.ResolvConfPath, "/etc/resolv.conf"},
		{c.HostnamePath, "/etc/hostname"},
		{c.HostsPath, "/etc/hosts"},
	} {
		opts := []string{"rbind", "rprivate"}
		if hc.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, spec.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}

	// Resources. A record made before create checked them, or on another
	// host (a moved data root, a changed IO scheduler), may ask for what
	// this host cannot enforce: that is discarded here too, with dockerd's
	// warnings in the log, instead of failing the start. Should the check
	// refuse the record, the limits go to the runtime unchanged and fail
	// there as before.
	r := hc.Resources
	if warnings, err := verifyResources(e.features.Cgroup, cpuCount(), &r, true); err != nil {
		r = hc.Resources
	} else {
		for _, w := range warnings {
			e.logger.Warn("discarding a limit this host cannot enforce", "container", c.ID, "warning", w)
		}
	}
	s.Cgroup = &spec.Cgroup{Parent: r.CgroupParent, Resources: spec.Resources{
		Memory:             r.Memory,
		MemorySwap:         r.MemorySwap,
		MemoryReservation:  r.MemoryReservation,
		NanoCPUs:           r.NanoCPUs,
		CPUShares:          r.CPUShares,
		CPUQuota:           r.CPUQuota,
		CPUPeriod:          r.CPUPeriod,
		CpusetCpus:         r.CpusetCpus,
		CpusetMems:         r.CpusetMems,
		CPURealtimePeriod:  r.CPURealtimePeriod,
		CPURealtimeRuntime: r.CPURealtimeRuntime,
		BlkioWeight:        r.BlkioWeight,
		MemorySwappiness:   r.MemorySwappiness,
		OomKillDisable:     r.OomKillDisable != nil && *r.OomKillDisable,
	}}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		s.Cgroup.Resources.PidsLimit = *r.PidsLimit
	}
	if err := blkioDevices(&s.Cgroup.Resources, r); err != nil {
		return nil, err
	}

	if len(hc.Sysctls) > 0 {
		s.Sysctl = maps.Clone(hc.Sysctls)
	}
	// dockerd's defaults in a network namespace of the container's own
	// (not the host's, not another container's): ping without
	// CAP_NET_RAW, and any port for any user. The container's own
	// settings win.
	if path, own := s.HasNamespace(spec.NetworkNamespace); own && path == "" {
		for _, k := range e.features.NetSysctls {
			if _, set := s.Sysctl[k]; set {
				continue
			}
			if s.Sysctl == nil {
				s.Sysctl = map[string]string{}
			}
			s.Sysctl[k] = dockerdNetSysctls[k]
		}
	}

	// Devices.
	if hc.Privileged {
		var all []string
		bounding := ownBoundingSet()
		for i, n := range caps.All() {
			if i <= caps.LastCap() && bounding&(1<<i) != 0 {
				all = append(all, n)
			}
		}
		if err := makePrivileged(s, all); err != nil {
			return nil, err
		}
	}
	if err := applyDevices(s, r.Devices, r.DeviceCgroupRules); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}

	// The log.
	if hc.LogConfig.Type != "none" {
		lf, err := logRotation(hc.LogConfig)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		var attrs map[string]string
		if hc.LogConfig.Type == "json-file" {
			if attrs, err = logAttrs(c); err != nil {
				return nil, errdefs.InvalidParameter(err)
			}
		}
		sl, err := syslogSpec(c)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		gl, err := gelfSpec(c)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		fl, err := fluentdSpec(c)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		jl, err := e.journaldSpec(c)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		s.Log = spec.Log{Path: e.logFile(c), MaxSize: lf.MaxSize, MaxFiles: lf.MaxFiles, Compress: lf.Compress, Attrs: attrs,
			Syslog: sl, Gelf: gl, Fluentd: fl, Journald: jl}
		if s.Log.Path == "" {
			// A driver that sends elsewhere, without its cache: the
			// lines go to the server only.
			s.Log.Path, s.Log.MaxSize, s.Log.MaxFiles, s.Log.Compress = os.DevNull, 0, 1, false
		}
	}
	return s, nil
}

// containerEnv is the process environment: PATH first when nobody set
// one, HOSTNAME, TERM=xterm with a terminal, then the configured
// variables.
func containerEnv(env []string, hostname string, tty bool) []string {
	out := make([]string, 0, len(env)+3)
	hasPath := slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, "PATH=") })
	if !hasPath {
		out = append(out, defaultPath)
	}
	out = append(out, "HOSTNAME="+hostname)
	if tty {
		out = append(out, "TERM=xterm")
	}
	return append(out, env...)
}

// capabilities applies --cap-add and --cap-drop to dockerd's default set,
// as moby's TweakCapabilities does: ALL in CapAdd starts from every
// capability, ALL in CapDrop from none. Capabilities the kernel does not
// know are left out.
func capabilities(add, drop []string) ([]string, error) {
	norm := func(list []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, n := range list {
			if strings.EqualFold(n, "ALL") {
				all = true
				continue
			}
			b, err := caps.Bit(n)
			if err != nil {
				return nil, false, fmt.Errorf("unknown capability: %q", n)
			}
			out = append(out, caps.All()[b])
		}
		return out, all, nil
	}
	// dockerd's wording: the list, then the capability.
	adds, addAll, err := norm(add)
	if err != nil {
		return nil, fmt.Errorf("invalid CapAdd: %w", err)
	}
	drops, dropAll, err := norm(drop)
	if err != nil {
		return nil, fmt.Errorf("invalid CapDrop: %w", err)
	}
	var base []string
	switch {
	case addAll:
		base = caps.All()
	case dropAll:
		base = nil
	default:
		base = spec.DefaultCapabilities()
	}
	set := map[string]bool{}
	for _, c := range base {
		set[c] = true
	}
	if !addAll {
		for _, c := range adds {
			set[c] = true
		}
	}
	if !dropAll {
		for _, c := range drops {
			delete(set, c)
		}
	}
	if dropAll {
		set = map[string]bool{}
		for _, c := range adds {
			set[c] = true
		}
	}
	last := caps.LastCap()
	out := []string{}
	for i, n := range caps.All() {
		if set[n] && i <= last {
			out = append(out, n)
		}
	}
	return out, nil
}

// seccompFilter compiles the default profile, or the client's JSON one,
// for a container with the given capabilities. Compiled default filters are
// kept by capability set in e.seccompFilters: compiling the default profile
// is the most expensive part of building a spec.
func (e *Engine) seccompFilter(profile string, capList []string) ([]syscall.SockFilter, error) {
	// The daemon's profile (--seccomp-profile) is compiled once per
	// capability set, as the built-in one is.
	daemonProfile := profile != "" && profile == string(e.opts.SeccompProfileJSON)
	if profile != "" && !daemonProfile {
		p, err := seccomp.ParseProfile([]byte(profile))
		if err != nil {
			return nil, fmt.Errorf("Decoding seccomp profile failed: %w", err)
		}
		return seccomp.Compile(p, capList)
	}
	key := strings.Join(capList, ",")
	if daemonProfile {
		key = "daemon:" + key
	}
	if f, ok := e.seccompFilters.Load(key); ok {
		return f.([]syscall.SockFilter), nil
	}
	p := seccomp.DefaultProfile()
	if daemonProfile {
		var err error
		if p, err = seccomp.ParseProfile([]byte(profile)); err != nil {
			return nil, fmt.Errorf("Decoding seccomp profile failed: %w", err)
		}
	}
	f, err := seccomp.Compile(p, capList)
	if err != nil {
		return nil, err
	}
	e.seccompFilters.Store(key, f)
	return f, nil
}

// rlimitNames maps Docker's ulimit names to RLIMIT_ names.
var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}

func rlimitName(name string) (string, error) {
	if n, ok := rlimitNames[name]; ok {
		return n, nil
	}
	return "", fmt.Errorf("invalid ulimit type: %s", name)
}

// ownBoundingSet is the daemon's capability bounding set: a privileged
// container gets every capability the daemon can give (a daemon that runs
// in a restricted container has fewer than the kernel knows).
func ownBoundingSet() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ^uint64(0)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				return m
			}
		}
	}
	return ^uint64(0)
}
