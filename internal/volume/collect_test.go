package volume

import (
	"errors"
	"slices"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

func dests(mps []MountPoint) []string {
	var out []string
	for _, m := range mps {
		out = append(out, m.Type+":"+m.Destination+":"+m.Name)
	}
	return out
}

func TestCollectMounts(t *testing.T) {
	dir := t.TempDir()
	mounts, tmpfs, err := CollectMounts(
		map[string]struct{}{"/anon": {}, "/data": {}, "/scratch": {}, "/srv/": {}},
		[]string{"data:/data", "/host:/srv/www:ro"},
		[]types.Mount{{Type: "bind", Source: dir, Target: "/srv"}, {Type: "tmpfs", Target: "/a/b/c"}},
		map[string]string{"/scratch": "size=1m"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"volume:/anon:", "volume:/data:data", "bind:/srv:", "bind:/srv/www:", "tmpfs:/a/b/c:"}
	if got := dests(mounts); !slices.Equal(got, want) {
		t.Errorf("mounts = %q, want %q", got, want)
	}
	if got := dests(tmpfs); !slices.Equal(got, []string{"tmpfs:/scratch:"}) {
		t.Errorf("tmpfs = %q", got)
	}
	if !mounts[0].CopyData || !mounts[0].RW || mounts[0].Spec.Target != "/anon" {
		t.Errorf("image volume = %+v", mounts[0])
	}

	for _, tt := range []struct {
		name   string
		cfg    map[string]struct{}
		binds  []string
		mounts []types.Mount
		tmpfs  map[string]string
		want   string
	}{
		{name: "two binds", binds: []string{"/a:/x", "v1:/x/"}, want: "Duplicate mount point: /x"},
		{name: "bind over tmpfs", binds: []string{"/a:/t"}, tmpfs: map[string]string{"/t": ""}, want: "Duplicate mount point: /t"},
		{name: "mount over bind", binds: []string{"/a:/x"}, mounts: []types.Mount{{Type: "volume", Source: "v", Target: "/x/."}}, want: "Duplicate mount point: /x/."},
		{name: "bad bind", binds: []string{"/a:/x:bogus"}, want: "invalid mode: bogus"},
		{name: "bad mount", mounts: []types.Mount{{Type: "bind", Source: "/a", Target: "/"}}, want: `invalid mount config for type "bind": invalid specification: destination can't be '/'`},
		{name: "bad tmpfs", tmpfs: map[string]string{"/t": "bogus"}, want: `Invalid tmpfs option ["bogus"]`},
		{name: "bad image volume", cfg: map[string]struct{}{"relative": {}}, want: "invalid volume specification: 'relative': invalid mount path: 'relative' mount path must be absolute"},
	} {
		_, _, err := CollectMounts(tt.cfg, tt.binds, tt.mounts, tt.tmpfs)
		if err == nil || err.Error() != tt.want || !errors.Is(err, errdefs.ErrInvalidParameter) {
			t.Errorf("%s: CollectMounts error = %v, want invalid parameter %q", tt.name, err, tt.want)
		}
	}
}
