package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/image"
	"skiffd/internal/reference"
	"skiffd/internal/timestamp"
)

// ImageUser is a container that holds an image (see imageUsers in
// containers.go).
type ImageUser struct {
	ID      string
	Running bool
}

// ImportImage answers POST /images/create?fromSrc=-.
func (e *Engine) ImportImage(ctx context.Context, src io.Reader, repo, tag, message string, changes []string) (string, error) {
	opts := image.ImportOptions{Message: message, Changes: changes}
	if repo != "" {
		ref, err := reference.ParseRepoTag(repo, tag)
		if err != nil {
			return "", err
		}
		opts.Ref = &ref
	}
	img, err := e.images.Import(ctx, src, opts)
	if err != nil {
		return "", err
	}
	attrs := map[string]string{"name": img.ID}
	if opts.Ref != nil {
		attrs["name"] = opts.Ref.FamiliarString()
	}
	e.events.Log("import", types.ImageEventType, types.EventActor{ID: img.ID, Attributes: attrs})
	return img.ID, nil
}

// LoadImage answers POST /images/load.
func (e *Engine) LoadImage(ctx context.Context, src io.Reader, progress func(line string)) error {
	return e.images.Load(ctx, src, func(line string) {
		progress(line)
		name := strings.TrimPrefix(strings.TrimPrefix(line, "Loaded image: "), "Loaded image ID: ")
		if name == line {
			return
		}
		id := name
		if img, err := e.images.Get(name); err == nil {
			id = img.ID
		}
		e.events.Log("load", types.ImageEventType, types.EventActor{ID: id, Attributes: map[string]string{"name": name}})
	})
}

// ExportImages answers GET /images/get: a docker-archive of the named images.
func (e *Engine) ExportImages(ctx context.Context, names []string, w io.Writer) error {
	if len(names) == 0 {
		return errdefs.InvalidParameter(errors.New("no image names given"))
	}
	for _, n := range names {
		if _, err := e.images.Get(n); err != nil {
			return err
		}
	}
	if err := e.images.Save(ctx, w, names); err != nil {
		return err
	}
	for _, n := range names {
		if img, err := e.images.Get(n); err == nil {
			e.events.Log("save", types.ImageEventType, types.EventActor{ID: img.ID, Attributes: map[string]string{"name": n}})
		}
	}
	return nil
}

var acceptedImageFilters = map[string]bool{"dangling": true, "label": true, "before": true, "since": true, "reference": true, "until": true}

