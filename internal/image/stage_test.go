package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
)

func TestLooksLikeLayer(t *testing.T) {
	tarHead := layerTar(t, map[string]string{"f": "x"})[:tarBlockSize]
	gnu := bytes.Clone(tarHead)
	copy(gnu[257:], "ustar  \x00")
	tests := []struct {
		name string
		head []byte
		want bool
	}{
		{"ustar", tarHead, true},
		{"gnu tar", gnu, true},
		{"gzip", gzipped(t, []byte("x"))[:10], true},
		{"bzip2", []byte("BZh91AY&SY"), true},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68, 0x51, 0x00}, true},
		{"json", []byte(`{"architecture":"amd64"}`), false},
		{"json with ustar at 257", append(bytes.Repeat([]byte(" "), 257), `"ustar  00"}`+strings.Repeat(" ", 300)...), false},
		{"short tar head", tarHead[:300], false},
		{"empty layer (zero blocks)", make([]byte, tarBlockSize), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := looksLikeLayer(tt.head); got != tt.want {
				t.Errorf("looksLikeLayer(%q...) = %v, want %v", tt.head[:min(len(tt.head), 16)], got, tt.want)
			}
		})
	}
}

// sharedBlobArchive is a docker-archive whose blob x is the base of image
// "x:1" and the top of image "bx:1", over base b: one blob, two chains.
// It also holds two members that look like layers but no image uses.
func sharedBlobArchive(t testing.TB) (arch, x, b, cfgX, cfgBX []byte) {
	x = layerTar(t, map[string]string{"x/file": "shared content"})
	b = layerTar(t, map[string]string{"b/file": "base"})
	cfgX = testConfig(t, "x", x)
	cfgBX = testConfig(t, "bx", b, x)
	arch = buildTar(t, []tarEntry{
		{name: "x.tar", data: x},
		{name: "unused.tar", data: layerTar(t, map[string]string{"unused": "u"})},
		{name: "b.tar.gz", data: gzipped(t, b)},
		{name: "unused.tar.gz", data: gzipped(t, layerTar(t, map[string]string{"unused2": "u"}))},
		{name: "x.json", data: cfgX},
		{name: "bx.json", data: cfgBX},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{
			{"Config": "x.json", "RepoTags": []string{"x:1"}, "Layers": []string{"x.tar"}},
			{"Config": "bx.json", "RepoTags": []string{"bx:1"}, "Layers": []string{"b.tar.gz", "x.tar"}},
		})},
	})
	return arch, x, b, cfgX, cfgBX
}

func TestLoadStagesLayersOnce(t *testing.T) {
	st, fl, root := newStore(t)
	arch, x, b, cfgX, cfgBX := sharedBlobArchive(t)
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, st, "x:1").ID != sha(cfgX) || mustGet(t, st, "bx:1").ID != sha(cfgBX) {
		t.Errorf("loaded images have the wrong IDs")
	}
	want := []string{sha(x), sha(b), layer.ChainID(sha(b), sha(x))}
	slices.Sort(want)
	if got := fl.chains(); !slices.Equal(got, want) {
		t.Errorf("chains = %q, want %q", got, want)
	}
	// Four layer members staged from the stream; the shared blob's second
	// chain copied from its first through Register, and nothing else.
	if fl.stages != 4 || fl.reads != 1 {
		t.Errorf("%d stages and %d registrations, want 4 and 1 (the copy)", fl.stages, fl.reads)
	}
	if n := fl.liveStages(); n != 0 {
		t.Errorf("%d staged layers left, want the unused ones discarded", n)
	}
	var buf bytes.Buffer
	if err := fl.WriteTar(context.Background(), layer.ChainID(sha(b), sha(x)), &buf); err != nil || !bytes.Equal(buf.Bytes(), x) {
		t.Errorf("copied layer differs from the blob (%v)", err)
	}
	assertTmpEmpty(t, root)
}

