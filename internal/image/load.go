package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"syscall"

	"skiffd/internal/archive"
	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
	"skiffd/internal/reference"
)

// ProgressFunc receives the user-visible lines of a load as dockerd streams
// them, e.g. "Loaded image: busybox:latest", without trailing newline.
type ProgressFunc func(line string)

const (
	// maxJSONSize bounds the JSON members (manifests, indexes, configs)
	// read into memory.
	maxJSONSize = 16 << 20
	// maxMemberInMemory and memoryBudget decide which archive members are
	// kept in memory rather than spilled to a temporary file: small ones,
	// up to a total, so memory stays flat whatever the archive holds.
	maxMemberInMemory = 64 << 10
	memoryBudget      = 32 << 20
	// maxLinkDepth bounds how many symbolic links a member lookup follows.
	maxLinkDepth = 40
	// maxIndexDepth bounds the nesting of OCI indexes.
	maxIndexDepth = 8
)

// Media types and annotations of OCI image layouts (and Docker's
// equivalents) that Load and Save use.
const (
	mediaTypeOCIIndex        = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIConfig       = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer        = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
	annotationDockerRefType  = "vnd.docker.reference.type"
	manifestFileName         = "manifest.json"
	indexFileName            = "index.json"
	ociLayoutFileName        = "oci-layout"
	legacyReposFileName      = "repositories"
)

// member is one regular file of a loaded archive: in memory, spilled to a
// file, or a layer taken straight from the stream.
type member struct {
	data []byte
	path string
	size int64

	// staged is the layer unpacked from the member, until it is committed.
	staged stagedLayer
	// diffID is the diff ID of a layer member whose content was read
	// (staged, then committed) or skipped as known.
	diffID string
	// chain is a registered layer with the member's content: the chain
	// it was committed as, or for a known member, one with its diff ID.
	chain string
	// stageErr is why unpacking a member that looked like a layer failed;
	// it fails the load only if an image uses the member.
	stageErr error
}

// isLayer reports a member taken as a layer, whose bytes are not kept.
func (m *member) isLayer() bool { return m.staged != nil || m.chain != "" || m.stageErr != nil }

func (m *member) open() (io.ReadCloser, error) {
	if m.path == "" {
		return io.NopCloser(bytes.NewReader(m.data)), nil
	}
	return os.Open(m.path)
}

// archiveFiles is the content of a loaded archive, by cleaned member name.
type archiveFiles struct {
	dir     string
	files   map[string]*member
	links   map[string]string
	memUsed int64

	// stage, when not nil, unpacks a member that is a layer tar straight
	// from the stream; br peeks at members to find them.
	stage func(ctx context.Context, r io.Reader) (stagedLayer, error)
	br    *bufio.Reader
	// known, when not nil, names a registered layer with the diff ID a
	// "blobs/sha256/<hex>" member claims, held until close, so that the
	// member's content can be skipped.
	known func(diffID string) (chain string, ok bool)
	// staged lists every staged member, including ones whose name a later
	// member took over.
	staged []*member
	// held releases the chains held for this archive's layers.
	held []func()
}

func newArchiveFiles(dir string) *archiveFiles {
	return &archiveFiles{dir: dir, files: make(map[string]*member), links: make(map[string]string)}
}

// close discards the staged layers that were not committed and releases
// the held chains.
func (a *archiveFiles) close() {
	for _, m := range a.staged {
		if m.staged != nil {
			m.staged.Discard()
			m.staged = nil
		}
	}
	for _, release := range a.held {
		release()
	}
	a.held = nil
}

// cleanName maps a member name to a path relative to the archive root:
// "../x", "/x" and "./x" are all "x", so no name can point outside it.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *archiveFiles) get(name string) (*member, error) {
	name = cleanName(name)
	for range maxLinkDepth {
		if m, ok := a.files[name]; ok {
			return m, nil
		}
		target, ok := a.links[name]
		if !ok {
			break
		}
		name = target
	}
	return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: open %s: %w", name, syscall.ENOENT))
}

func (a *archiveFiles) has(name string) bool {
	_, err := a.get(name)
	return err == nil
}

// readJSON returns the bytes of a small member.
func (a *archiveFiles) readJSON(name string) ([]byte, error) {
	m, err := a.get(name)
	if err != nil {
		return nil, err
	}
	if m.isLayer() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s is a layer, not a JSON document", cleanName(name)))
	}
	if m.size > maxJSONSize {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s is larger than %d bytes", cleanName(name), maxJSONSize))
	}
	if m.path == "" {
		return m.data, nil
	}
	return os.ReadFile(m.path)
}

