package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
)

// twoImageArchive is a docker-archive in the pre-25 layout: two images
// sharing a base layer, <id>/layer.tar directories, the shared layer linked
// by a symlink as old dockerd wrote it, one layer gzip-compressed.
func twoImageArchive(t testing.TB) (archive []byte, cfgA, cfgB []byte) {
	base := layerTar(t, map[string]string{"bin/sh": "shell"})
	top := layerTar(t, map[string]string{"app/run": "run"})
	cfgA = testConfig(t, "a", base)
	cfgB = testConfig(t, "b", base, top)
	manifest := []map[string]any{
		{"Config": strings.TrimPrefix(sha(cfgA), "sha256:") + ".json", "RepoTags": []string{"busybox:latest"}, "Layers": []string{"base/layer.tar"}},
		{"Config": strings.TrimPrefix(sha(cfgB), "sha256:") + ".json", "RepoTags": []string{"me/app:1", "me/app:2"}, "Layers": []string{"base2/layer.tar", "top/layer.tar"}},
	}
	archive = buildTar(t, []tarEntry{
		{name: strings.TrimPrefix(sha(cfgA), "sha256:") + ".json", data: cfgA},
		{name: strings.TrimPrefix(sha(cfgB), "sha256:") + ".json", data: cfgB},
		{name: "base/", typeflag: tar.TypeDir},
		{name: "base/layer.tar", data: base},
		{name: "base2/", typeflag: tar.TypeDir},
		{name: "base2/layer.tar", typeflag: tar.TypeSymlink, linkname: "../base/layer.tar"},
		{name: "top/", typeflag: tar.TypeDir},
		{name: "top/layer.tar", data: gzipped(t, top)},
		{name: "manifest.json", data: mustJSON(t, manifest)},
	})
	return archive, cfgA, cfgB
}

func TestLoadDockerArchive(t *testing.T) {
	st, fl, _ := newStore(t)
	arch, cfgA, cfgB := twoImageArchive(t)
	var p progressLog
	if err := st.Load(context.Background(), bytes.NewReader(arch), p.add); err != nil {
		t.Fatal(err)
	}
	want := []string{"Loaded image: busybox:latest", "Loaded image: me/app:1", "Loaded image: me/app:2"}
	if !slices.Equal(p.lines, want) {
		t.Errorf("progress = %q, want %q", p.lines, want)
	}
	if got := mustGet(t, st, "busybox").ID; got != sha(cfgA) {
		t.Errorf("busybox = %s, want %s", got, sha(cfgA))
	}
	b := mustGet(t, st, "me/app:2")
	if b.ID != sha(cfgB) || len(b.ChainIDs) != 2 {
		t.Errorf("me/app:2 = %s with %d layers, want %s with 2", b.ID, len(b.ChainIDs), sha(cfgB))
	}
	if n := len(fl.chains()); n != 2 {
		t.Errorf("layer store holds %d chains, want 2 (base shared)", n)
	}
	if !b.LastTagTime.IsZero() {
		t.Errorf("LastTagTime = %v after load, want zero as dockerd leaves it", b.LastTagTime)
	}

	// Loading again, gzip-compressed as a whole, finds everything in
	// place; a tag that pointed elsewhere moves with dockerd's message.
	other := createImage(t, st, fl, "other", layerTar(t, map[string]string{"o": "o"}))
	if err := st.Tag(other.ID, mustNamed(t, "me/app:1")); err != nil {
		t.Fatal(err)
	}
	p = progressLog{}
	if err := st.Load(context.Background(), bytes.NewReader(gzipped(t, arch)), p.add); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"Loaded image: busybox:latest",
		"The image me/app:1 already exists, renaming the old one with ID " + other.ID + " to empty string",
		"Loaded image: me/app:1",
		"Loaded image: me/app:2",
	}
	if !slices.Equal(p.lines, want) {
		t.Errorf("progress = %q, want %q", p.lines, want)
	}
	if got := mustGet(t, st, "me/app:1").ID; got != sha(cfgB) {
		t.Errorf("me/app:1 = %s after load, want %s", got, sha(cfgB))
	}
}