func TestLoadSkipsKnownLayers(t *testing.T) {
	st, fl, _ := newStore(t)
	base := layerTar(t, map[string]string{"bin/sh": "shell"})
	top := layerTar(t, map[string]string{"app": "app"})
	createImage(t, st, fl, "present", base)
	// The archive stacks base on top, so only the chain of base alone is
	// registered: top is staged, base skipped, then copied onto top.
	cfg := testConfig(t, "new", top, base)
	arch := buildTar(t, []tarEntry{
		{name: blobPath(sha(base)), data: base},
		{name: blobPath(sha(top)), data: top},
		{name: blobPath(sha(cfg)), data: cfg},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": blobPath(sha(cfg)), "RepoTags": []string{"new:1"}, "Layers": []string{blobPath(sha(top)), blobPath(sha(base))}}})},
	})
	reads := fl.reads
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	if fl.stages != 1 || fl.reads != reads+1 {
		t.Errorf("%d stages and %d registrations, want 1 (top) and 1 (base copied onto top)", fl.stages, fl.reads-reads)
	}
	if got := mustGet(t, st, "new:1").ChainIDs; !slices.Equal(got, chainIDs([]string{sha(top), sha(base)})) {
		t.Errorf("new:1 chains = %q", got)
	}

	// Loading the same archive again reads nothing: every chain is there.
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	if fl.stages != 1 || fl.reads != reads+1 {
		t.Errorf("reloading staged or registered layers again: %d stages, %d registrations", fl.stages, fl.reads-reads)
	}
	if n := fl.liveStages(); n != 0 {
		t.Errorf("%d staged layers left", n)
	}
}

func TestLoadBadLayerMember(t *testing.T) {
	l := layerTar(t, map[string]string{"f": "x"})
	cfg := testConfig(t, "c", l)
	bad := append([]byte{0x1f, 0x8b, 0x08}, bytes.Repeat([]byte("not gzip"), 100)...)
	archive := func(layers ...string) []byte {
		return buildTar(t, []tarEntry{
			{name: "bad.tar.gz", data: bad},
			{name: "l.tar", data: l},
			{name: "c.json", data: cfg},
			{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": "c.json", "RepoTags": []string{"x:1"}, "Layers": layers}})},
		})
	}
	// Unused, a member that fails to unpack is no error.
	st, fl, _ := newStore(t)
	if err := st.Load(context.Background(), bytes.NewReader(archive("l.tar")), nil); err != nil {
		t.Fatalf("Load with an unused broken layer member = %v", err)
	}
	// Used, it fails the load and nothing is registered.
	st, fl, root := newStore(t)
	err := st.Load(context.Background(), bytes.NewReader(archive("bad.tar.gz")), nil)
	if !errors.Is(err, errdefs.ErrInvalidParameter) || !strings.Contains(err.Error(), "load layer 0") {
		t.Errorf("Load with a broken layer = %v, want an invalid parameter error about layer 0", err)
	}
	if len(fl.chains()) != 0 || len(st.List()) != 0 || fl.liveStages() != 0 {
		t.Errorf("after a failed load: chains %v, %d images, %d live stages", fl.chains(), len(st.List()), fl.liveStages())
	}
	assertTmpEmpty(t, root)

	// A layer member cut short by the end of the archive is a broken
	// archive, whichever member it is.
	full := archive("l.tar")
	cut := full[:bytes.Index(full, []byte("f\x00"))+100]
	st, fl, _ = newStore(t)
	err = st.Load(context.Background(), bytes.NewReader(cut), nil)
	if !errors.Is(err, errdefs.ErrInvalidParameter) || !strings.HasPrefix(err.Error(), "Error processing tar file(exit status 1): ") {
		t.Errorf("Load(truncated in a layer) = %v, want dockerd's tar error", err)
	}
	if fl.liveStages() != 0 {
		t.Errorf("%d staged layers left", fl.liveStages())
	}
}

// TestLoadWithoutStaging loads through a layer store that cannot stage:
// layers are spilled and registered from the files.
func TestLoadWithoutStaging(t *testing.T) {
	root := t.TempDir()
	fl := newFakeLayers()
	st, err := Open(root, registerOnly{fl})
	if err != nil {
		t.Fatal(err)
	}
	arch, x, b, _, _ := sharedBlobArchive(t)
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	if fl.stages != 0 || fl.reads != 3 {
		t.Errorf("%d stages, %d registrations, want 0 and 3", fl.stages, fl.reads)
	}
	if got := mustGet(t, st, "bx:1").ChainIDs; !slices.Equal(got, chainIDs([]string{sha(b), sha(x)})) {
		t.Errorf("bx:1 chains = %q", got)
	}
	assertTmpEmpty(t, root)
}

// realStores opens an image store over a real layer store.
func realStores(t *testing.T) (*Store, *layer.Store, string, string) {
	t.Helper()
	dir := t.TempDir()
	layersRoot := filepath.Join(dir, "layers")
	ls, err := layer.Open(layersRoot)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(filepath.Join(dir, "image"), ls)
	if err != nil {
		t.Fatal(err)
	}
	return st, ls, layersRoot, filepath.Join(dir, "image")
}

// assertNoLayerTemps fails if the layer store holds temporary directories.
func assertNoLayerTemps(t *testing.T, layersRoot string) {
	t.Helper()
	entries, err := os.ReadDir(layersRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary entry left in the layer store: %s", e.Name())
		}
	}
}

