package engine

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/filters"
	"skiffd/internal/sysinfo"
)

// Version numbers advertised by /version; package main owns the canonical
// values and passes them in, these are the engine's view.
const (
	apiVersion    = "1.50"
	minAPIVersion = "1.24"
)

// notYetWarnings lists what this build cannot do yet, shown by `docker info`
// so nobody mistakes a missing feature for a silent no-op.
var notYetWarnings = []string{
	"WARNING: skiffd does not apply per-device block I/O limits yet: create and update refuse them where the host could enforce them",
}

// SystemInfo answers GET /info with facts read from the host now.
func (e *Engine) SystemInfo(ctx context.Context) (*types.Info, error) {
	h := sysinfo.Read()
	total, running, paused, stopped := e.containerCounts()
	info := &types.Info{
		ID:                e.id,
		Containers:        total,
		ContainersRunning: running,
		ContainersPaused:  paused,
		ContainersStopped: stopped,
		Images:            len(e.images.List()),
		Driver:            "overlay2",
		DriverStatus: [][2]string{
			{"Backing Filesystem", sysinfo.BackingFilesystem(e.opts.DataRoot)},
			{"Supports d_type", "true"},
			{"Native Overlay Diff", "true"},
			{"userxattr", "false"},
		},
		Plugins: types.PluginsInfo{
			Volume:  []string{"local"},
			Network: []string{"bridge", "host", "macvlan", "null"},
			Log:     []string{"fluentd", "gelf", "journald", "json-file", "local", "syslog"},
		},
		MemoryLimit:        e.features.Cgroup.MemoryLimit,
		SwapLimit:          e.features.Cgroup.SwapLimit,
		OomKillDisable:     e.features.Cgroup.OomKillDisable,
		CPUCfsPeriod:       e.features.Cgroup.CPUCfs,
		CPUCfsQuota:        e.features.Cgroup.CPUCfs,
		CPUShares:          e.features.Cgroup.CPUShares,
		CPUSet:             e.features.Cgroup.Cpuset,
		PidsLimit:          e.features.Cgroup.PidsLimit,
		Debug:              e.opts.Debug,
		LiveRestoreEnabled: e.opts.LiveRestore,
		NFd:                sysinfo.OpenFDs(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      e.opts.LogDriver,
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      h.CgroupVersion,
		NEventsListener:    e.eventListeners(),
		KernelVersion:      h.KernelVersion,
		OperatingSystem:    h.OperatingSystem,
		OSVersion:          h.OSVersion,
		OSType:             "linux",
		Architecture:       h.Architecture,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     e.reg.registryInfo(),
		NCPU:               h.NCPU,
		MemTotal:           h.MemTotal,
		DockerRootDir:      e.opts.DataRoot,
		Name:               h.Hostname,
		Labels:             []string{},
		ExperimentalBuild:  e.opts.Experimental,
		ServerVersion:      e.opts.Build.Version,
		Runtimes:           map[string]types.Runtime{defaultRuntime: {Path: "skiffd"}, "skiffd": {Path: "skiffd"}},
		DefaultRuntime:     defaultRuntime,
		Swarm:              types.SwarmInfo{LocalNodeState: "inactive"},
		InitBinary:         "skiffd",
		SecurityOptions:    e.securityOptions(),
		CDISpecDirs:        []string{},
		Warnings:           append(append(infoWarnings(e.features.Cgroup), e.networkWarnings()...), notYetWarnings...),
	}
	if v, err := readIPv4Forwarding(); err == nil {
		info.IPv4Forwarding = v
	}
	return info, nil
}

// SystemVersion answers GET /version.
func (e *Engine) SystemVersion(ctx context.Context) types.Version {
	h := sysinfo.Read()
	b := e.opts.Build
	experimental := "false"
	if e.opts.Experimental {
		experimental = "true"
	}
	v := types.Version{
		Components: []types.ComponentVersion{{
			Name:    "Engine",
			Version: b.Version,
			Details: map[string]string{
				"ApiVersion":    apiVersion,
				"Arch":          runtime.GOARCH,
				"BuildTime":     b.BuildTime,
				"Experimental":  experimental,
				"GitCommit":     b.GitCommit,
				"GoVersion":     b.GoVersion,
				"KernelVersion": h.KernelVersion,
				"MinAPIVersion": minAPIVersion,
				"Os":            runtime.GOOS,
			},
		}},
		Version:       b.Version,
		APIVersion:    apiVersion,
		MinAPIVersion: minAPIVersion,
		GitCommit:     b.GitCommit,
		GoVersion:     b.GoVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: h.KernelVersion,
		Experimental:  e.opts.Experimental,
		BuildTime:     b.BuildTime,
	}
	v.Platform.Name = "skiffd"
	return v
}

// SystemDiskUsage answers GET /system/df: images, containers and volumes
// with their sizes; skiffd has no build cache.
func (e *Engine) SystemDiskUsage(ctx context.Context) (*types.DiskUsage, error) {
	images, err := e.Images(ctx, true, false, filters.Args{})
	if err != nil {
		return nil, err
	}
	for _, img := range images {
		img.SharedSize = 0
		img.Containers = int64(len(e.imageUsers(img.ID, true)))
	}
	list, err := e.Containers(ctx, types.ContainerListOptions{All: true, Size: true})
	if err != nil {
		return nil, err
	}
	containers := make([]any, len(list))
	for i, c := range list {
		containers[i] = c
	}
	vols, err := e.VolumesDiskUsage(ctx)
	if err != nil {
		return nil, err
	}
	volumes := make([]any, len(vols))
	for i, v := range vols {
		volumes[i] = v
	}
	return &types.DiskUsage{
		LayersSize: e.images.LayersSize(),
		Images:     images,
		Containers: containers,
		Volumes:    volumes,
		BuildCache: []any{},
	}, nil
}

// securityOptions lists the protections every container gets, in dockerd's
// "name=...,key=value" form, with what the start-up probe found.
func (e *Engine) securityOptions() []string {
	f := e.features
	profile := e.opts.SeccompProfile
	if profile == "" {
		profile = "builtin"
	}
	opts := []string{"name=seccomp,profile=" + profile}
	if f.CgroupMode == "unified" {
		opts = append(opts, "name=cgroupns")
	}
	seal := "memfd"
	if f.Fsopen {
		seal = "overlay"
	}
	opts = append(opts, "name=skiffd,seal="+seal+",cgroup-mode="+f.CgroupMode+",openat2="+fmt.Sprint(f.Openat2)+
		",pidfd-setns="+fmt.Sprint(f.PidfdSetns)+",clone-into-cgroup="+fmt.Sprint(f.CloneIntoCgroup)+",bpf="+fmt.Sprint(f.BPF))
	return opts
}