// readArchive reads the outer tar once, keeping small members in memory
// and spilling the others to files in dir, without staging any.
func readArchive(ctx context.Context, r io.Reader, dir string) (*archiveFiles, error) {
	a := newArchiveFiles(dir)
	if err := a.read(ctx, r); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// read reads the outer tar once. A member that is a layer tar is staged
// from the stream when a.stage is set; other small members are kept in
// memory and the rest spilled to files in a.dir, named by a counter, never
// by member names.
func (a *archiveFiles) read(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return tarError(err)
		}
		name := cleanName(hdr.Name)
		if name == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			m, err := a.member(ctx, name, tr, hdr.Size)
			if err != nil {
				return err
			}
			a.files[name] = m
			delete(a.links, name)
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			a.links[name] = cleanName(target)
			delete(a.files, name)
		case tar.TypeLink:
			a.links[name] = cleanName(hdr.Linkname)
			delete(a.files, name)
		}
	}
}

// member takes in the content of the regular member name, of size bytes.
func (a *archiveFiles) member(ctx context.Context, name string, r io.Reader, size int64) (*member, error) {
	if a.stage == nil {
		return a.store(r, size)
	}
	if d, ok := digestName(name); ok && a.known != nil {
		if chain, ok := a.known(d); ok {
			// The layer is registered already; the tar reader skips the
			// content when it moves to the next member.
			return &member{size: size, diffID: d, chain: chain}, nil
		}
	}
	a.br.Reset(r)
	head, err := a.br.Peek(tarBlockSize)
	if err != nil && err != io.EOF {
		return nil, tarError(err)
	}
	if !looksLikeLayer(head) {
		return a.store(a.br, size)
	}
	sr := &sourceReader{r: a.br}
	st, err := a.stage(ctx, sr)
	if err != nil {
		if sr.err != nil {
			return nil, tarError(sr.err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return &member{size: size, stageErr: err}, nil
	}
	m := &member{size: size, staged: st, diffID: st.DiffID()}
	a.staged = append(a.staged, m)
	return m, nil
}

// sourceReader remembers the error of reading the outer archive, to tell
// a broken archive from a broken layer in it.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// tarError words a malformed outer archive as dockerd does, whose
// unpacking runs in a child process ("echo notatar | docker load").
func tarError(err error) error {
	return errdefs.InvalidParameter(fmt.Errorf("Error processing tar file(exit status 1): %w", err))
}

func (a *archiveFiles) store(r io.Reader, size int64) (*member, error) {
	if size <= maxMemberInMemory && a.memUsed+size <= memoryBudget {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, tarError(err)
		}
		a.memUsed += size
		return &member{data: buf, size: size}, nil
	}
	f, err := os.CreateTemp(a.dir, "member-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, fmt.Errorf("load: %w", cerr)
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("load: %w", err)
		}
		return nil, tarError(err)
	}
	return &member{path: f.Name(), size: n}, nil
}

// loadItem is one image found in an archive, ready to register.
type loadItem struct {
	config []byte
	layers []*member
	tags   []reference.Named
	parent string // the manifest's Parent, an image ID in the same archive
}

// Load reads an image archive, as "docker save" writes it or as an OCI image
// layout, and stores its images. r may be gzip- or bzip2-compressed. The
// archive is read once, and so is every layer: a member that is a layer tar
// is unpacked (staged) into the layer store as it streams by, since only
// the chain it ends up in waits for manifest.json, the archive's last
// member; a layer named by a diff ID the layer store has is skipped. Small
// members are held in memory and anything else spilled under the store's
// tmp directory, so memory stays flat. Then each image's layers are
// committed in order with the diff IDs its config names (a mismatch stops
// the load before that image is created), the image is created and its
// tags move to it. Staged layers no image uses are discarded. progress gets dockerd's
// lines: "Loaded image: busybox:latest" per tag, "Loaded image ID: sha256:..."
// for an image without tags. Images loaded before an error stay.
func (s *Store) Load(ctx context.Context, r io.Reader, progress ProgressFunc) error {
	if progress == nil {
		progress = func(string) {}
	}
	rc, err := archive.DecompressStream(r)
	if err != nil {
		return err
	}
	defer rc.Close()
	dir, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(dir)

	files := newArchiveFiles(dir)
	defer files.close()
	if st := s.stager; st != nil {
		files.stage = st.Stage
		files.br = bufio.NewReaderSize(nil, 64<<10)
		files.known = s.knownLayers(st, files)
	}
	if err := files.read(ctx, rc); err != nil {
		return err
	}
	var items []loadItem
	switch {
	case files.has(manifestFileName):
		items, err = files.dockerItems()
	case files.has(indexFileName):
		items, err = files.ociItems()
	default:
		return errdefs.InvalidParameter(fmt.Errorf("failed to load image: open %s: %w", manifestFileName, syscall.ENOENT))
	}
	if err != nil {
		return err
	}

	loaded := make([]*Image, 0, len(items))
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := s.loadOne(ctx, files, it, progress)
		if err != nil {
			return err
		}
		loaded = append(loaded, img)
	}
	return s.linkParents(items, loaded)
}

