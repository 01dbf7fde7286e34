package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/containerfs"
	"skiffd/internal/errdefs"
	"skiffd/internal/image"
	"skiffd/internal/reference"
)

// CommitContainer answers POST /commit, as dockerd's
// CreateImageFromContainer: the container's upper directory becomes one
// layer (whiteouts in the archive form) on top of its image's, and the new
// image's config is the container's configuration (or the one the client
// sent, completed from the container's) with the changes applied, and a
// history entry for the container's command. A running container is
// paused meanwhile unless opts.Pause is false. Tagging and the events
// follow dockerd: an image "tag" event, then a container "commit" event.
func (e *Engine) CommitContainer(ctx context.Context, name string, opts types.CommitOptions) (string, error) {
	c, err := e.get(name)
	if err != nil {
		return "", err
	}
	var ref reference.Named
	if opts.Repo != "" {
		if ref, err = reference.ParseRepoTag(opts.Repo, opts.Tag); err != nil {
			return "", err
		}
	}
	c.Lock()
	switch {
	case c.State.Dead:
		c.Unlock()
		return "", errdefs.Conflict(fmt.Errorf("You cannot commit container %s which is Dead", c.ID))
	case c.State.RemovalInProgress:
		c.Unlock()
		return "", errdefs.Conflict(fmt.Errorf("You cannot commit container %s which is being removed", c.ID))
	}
	pause := opts.Pause && c.State.Running && !c.State.Paused
	c.Unlock()
	if pause {
		// As dockerd, a pause that fails (the container just exited) does
		// not stop the commit.
		if err := e.ContainerPause(ctx, c.ID); err == nil {
			defer e.ContainerUnpause(context.WithoutCancel(ctx), c.ID)
		}
	}
	c.Lock()
	defer c.Unlock()
	parent, err := e.images.Get(c.ImageID)
	if err != nil {
		return "", errdefs.System(fmt.Errorf("image of container %s: %w", c.ID, err))
	}
	ctrConfig := imageConfigOf(c.Config)
	runConfig := ctrConfig
	if opts.Config != nil {
		runConfig = imageConfigOf(opts.Config)
	}
	runConfig, err = image.ApplyChanges(runConfig, opts.Changes)
	if err != nil {
		return "", err
	}
	mergeCommitConfig(runConfig, ctrConfig)

	diffID, chainIDs, err := e.registerUpper(ctx, filepath.Join(e.containerDir(c.ID), "upper"), parent.ChainIDs)
	if err != nil {
		return "", err
	}
	created := time.Now().UTC()
	cfg := image.Config{
		Comment:         opts.Comment,
		Created:         &created,
		Container:       c.ID,
		ContainerConfig: ctrConfig,
		DockerVersion:   e.opts.Build.Version,
		Author:          opts.Author,
		Config:          runConfig,
		Architecture:    parent.Config.Architecture,
		Variant:         parent.Config.Variant,
		OS:              "linux",
		OSVersion:       parent.Config.OSVersion,
		OSFeatures:      parent.Config.OSFeatures,
		RootFS:          &image.RootFS{Type: "layers"},
	}
	if cfg.Architecture == "" {
		cfg.Architecture = runtime.GOARCH
	}
	if parent.Config.RootFS != nil {
		cfg.RootFS.DiffIDs = slices.Clone(parent.Config.RootFS.DiffIDs)
	}
	if diffID != "" {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	}
	var cmd []string
	if c.Config != nil {
		cmd = c.Config.Cmd
	}
	cfg.History = append(slices.Clone(parent.Config.History), image.History{
		Created:    &created,
		Author:     opts.Author,
		CreatedBy:  strings.Join(cmd, " "),
		Comment:    opts.Comment,
		EmptyLayer: diffID == "",
	})
	raw, err := json.Marshal(&cfg)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	img, err := e.images.Create(ctx, raw, parent.ID)
	if err != nil {
		if diffID != "" {
			e.removeUnusedLayer(chainIDs[len(chainIDs)-1])
		}
		return "", err
	}
	imageRef := ""
	if opts.Repo != "" {
		if err := e.images.Tag(img.ID, ref); err != nil {
			return "", err
		}
		imageRef = ref.FamiliarString()
		e.events.Log("tag", types.ImageEventType, types.EventActor{ID: img.ID, Attributes: map[string]string{"name": imageRef}})
	}
	e.logEvent(c, "commit", map[string]string{"comment": opts.Comment, "imageID": img.ID, "imageRef": imageRef})
	return img.ID, nil
}

