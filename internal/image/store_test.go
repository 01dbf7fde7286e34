package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
	"skiffd/internal/layer"
	"skiffd/internal/reference"
)

func mustNamed(t testing.TB, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func refStrings(refs []reference.Named) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.FamiliarString()
	}
	return out
}

// createImage registers layers and creates an image over them.
func createImage(t testing.TB, st *Store, fl *fakeLayers, comment string, layers ...[]byte) *Image {
	t.Helper()
	register(t, fl, layers...)
	img, err := st.Create(context.Background(), testConfig(t, comment, layers...), "")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestGet(t *testing.T) {
	st, fl, _ := newStore(t)
	base := layerTar(t, map[string]string{"bin/sh": "shell"})
	top := layerTar(t, map[string]string{"app": "app"})
	a := createImage(t, st, fl, "a", base)
	b := createImage(t, st, fl, "b", base, top)
	if err := st.Tag(a.ID, mustNamed(t, "busybox")); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(b.ID, mustNamed(t, "localhost:5000/me/app:1")); err != nil {
		t.Fatal(err)
	}
	dgst := "sha256:" + strings.Repeat("ab", 32)
	if err := st.Tag(b.ID, mustNamed(t, "me/app@"+dgst)); err != nil {
		t.Fatal(err)
	}
	// A name that looks like an ID prefix of a but is tagged on b wins.
	shortA := strings.TrimPrefix(a.ID, "sha256:")[:12]
	if err := st.Tag(b.ID, mustNamed(t, shortA[:8]+":latest")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		ref  string
		want string
	}{
		{"busybox", a.ID},
		{"busybox:latest", a.ID},
		{"docker.io/library/busybox:latest", a.ID},
		{"localhost:5000/me/app:1", b.ID},
		{"me/app@" + dgst, b.ID},
		{"me/app:ignored@" + dgst, b.ID},
		{a.ID, a.ID},
		{strings.TrimPrefix(a.ID, "sha256:"), a.ID},
		{shortA, a.ID},
		{"sha256:" + shortA, a.ID},
		{shortA[:8], b.ID},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			img, err := st.Get(tt.ref)
			if err != nil {
				t.Fatalf("Get(%q) = %v", tt.ref, err)
			}
			if img.ID != tt.want {
				t.Errorf("Get(%q) = %s, want %s", tt.ref, img.ID, tt.want)
			}
		})
	}

	if b2, _ := st.Get(b.ID); b2.Size != int64(len("shell")+len("app")) {
		t.Errorf("Size = %d, want %d", b2.Size, len("shell")+len("app"))
	}

	errTests := []struct {
		ref     string
		kind    errdefs.Kind
		message string
	}{
		{"nosuch", errdefs.ErrNotFound, "No such image: nosuch:latest"},
		{"nosuch:1", errdefs.ErrNotFound, "No such image: nosuch:1"},
		{"sha256:" + strings.Repeat("0", 64), errdefs.ErrNotFound, "No such image: sha256:" + strings.Repeat("0", 64)},
		{"Upper", errdefs.ErrInvalidParameter, ""},
	}
	for _, tt := range errTests {
		t.Run("err "+tt.ref, func(t *testing.T) {
			_, err := st.Get(tt.ref)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Get(%q) = %v, want kind %v", tt.ref, err, tt.kind)
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Errorf("Get(%q) = %q, want %q", tt.ref, err, tt.message)
			}
		})
	}
}

func TestGetAmbiguousPrefix(t *testing.T) {
	st, fl, _ := newStore(t)
	base := layerTar(t, map[string]string{"f": "x"})
	register(t, fl, base)
	// Among 17 IDs, two share their first hex digit.
	first := make(map[byte]string)
	var prefix string
	for i := 0; prefix == ""; i++ {
		img, err := st.Create(context.Background(), testConfig(t, fmt.Sprint(i), base), "")
		if err != nil {
			t.Fatal(err)
		}
		c := img.ID[len("sha256:")]
		if _, ok := first[c]; ok {
			prefix = string(c)
		}
		first[c] = img.ID
	}
	_, err := st.Get(prefix)
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.Is(err, reference.ErrAmbiguousID) {
		t.Fatalf("Get(%q) = %v, want NotFound and ErrAmbiguousID", prefix, err)
	}
	if want := "No such image: " + prefix + ":latest"; err.Error() != want {
		t.Errorf("Get(%q) = %q, want %q", prefix, err, want)
	}
}