func (s *Store) loadOne(ctx context.Context, files *archiveFiles, it loadItem, progress ProgressFunc) (*Image, error) {
	cfg, err := ParseConfig(it.config)
	if err != nil {
		return nil, err
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("cannot load %s image on %s", cfg.OS, runtime.GOOS))
	}
	if want, got := len(it.layers), len(cfg.RootFS.DiffIDs); want != got {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid manifest, layers length mismatch: expected %d, got %d", want, got))
	}
	// Layers read from the stream are checked before any is committed, so
	// that a mismatch leaves nothing of the image behind.
	for i, diffID := range cfg.RootFS.DiffIDs {
		m := it.layers[i]
		if m.stageErr != nil {
			return nil, fmt.Errorf("load layer %d (%s): %w", i, diffID, m.stageErr)
		}
		if m.diffID != "" && m.diffID != diffID {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid diffID for layer %d: expected %q, got %q", i, diffID, m.diffID))
		}
	}
	chains := chainIDs(cfg.RootFS.DiffIDs)
	release := s.holdChains(chains)
	defer release()
	parent := ""
	for i, diffID := range cfg.RootFS.DiffIDs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, err := s.registerMember(ctx, files, it.layers[i], parent, diffID)
		if err != nil {
			return nil, fmt.Errorf("load layer %d (%s): %w", i, diffID, err)
		}
		if l.ChainID != chains[i] || l.DiffID != diffID {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid diffID for layer %d: expected %q, got %q", i, diffID, l.DiffID))
		}
		parent = l.ChainID
	}
	img, err := s.Create(ctx, it.config, "")
	if err != nil {
		return nil, err
	}
	for _, t := range it.tags {
		moved := func(old string) {
			progress(fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string", t.FamiliarString(), old))
		}
		if err := s.tag(img.ID, t, false, moved); err != nil {
			return nil, err
		}
		progress("Loaded image: " + t.FamiliarString())
	}
	if len(it.tags) == 0 {
		progress("Loaded image ID: " + img.ID)
	}
	return img, nil
}

// registerMember registers the layer member m on top of parent, expecting
// diff ID diffID (checked already for a layer read from the stream).
func (s *Store) registerMember(ctx context.Context, files *archiveFiles, m *member, parent, diffID string) (layer.Layer, error) {
	if m.staged != nil {
		l, err := m.staged.Commit(parent)
		if err != nil {
			return l, err
		}
		m.staged = nil
		m.chain = l.ChainID
		// Later images may need the content again, on another parent.
		files.held = append(files.held, s.holdChains([]string{l.ChainID}))
		return l, nil
	}
	if m.chain != "" {
		// The content is in the layer store already; only a chain of it
		// on another parent needs a copy (a blob shared by images that
		// stack it differently, which is rare).
		if l, err := s.layers.Get(layer.ChainID(parent, diffID)); err == nil {
			return l, nil
		}
		return s.copyLayer(ctx, m.chain, parent, diffID)
	}
	rc, err := m.open()
	if err != nil {
		return layer.Layer{}, err
	}
	defer rc.Close()
	return s.layers.Register(ctx, rc, parent, diffID)
}

// knownLayers returns the function that finds a registered layer by diff
// ID for files, listing the layer store when first asked, and holds what
// it finds until files is closed.
func (s *Store) knownLayers(st layerStager, files *archiveFiles) func(string) (string, bool) {
	var byDiffID map[string]string
	return func(diffID string) (string, bool) {
		if byDiffID == nil {
			byDiffID = make(map[string]string)
			for _, l := range st.List() {
				byDiffID[l.DiffID] = l.ChainID
			}
		}
		chain, ok := byDiffID[diffID]
		if !ok {
			return "", false
		}
		// Held first, then checked: a Delete that got in between the
		// listing and the hold has removed it, and none can after.
		release := s.holdChains([]string{chain})
		if _, err := s.layers.Get(chain); err != nil {
			release()
			delete(byDiffID, diffID)
			return "", false
		}
		files.held = append(files.held, release)
		return chain, true
	}
}

