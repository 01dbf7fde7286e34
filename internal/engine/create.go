package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/errdefs"
	"skiffd/internal/sysinfo"
)

// ContainerCreate answers POST /containers/create: it resolves the image,
// checks and normalises the request against it and the host
// (normalizeCreate) and only then makes the container: its name, its
// directory, its mounts, its network files and root file system, and last
// its record.
func (e *Engine) ContainerCreate(ctx context.Context, name string, req *types.CreateRequest) (*types.CreateResponse, error) {
	tc := time.Now()
	defer e.span("create.total", tc)
	ref, err := createImageRef(req)
	if err != nil {
		return nil, err
	}
	img, err := e.images.Get(ref)
	if err != nil {
		return nil, err
	}
	if err := checkImagePlatform(ref, img, req.Platform); err != nil {
		return nil, err
	}
	host := sysinfo.Read()
	plan, err := normalizeCreate(name, req, img.Config.Config, createHost{cgroup: e.features.Cgroup, unified: e.features.CgroupMode == "unified", ncpu: host.NCPU, hostname: host.Hostname,
		logDriver: e.opts.LogDriver, logOpts: e.opts.LogOpts, shmSize: e.opts.DefaultShmSize,
		ipcMode: e.opts.DefaultIpcMode, cgroupnsMode: e.opts.DefaultCgroupnsMode, cgroupParent: e.opts.CgroupParent})
	if err != nil {
		return nil, err
	}
	cfg, hc := plan.config, plan.hostConfig
	if plan.mounts, err = e.volumesFrom(hc.VolumesFrom, plan.mounts); err != nil {
		return nil, err
	}
	netSettings, err := e.createNetworkSettings(hc, req.NetworkingConfig)
	if err != nil {
		return nil, err
	}
	if cfg.NetworkDisabled && !strings.HasPrefix(hc.NetworkMode, "container:") && hc.NetworkMode != "host" {
		// As dockerd: no network is joined; the container keeps a network
		// namespace of its own with only its loopback interface.
		clear(netSettings.Networks)
	}
	links, err := e.checkLinks(hc)
	if err != nil {
		return nil, err
	}

	id := container.GenerateID()
	c := container.New(id)
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	c.Name = name
	c.Config = &cfg
	c.HostConfig = hc
	c.ImageID = img.ID
	c.Path, c.Args = plan.path, plan.args
	c.NetworkSettings = netSettings
	t := e.span("create.plan", tc)
	if err := e.containers.Add(c); err != nil {
		return nil, err
	}
	dir := e.containerDir(id)
	if hc.LogConfig.Type == "json-file" {
		c.LogPath = filepath.Join(dir, id+"-json.log")
	}
	c.HostnamePath = filepath.Join(dir, "hostname")
	c.HostsPath = filepath.Join(dir, "hosts")
	c.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	c.Lock()
	defer c.Unlock()
	// The record is saved last: it is what makes the container exist
	// after a crash, so everything it points to (network files, the
	// mounted root file system) must be in place first. A crash before it
	// leaves a directory without a record, which the next daemon removes.
	err = storeLinks(c, links)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err == nil && hc.LogConfig.Type == "local" {
		err = os.Mkdir(filepath.Join(dir, localLogDir), 0o700)
	}
	if err == nil {
		err = e.prepareMounts(ctx, c, plan.mounts, plan.tmpfs)
	}
	if err == nil {
		if err = e.writeNetworkFiles(c); err != nil {
			err = errdefs.System(fmt.Errorf("create container %s: %w", id, err))
		}
	}
	t = e.span("create.files", t)
	if err == nil {
		_, err = e.layers.MountRootfs(img.ChainIDs[len(img.ChainIDs)-1], dir)
	}
	t = e.span("create.rootfs", t)
	if err == nil {
		err = e.containers.Save(c)
	}
	e.span("create.save", t)
	if err != nil {
		unmountContainerFS(dir)
		if derr := e.containers.Delete(c); derr != nil {
			e.logger.Warn("removing a container whose create failed", "container", c.ID, "error", derr)
		}
		e.releaseMountVolumes(id, c.MountPoints, false)
		return nil, err
	}
	e.logEvent(c, "create", nil)
	return &types.CreateResponse{ID: id, Warnings: plan.warnings}, nil
}
