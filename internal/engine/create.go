package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/atomicfile"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/image"
	"skiffd/internal/layer"
	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/sysinfo"
	"skiffd/internal/volume"
)

// minMemory is dockerd's lowest memory limit.
const minMemory = 6 * 1024 * 1024

// defaultShmSize is the size of /dev/shm when the client sets none.
const defaultShmSize = 64 * 1024 * 1024

// ContainerCreate answers POST /containers/create.
func (e *Engine) ContainerCreate(ctx context.Context, name string, req *types.CreateRequest) (*types.CreateResponse, error) {
	if req == nil || req.Config == nil {
		return nil, errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	cfg := *req.Config
	hc := &types.HostConfig{}
	if req.HostConfig != nil {
		h := *req.HostConfig
		hc = &h
	}
	if cfg.Image == "" {
		return nil, errdefs.InvalidParameter(errors.New("No image was specified"))
	}
	img, err := e.images.Get(cfg.Image)
	if err != nil {
		return nil, err
	}
	if img.Config.Config != nil {
		mergeImageConfig(&cfg, img.Config.Config)
	}
	warnings, err := validateHostConfig(hc, e.features.Cgroup, sysinfo.Read().NCPU, false)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if err := checkUnsupported(&cfg, hc); err != nil {
		if errdefs.KindOf(err) == errdefs.ErrNotFound {
			return nil, err
		}
		return nil, errdefs.InvalidParameter(err)
	}
	netSettings, err := e.createNetworkSettings(hc, req.NetworkingConfig)
	if err != nil {
		return nil, err
	}

	mounts, tmpfs, err := volume.CollectMounts(cfg.Volumes, hc.Binds, hc.Mounts, hc.Tmpfs)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	entry, args, err := command(&cfg)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if cfg.WorkingDir != "" {
		if !path.IsAbs(cfg.WorkingDir) {
			return nil, errdefs.InvalidParameter(fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir))
		}
		cfg.WorkingDir = path.Clean(cfg.WorkingDir)
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	if _, _, err := logRotation(hc.LogConfig); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = defaultShmSize
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = types.RestartPolicyDisabled
	}
	if hc.IpcMode == "" {
		hc.IpcMode = "private"
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = "private"
	}
	if hc.Runtime == "" {
		hc.Runtime = "skiffd"
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

	id := container.GenerateID()
	c := container.New(id)
	if cfg.Hostname == "" {
		if hc.NetworkMode == "host" {
			cfg.Hostname = sysinfo.Read().Hostname
		} else {
			cfg.Hostname = id[:12]
		}
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	c.Name = name
	c.Config = &cfg
	c.HostConfig = hc
	c.ImageID = img.ID
	c.Path, c.Args = entry, args
	c.NetworkSettings = netSettings
	if err := e.containers.Add(c); err != nil {
		return nil, err
	}
	dir := e.containerDir(id)
	c.LogPath = filepath.Join(dir, id+"-json.log")
	c.HostnamePath = filepath.Join(dir, "hostname")
	c.HostsPath = filepath.Join(dir, "hosts")
	c.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	c.Lock()
	defer c.Unlock()
	// The record is saved last: it is what makes the container exist
	// after a crash, so everything it points to (network files, the
	// mounted root file system) must be in place first. A crash before it
	// leaves a directory without a record, which the next daemon removes.
	err = os.MkdirAll(dir, 0o700)
	if err == nil {
		err = e.prepareMounts(ctx, c, mounts, tmpfs)
	}
	if err == nil {
		if err = writeNetworkFiles(c); err != nil {
			err = errdefs.System(fmt.Errorf("create container %s: %w", id, err))
		}
	}
	if err == nil {
		_, err = e.layers.MountRootfs(img.ChainIDs[len(img.ChainIDs)-1], dir)
	}
	if err == nil {
		err = e.containers.Save(c)
	}
	if err != nil {
		layer.UnmountRootfs(dir)
		if derr := e.containers.Delete(c); derr != nil {
			e.logger.Warn("removing a container whose create failed", "container", c.ID, "error", derr)
		}
		e.releaseMountVolumes(id, c.MountPoints, false)
		return nil, err
	}
	e.logEvent(c, "create", nil)
	if warnings == nil {
		warnings = []string{}
	}
	return &types.CreateResponse{ID: id, Warnings: warnings}, nil
}

// mergeImageConfig fills what the client left out of cfg from the image's
// config, with dockerd's rules (daemon.merge): the image's environment
// variables the client did not set follow the client's, labels and
// exposed ports merge (client wins), and the image's Cmd applies only when
// the client set neither Cmd nor Entrypoint.
func mergeImageConfig(cfg *types.Config, img *image.ContainerConfig) {
	if cfg.User == "" {
		cfg.User = img.User
	}
	cfg.ExposedPorts = mergePorts(cfg.ExposedPorts, img.ExposedPorts)
	cfg.Env = mergeEnv(cfg.Env, img.Env)
	if len(img.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(img.Cmd)
			cfg.ArgsEscaped = img.ArgsEscaped
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if len(img.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if ih := img.Healthcheck; ih != nil {
		if cfg.Healthcheck == nil {
			cfg.Healthcheck = &types.HealthConfig{}
		}
		h := cfg.Healthcheck
		if len(h.Test) == 0 {
			h.Test = slices.Clone(ih.Test)
		}
		if h.Interval == 0 {
			h.Interval = ih.Interval
		}
		if h.Timeout == 0 {
			h.Timeout = ih.Timeout
		}
		if h.StartPeriod == 0 {
			h.StartPeriod = ih.StartPeriod
		}
		if h.StartInterval == 0 {
			h.StartInterval = ih.StartInterval
		}
		if h.Retries == 0 {
			h.Retries = ih.Retries
		}
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = slices.Clone(img.OnBuild)
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = slices.Clone(img.Shell)
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

// checkUnsupported refuses, naming the field, what skiffd cannot do yet
// and would otherwise silently ignore although it changes the container's
// security, resources or reachability.
func checkUnsupported(cfg *types.Config, hc *types.HostConfig) error {
	no := func(field string) error {
		return fmt.Errorf("skiffd does not support %s yet", field)
	}
	r := &hc.Resources
	switch {
	case len(hc.VolumesFrom) > 0:
		return no("HostConfig.VolumesFrom")
	case len(hc.Links) > 0:
		return no("links (HostConfig.Links)")
	case len(r.DeviceRequests) > 0:
		return no("device requests (HostConfig.DeviceRequests)")
	case hc.UsernsMode != "" && hc.UsernsMode != "host":
		return no("user namespaces (HostConfig.UsernsMode)")
	case hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable" && hc.IpcMode != "host" && !strings.HasPrefix(hc.IpcMode, "container:"):
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
	case hc.Runtime != "" && hc.Runtime != "skiffd" && hc.Runtime != "runc":
		return fmt.Errorf("Unknown runtime specified %s", hc.Runtime)
	case cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 && cfg.Healthcheck.Test[0] != "NONE" && cfg.Healthcheck.Test[0] != "CMD" && cfg.Healthcheck.Test[0] != "CMD-SHELL":
		return fmt.Errorf("unknown health check type %q", cfg.Healthcheck.Test[0])
	case cfg.Healthcheck != nil && (cfg.Healthcheck.Interval < 0 || cfg.Healthcheck.Timeout < 0 || cfg.Healthcheck.StartPeriod < 0 || cfg.Healthcheck.Retries < 0):
		return errors.New("Healthcheck values must not be negative")
	case len(hc.StorageOpt) > 0:
		return no("storage options (HostConfig.StorageOpt)")
	}
	switch hc.NetworkMode {
	case "", "default", "bridge", "none", "host":
	default:
		if !strings.HasPrefix(hc.NetworkMode, "container:") {
			break // a user-defined network: createNetworkSettings finds it
		}
		if hasPortBindings(hc.PortBindings) || len(cfg.ExposedPorts) > 0 && hc.PublishAllPorts {
			return errors.New("conflicting options: port publishing and the container type network mode")
		}
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
		if _, _, err := parseExtraHost(h); err != nil {
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

// securityOpts is what HostConfig.SecurityOpt asks for.
type securityOpts struct {
	noNewPrivs        bool
	seccompUnconfined bool
	seccompProfile    string // JSON, "" for the default
}

// parseSecurityOpt reads one --security-opt value into a securityOpts
// (only the set fields matter); anything that would need a security
// module skiffd lacks is refused.
func parseSecurityOpt(opt string) (securityOpts, error) {
	var so securityOpts
	switch opt {
	case "no-new-privileges", "no-new-privileges:true", "no-new-privileges=true":
		so.noNewPrivs = true
		return so, nil
	case "no-new-privileges:false", "no-new-privileges=false":
		return so, nil
	case "label=disable", "label:disable", "apparmor=unconfined", "apparmor:unconfined":
		return so, nil
	}
	key, val, ok := strings.Cut(opt, "=")
	if !ok {
		key, val, ok = strings.Cut(opt, ":")
	}
	if !ok {
		return so, fmt.Errorf("Invalid --security-opt: %q", opt)
	}
	switch key {
	case "seccomp":
		if val == "unconfined" {
			so.seccompUnconfined = true
		} else {
			so.seccompProfile = val
		}
		return so, nil
	case "label", "apparmor":
		return so, fmt.Errorf("skiffd does not support %s security options yet (HostConfig.SecurityOpt %q)", key, opt)
	}
	return so, fmt.Errorf("Invalid --security-opt: %q", opt)
}

// parseExtraHost splits an ExtraHosts entry, "name:ip" or "name=ip".
func parseExtraHost(s string) (string, string, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	if !ok || name == "" {
		return "", "", fmt.Errorf("invalid extra host: %s", s)
	}
	if ip == "host-gateway" {
		return "", "", fmt.Errorf("skiffd does not support host-gateway in extra hosts yet (HostConfig.ExtraHosts %q)", s)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if _, err := netip.ParseAddr(ip); err != nil {
		return "", "", fmt.Errorf("invalid IP address in add-host: %q", ip)
	}
	return name, ip, nil
}

// logRotation reads the json-file options max-size and max-file.
func logRotation(lc types.LogConfig) (maxSize int64, maxFiles int, err error) {
	switch lc.Type {
	case "json-file", "none":
	default:
		return 0, 0, fmt.Errorf("skiffd does not support the %s logging driver yet (HostConfig.LogConfig)", lc.Type)
	}
	maxFiles = 1
	for k, v := range lc.Config {
		switch k {
		case "max-size":
			if maxSize, err = parseSize(v); err != nil || maxSize <= 0 {
				return 0, 0, fmt.Errorf("invalid max-size for log: %s", v)
			}
		case "max-file":
			if maxFiles, err = strconv.Atoi(v); err != nil || maxFiles < 1 {
				return 0, 0, errors.New("max-file cannot be less than 1")
			}
		case "compress", "labels", "labels-regex", "env", "env-regex", "tag":
		default:
			return 0, 0, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if maxFiles > 1 && maxSize == 0 {
		return 0, 0, errors.New("max-file cannot be set when max-size is not set")
	}
	return maxSize, maxFiles, nil
}

// parseSize parses go-units' RAMInBytes forms: "10m", "1.5g", "512k",
// "100" (bytes), binary multiples.
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(s, "b")
	s = strings.TrimSuffix(s, "i")
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size: %q", s)
	}
	return int64(f * float64(mult)), nil
}

// writeNetworkFiles writes the container's hostname, hosts and
// resolv.conf, which start binds over the image's.
func writeNetworkFiles(c *container.Container) error {
	if err := atomicfile.WriteFile(c.HostnamePath, []byte(c.Config.Hostname+"\n"), 0o644); err != nil {
		return err
	}
	return writeEtcFiles(c, nil, false)
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

// mergePorts returns the union of two exposed-port sets, reusing ports when
// it can.
func mergePorts(ports, base map[string]struct{}) map[string]struct{} {
	if len(base) == 0 {
		return ports
	}
	if ports == nil {
		ports = make(map[string]struct{}, len(base))
	}
	for p := range base {
		ports[p] = struct{}{}
	}
	return ports
}

// mergeEnv returns env with every entry of base whose variable env does not
// set appended, as dockerd merges an image's (or a container's) Env under
// the one given.
func mergeEnv(env, base []string) []string {
	if len(env) == 0 {
		return slices.Clone(base)
	}
	for _, be := range base {
		key, _, _ := strings.Cut(be, "=")
		if !slices.ContainsFunc(env, func(e string) bool { k, _, _ := strings.Cut(e, "="); return k == key }) {
			env = append(env, be)
		}
	}
	return env
}