// linkParents records the parents that manifest.json names, when the parent
// is another image of the same archive whose history this one extends by
// one step, as dockerd checks.
func (s *Store) linkParents(items []loadItem, loaded []*Image) error {
	byID := make(map[string]*Image, len(loaded))
	for _, img := range loaded {
		byID[img.ID] = img
	}
	for i, it := range items {
		if it.parent == "" || it.parent == loaded[i].ID {
			continue
		}
		p := byID[normalizeID(it.parent)]
		if p == nil {
			continue
		}
		if !extendsHistory(loaded[i].Config.History, p.Config.History) {
			return errdefs.InvalidParameter(fmt.Errorf("image %s is not a valid parent for %s", p.ID, loaded[i].ID))
		}
		if err := s.setParent(loaded[i].ID, p.ID); err != nil {
			return err
		}
	}
	return nil
}

// extendsHistory reports whether child's history is parent's plus one step.
func extendsHistory(child, parent []History) bool {
	if len(child) == 0 && len(parent) == 0 {
		return true
	}
	if len(child)-len(parent) != 1 {
		return false
	}
	for i, p := range parent {
		c := child[i]
		if (p.Created == nil) != (c.Created == nil) || (p.Created != nil && !p.Created.Equal(*c.Created)) {
			return false
		}
		if p.Author != c.Author || p.CreatedBy != c.CreatedBy || p.Comment != c.Comment || p.EmptyLayer != c.EmptyLayer {
			return false
		}
	}
	return true
}

// manifestItem is one entry of a docker-archive's manifest.json.
type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
	Parent   string `json:",omitempty"`
}

// dockerItems reads a docker-archive: manifest.json and what it names.
func (a *archiveFiles) dockerItems() ([]loadItem, error) {
	raw, err := a.readJSON(manifestFileName)
	if err != nil {
		return nil, err
	}
	var manifest []manifestItem
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s: %w", manifestFileName, err))
	}
	if manifest == nil {
		return nil, errdefs.InvalidParameter(errors.New("invalid manifest, manifest cannot be null (but can be [])"))
	}
	items := make([]loadItem, 0, len(manifest))
	for _, m := range manifest {
		cfg, err := a.readJSON(m.Config)
		if err != nil {
			return nil, err
		}
		it := loadItem{config: cfg, parent: m.Parent}
		for _, l := range m.Layers {
			lm, err := a.get(l)
			if err != nil {
				return nil, err
			}
			it.layers = append(it.layers, lm)
		}
		for _, t := range m.RepoTags {
			n, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				return nil, err
			}
			if n.Tag() == "" || n.Digest() != "" {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid tag %q", t))
			}
			it.tags = append(it.tags, n)
		}
		items = append(items, it)
	}
	return items, nil
}

// ociDescriptor, ociPlatform, ociIndex and ociManifest are the parts of the
// OCI image-spec documents that Load reads and Save writes, in the spec's
// field order.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *ociPlatform      `json:"platform,omitempty"`
}

type ociPlatform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

type ociIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType,omitempty"`
	Manifests     []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType,omitempty"`
	Config        ociDescriptor   `json:"config"`
	Layers        []ociDescriptor `json:"layers"`
}

// blobName returns the layout path of a digest, refusing anything but a
// valid sha256 digest (so a descriptor cannot name an arbitrary member).
func blobName(digest string) (string, error) {
	d, err := reference.ParseDigest(digest)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("failed to load image: invalid digest %q: %w", digest, err))
	}
	return path.Join("blobs", d.Algorithm(), d.Encoded()), nil
}

// readBlob returns a small blob after checking its content has its digest.
func (a *archiveFiles) readBlob(digest string) ([]byte, error) {
	name, err := blobName(digest)
	if err != nil {
		return nil, err
	}
	b, err := a.readJSON(name)
	if err != nil {
		return nil, err
	}
	if got := digestOf(b); got != digest {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: blob %s has digest %s", digest, got))
	}
	return b, nil
}

