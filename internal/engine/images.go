package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/image"
	"skiffd/internal/reference"
)

// ImageUser is a container that holds an image (see imageUsers in
// containers.go).
type ImageUser struct {
	ID      string
	Running bool
}

// ImportImage answers POST /images/create?fromSrc=-.
func (e *Engine) ImportImage(ctx context.Context, src io.Reader, repo, tag, message string, changes []string) (string, error) {
	return e.importImage(ctx, src, repo, tag, message, changes, "-")
}

// importImage imports the tarball src, which came from source ("-", the
// request body, or a URL).
func (e *Engine) importImage(ctx context.Context, src io.Reader, repo, tag, message string, changes []string, source string) (string, error) {
	opts := image.ImportOptions{Message: message, Changes: changes, Source: source}
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

// ImportImageURL answers POST /images/create?fromSrc=<url>: the daemon
// downloads the tarball, as dockerd does (an address without a scheme is
// http), reporting "Downloading from <url>" and then the import's bytes.
// A failed download is the HTTP error dockerd gives: 404 for a missing
// file or host, the server's status and body in the message.
func (e *Engine) ImportImageURL(ctx context.Context, src, repo, tag, message string, changes []string, progress func(types.ProgressMessage)) (string, error) {
	if !strings.Contains(src, "://") {
		src = "http://" + src
	}
	u, err := url.Parse(src)
	if err != nil {
		return "", errdefs.InvalidParameter(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", errdefs.InvalidParameter(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && !dnsErr.IsTimeout {
			return "", errdefs.NotFound(err)
		}
		return "", errdefs.System(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= http.StatusBadRequest {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		err := fmt.Errorf("failed to GET %s with status %s: %s", u, resp.Status, bytes.TrimSpace(body))
		switch resp.StatusCode {
		case http.StatusNotFound:
			return "", errdefs.NotFound(err)
		case http.StatusBadRequest:
			return "", errdefs.InvalidParameter(err)
		case http.StatusUnauthorized:
			return "", errdefs.Unauthorized(err)
		case http.StatusForbidden:
			return "", errdefs.Forbidden(err)
		}
		return "", err // 500, as dockerd's errdefs.Unknown
	}
	progress(types.ProgressMessage{Status: "Downloading from " + u.String()})
	body := &importProgress{r: resp.Body, total: resp.ContentLength, report: progressFunc(progress)}
	return e.importImage(ctx, body, repo, tag, message, changes, u.String())
}

// importProgress reports an import's bytes as dockerd's progress reader
// does: "Importing" with the counts and bar, every 512 KiB and at the end.
type importProgress struct {
	r             io.Reader
	current, last int64
	total         int64 // -1: unknown
	report        progressFunc
}

func (p *importProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.current += int64(n)
	if p.current-p.last >= 512<<10 || err != nil && p.current > p.last {
		p.last = p.current
		p.report.bytes("", "Importing", p.current, max(p.total, 0))
	}
	return n, err
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
