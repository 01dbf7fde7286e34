package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary archives to Load: it must never panic, never
// create anything outside the store root, and leave no scratch files or
// staged layers.
func FuzzLoad(f *testing.F) {
	arch, _, _ := twoImageArchive(f)
	layout, _, _ := ociLayout(f)
	f.Add(arch)
	f.Add(layout)
	f.Add(gzipped(f, arch))
	shared, _, _, _, _ := sharedBlobArchive(f)
	f.Add(shared)
	f.Add([]byte("notatar\n"))
	f.Add([]byte{})
	f.Add(buildTar(f, []tarEntry{
		{name: "../x", data: []byte("x")},
		{name: "manifest.json", data: []byte(`[{"Config":"../x","Layers":["/etc/passwd"]}]`)},
		{name: "l", typeflag: tar.TypeSymlink, linkname: "/"},
	}))
	f.Add(buildTar(f, []tarEntry{
		{name: "index.json", data: []byte(`{"manifests":[{"digest":"sha256:` + string(bytes.Repeat([]byte("a"), 64)) + `"}]}`)},
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		fl := newFakeLayers()
		st, err := Open(root, fl)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Load(context.Background(), bytes.NewReader(data), nil)
		if n := fl.liveStages(); n != 0 {
			t.Fatalf("Load left %d staged layers", n)
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("Load created %v beside the store root", entries)
		}
		tmp, err := os.ReadDir(filepath.Join(root, "tmp"))
		if err != nil || len(tmp) != 0 {
			t.Fatalf("scratch left in tmp: %v %v", tmp, err)
		}
		for _, img := range st.List() {
			if img.ID != sha(img.RawConfig) {
				t.Fatalf("image %s stored with a config of digest %s", img.ID, sha(img.RawConfig))
			}
		}
	})
}
