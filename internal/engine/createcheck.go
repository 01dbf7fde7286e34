package engine

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/distribution"
	"skiffd/internal/errdefs"
	"skiffd/internal/image"
	"skiffd/internal/reference"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/signal"
	"skiffd/internal/volume"
)

// defaultRuntime is the name of skiffd's one runtime that /info reports as
// the default and a create without HostConfig.Runtime records: "runc", the
// name Docker clients and compose files use (issue 15). "skiffd", its
// earlier name, stays accepted for the records that carry it; a create
// echoes back whichever of the two it asked for.
const defaultRuntime = "runc"

// defaultShmSize is the size of /dev/shm when the client sets none.
const defaultShmSize = 64 * 1024 * 1024

// createPlan is a create request checked and normalised: what
// ContainerCreate makes the container from, decided before any state is
// touched.
type createPlan struct {
	// config is the client's config merged with the image's, with
	// dockerd's defaults filled in; Hostname stays empty off the host's
	// network (the container's ID names it, and there is none yet).
	config types.Config
	// hostConfig is the client's host config with dockerd's defaults,
	// less what the host cannot enforce.
	hostConfig *types.HostConfig
	// path and args are the container's process.
	path string
	args []string
	// mounts and tmpfs are the binds, volumes and tmpfs mounts asked for,
	// parsed and checked, not yet prepared.
	mounts, tmpfs []volume.MountPoint
	// warnings are dockerd's, for what was discarded or is unusual.
	warnings []string
}

// createHost is what checking a create request consults about the host:
// what its cgroups can enforce, whether they are cgroup v2 alone, its CPUs
// and its name.
type createHost struct {
	cgroup   cgroups.Support
	unified  bool
	ncpu     int
	hostname string
	// The daemon's container defaults (Options): "" and 0 are dockerd's.
	logDriver    string
	logOpts      map[string]string
	shmSize      int64
	ipcMode      string
	cgroupnsMode string
	cgroupParent string
}

// createImageRef returns the image a create request names, after the
// checks that come before looking it up (dockerd's order: an empty
// config, then a missing image name).
func createImageRef(req *types.CreateRequest) (string, error) {
	if req == nil || req.Config == nil {
		return "", errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	if req.Config.Image == "" {
		return "", errdefs.InvalidParameter(errors.New("No image was specified"))
	}
	return req.Config.Image, nil
}

// checkImagePlatform refuses, as dockerd does, an image whose platform
// cannot run where the create's platform parameter asks: a 404, so that
// the CLI pulls the image for that platform.
func checkImagePlatform(ref string, img *image.Image, platform string) error {
	if platform == "" {
		return nil
	}
	want, err := parsePlatform(platform)
	if err != nil {
		return err
	}
	have := distribution.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
	if distribution.PlatformMatches(want, have) {
		return nil
	}
	name := ref
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		name = n.FamiliarString()
	}
	return errdefs.NotFound(fmt.Errorf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)",
		name, distribution.FormatPlatform(distribution.NormalizePlatform(have)), distribution.FormatPlatform(want)))
}

