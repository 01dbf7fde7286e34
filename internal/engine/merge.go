package engine

import (
	"slices"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/image"
)

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
	inheritCommand(&cfg.Cmd, &cfg.Entrypoint, &cfg.ArgsEscaped, img.Cmd, img.Entrypoint, img.ArgsEscaped)
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
		fillHealthcheck((*image.HealthConfig)(cfg.Healthcheck), ih)
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = slices.Clone(img.OnBuild)
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = slices.Clone(img.Shell)
	}
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

// fillHealthcheck completes h field by field from base, as dockerd merges
// an image's (or a committed container's) healthcheck under the one
// given: what h leaves zero is taken from base.
func fillHealthcheck(h, base *image.HealthConfig) {
	if len(h.Test) == 0 {
		h.Test = slices.Clone(base.Test)
	}
	if h.Interval == 0 {
		h.Interval = base.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = base.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = base.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = base.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = base.Retries
	}
}

// inheritCommand applies dockerd's rule for a command left out (daemon.merge):
// when the entrypoint is empty, a missing Cmd (with its ArgsEscaped) comes
// from base, and so does the entrypoint if it was not given at all (nil; an
// explicit empty one stays).
func inheritCommand[S ~[]string](cmd, entrypoint *S, argsEscaped *bool, baseCmd, baseEntrypoint []string, baseEscaped bool) {
	if len(*entrypoint) != 0 {
		return
	}
	if len(*cmd) == 0 {
		*cmd = S(slices.Clone(baseCmd))
		*argsEscaped = baseEscaped
	}
	if *entrypoint == nil {
		*entrypoint = S(slices.Clone(baseEntrypoint))
	}
}