// registerUpper registers the overlay upper directory as a layer on top
// of the chain parentChains, and returns its diff ID and the new chain.
// The mount points the runtime created (what dockerd keeps in its init
// layer) are left out, and an upper directory with nothing else makes no
// layer ("" and the parent chain), as dockerd leaves empty layers out of
// the rootfs.
func (e *Engine) registerUpper(ctx context.Context, upper string, parentChains []string) (string, []string, error) {
	parent := ""
	var lowers []string
	if len(parentChains) > 0 {
		parent = parentChains[len(parentChains)-1]
		var err error
		if lowers, err = e.layers.DiffDirs(parent); err != nil {
			return "", nil, errdefs.System(err)
		}
	}
	diff, err := containerfs.NewDiff(upper, lowers)
	if err != nil {
		return "", nil, err
	}
	if diff.Empty() {
		return "", parentChains, nil
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(diff.Pack(ctx, pw))
	}()
	l, err := e.layers.Register(ctx, pr, parent, "")
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", nil, errdefs.System(fmt.Errorf("commit: register layer: %w", err))
	}
	return l.DiffID, append(slices.Clone(parentChains), l.ChainID), nil
}

// removeUnusedLayer drops a layer a failed commit registered, unless an
// image uses it.
func (e *Engine) removeUnusedLayer(chain string) {
	for _, img := range e.images.List() {
		if slices.Contains(img.ChainIDs, chain) {
			return
		}
	}
	if err := e.layers.Remove(chain); err != nil {
		e.logger.Warn("removing the layer of a failed commit", "layer", chain, "error", err)
	}
}

// imageConfigOf copies a container's configuration into the image config
// form.
func imageConfigOf(c *types.Config) *image.ContainerConfig {
	if c == nil {
		return &image.ContainerConfig{}
	}
	out := &image.ContainerConfig{
		Hostname:     c.Hostname,
		Domainname:   c.Domainname,
		User:         c.User,
		AttachStdin:  c.AttachStdin,
		AttachStdout: c.AttachStdout,
		AttachStderr: c.AttachStderr,
		ExposedPorts: maps.Clone(c.ExposedPorts),
		Tty:          c.Tty,
		OpenStdin:    c.OpenStdin,
		StdinOnce:    c.StdinOnce,
		Env:          slices.Clone(c.Env),
		Cmd:          slices.Clone([]string(c.Cmd)),
		ArgsEscaped:  c.ArgsEscaped,
		Image:        c.Image,
		Volumes:      maps.Clone(c.Volumes),
		WorkingDir:   c.WorkingDir,
		Entrypoint:   slices.Clone([]string(c.Entrypoint)),
		OnBuild:      slices.Clone(c.OnBuild),
		Labels:       maps.Clone(c.Labels),
		StopSignal:   c.StopSignal,
		StopTimeout:  c.StopTimeout,
		Shell:        slices.Clone([]string(c.Shell)),
	}
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &image.HealthConfig{
			Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return out
}

// mergeCommitConfig completes user, the new image's config, from ctr, the
// container's, with dockerd's commit rules (daemon.merge): what user
// leaves empty is taken from ctr; ctr's environment variables, exposed
// ports, labels and volumes that user lacks are added; ctr's Cmd applies
// only when user sets neither Cmd nor Entrypoint; a healthcheck is
// completed field by field.
func mergeCommitConfig(user, ctr *image.ContainerConfig) {
	if user.User == "" {
		user.User = ctr.User
	}
	user.ExposedPorts = mergePorts(user.ExposedPorts, ctr.ExposedPorts)
	user.Env = mergeEnv(user.Env, ctr.Env)
	if user.Labels == nil {
		user.Labels = map[string]string{}
	}
	for k, v := range ctr.Labels {
		if _, ok := user.Labels[k]; !ok {
			user.Labels[k] = v
		}
	}
	inheritCommand(&user.Cmd, &user.Entrypoint, &user.ArgsEscaped, ctr.Cmd, ctr.Entrypoint, ctr.ArgsEscaped)
	if ch := ctr.Healthcheck; ch != nil {
		if user.Healthcheck == nil {
			user.Healthcheck = &image.HealthConfig{}
		}
		fillHealthcheck(user.Healthcheck, ch)
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	if len(user.Volumes) == 0 {
		user.Volumes = maps.Clone(ctr.Volumes)
	} else {
		for v := range ctr.Volumes {
			user.Volumes[v] = struct{}{}
		}
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
}