func TestLoadUntagged(t *testing.T) {
	st, _, _ := newStore(t)
	l := layerTar(t, map[string]string{"f": "x"})
	cfg := testConfig(t, "u", l)
	arch := buildTar(t, []tarEntry{
		{name: "blobs/sha256/" + strings.TrimPrefix(sha(cfg), "sha256:"), data: cfg},
		{name: "blobs/sha256/" + strings.TrimPrefix(sha(l), "sha256:"), data: l},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": blobPath(sha(cfg)), "RepoTags": nil, "Layers": []string{blobPath(sha(l))}}})},
	})
	var p progressLog
	if err := st.Load(context.Background(), bytes.NewReader(arch), p.add); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Loaded image ID: " + sha(cfg)}; !slices.Equal(p.lines, want) {
		t.Errorf("progress = %q, want %q", p.lines, want)
	}
}

// ociLayout builds an OCI image layout whose index.json names a
// multi-platform index (linux/<host arch> and another architecture) and
// a plain manifest, with the names dockerd and containerd annotate.
func ociLayout(t testing.TB) (layout []byte, hostCfg, otherCfg []byte) {
	base := layerTar(t, map[string]string{"etc/os": "linux"})
	top := layerTar(t, map[string]string{"srv": "srv"})
	hostCfg = testConfig(t, "host", base, top)
	foreign := layerTar(t, map[string]string{"foreign": "x"})
	foreignCfg := testConfig(t, "foreign", foreign)
	otherCfg = testConfig(t, "other", base)

	var entries []tarEntry
	blob := func(b []byte) string {
		entries = append(entries, tarEntry{name: "blobs/sha256/" + strings.TrimPrefix(sha(b), "sha256:"), data: b})
		return sha(b)
	}
	gzTop := gzipped(t, top)
	manifest := func(cfg []byte, layers ...[]byte) ociDescriptor {
		m := ociManifest{SchemaVersion: 2, MediaType: mediaTypeOCIManifest,
			Config: ociDescriptor{MediaType: mediaTypeOCIConfig, Digest: blob(cfg), Size: int64(len(cfg))}}
		for _, l := range layers {
			mt := mediaTypeOCILayer
			if bytes.Equal(l, gzTop) {
				mt += "+gzip"
			}
			m.Layers = append(m.Layers, ociDescriptor{MediaType: mt, Digest: blob(l), Size: int64(len(l))})
		}
		b := mustJSON(t, m)
		return ociDescriptor{MediaType: mediaTypeOCIManifest, Digest: blob(b), Size: int64(len(b))}
	}
	hostM := manifest(hostCfg, base, gzTop)
	hostM.Platform = &ociPlatform{OS: "linux", Architecture: runtime.GOARCH}
	foreignM := manifest(foreignCfg, foreign)
	foreignM.Platform = &ociPlatform{OS: "linux", Architecture: "mips64le"}
	attest := foreignM
	attest.Platform = &ociPlatform{OS: "unknown", Architecture: "unknown"}
	attest.Annotations = map[string]string{annotationDockerRefType: "attestation-manifest"}
	nested := mustJSON(t, ociIndex{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: []ociDescriptor{foreignM, attest, hostM}})
	nestedD := ociDescriptor{MediaType: mediaTypeOCIIndex, Digest: blob(nested), Size: int64(len(nested))}

	otherM := manifest(otherCfg, base)
	top1 := nestedD
	top1.Annotations = map[string]string{annotationContainerdName: "docker.io/library/multi:1", annotationRefName: "1"}
	top2 := otherM
	top2.Annotations = map[string]string{annotationRefName: "localhost:5000/other:2"}
	top3 := otherM
	top3.Annotations = map[string]string{annotationRefName: "3"} // a bare tag names nothing
	index := mustJSON(t, ociIndex{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: []ociDescriptor{top1, top2, top3}})
	entries = append(entries,
		tarEntry{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		tarEntry{name: "index.json", data: index})
	return buildTar(t, entries), hostCfg, otherCfg
}

func TestLoadOCILayout(t *testing.T) {
	st, _, _ := newStore(t)
	layout, hostCfg, otherCfg := ociLayout(t)
	var p progressLog
	if err := st.Load(context.Background(), bytes.NewReader(layout), p.add); err != nil {
		t.Fatal(err)
	}
	want := []string{"Loaded image: multi:1", "Loaded image: localhost:5000/other:2"}
	if !slices.Equal(p.lines, want) {
		t.Errorf("progress = %q, want %q", p.lines, want)
	}
	if got := mustGet(t, st, "multi:1").ID; got != sha(hostCfg) {
		t.Errorf("multi:1 = %s, want the host platform's image %s", got, sha(hostCfg))
	}
	if got := mustGet(t, st, "localhost:5000/other:2").ID; got != sha(otherCfg) {
		t.Errorf("other:2 = %s, want %s", got, sha(otherCfg))
	}
	if n := len(st.List()); n != 2 {
		t.Errorf("List() = %d images, want 2 (foreign platform not loaded)", n)
	}
}

func TestLoadErrors(t *testing.T) {
	l := layerTar(t, map[string]string{"f": "x"})
	other := layerTar(t, map[string]string{"f": "y"})
	cfg := testConfig(t, "c", l)
	withManifest := func(cfgName string, layers []string, extra ...tarEntry) []byte {
		entries := append([]tarEntry{
			{name: "c.json", data: cfg},
			{name: "l.tar", data: l},
			{name: "o.tar", data: other},
			{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": cfgName, "RepoTags": []string{"x:1"}, "Layers": layers}})},
		}, extra...)
		return buildTar(t, entries)
	}
	tests := []struct {
		name  string
		input []byte
		kind  errdefs.Kind
		want  string
	}{
		{"not a tar", []byte("notatar\n"), errdefs.ErrInvalidParameter, "Error processing tar file(exit status 1): unexpected EOF"},
		{"garbage block", bytes.Repeat([]byte("x"), 1024), errdefs.ErrInvalidParameter, "Error processing tar file(exit status 1): archive/tar: invalid tar header"},
		{"empty tar", buildTar(t, nil), errdefs.ErrInvalidParameter, "failed to load image: open manifest.json: no such file or directory"},
		{"empty input", nil, errdefs.ErrInvalidParameter, "failed to load image: open manifest.json: no such file or directory"},
		{"null manifest", buildTar(t, []tarEntry{{name: "manifest.json", data: []byte("null")}}), errdefs.ErrInvalidParameter, "invalid manifest, manifest cannot be null (but can be [])"},
		{"missing config", withManifest("nope.json", []string{"l.tar"}), errdefs.ErrInvalidParameter, "failed to load image: open nope.json: no such file or directory"},
		{"missing layer", withManifest("c.json", []string{"missing.tar"}), errdefs.ErrInvalidParameter, "failed to load image: open missing.tar: no such file or directory"},
		{"layer count", withManifest("c.json", []string{"l.tar", "l.tar"}), errdefs.ErrInvalidParameter, "invalid manifest, layers length mismatch: expected 2, got 1"},
		{"diff id mismatch", withManifest("c.json", []string{"o.tar"}), errdefs.ErrInvalidParameter, "invalid diffID for layer 0: expected " + strconv.Quote(sha(l))},
		{"symlink loop", withManifest("c.json", []string{"loop"},
			tarEntry{name: "loop", typeflag: tar.TypeSymlink, linkname: "loop2"},
			tarEntry{name: "loop2", typeflag: tar.TypeSymlink, linkname: "loop"}), errdefs.ErrInvalidParameter, "no such file"},
		{"xz", append([]byte{0xFD, '7', 'z', 'X', 'Z', 0x00}, make([]byte, 64)...), errdefs.ErrInvalidParameter, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, fl, root := newStore(t)
			err := st.Load(context.Background(), bytes.NewReader(tt.input), nil)
			if err == nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want %v error containing %q", err, tt.kind, tt.want)
			}
			if n := fl.liveStages(); n != 0 {
				t.Errorf("%d staged layers left by a failed load", n)
			}
			if n := len(st.List()); n != 0 {
				t.Errorf("%d images created by a failed load", n)
			}
			if tt.name == "diff id mismatch" && len(fl.chains()) != 0 {
				t.Errorf("layers registered despite the mismatch: %v", fl.chains())
			}
			assertTmpEmpty(t, root)
		})
	}
}

