package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/image"
	"skiffd/internal/reference"
	"skiffd/internal/timestamp"
)

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
			if users := e.imageUsers(img.ID, false); len(users) > 0 {
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
	users := e.imageUsers(id, false)
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
		if len(e.imageUsers(img.ID, false)) > 0 {
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
			if len(e.imageUsers(img.ID, false)) > 0 || len(e.images.Children(img.ID)) > 0 {
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