// ociItems reads an OCI image layout: index.json, the manifests it leads
// to (through nested indexes, choosing the host's platform) and their
// configs and layers. Entries naming the same manifest become one image
// with all their names.
func (a *archiveFiles) ociItems() ([]loadItem, error) {
	raw, err := a.readJSON(indexFileName)
	if err != nil {
		return nil, err
	}
	var idx ociIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s: %w", indexFileName, err))
	}
	var items []loadItem
	byManifest := make(map[string]int)
	for _, d := range idx.Manifests {
		if d.Annotations[annotationDockerRefType] != "" {
			continue // attestations and other non-image manifests
		}
		mdesc, m, err := a.resolveManifest(d, 0)
		if err != nil {
			return nil, err
		}
		i, seen := byManifest[mdesc.Digest]
		if !seen {
			cfg, err := a.readBlob(m.Config.Digest)
			if err != nil {
				return nil, err
			}
			it := loadItem{config: cfg}
			for _, l := range m.Layers {
				name, err := blobName(l.Digest)
				if err != nil {
					return nil, err
				}
				lm, err := a.get(name)
				if err != nil {
					return nil, err
				}
				it.layers = append(it.layers, lm)
			}
			i = len(items)
			byManifest[mdesc.Digest] = i
			items = append(items, it)
		}
		if n, ok := nameFromAnnotations(d.Annotations); ok && !containsRef(items[i].tags, n) {
			items[i].tags = append(items[i].tags, n)
		}
	}
	return items, nil
}

func containsRef(refs []reference.Named, n reference.Named) bool {
	for _, r := range refs {
		if reference.DockerRef(r) == reference.DockerRef(n) {
			return true
		}
	}
	return false
}

// nameFromAnnotations returns the reference an index entry gives its image,
// as dockerd reads OCI archives: the full name containerd records, else the
// OCI ref name when it is a whole reference ("busybox:1", not just "1",
// which names no repository).
func nameFromAnnotations(ann map[string]string) (reference.Named, bool) {
	if v := ann[annotationContainerdName]; v != "" {
		if n, err := reference.ParseNormalizedNamed(v); err == nil {
			return reference.DockerRef(n), true
		}
	}
	if v := ann[annotationRefName]; v != "" && strings.ContainsAny(v, ":/@") {
		if n, err := reference.ParseNormalizedNamed(v); err == nil {
			return reference.DockerRef(n), true
		}
	}
	return reference.Named{}, false
}

// resolveManifest follows d to an image manifest, descending through
// indexes to the entry for the host platform.
func (a *archiveFiles) resolveManifest(d ociDescriptor, depth int) (ociDescriptor, *ociManifest, error) {
	if depth > maxIndexDepth {
		return d, nil, errdefs.InvalidParameter(errors.New("failed to load image: image indexes nested too deeply"))
	}
	b, err := a.readBlob(d.Digest)
	if err != nil {
		return d, nil, err
	}
	mt := d.MediaType
	if mt == "" {
		var probe struct {
			MediaType string          `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: manifest %s: %w", d.Digest, err))
		}
		mt = probe.MediaType
		if mt == "" && probe.Manifests != nil {
			mt = mediaTypeOCIIndex
		} else if mt == "" {
			mt = mediaTypeOCIManifest
		}
	}
	switch mt {
	case mediaTypeOCIIndex, mediaTypeDockerList:
		var idx ociIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: index %s: %w", d.Digest, err))
		}
		child, ok := pickPlatform(idx.Manifests)
		if !ok {
			return d, nil, errdefs.NotFound(fmt.Errorf("failed to load image: no manifest for linux/%s in index %s", runtime.GOARCH, d.Digest))
		}
		return a.resolveManifest(child, depth+1)
	case mediaTypeOCIManifest, mediaTypeDockerManifest:
		var m ociManifest
		if err := json.Unmarshal(b, &m); err != nil {
			return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: manifest %s: %w", d.Digest, err))
		}
		return d, &m, nil
	default:
		return d, nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: unsupported media type %q", mt))
	}
}

// pickPlatform chooses the index entry for the host: linux on this
// architecture, else the only entry when there is a single candidate that
// says nothing about its platform.
func pickPlatform(ds []ociDescriptor) (ociDescriptor, bool) {
	var unspecified []ociDescriptor
	for _, d := range ds {
		if d.Annotations[annotationDockerRefType] != "" {
			continue
		}
		if d.Platform == nil {
			unspecified = append(unspecified, d)
			continue
		}
		if d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			return d, true
		}
	}
	if len(unspecified) == 1 {
		return unspecified[0], true
	}
	return ociDescriptor{}, false
}