func assertTmpEmpty(t *testing.T, root string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("tmp not cleaned: %v", entries)
	}
}

func TestLoadHostileNames(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	st, err := Open(root, newFakeLayers())
	if err != nil {
		t.Fatal(err)
	}
	l := layerTar(t, map[string]string{"f": "x"})
	cfg := testConfig(t, "c", l)
	arch := buildTar(t, []tarEntry{
		{name: "../../escape", data: []byte("evil")},
		{name: "/abs/escape", data: []byte("evil")},
		{name: "../", typeflag: tar.TypeDir},
		{name: "link", typeflag: tar.TypeSymlink, linkname: "../../../etc/passwd"},
		{name: "hard", typeflag: tar.TypeLink, linkname: "/etc/shadow"},
		{name: "../cfg.json", data: cfg},
		{name: "./layer/../layer.tar", data: l},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": "/cfg.json", "RepoTags": []string{"safe:1"}, "Layers": []string{"../../layer.tar"}}})},
	})
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatalf("Load = %v (names are confined to the archive, so this loads)", err)
	}
	if got := mustGet(t, st, "safe:1").ID; got != sha(cfg) {
		t.Errorf("safe:1 = %s, want %s", got, sha(cfg))
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "root" {
		t.Errorf("entries beside the store root: %v", entries)
	}
	if _, err := os.Stat("/abs/escape"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/abs/escape exists: %v", err)
	}
	assertTmpEmpty(t, root)

	// A symlink that leaves the archive resolves inside it, to nothing.
	bad := buildTar(t, []tarEntry{
		{name: "cfg.json", data: cfg},
		{name: "layer.tar", typeflag: tar.TypeSymlink, linkname: "../../../../etc/hostname"},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": "cfg.json", "Layers": []string{"layer.tar"}}})},
	})
	if err := st.Load(context.Background(), bytes.NewReader(bad), nil); err == nil || !strings.Contains(err.Error(), "open etc/hostname: no such file") {
		t.Errorf("Load(symlink out of archive) = %v, want a missing member error", err)
	}
}