func TestTagMovesAndUntag(t *testing.T) {
	st, fl, _ := newStore(t)
	l := layerTar(t, map[string]string{"f": "x"})
	a := createImage(t, st, fl, "a", l)
	b := createImage(t, st, fl, "b", l)
	ref := mustNamed(t, "app:1")
	if err := st.Tag(a.ID, ref); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(b.ID, ref); err != nil {
		t.Fatal(err)
	}
	if got := refStrings(st.References(a.ID)); len(got) != 0 {
		t.Errorf("References(a) = %v, want none after the tag moved", got)
	}
	if got := refStrings(st.References(b.ID)); !slices.Equal(got, []string{"app:1"}) {
		t.Errorf("References(b) = %v, want [app:1]", got)
	}
	if img, _ := st.Get(b.ID); img.LastTagTime.IsZero() {
		t.Error("LastTagTime not set by Tag")
	}

	dgst := "sha256:" + strings.Repeat("cd", 32)
	if err := st.Tag(a.ID, mustNamed(t, "app@"+dgst)); err != nil {
		t.Fatal(err)
	}
	err := st.Tag(b.ID, mustNamed(t, "app@"+dgst))
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "Cannot overwrite digest "+dgst {
		t.Errorf("Tag(digest of another image) = %v, want Conflict", err)
	}
	if err := st.Tag(a.ID, mustNamed(t, "sha256:1")); !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Errorf("Tag(sha256:1) = %v, want InvalidParameter", err)
	}
	if err := st.Tag("sha256:"+strings.Repeat("0", 64), ref); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Tag(missing image) = %v, want NotFound", err)
	}

	id, err := st.Untag(ref)
	if err != nil || id != b.ID {
		t.Fatalf("Untag(app:1) = %q, %v, want %s", id, err, b.ID)
	}
	if _, err := st.Get("app:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(app:1) after Untag = %v, want NotFound", err)
	}
	if _, err := st.Get(b.ID); err != nil {
		t.Errorf("Untag removed the image: %v", err)
	}
	_, err = st.Untag(ref)
	if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No such image: app:1" {
		t.Errorf("second Untag = %v, want NotFound No such image: app:1", err)
	}
}