func TestLoadStagedRealLayers(t *testing.T) {
	st, ls, layersRoot, root := realStores(t)
	arch, x, b, _, cfgBX := sharedBlobArchive(t)
	if err := st.Load(context.Background(), bytes.NewReader(arch), nil); err != nil {
		t.Fatal(err)
	}
	var chains []string
	for _, l := range ls.List() {
		chains = append(chains, l.ChainID)
	}
	want := []string{sha(x), sha(b), layer.ChainID(sha(b), sha(x))}
	slices.Sort(want)
	if !slices.Equal(chains, want) {
		t.Errorf("layer store chains = %q, want %q (unused members discarded)", chains, want)
	}
	for _, c := range []string{sha(x), layer.ChainID(sha(b), sha(x))} {
		var buf bytes.Buffer
		if err := ls.WriteTar(context.Background(), c, &buf); err != nil || !bytes.Equal(buf.Bytes(), x) {
			t.Errorf("WriteTar(%s) differs from the shared blob (%v)", c, err)
		}
		dirs, err := ls.DiffDirs(c)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dirs[0], "x", "file")); err != nil || string(got) != "shared content" {
			t.Errorf("%s: x/file = %q, %v", c, got, err)
		}
	}
	if got := mustGet(t, st, "bx:1"); got.ID != sha(cfgBX) || got.Size != int64(len("base")+len("shared content")) {
		t.Errorf("bx:1 = %s of size %d", got.ID, got.Size)
	}
	assertNoLayerTemps(t, layersRoot)
	assertTmpEmpty(t, root)
}

func TestLoadStagedMismatchLeavesNothing(t *testing.T) {
	st, ls, layersRoot, root := realStores(t)
	good := layerTar(t, map[string]string{"f": "good"})
	other := layerTar(t, map[string]string{"f": "evil"})
	base := layerTar(t, map[string]string{"base": "b"})
	cfg := testConfig(t, "c", base, good)
	arch := buildTar(t, []tarEntry{
		{name: "base.tar", data: base},
		{name: "l.tar", data: other},
		{name: "c.json", data: cfg},
		{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": "c.json", "RepoTags": []string{"x:1"}, "Layers": []string{"base.tar", "l.tar"}}})},
	})
	err := st.Load(context.Background(), bytes.NewReader(arch), nil)
	want := `invalid diffID for layer 1: expected "` + sha(good) + `", got "` + sha(other) + `"`
	if !errors.Is(err, errdefs.ErrInvalidParameter) || err.Error() != want {
		t.Errorf("Load = %v, want %q", err, want)
	}
	if l := ls.List(); len(l) != 0 {
		t.Errorf("layers registered despite the mismatch: %+v", l)
	}
	if n := len(st.List()); n != 0 {
		t.Errorf("%d images after a failed load", n)
	}
	assertNoLayerTemps(t, layersRoot)
	assertTmpEmpty(t, root)
}
