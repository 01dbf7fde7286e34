package containerfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"skiffd/internal/skifftest"
)

func TestRuntimeArtifacts(t *testing.T) {
	skifftest.RequireRoot(t)
	mtime := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name  string
		lower []string
		upper []string
		want  []string
	}{
		{name: "mount points in a new /etc", lower: []string{"d:bin"}, upper: []string{"d:etc", "f:etc/hostname=", "f:etc/hosts=", "d:proc", "d:dev"},
			want: []string{"dev", "etc", "etc/hostname", "etc/hosts", "proc"}},
		{name: "existing /etc holding only mount points", lower: []string{"d:etc", "f:etc/passwd=x"}, upper: []string{"d:etc", "f:etc/resolv.conf="},
			want: []string{"etc", "etc/resolv.conf"}},
		{name: "real change beside them", lower: []string{"d:etc"}, upper: []string{"d:etc", "f:etc/hostname=", "f:etc/new=x"},
			want: []string{"etc/hostname"}},
		{name: "written file kept", lower: []string{"d:etc"}, upper: []string{"d:etc", "f:etc/hostname=written"}, want: nil},
		{name: "image has the file", lower: []string{"d:etc", "f:etc/hosts=x"}, upper: []string{"d:etc", "f:etc/hosts="}, want: nil},
		{name: "symlinked etc", lower: nil, upper: []string{"d:real", "f:real/hostname=", "l:etc>real"}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
			layerTree(t, lower, tc.lower, mtime)
			layerTree(t, upper, tc.upper, mtime)
			skip, err := runtimeArtifacts(upper, []string{lower})
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(skip))
			if !slices.Equal(got, tc.want) {
				t.Errorf("runtimeArtifacts = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDiff checks what commit takes from an upper directory: nothing when
// it holds only the runtime's mount points, else a layer tar without them.
func TestDiff(t *testing.T) {
	skifftest.RequireRoot(t)
	mtime := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name  string
		upper []string
		empty bool
		want  []string
	}{
		{name: "missing upper", upper: nil, empty: true},
		{name: "only mount points", upper: []string{"d:etc", "f:etc/hostname=", "d:proc"}, empty: true},
		{name: "a change beside them", upper: []string{"d:etc", "f:etc/hostname=", "f:etc/new=x", "d:bin", "w:bin/sh", "d:proc"},
			want: []string{"bin/", "bin/.wh.sh", "etc/", "etc/new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
			layerTree(t, lower, []string{"d:bin", "f:bin/sh=sh", "d:etc"}, mtime)
			if tc.upper != nil {
				layerTree(t, upper, tc.upper, mtime)
			}
			d, err := NewDiff(upper, []string{lower})
			if err != nil {
				t.Fatal(err)
			}
			if d.Empty() != tc.empty {
				t.Fatalf("Empty() = %v, want %v", d.Empty(), tc.empty)
			}
			if tc.empty {
				return
			}
			var buf bytes.Buffer
			if err := d.Pack(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			var names []string
			tr := tar.NewReader(&buf)
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, hdr.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("Pack wrote %q, want %q", names, tc.want)
			}
		})
	}
}