func TestDeleteRefCountsLayers(t *testing.T) {
	st, fl, _ := newStore(t)
	base := layerTar(t, map[string]string{"base": "b"})
	topA := layerTar(t, map[string]string{"a": "a"})
	topB := layerTar(t, map[string]string{"b": "b"})
	a := createImage(t, st, fl, "a", base, topA)
	b := createImage(t, st, fl, "b", base, topB)
	child := createImage(t, st, fl, "child", base, topA)
	if err := st.setParent(child.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if got := st.Children(a.ID); !slices.Equal(got, []string{child.ID}) {
		t.Errorf("Children(a) = %v, want [%s]", got, child.ID)
	}
	if err := st.Tag(a.ID, mustNamed(t, "a:1")); err != nil {
		t.Fatal(err)
	}
	wantTotal := int64(3) // three one-byte files, base counted once
	if got := st.LayersSize(); got != wantTotal {
		t.Errorf("LayersSize() = %d, want %d", got, wantTotal)
	}

	// a's layers are all shared (child has the same chain): nothing goes.
	deleted, err := st.Delete(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 0 {
		t.Errorf("Delete(a) removed %v, want nothing", deleted)
	}
	if _, err := st.Get("a:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("tag of deleted image still resolves: %v", err)
	}
	if c, _ := st.Get(child.ID); c.Parent != "" {
		t.Errorf("child's parent = %q after parent deleted, want empty", c.Parent)
	}

	deleted, err = st.Delete(child.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{layer.ChainID(sha(base), sha(topA))}; !slices.Equal(deleted, want) {
		t.Errorf("Delete(child) removed %v, want %v (base still used by b)", deleted, want)
	}
	deleted, err = st.Delete(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{layer.ChainID(sha(base), sha(topB)), sha(base)}; !slices.Equal(deleted, want) {
		t.Errorf("Delete(b) removed %v, want %v", deleted, want)
	}
	if got := fl.chains(); len(got) != 0 {
		t.Errorf("layers left: %v", got)
	}
	if _, err := st.Delete(b.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Delete = %v, want NotFound", err)
	}
	if got := st.List(); len(got) != 0 {
		t.Errorf("List() = %d images, want 0", len(got))
	}
}

func TestCreate(t *testing.T) {
	st, fl, _ := newStore(t)
	l := layerTar(t, map[string]string{"f": "x"})
	cfg := testConfig(t, "c", l)

	_, err := st.Create(context.Background(), cfg, "")
	if !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Fatalf("Create with missing layer = %v, want InvalidParameter", err)
	}
	if len(st.List()) != 0 {
		t.Fatal("image created without its layers")
	}
	register(t, fl, l)
	img, err := st.Create(context.Background(), cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != sha(cfg) || string(img.RawConfig) != string(cfg) {
		t.Errorf("ID = %s, want sha256 of the raw config %s", img.ID, sha(cfg))
	}
	again, err := st.Create(context.Background(), cfg, "")
	if err != nil || again.ID != img.ID {
		t.Errorf("second Create = %v, %v, want the same image", again, err)
	}
	if len(st.List()) != 1 {
		t.Errorf("List() = %d images, want 1", len(st.List()))
	}

	bad := []struct {
		name string
		cfg  string
	}{
		{"not json", "nope"},
		{"no rootfs", `{"os":"linux"}`},
		{"bad diff id", `{"rootfs":{"type":"layers","diff_ids":["sha256:xyz"]}}`},
		{"history too long", `{"rootfs":{"type":"layers","diff_ids":[]},"history":[{"created_by":"x"}]}`},
		{"unknown parent", ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			raw, parent := []byte(tt.cfg), ""
			if tt.cfg == "" {
				raw, parent = testConfig(t, "orphan", l), "sha256:"+strings.Repeat("1", 64)
			}
			if _, err := st.Create(context.Background(), raw, parent); !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("Create(%s) = %v, want InvalidParameter", tt.cfg, err)
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	root := t.TempDir()
	fl := newFakeLayers()
	st, err := Open(root, fl)
	if err != nil {
		t.Fatal(err)
	}
	base := layerTar(t, map[string]string{"f": "x"})
	top := layerTar(t, map[string]string{"g": "yy"})
	a := createImage(t, st, fl, "a", base)
	register(t, fl, base, top)
	b, err := st.Create(context.Background(), testConfig(t, "b", base, top), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a:1", "a:2"} {
		if err := st.Tag(a.ID, mustNamed(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Tag(b.ID, mustNamed(t, "b")); err != nil {
		t.Fatal(err)
	}
	tagTime := mustGet(t, st, "a:1").LastTagTime

	st2, err := Open(root, fl)
	if err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, st2, "b:latest")
	if got.ID != b.ID || got.Parent != a.ID || got.Size != 3 || len(got.ChainIDs) != 2 {
		t.Errorf("reopened b = %+v, want ID %s parent %s size 3", got, b.ID, a.ID)
	}
	if refs := refStrings(st2.References(a.ID)); !slices.Equal(refs, []string{"a:1", "a:2"}) {
		t.Errorf("reopened References(a) = %v", refs)
	}
	if lt := mustGet(t, st2, a.ID).LastTagTime; !lt.Equal(tagTime) {
		t.Errorf("reopened LastTagTime = %v, want %v", lt, tagTime)
	}
	if got := st2.Children(a.ID); !slices.Equal(got, []string{b.ID}) {
		t.Errorf("reopened Children(a) = %v", got)
	}
}

func mustGet(t testing.TB, st *Store, ref string) *Image {
	t.Helper()
	img, err := st.Get(ref)
	if err != nil {
		t.Fatalf("Get(%q) = %v", ref, err)
	}
	return img
}

func TestOpenCleansLeftovers(t *testing.T) {
	root := t.TempDir()
	fl := newFakeLayers()
	st, err := Open(root, fl)
	if err != nil {
		t.Fatal(err)
	}
	l := layerTar(t, map[string]string{"f": "x"})
	img := createImage(t, st, fl, "keep", l)

	orphanMeta := filepath.Join(st.metaRoot(), strings.Repeat("e", 64))
	leftovers := []string{
		filepath.Join(root, ".tmp-repositories.json-123"),
		filepath.Join(st.contentDir(), ".tmp-abc-1"),
		filepath.Join(st.tmpDir(), "load-1", "member-1"),
		filepath.Join(orphanMeta, "parent"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A config whose content does not match its name is not served.
	bogus := filepath.Join(st.contentDir(), strings.Repeat("f", 64))
	if err := os.WriteFile(bogus, testConfig(t, "bogus", l), 0o600); err != nil {
		t.Fatal(err)
	}

	st2, err := Open(root, fl)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(leftovers, orphanMeta) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open (%v)", p, err)
		}
	}
	if got := st2.List(); len(got) != 1 || got[0].ID != img.ID {
		t.Errorf("List() after reopen = %v, want only %s", got, img.ID)
	}
}
