package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary bytes to Apply in every whiteout mode and checks
// that nothing appears outside the target: not beside it, and not in a
// sentinel directory whose absolute path the seeds use as symlink and
// hardlink targets.
func FuzzApply(f *testing.F) {
	outside := f.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("sentinel"), 0o644); err != nil {
		f.Fatal(err)
	}
	seeds := [][]ent{
		{reg("a", "x"), dirEnt("d/"), reg("d/f", "y")},
		{reg("../escape", "x")},
		{symlinkEnt("link", outside), reg("link/evil", "x")},
		{symlinkEnt("link", outside), dirEnt("link/d/")},
		{symlinkEnt("sl", secret), reg("sl", "x")},
		{symlinkEnt("sl", secret), hardlinkEnt("h", "sl")},
		{hardlinkEnt("h", secret)},
		{hardlinkEnt("h", "../"+filepath.Base(outside)+"/secret")},
		{symlinkEnt("link", outside), reg("link/.wh.secret", "")},
		{symlinkEnt("link", outside), reg("link/.wh..wh..opq", "")},
		{reg(".wh.a", ""), reg("d/.wh..wh..opq", "")},
		{{name: "dev", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666}, {name: "p", typ: tar.TypeFifo, mode: 0o644}},
		{{name: "x", typ: tar.TypeReg, body: "v", mode: 0o4755, xattrs: map[string]string{"user.a": "b", "trusted.overlay.opaque": "y"}}},
	}
	for _, s := range seeds {
		f.Add(makeTar(f, s...))
	}
	f.Add([]byte{})
	f.Add([]byte("not a tar at all"))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []WhiteoutFormat{NoWhiteouts, OverlayWhiteouts, LiteralWhiteouts} {
			base := t.TempDir()
			dest := filepath.Join(base, "dest")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			// Errors are expected; panics, hangs and escapes are not.
			Apply(context.Background(), dest, bytes.NewReader(data), ApplyOptions{WhiteoutFormat: format})
			if ents, err := os.ReadDir(base); err != nil || len(ents) != 1 {
				t.Fatalf("base holds %v (%v), want only dest", ents, err)
			}
			ents, err := os.ReadDir(outside)
			if err != nil || len(ents) != 1 || ents[0].Name() != "secret" {
				t.Fatalf("outside holds %v (%v), want only secret", ents, err)
			}
			if b, err := os.ReadFile(secret); err != nil || string(b) != "sentinel" {
				t.Fatalf("secret = %q, %v", b, err)
			}
			var st os.FileInfo
			if st, err = os.Stat(secret); err != nil || st.Mode().Perm() != 0o644 {
				t.Fatalf("secret mode = %v, %v", st, err)
			}
		}
	})
}