// normalizeCreate checks and normalises a create request in one pass, in
// dockerd's order: it merges the image's config (img, nil when the image
// has none) under the client's, checks the host config against what the
// host can enforce (discarding, with a warning, what it cannot), refuses
// what skiffd does not support, parses the mounts, the command, the stop
// signal, the log options and the container's name (when given), and
// fills in dockerd's defaults. It touches
// no engine state (nothing is named, written or mounted); its errors
// carry their kind.
func normalizeCreate(name string, req *types.CreateRequest, img *image.ContainerConfig, host createHost) (*createPlan, error) {
	p := &createPlan{config: *req.Config, hostConfig: &types.HostConfig{}}
	cfg := &p.config
	if req.HostConfig != nil {
		h := *req.HostConfig
		p.hostConfig = &h
	}
	hc := p.hostConfig
	// The client's own settings, before the image's are merged in.
	if err := validateNetContainerMode(cfg, hc); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if img != nil {
		mergeImageConfig(cfg, img)
	}
	var err error
	if p.warnings, err = validateHostConfig(hc, host.cgroup, host.ncpu, false); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	// As dockerd (adaptContainerSettings): a memory limit alone allows as
	// much swap again, and the record says so; docker update's rules
	// start from it.
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = 2 * hc.Memory
	}
	// As dockerd, at create: a start would refuse them.
	if _, err := capabilities(hc.CapAdd, hc.CapDrop); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if hc.NetworkMode == "host" && len(hc.PortBindings) > 0 {
		p.warnings = append(p.warnings, "Published ports are discarded when using host network mode")
	}
	if err := checkUnsupported(cfg, hc); err != nil {
		if errdefs.KindOf(err) == errdefs.ErrNotFound {
			return nil, err
		}
		return nil, errdefs.InvalidParameter(err)
	}
	if p.mounts, p.tmpfs, err = volume.CollectMounts(cfg.Volumes, hc.Binds, hc.Mounts, hc.Tmpfs); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if p.path, p.args, err = command(cfg); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if cfg.WorkingDir != "" {
		if !path.IsAbs(cfg.WorkingDir) {
			return nil, errdefs.InvalidParameter(fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir))
		}
		cfg.WorkingDir = path.Clean(cfg.WorkingDir)
	}
	if cfg.StopSignal != "" {
		if _, err := signal.Parse(cfg.StopSignal); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	// The daemon's default driver, and its options for a container of
	// that driver that does not set them (dockerd's
	// mergeAndVerifyLogConfig).
	defaultDriver := host.logDriver
	if defaultDriver == "" {
		defaultDriver = "json-file"
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = defaultDriver
	}
	lc := make(map[string]string, len(hc.LogConfig.Config)+len(host.logOpts))
	maps.Copy(lc, hc.LogConfig.Config)
	if hc.LogConfig.Type == defaultDriver {
		for k, v := range host.logOpts {
			if _, ok := lc[k]; !ok {
				lc[k] = v
			}
		}
	}
	hc.LogConfig.Config = lc
	if _, err := logRotation(hc.LogConfig); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	fillHostConfigDefaults(hc, host)
	if cfg.Hostname == "" && hc.NetworkMode == "host" {
		cfg.Hostname = host.hostname
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	// Last, as dockerd reaches the name only when it reserves it; the
	// store checks it again when it takes it, with whether it is free.
	if name != "" {
		if err := container.ValidateName(name); err != nil {
			return nil, err
		}
	}
	if p.warnings == nil {
		p.warnings = []string{}
	}
	return p, nil
}

// fillHostConfigDefaults sets what a client may leave out of a host config
// to the daemon's defaults (--default-shm-size, --default-ipc-mode,
// --cgroup-parent, --default-cgroupns-mode), else dockerd's (its
// adaptContainerSettings and the API's). The cgroup namespace is private
// by default on a cgroup v2 host only, as in dockerd: on a v1 or hybrid
// one a container sees its cgroup paths as the host names them
// (/docker/<id>), by which programs inside find their container's ID.
func fillHostConfigDefaults(hc *types.HostConfig, host createHost) {
	if hc.ShmSize == 0 {
		hc.ShmSize = host.shmSize
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = defaultShmSize
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = types.RestartPolicyDisabled
	}
	if hc.IpcMode == "" {
		hc.IpcMode = host.ipcMode
	}
	if hc.IpcMode == "" {
		hc.IpcMode = "private"
	}
	if hc.CgroupParent == "" {
		hc.CgroupParent = host.cgroupParent
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = host.cgroupnsMode
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = "host"
		if host.unified {
			hc.CgroupnsMode = "private"
		}
	}
	if hc.Runtime == "" {
		hc.Runtime = defaultRuntime
	}
	if hc.DNS == nil {
		hc.DNS = []string{}
	}
	if hc.DNSSearch == nil {
		hc.DNSSearch = []string{}
	}
	if hc.DNSOptions == nil {
		hc.DNSOptions = []string{}
	}
	if hc.OomKillDisable == nil {
		// dockerd's adaptContainerSettings, also where the host's lack of
		// the switch made verifyResources drop it.
		hc.OomKillDisable = new(bool)
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil
	}
	if hc.MaskedPaths == nil {
		hc.MaskedPaths = defaultMaskedPaths()
	}
	if hc.ReadonlyPaths == nil {
		hc.ReadonlyPaths = defaultReadonlyPaths()
	}
}

// command returns the path and arguments of the container's process: the
// entrypoint (an explicit empty one, [""], counts as none) followed by the
// command.
func command(cfg *types.Config) (string, []string, error) {
	var argv []string
	if !(len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "") {
		argv = append(argv, cfg.Entrypoint...)
	}
	argv = append(argv, cfg.Cmd...)
	if len(argv) == 0 {
		return "", nil, errors.New("No command specified")
	}
	return argv[0], argv[1:], nil
}

// validateHostConfig applies dockerd's checks of the restart policy and of
// the resources against what the host can enforce (verifyResources), and
// returns dockerd's warnings. It discards from hc what the host cannot
// enforce.
func validateHostConfig(hc *types.HostConfig, host cgroups.Support, ncpu int, update bool) ([]string, error) {
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", types.RestartPolicyDisabled, types.RestartPolicyAlways, types.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return nil, fmt.Errorf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case types.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return nil, errors.New("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return nil, fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", rp.Name)
	}
	if hc.AutoRemove && rp.Name != "" && rp.Name != types.RestartPolicyDisabled {
		return nil, errors.New("can't create 'AutoRemove' container with restart policy")
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, fmt.Errorf("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.ShmSize < 0 {
		return nil, errors.New("SHM size can not be less than 0")
	}
	return verifyResources(host, ncpu, &hc.Resources, update)
}

// validateNetContainerMode refuses, with dockerd's texts and in its
// order (runconfig's validateNetContainerMode), what a container in
// another's network namespace cannot have of its own: a hostname, links,
// DNS servers, extra hosts, published or exposed ports.
func validateNetContainerMode(cfg *types.Config, hc *types.HostConfig) error {
	ref, ok := strings.CutPrefix(hc.NetworkMode, "container:")
	if !ok && hc.NetworkMode != "container" {
		return nil
	}
	switch {
	case ref == "":
		return errors.New("invalid network mode: invalid container format container:<name|id>")
	case cfg.Hostname != "":
		return errors.New("conflicting options: hostname and the network mode")
	case len(hc.Links) > 0:
		return errors.New(msgContainerNetworkAndLinks)
	case len(hc.DNS) > 0:
		return errors.New("conflicting options: dns and the network mode")
	case len(hc.ExtraHosts) > 0:
		return errors.New("conflicting options: custom host-to-IP mapping and the network mode")
	case hasPortBindings(hc.PortBindings) || hc.PublishAllPorts:
		return errors.New("conflicting options: port publishing and the container type network mode")
	case len(cfg.ExposedPorts) > 0:
		return errors.New("conflicting options: port exposing and the container type network mode")
	}
	return nil
}

// checkUnsupported refuses, naming the field, what skiffd cannot do yet
// and would otherwise silently ignore although it changes the container's
// security, resources or reachability.
func checkUnsupported(cfg *types.Config, hc *types.HostConfig) error {
	no := func(field string) error {
		return fmt.Errorf("skiffd does not support %s yet", field)
	}
	r := &hc.Resources
	switch {
	case len(r.DeviceRequests) > 0:
		return no("device requests (HostConfig.DeviceRequests)")
	case hc.UsernsMode != "" && hc.UsernsMode != "host":
		return no("user namespaces (HostConfig.UsernsMode)")
	case hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable" && hc.IpcMode != "host" && hc.IpcMode != "none" && !strings.HasPrefix(hc.IpcMode, "container:"):
		return no("IPC mode " + hc.IpcMode + " (HostConfig.IpcMode)")
	case hc.PidMode != "" && hc.PidMode != "host" && !strings.HasPrefix(hc.PidMode, "container:"):
		return no("PID mode " + hc.PidMode + " (HostConfig.PidMode)")
	case hc.UTSMode != "" && hc.UTSMode != "host":
		return no("UTS mode " + hc.UTSMode + " (HostConfig.UTSMode)")
	case hc.CgroupnsMode != "" && hc.CgroupnsMode != "private" && hc.CgroupnsMode != "host":
		return fmt.Errorf("invalid cgroup namespace mode: %s", hc.CgroupnsMode)
	case r.CPUCount != 0:
		return no("Windows resource limits (HostConfig.CpuCount)")
	case hc.Isolation != "" && hc.Isolation != "default":
		return fmt.Errorf("invalid isolation: %s on linux", hc.Isolation)
	case hc.Runtime != "" && hc.Runtime != defaultRuntime && hc.Runtime != "skiffd":
		return fmt.Errorf("unknown or invalid runtime name: %s", hc.Runtime)
	case cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 && cfg.Healthcheck.Test[0] != "NONE" && cfg.Healthcheck.Test[0] != "CMD" && cfg.Healthcheck.Test[0] != "CMD-SHELL":
		return fmt.Errorf("unknown health check type %q", cfg.Healthcheck.Test[0])
	case cfg.Healthcheck != nil && (cfg.Healthcheck.Interval < 0 || cfg.Healthcheck.Timeout < 0 || cfg.Healthcheck.StartPeriod < 0 || cfg.Healthcheck.Retries < 0):
		return errors.New("Healthcheck values must not be negative")
	case len(hc.StorageOpt) > 0:
		return no("storage options (HostConfig.StorageOpt)")
	case cgroups.ValidParent(hc.CgroupParent) != nil:
		// Refused here rather than at start: a container that could not
		// start there would not be removable either.
		return fmt.Errorf("invalid cgroup parent %q: %w", hc.CgroupParent, cgroups.ValidParent(hc.CgroupParent))
	}
	if err := validateSysctls(hc); err != nil {
		return err
	}
	for _, rule := range r.DeviceCgroupRules {
		if _, err := parseDeviceRule(rule); err != nil {
			return err
		}
	}
	for _, opt := range hc.SecurityOpt {
		if _, err := parseSecurityOpt(opt); err != nil {
			return err
		}
	}
	for _, h := range hc.ExtraHosts {
		if err := checkExtraHost(h); err != nil {
			return err
		}
	}
	for _, u := range r.Ulimits {
		if _, err := rlimitName(u.Name); err != nil {
			return err
		}
		if u.Soft > u.Hard {
			return fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
		}
	}
	return nil
}

func hasPortBindings(pm types.PortMap) bool {
	for _, b := range pm {
		if len(b) > 0 {
			return true
		}
	}
	return false
}

// ipcSysctls are the namespaced sysctls of the IPC namespace (runc's
// list).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// validateSysctls allows, as runc does, only sysctls of namespaces the
// container has of its own: IPC ones and fs.mqueue.*, net.* without the
// host's network, kernel.hostname and kernel.domainname without the
// host's UTS namespace.
func validateSysctls(hc *types.HostConfig) error {
	for k := range hc.Sysctls {
		switch {
		case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
			if hc.IpcMode == "host" || strings.HasPrefix(hc.IpcMode, "container:") {
				return fmt.Errorf("sysctl %q not allowed in host IPC namespace", k)
			}
		case strings.HasPrefix(k, "net."):
			if hc.NetworkMode == "host" {
				return fmt.Errorf("sysctl %q not allowed in host network namespace", k)
			}
		case k == "kernel.hostname" || k == "kernel.domainname":
			if hc.UTSMode == "host" || hc.NetworkMode == "host" {
				return fmt.Errorf("sysctl %q is not allowed as it conflicts with the OCI %q field", k, strings.TrimPrefix(k, "kernel."))
			}
		default:
			return fmt.Errorf("sysctl %q is not in a separate kernel namespace", k)
		}
		if strings.ContainsAny(k, "/\x00") || strings.Contains(k, "..") {
			return fmt.Errorf("invalid sysctl name %q", k)
		}
	}
	return nil
}