func TestLoadLargeLayerSpills(t *testing.T) {
	st, fl, _ := newStore(t)
	big := layerTar(t, map[string]string{"big": strings.Repeat("z", 3*maxMemberInMemory)})
	cfg := testConfig(t, "big", big)
	arch := buildTar(t, []tarEntry{
		{name: "cfg.json", data: cfg},
		{name: "big.tar", data: big},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": "cfg.json", "RepoTags": []string{"big:1"}, "Layers": []string{"big.tar"}}})},
	})
	files, err := readArchive(context.Background(), bytes.NewReader(arch), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m := files.files["big.tar"]; m == nil || m.path == "" || m.data != nil {
		t.Errorf("big member kept in memory: %+v", m)
	}
	if m := files.files["cfg.json"]; m == nil || m.path != "" {
		t.Errorf("small member spilled: %+v", m)
	}
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := fl.WriteTar(context.Background(), sha(big), &buf); err != nil || !bytes.Equal(buf.Bytes(), big) {
		t.Errorf("registered layer differs from the archive's (%v)", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	src, srcLayers, _ := newStore(t)
	arch, cfgA, cfgB := twoImageArchive(t)
	if err := src.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := src.Save(context.Background(), &out, []string{"busybox", "me/app:2"}); err != nil {
		t.Fatal(err)
	}

	// The archive has docker 25's shape, each layer blob once.
	names, files := readTar(t, out.Bytes())
	base := layerTar(t, map[string]string{"bin/sh": "shell"})
	top := layerTar(t, map[string]string{"app/run": "run"})
	var blobNames []string
	for _, d := range []string{sha(cfgA), sha(cfgB), sha(base), sha(top)} {
		blobNames = append(blobNames, blobPath(d))
	}
	for n := range files {
		if strings.HasPrefix(n, "blobs/sha256/") && !slices.Contains(blobNames, n) {
			blobNames = append(blobNames, n) // the OCI manifests
		}
	}
	slices.Sort(blobNames)
	want := append([]string{"blobs/", "blobs/sha256/"}, blobNames...)
	want = append(want, "index.json", "manifest.json", "oci-layout", "repositories")
	if !slices.Equal(names, want) {
		t.Errorf("entries = %q\nwant %q", names, want)
	}
	if len(blobNames) != 6 {
		t.Errorf("%d blobs, want 2 configs + 2 layers + 2 manifests", len(blobNames))
	}
	var manifest []manifestItem
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 2 || manifest[0].Config != blobPath(sha(cfgA)) || !slices.Equal(manifest[0].RepoTags, []string{"busybox:latest"}) ||
		!slices.Equal(manifest[1].RepoTags, []string{"me/app:2"}) || !slices.Equal(manifest[1].Layers, []string{blobPath(sha(base)), blobPath(sha(top))}) {
		t.Errorf("manifest.json = %s", files["manifest.json"])
	}
	if got, want := string(files["repositories"]), `{"busybox":{"latest":"`+strings.TrimPrefix(sha(base), "sha256:")+`"},"me/app":{"2":"`+strings.TrimPrefix(sha(top), "sha256:")+`"}}`+"\n"; got != want {
		t.Errorf("repositories = %s, want %s", got, want)
	}
	var idx ociIndex
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Annotations[annotationContainerdName] != "docker.io/library/busybox:latest" ||
		idx.Manifests[0].Annotations[annotationRefName] != "latest" {
		t.Errorf("index.json = %s", files["index.json"])
	}
	var m ociManifest
	if err := json.Unmarshal(files[blobPath(idx.Manifests[1].Digest)], &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != sha(cfgB) || m.Config.MediaType != mediaTypeOCIConfig || len(m.Layers) != 2 ||
		m.Layers[1].MediaType != mediaTypeOCILayer || m.Layers[1].Size != int64(len(top)) {
		t.Errorf("OCI manifest = %+v", m)
	}

	// Saving is deterministic.
	var again bytes.Buffer
	if err := src.Save(context.Background(), &again, []string{"busybox", "me/app:2"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Error("two saves of the same images differ")
	}
	// Layers whose tar size is unknown are spilled first, same output.
	srcLayers.hideTarSize = true
	again.Reset()
	if err := src.Save(context.Background(), &again, []string{"busybox", "me/app:2"}); err != nil {
		t.Fatal(err)
	}
	srcLayers.hideTarSize = false
	if !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Error("saving through temporary files gives different bytes")
	}

	// Loading it elsewhere gives the same IDs and only the saved tags.
	dst, _, _ := newStore(t)
	var p progressLog
	if err := dst.Load(context.Background(), bytes.NewReader(out.Bytes()), p.add); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Loaded image: busybox:latest", "Loaded image: me/app:2"}; !slices.Equal(p.lines, want) {
		t.Errorf("progress = %q, want %q", p.lines, want)
	}
	if mustGet(t, dst, "busybox").ID != sha(cfgA) || mustGet(t, dst, "me/app:2").ID != sha(cfgB) {
		t.Error("IDs changed across save and load")
	}
	if _, err := dst.Get("me/app:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("me/app:1 was not saved but loads: %v", err)
	}

	// The OCI side of the same archive loads on its own too.
	var ociOnly []tarEntry
	for _, n := range names {
		if n != "manifest.json" && n != "repositories" && !strings.HasSuffix(n, "/") {
			ociOnly = append(ociOnly, tarEntry{name: n, data: files[n]})
		}
	}
	dst2, _, _ := newStore(t)
	if err := dst2.Load(context.Background(), bytes.NewReader(buildTar(t, ociOnly)), nil); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, dst2, "me/app:2").ID != sha(cfgB) {
		t.Error("OCI index of a saved archive does not load the same image")
	}
}

func TestSaveSelection(t *testing.T) {
	st, _, _ := newStore(t)
	arch, cfgA, cfgB := twoImageArchive(t)
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		refs []string
		want [][]string // RepoTags per image, in order
		ids  []string
	}{
		{[]string{"me/app"}, [][]string{{"me/app:1", "me/app:2"}}, []string{sha(cfgB)}},
		{[]string{sha(cfgA)}, [][]string{nil}, []string{sha(cfgA)}},
		{[]string{strings.TrimPrefix(sha(cfgB), "sha256:")[:10], "busybox:latest"}, [][]string{nil, {"busybox:latest"}}, []string{sha(cfgB), sha(cfgA)}},
		{[]string{"me/app:1", "me/app:1", "me/app:2"}, [][]string{{"me/app:1", "me/app:2"}}, []string{sha(cfgB)}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.refs, ","), func(t *testing.T) {
			var out bytes.Buffer
			if err := st.Save(context.Background(), &out, tt.refs); err != nil {
				t.Fatal(err)
			}
			_, files := readTar(t, out.Bytes())
			var manifest []manifestItem
			if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
				t.Fatal(err)
			}
			if len(manifest) != len(tt.want) {
				t.Fatalf("Save(%q) wrote %d images, want %d", tt.refs, len(manifest), len(tt.want))
			}
			for i, m := range manifest {
				if !slices.Equal(m.RepoTags, tt.want[i]) || m.Config != blobPath(tt.ids[i]) {
					t.Errorf("image %d = %s %q, want %s %q", i, m.Config, m.RepoTags, tt.ids[i], tt.want[i])
				}
			}
		})
	}
	for _, ref := range []string{"nosuch", "busybox:2", "sha256:" + strings.Repeat("0", 64), "0000000"} {
		var out bytes.Buffer
		err := st.Save(context.Background(), &out, []string{ref})
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasPrefix(err.Error(), "No such image: ") {
			t.Errorf("Save(%q) = %v, want NotFound", ref, err)
		}
		if out.Len() != 0 {
			t.Errorf("Save(%q) wrote %d bytes before failing", ref, out.Len())
		}
	}
}

// readTar lists an archive's entry names in order and its files' content.
func readTar(t testing.TB, b []byte) ([]string, map[string][]byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	files := make(map[string][]byte)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[hdr.Name] = data
		}
	}
}

func TestConcurrentLoads(t *testing.T) {
	st, fl, _ := newStore(t)
	arch, cfgA, cfgB := twoImageArchive(t)
	layout, _, _ := ociLayout(t)
	errs := make(chan error, 8)
	for i := range 8 {
		in := arch
		if i%2 == 1 {
			in = layout
		}
		go func() { errs <- st.Load(context.Background(), bytes.NewReader(in), nil) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if mustGet(t, st, "busybox").ID != sha(cfgA) || mustGet(t, st, "me/app:1").ID != sha(cfgB) {
		t.Error("concurrent loads lost an image")
	}
	// Every image's layers are present.
	for _, img := range st.List() {
		for _, c := range img.ChainIDs {
			if _, err := fl.Get(c); err != nil {
				t.Errorf("image %s misses layer %s", img.ID, c)
			}
		}
	}
}
