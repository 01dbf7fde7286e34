package containerfs

import (
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