// Images answers GET /images/json.
func (e *Engine) Images(ctx context.Context, all, digests bool, ef filters.Args) ([]*types.ImageSummary, error) {
	if err := ef.Validate(acceptedImageFilters); err != nil {
		return nil, err
	}
	danglingOnly, err := ef.GetBoolOrDefault("dangling", false)
	if err != nil {
		return nil, err
	}
	filterDangling := ef.Contains("dangling")
	var before, since time.Time
	if ef.Contains("before") {
		if before, err = e.imageCreatedFilter(ef, "before"); err != nil {
			return nil, err
		}
	}
	if ef.Contains("since") {
		if since, err = e.imageCreatedFilter(ef, "since"); err != nil {
			return nil, err
		}
	}
	var until time.Time
	if vals := ef.Get("until"); len(vals) > 0 {
		d, err := time.ParseDuration(vals[0])
		if err == nil {
			until = time.Now().Add(-d)
		} else if t, perr := time.Parse(time.RFC3339Nano, vals[0]); perr == nil {
			until = t
		} else {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid until filter: %s", vals[0]))
		}
	}
	out := []*types.ImageSummary{}
	for _, img := range e.images.List() {
		refs := e.images.References(img.ID)
		created := imageCreated(img)
		if !before.IsZero() && !created.Before(before) {
			continue
		}
		if !since.IsZero() && !created.After(since) {
			continue
		}
		if !until.IsZero() && !created.Before(until) {
			continue
		}
		if ef.Contains("label") {
			var labels map[string]string
			if img.Config.Config != nil {
				labels = img.Config.Config.Labels
			}
			if !ef.MatchKVList("label", labels) {
				continue
			}
		}
		dangling := len(refs) == 0
		if filterDangling && dangling != danglingOnly {
			continue
		}
		if !all && dangling && len(e.images.Children(img.ID)) > 0 {
			continue // an intermediate image, shown only with all=1
		}
		s := summarize(img, refs)
		if ef.Contains("reference") {
			var kept []string
			for _, r := range refs {
				for _, pattern := range ef.Get("reference") {
					if ok, _ := reference.FamiliarMatch(pattern, r); ok {
						kept = append(kept, r.FamiliarString())
						break
					}
				}
			}
			if len(kept) == 0 {
				continue
			}
			s.RepoTags = filterStrings(s.RepoTags, kept)
			s.RepoDigests = filterStrings(s.RepoDigests, kept)
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

func filterStrings(in, keep []string) []string {
	out := []string{}
	for _, s := range in {
		for _, k := range keep {
			if s == k {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func (e *Engine) imageCreatedFilter(ef filters.Args, key string) (time.Time, error) {
	vals := ef.Get(key)
	img, err := e.images.Get(vals[0])
	if err != nil {
		return time.Time{}, err
	}
	return imageCreated(img), nil
}

func imageCreated(img *image.Image) time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return time.Time{}
}

// summarize builds the list entry of an image; API 1.43+ uses empty arrays
// rather than "<none>:<none>" for untagged images.
func summarize(img *image.Image, refs []reference.Named) *types.ImageSummary {
	s := &types.ImageSummary{
		Containers:  -1,
		Created:     imageCreated(img).Unix(),
		ID:          img.ID,
		ParentID:    img.Parent,
		RepoTags:    []string{},
		RepoDigests: []string{},
		SharedSize:  -1,
		Size:        img.Size,
	}
	if img.Config.Config != nil {
		s.Labels = img.Config.Config.Labels
	}
	for _, r := range refs {
		if r.Digest() != "" {
			s.RepoDigests = append(s.RepoDigests, r.FamiliarString())
		} else {
			s.RepoTags = append(s.RepoTags, r.FamiliarString())
		}
	}
	return s
}

// ImageInspect answers GET /images/{name}/json.
func (e *Engine) ImageInspect(ctx context.Context, name string) (*types.ImageInspect, error) {
	img, err := e.images.Get(name)
	if err != nil {
		return nil, err
	}
	s := summarize(img, e.images.References(img.ID))
	c := img.Config
	out := &types.ImageInspect{
		ID:            img.ID,
		RepoTags:      s.RepoTags,
		RepoDigests:   s.RepoDigests,
		Parent:        img.Parent,
		Comment:       c.Comment,
		DockerVersion: c.DockerVersion,
		Author:        c.Author,
		Architecture:  c.Architecture,
		Variant:       c.Variant,
		Os:            c.OS,
		OsVersion:     c.OSVersion,
		Size:          img.Size,
		RootFS:        types.RootFS{Type: "layers"},
		Config:        &types.ImageConfig{},
	}
	if c.Created != nil {
		out.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	if c.RootFS != nil {
		out.RootFS.Type = c.RootFS.Type
		out.RootFS.Layers = c.RootFS.DiffIDs
	}
	if cc := c.Config; cc != nil {
		out.Config = &types.ImageConfig{
			User: cc.User, ExposedPorts: cc.ExposedPorts, Env: cc.Env, Entrypoint: cc.Entrypoint, Cmd: cc.Cmd,
			Volumes: cc.Volumes, WorkingDir: cc.WorkingDir, Labels: cc.Labels, StopSignal: cc.StopSignal,
			ArgsEscaped: cc.ArgsEscaped, OnBuild: cc.OnBuild, Shell: cc.Shell,
		}
		if cc.Healthcheck != nil {
			out.Config.Healthcheck = cc.Healthcheck
		}
	}
	if !img.LastTagTime.IsZero() {
		out.Metadata.LastTagTime = img.LastTagTime.UTC().Format(time.RFC3339Nano)
	}
	out.GraphDriver = types.GraphDriverData{Name: "overlay2", Data: map[string]string{}}
	if n := len(img.ChainIDs); n > 0 {
		if dirs, err := e.layers.DiffDirs(img.ChainIDs[n-1]); err == nil && len(dirs) > 0 {
			top := strings.TrimSuffix(dirs[0], "/diff")
			out.GraphDriver.Data["UpperDir"] = dirs[0]
			out.GraphDriver.Data["MergedDir"] = top + "/merged"
			out.GraphDriver.Data["WorkDir"] = top + "/work"
			if len(dirs) > 1 {
				out.GraphDriver.Data["LowerDir"] = strings.Join(dirs[1:], ":")
			}
		}
	}
	return out, nil
}

// ImageHistory answers GET /images/{name}/history: one entry per history
// step, newest first; layers that belong to no local image show "<missing>".
func (e *Engine) ImageHistory(ctx context.Context, name string) ([]*types.ImageHistoryItem, error) {
	img, err := e.images.Get(name)
	if err != nil {
		return nil, err
	}
	var sizes []int64
	for _, chain := range img.ChainIDs {
		l, err := e.layers.Get(chain)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, l.Size)
	}
	var out []*types.ImageHistoryItem
	layer := 0
	for _, h := range img.Config.History {
		item := &types.ImageHistoryItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(sizes) {
			item.Size = sizes[layer]
			layer++
		}
		out = append([]*types.ImageHistoryItem{item}, out...)
	}
	if len(out) == 0 {
		// Imported images may carry no history; show their layers.
		for i := len(sizes) - 1; i >= 0; i-- {
			out = append(out, &types.ImageHistoryItem{ID: "<missing>", Created: imageCreated(img).Unix(), Size: sizes[i]})
		}
	}
	if len(out) > 0 {
		out[0].ID = img.ID
		for _, r := range e.images.References(img.ID) {
			if r.Digest() == "" {
				out[0].Tags = append(out[0].Tags, r.FamiliarString())
			}
		}
	}
	return out, nil
}

// TagImage answers POST /images/{name}/tag.
func (e *Engine) TagImage(ctx context.Context, name, repo, tag string) error {
	img, err := e.images.Get(name)
	if err != nil {
		return err
	}
	ref, err := reference.ParseRepoTag(repo, tag)
	if err != nil {
		return err
	}
	if err := e.images.Tag(img.ID, ref); err != nil {
		return err
	}
	e.events.Log("tag", types.ImageEventType, types.EventActor{ID: img.ID, Attributes: map[string]string{"name": ref.FamiliarString()}})
	return nil
}

// ImageDelete answers DELETE /images/{name} with dockerd's rules
// (daemon/images/image_delete.go):
//
//   - A name removes that reference. Unless forced, the last reference of
//     an image that a container (running or stopped) uses is refused, so
//     that no used image is left dangling. When it was the last one, the
//     image itself is then deleted, quietly: a conflict keeps the image
//     without an error unless the image is dangling and unused.
//   - An ID deletes the image. Its references go with it when they are one
//     tag (plus digests) of one repository; other references need force.
//     A running container or a child image is a hard conflict that force
//     cannot override; a stopped container is a soft one that force
//     overrides.
//
// One deviation: where dockerd's force deletes the image record of a
// stopped container's image (its layers live on in the container's layer
// store), skiffd untags it and keeps the image, whose layers the
// container's root file system is made of.
func (e *Engine) ImageDelete(ctx context.Context, name string, force, prune bool) ([]types.ImageDeleteItem, error) {
	img, err := e.images.Get(name)
	if err != nil {
		return nil, err
	}
	var out []types.ImageDeleteItem
	refs := e.images.References(img.ID)
	quiet := false
	if !isImageIDPrefix(img.ID, name) {
		if !force && singleReference(refs) {
			if users := e.imageUsers(img.ID); len(users) > 0 {
				return nil, errdefs.Conflict(fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
					name, reference.ShortID(users[0].ID), reference.ShortID(img.ID)))
			}
		}
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, err
		}
		named = reference.DockerRef(named)
		if _, err := e.images.Untag(named); err != nil {
			return nil, err
		}
		out = append(out, e.untagged(img.ID, named))
		refs = e.images.References(img.ID)
		// A removed tag takes the digests of its repository along when no
		// other tag of that repository is left.
		if named.Digest() == "" && !slices.ContainsFunc(refs, func(r reference.Named) bool { return r.Digest() == "" && r.Name() == named.Name() }) {
			var left []reference.Named
			for _, r := range refs {
				if r.Digest() == "" || r.Name() != named.Name() {
					left = append(left, r)
					continue
				}
				if _, err := e.images.Untag(r); err != nil {
					return out, err
				}
				out = append(out, e.untagged(img.ID, r))
			}
			refs = left
		}
		if len(refs) > 0 {
			return out, nil
		}
		quiet = true
	} else if singleReference(refs) {
		if c := e.imageDeleteConflict(img.ID, !force, false); c != nil {
			return nil, c
		}
		for _, r := range refs {
			if _, err := e.images.Untag(r); err != nil {
				return nil, err
			}
			out = append(out, e.untagged(img.ID, r))
		}
	}
	deleted, err := e.deleteImage(img, force, prune, quiet)
	return append(out, deleted...), err
}

// untagged logs the untag event and returns its record.
func (e *Engine) untagged(id string, r reference.Named) types.ImageDeleteItem {
	e.events.Log("untag", types.ImageEventType, types.EventActor{ID: id, Attributes: map[string]string{"name": r.FamiliarString()}})
	return types.ImageDeleteItem{Untagged: r.FamiliarString()}
}

// isImageIDPrefix tells whether name is (a prefix of) id, with or without
// its "sha256:".
func isImageIDPrefix(id, name string) bool {
	if strings.HasPrefix(id, name) {
		return true
	}
	_, hex, _ := strings.Cut(id, ":")
	return strings.HasPrefix(hex, name)
}

// singleReference tells whether refs are at most one tag plus digests, all
// of one repository (dockerd's isSingleReference); false for none.
func singleReference(refs []reference.Named) bool {
	if len(refs) <= 1 {
		return len(refs) == 1
	}
	tag := -1
	digests := map[string]bool{}
	for i, r := range refs {
		switch {
		case r.Digest() != "":
			digests[r.Name()] = true
		case tag < 0:
			tag = i
		default:
			return false
		}
	}
	if tag < 0 {
		tag = 0
	}
	return len(digests) == 1 && digests[refs[tag].Name()]
}

// imageDeleteError is a conflict that stops an image's deletion; used
// says that a container caused it.
type imageDeleteError struct {
	err  error
	used bool
}

func (c *imageDeleteError) Error() string { return c.err.Error() }
func (c *imageDeleteError) Unwrap() error { return c.err }

// imageDeleteConflict finds what stops the deletion of image id, in
// dockerd's order: the hard conflicts (child images, running containers)
// always, then references when refs is set and stopped containers when
// stopped is set (the soft ones, which force overrides).
func (e *Engine) imageDeleteConflict(id string, stopped, refs bool) *imageDeleteError {
	short := reference.ShortID(id)
	conflict := func(forced, msg string, used bool) *imageDeleteError {
		return &imageDeleteError{err: errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (%s) - %s", short, forced, msg)), used: used}
	}
	if len(e.images.Children(id)) > 0 {
		return conflict("cannot be forced", "image has dependent child images", false)
	}
	users := e.imageUsers(id)
	for _, u := range users {
		if u.Running {
			return conflict("cannot be forced", "image is being used by running container "+reference.ShortID(u.ID), true)
		}
	}
	if refs && len(e.images.References(id)) > 0 {
		return conflict("must be forced", "image is referenced in multiple repositories", false)
	}
	if stopped {
		for _, u := range users {
			if !u.Running {
				return conflict("must be forced", "image is being used by stopped container "+reference.ShortID(u.ID), true)
			}
		}
	}
	return nil
}

// deleteImage is dockerd's imageDeleteHelper: it deletes img with its
// remaining references unless a conflict stops it (force overrides the
// soft ones), and with prune then its parents that nothing else holds,
// quietly. quiet turns a conflict into keeping the image without an
// error, unless the image is dangling and no container is the cause.
func (e *Engine) deleteImage(img *image.Image, force, prune, quiet bool) ([]types.ImageDeleteItem, error) {
	var out []types.ImageDeleteItem
	for img != nil {
		if c := e.imageDeleteConflict(img.ID, !force, !force); c != nil {
			dangling := len(e.images.References(img.ID)) == 0 && len(e.images.Children(img.ID)) == 0
			if quiet && (!dangling || c.used) {
				return out, nil
			}
			return out, c
		}
		// Forced past a stopped container: the container's root file
		// system is made of the image's layers, so the image stays,
		// untagged (see ImageDelete).
		if len(e.imageUsers(img.ID)) > 0 {
			for _, r := range e.images.References(img.ID) {
				if _, err := e.images.Untag(r); err != nil {
					return out, err
				}
				out = append(out, e.untagged(img.ID, r))
			}
			return out, nil
		}
		for _, r := range e.images.References(img.ID) {
			out = append(out, e.untagged(img.ID, r))
		}
		layers, err := e.images.Delete(img.ID)
		if err != nil {
			return out, err
		}
		out = append(out, types.ImageDeleteItem{Deleted: img.ID})
		for _, l := range layers {
			out = append(out, types.ImageDeleteItem{Deleted: l})
		}
		e.events.Log("delete", types.ImageEventType, types.EventActor{ID: img.ID, Attributes: map[string]string{"name": img.ID}})
		if !prune || img.Parent == "" {
			return out, nil
		}
		parent, err := e.images.Get(img.Parent)
		if err != nil {
			return out, nil
		}
		img, force, quiet = parent, false, true
	}
	return out, nil
}

var acceptedPruneFilters = map[string]bool{"dangling": true, "label": true, "label!": true, "until": true}

// ImagesPrune answers POST /images/prune: untagged images (or, with
// dangling=false, every image) that no container uses and no image builds on.
func (e *Engine) ImagesPrune(ctx context.Context, ef filters.Args) (*types.ImagesPruneReport, error) {
	if err := ef.Validate(acceptedPruneFilters); err != nil {
		return nil, err
	}
	danglingOnly, err := ef.GetBoolOrDefault("dangling", true)
	if err != nil {
		return nil, err
	}
	var until time.Time
	if ef.Contains("until") {
		vals := ef.Get("until")
		if len(vals) > 1 {
			return nil, errdefs.InvalidParameter(errors.New("more than one until filter specified"))
		}
		if until, err = timestamp.Parse(vals[0], time.Now()); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid value for 'until' filter: %w", err))
		}
	}
	report := &types.ImagesPruneReport{ImagesDeleted: []types.ImageDeleteItem{}}
	before := e.images.LayersSize()
	for changed := true; changed; {
		changed = false
		for _, img := range e.images.List() {
			refs := e.images.References(img.ID)
			// Dangling means without a tag; digests alone do not count.
			if danglingOnly && slices.ContainsFunc(refs, func(r reference.Named) bool { return r.Digest() == "" }) {
				continue
			}
			if len(e.imageUsers(img.ID)) > 0 || len(e.images.Children(img.ID)) > 0 {
				continue
			}
			// dockerd keeps what was created after until, and what has no
			// creation time at all.
			if !until.IsZero() && (img.Config.Created == nil || img.Config.Created.After(until)) {
				continue
			}
			if ef.Contains("label") || ef.Contains("label!") {
				var labels map[string]string
				if img.Config.Config != nil {
					labels = img.Config.Config.Labels
				}
				if ef.Contains("label") && !ef.MatchKVList("label", labels) {
					continue
				}
				if ef.Contains("label!") && ef.MatchKVList("label!", labels) {
					continue
				}
			}
			for _, r := range refs {
				if _, err := e.images.Untag(r); err != nil {
					return nil, err
				}
				report.ImagesDeleted = append(report.ImagesDeleted, types.ImageDeleteItem{Untagged: r.FamiliarString()})
			}
			deleted, err := e.deleteImage(img, false, false, false)
			report.ImagesDeleted = append(report.ImagesDeleted, deleted...)
			if err != nil {
				return nil, err
			}
			changed = true
		}
	}
	if after := e.images.LayersSize(); after < before {
		report.SpaceReclaimed = uint64(before - after)
	}
	e.events.Log("prune", types.ImageEventType, types.EventActor{Attributes: map[string]string{"reclaimed": fmt.Sprint(report.SpaceReclaimed)}})
	return report, nil
}
