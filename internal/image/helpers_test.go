package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"testing"

	"skiffd/internal/archive"
	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
)

// fakeLayers is an in-memory LayerStore with the documented behaviour of
// internal/layer: diff ID verification, existing chains returned unread.
type fakeLayers struct {
	mu      sync.Mutex
	layers  map[string]layer.Layer
	tars    map[string][]byte
	removed []string
	reads   int // Register calls that read their input
	stages  int // Stage calls that succeeded
	live    int // staged layers not yet committed or discarded
	// hideTarSize makes Get report TarSize 0, as for a layer whose tar
	// size was not recorded.
	hideTarSize bool
}

func newFakeLayers() *fakeLayers {
	return &fakeLayers{layers: make(map[string]layer.Layer), tars: make(map[string][]byte)}
}

func (f *fakeLayers) Register(ctx context.Context, r io.Reader, parent, want string) (layer.Layer, error) {
	f.mu.Lock()
	if parent != "" {
		if _, ok := f.layers[parent]; !ok {
			f.mu.Unlock()
			return layer.Layer{}, errdefs.NotFound(fmt.Errorf("no such layer %s", parent))
		}
	}
	if want != "" {
		if l, ok := f.layers[layer.ChainID(parent, want)]; ok {
			f.mu.Unlock()
			return l, nil
		}
	}
	f.reads++
	f.mu.Unlock()
	// Read unlocked: r may be WriteTar of this store through a pipe.
	data, size, err := readFakeLayer(r)
	if err != nil {
		return layer.Layer{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	diffID := digestOf(data)
	if want != "" && want != diffID {
		return layer.Layer{}, errdefs.InvalidParameter(fmt.Errorf("layer diff ID mismatch: expected %s, got %s", want, diffID))
	}
	c := layer.ChainID(parent, diffID)
	if l, ok := f.layers[c]; ok {
		return l, nil
	}
	l := layer.Layer{ChainID: c, DiffID: diffID, Parent: parent, Size: size, TarSize: int64(len(data))}
	f.layers[c] = l
	f.tars[c] = data
	return l, nil
}

// readFakeLayer reads a layer stream as the real store would, returning
// the uncompressed tar and its content size.
func readFakeLayer(r io.Reader) ([]byte, int64, error) {
	rc, err := archive.DecompressStream(r)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, 0, err
	}
	var size int64
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, errdefs.InvalidParameter(fmt.Errorf("bad layer tar: %w", err))
		}
		size += hdr.Size
	}
	return data, size, nil
}

// Stage reads a whole layer into memory; Commit registers it.
func (f *fakeLayers) Stage(ctx context.Context, r io.Reader) (stagedLayer, error) {
	data, size, err := readFakeLayer(r)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stages++
	f.live++
	return &fakeStaged{f: f, data: data, size: size, diffID: digestOf(data)}, nil
}

type fakeStaged struct {
	f      *fakeLayers
	data   []byte
	size   int64
	diffID string
	done   bool
}

func (st *fakeStaged) DiffID() string { return st.diffID }

func (st *fakeStaged) Commit(parent string) (layer.Layer, error) {
	f := st.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.done {
		return layer.Layer{}, errors.New("staged layer already used")
	}
	if _, ok := f.layers[parent]; parent != "" && !ok {
		return layer.Layer{}, errdefs.NotFound(fmt.Errorf("no such layer %s", parent))
	}
	st.done = true
	f.live--
	c := layer.ChainID(parent, st.diffID)
	if l, ok := f.layers[c]; ok {
		return l, nil
	}
	l := layer.Layer{ChainID: c, DiffID: st.diffID, Parent: parent, Size: st.size, TarSize: int64(len(st.data))}
	f.layers[c] = l
	f.tars[c] = st.data
	return l, nil
}

func (st *fakeStaged) Discard() error {
	st.f.mu.Lock()
	defer st.f.mu.Unlock()
	if !st.done {
		st.done = true
		st.f.live--
	}
	return nil
}

// List returns the registered layers.
func (f *fakeLayers) List() []layer.Layer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []layer.Layer
	for _, l := range f.layers {
		out = append(out, l)
	}
	return out
}

// liveStages counts the staged layers neither committed nor discarded.
func (f *fakeLayers) liveStages() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

// registerOnly hides the staging side of a layer store, so that Load
// spills layers to files and registers them from there.
type registerOnly struct{ LayerStore }

func (f *fakeLayers) Get(chain string) (layer.Layer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.layers[chain]
	if !ok {
		return layer.Layer{}, errdefs.NotFound(fmt.Errorf("layer %s does not exist", chain))
	}
	if f.hideTarSize {
		l.TarSize = 0
	}
	return l, nil
}

func (f *fakeLayers) WriteTar(ctx context.Context, chain string, w io.Writer) error {
	f.mu.Lock()
	data, ok := f.tars[chain]
	f.mu.Unlock()
	if !ok {
		return errdefs.NotFound(fmt.Errorf("layer %s does not exist", chain))
	}
	_, err := w.Write(data)
	return err
}

func (f *fakeLayers) Remove(chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.layers[chain]; !ok {
		return errdefs.NotFound(errors.New("no such layer"))
	}
	for _, l := range f.layers {
		if l.Parent == chain {
			return fmt.Errorf("layer %s still has child %s", chain, l.ChainID)
		}
	}
	delete(f.layers, chain)
	delete(f.tars, chain)
	f.removed = append(f.removed, chain)
	return nil
}

func (f *fakeLayers) chains() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for c := range f.layers {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// layerTar returns a tar holding files (name -> content), in name order.
func layerTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// testConfig returns a config over the given uncompressed layer tars, made
// distinct by comment.
func testConfig(t testing.TB, comment string, layers ...[]byte) []byte {
	t.Helper()
	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = sha(l)
	}
	b, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"comment":      comment,
		"config":       map[string]any{"Cmd": []string{"sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarEntry is one member of an outer archive built by a test.
type tarEntry struct {
	name     string
	data     []byte
	typeflag byte
	linkname string
}

func buildTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		tf := e.typeflag
		if tf == 0 {
			tf = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: tf, Linkname: e.linkname, Mode: 0o644}
		if tf == tar.TypeReg {
			hdr.Size = int64(len(e.data))
		}
		if tf == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if tf == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newStore opens a store in a fresh directory over a fresh fake layer store.
func newStore(t testing.TB) (*Store, *fakeLayers, string) {
	t.Helper()
	root := t.TempDir()
	fl := newFakeLayers()
	st, err := Open(root, fl)
	if err != nil {
		t.Fatal(err)
	}
	return st, fl, root
}

// register puts layer tars into the layer store, stacked in order.
func register(t testing.TB, fl LayerStore, layers ...[]byte) {
	t.Helper()
	parent := ""
	for _, l := range layers {
		info, err := fl.Register(context.Background(), bytes.NewReader(l), parent, "")
		if err != nil {
			t.Fatal(err)
		}
		parent = info.ChainID
	}
}

// progressLog collects progress lines.
type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
}
