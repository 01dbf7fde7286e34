package image

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"skiffd/internal/layer"
)

// TestWithLayerStore runs load, save, import and delete over the real
// layer store, unpacking to disk.
func TestWithLayerStore(t *testing.T) {
	open := func() *Store {
		dir := t.TempDir()
		ls, err := layer.Open(filepath.Join(dir, "layers"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := Open(filepath.Join(dir, "image"), ls)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	src := open()
	arch, cfgA, cfgB := twoImageArchive(t)
	var p progressLog
	if err := src.Load(context.Background(), bytes.NewReader(arch), p.add); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Loaded image: busybox:latest", "Loaded image: me/app:1", "Loaded image: me/app:2"}; !slices.Equal(p.lines, want) {
		t.Errorf("progress = %q, want %q", p.lines, want)
	}
	if got := mustGet(t, src, "me/app:1"); got.ID != sha(cfgB) || got.Size != int64(len("shell")+len("run")) {
		t.Errorf("me/app:1 = %s size %d", got.ID, got.Size)
	}

	var out bytes.Buffer
	if err := src.Save(context.Background(), &out, []string{"busybox", "me/app"}); err != nil {
		t.Fatal(err)
	}
	dst := open()
	if err := dst.Load(context.Background(), bytes.NewReader(out.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	for ref, id := range map[string]string{"busybox": sha(cfgA), "me/app:1": sha(cfgB), "me/app:2": sha(cfgB)} {
		if got := mustGet(t, dst, ref).ID; got != id {
			t.Errorf("%s = %s after save and load, want %s", ref, got, id)
		}
	}
	var again bytes.Buffer
	if err := dst.Save(context.Background(), &again, []string{"busybox", "me/app"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Error("a loaded archive does not save back to the same bytes")
	}

	ref := mustNamed(t, "imported:1")
	img, err := dst.Import(context.Background(), bytes.NewReader(gzipped(t, layerTar(t, map[string]string{"bin/x": "x"}))), ImportOptions{Ref: &ref, Changes: []string{"ENTRYPOINT /bin/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Config.Config.Entrypoint, []string{"/bin/sh", "-c", "/bin/x"}) {
		t.Errorf("entrypoint = %q", img.Config.Config.Entrypoint)
	}
	deleted, err := dst.Delete(sha(cfgB))
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 {
		t.Errorf("Delete(me/app) removed %v, want only its top layer", deleted)
	}
	if _, err := dst.Delete(img.ID); err != nil {
		t.Fatal(err)
	}
}
