package containerfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/skifftest"
)

// layerTree builds a directory from a compact description: "d:path" a
// directory, "f:path=body" a file, "l:path>target" a symlink, "w:path" an
// overlay whiteout, "o:path" an opaque directory.
func layerTree(t *testing.T, dir string, spec []string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, s := range spec {
		kind, rest := s[0], s[2:]
		p := filepath.Join(dir, rest)
		var err error
		switch kind {
		case 'd', 'o':
			err = os.MkdirAll(p, 0o755)
			dirs = append(dirs, p)
			if err == nil && kind == 'o' {
				err = syscall.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
			}
		case 'f':
			name, body, _ := cut(rest, "=")
			p = filepath.Join(dir, name)
			err = os.WriteFile(p, []byte(body), 0o644)
		case 'l':
			name, target, _ := cut(rest, ">")
			err = os.Symlink(target, filepath.Join(dir, name))
		case 'w':
			err = syscall.Mknod(p, syscall.S_IFCHR, 0)
		}
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	// Directories get one shared mtime, so that equal directories in the
	// upper and lower trees compare equal.
	for _, d := range slices.Backward(dirs) {
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	os.Chtimes(dir, mtime, mtime)
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func changeStrings(cs []types.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%c %s", "CAD"[c.Kind], c.Path))
	}
	return out
}

func TestOverlayChanges(t *testing.T) {
	skifftest.RequireRoot(t) // whiteouts are character devices
	mtime := time.Unix(1700000000, 0)
	later := mtime.Add(time.Hour)
	base := []string{"d:bin", "f:bin/sh=sh", "d:etc", "f:etc/passwd=root", "f:etc/group=root", "d:tmp", "d:var", "l:var/run>/run", "d:usr/lib", "f:usr/lib/x=x", "d:proc"}
	for _, tc := range []struct {
		name  string
		upper []string
		touch []string // upper directories given a later mtime
		want  []string
	}{
		{name: "nothing", upper: nil, want: nil},
		{name: "added file in existing dir", upper: []string{"d:tmp", "f:tmp/new=1"}, touch: []string{"tmp"}, want: []string{"C /tmp", "A /tmp/new"}},
		{name: "parent same metadata still reported", upper: []string{"d:tmp", "f:tmp/new=1"}, want: []string{"C /tmp", "A /tmp/new"}},
		{name: "modified file", upper: []string{"d:etc", "f:etc/passwd=changed"}, want: []string{"C /etc/passwd"}},
		{name: "deleted file", upper: []string{"d:etc", "w:etc/group"}, touch: []string{"etc"}, want: []string{"C /etc", "D /etc/group"}},
		{name: "new tree", upper: []string{"d:srv/a/b", "f:srv/a/b/c=1"}, want: []string{"A /srv", "A /srv/a", "A /srv/a/b", "A /srv/a/b/c"}},
		{name: "opaque dir", upper: []string{"o:usr/lib", "f:usr/lib/y=y"}, want: []string{"C /usr", "D /usr/lib", "A /usr/lib/y"}},
		{name: "replaced symlink", upper: []string{"d:var", "f:var/run=file"}, want: []string{"C /var/run"}},
		{name: "walk order", upper: []string{"d:a", "f:a/z=1", "f:a-b=1", "d:tmp", "f:tmp/x=1"},
			want: []string{"A /a", "A /a/z", "A /a-b", "C /tmp", "A /tmp/x"}},
		{name: "runtime mount points left out", upper: []string{"d:etc", "f:etc/hostname=", "f:etc/hosts=", "f:etc/resolv.conf=", "d:dev", "d:sys"}, touch: []string{"etc"}, want: nil},
		{name: "runtime mount points with a real change", upper: []string{"d:etc", "f:etc/hostname=", "f:etc/new=1"}, touch: []string{"etc"},
			want: []string{"C /etc", "A /etc/new"}},
		{name: "written mount point file kept", upper: []string{"d:etc", "f:etc/hostname=written"}, touch: []string{"etc"},
			want: []string{"C /etc", "A /etc/hostname"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
			layerTree(t, lower, base, mtime)
			if tc.upper != nil {
				layerTree(t, upper, tc.upper, mtime)
			}
			for _, d := range tc.touch {
				os.Chtimes(filepath.Join(upper, d), later, later)
			}
			got, err := Changes(context.Background(), upper, []string{lower})
			if err != nil {
				t.Fatal(err)
			}
			if g := changeStrings(got); !slices.Equal(g, tc.want) {
				t.Errorf("changes = %q, want %q", g, tc.want)
			}
		})
	}
}

// TestOverlayChangesLayers checks lookups through several lower layers: a
// whiteout in an upper lower layer hides what is below it.
func TestOverlayChangesLayers(t *testing.T) {
	skifftest.RequireRoot(t)
	mtime := time.Unix(1700000000, 0)
	dir := t.TempDir()
	l1, l2, upper := filepath.Join(dir, "l1"), filepath.Join(dir, "l2"), filepath.Join(dir, "upper")
	layerTree(t, l1, []string{"d:etc", "f:etc/a=1", "f:etc/b=1"}, mtime)
	layerTree(t, l2, []string{"d:etc", "w:etc/a", "l:link>/etc"}, mtime)
	layerTree(t, upper, []string{"d:etc", "f:etc/a=2", "f:etc/b=2", "f:link=x"}, mtime)
	got, err := Changes(context.Background(), upper, []string{l2, l1})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"C /etc", "A /etc/a", "C /etc/b", "C /link"}
	if g := changeStrings(got); !slices.Equal(g, want) {
		t.Errorf("changes = %q, want %q", g, want)
	}
}
