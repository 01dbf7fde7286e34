package volume

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

func TestParseBindValid(t *testing.T) {
	tests := []struct {
		spec string
		want MountPoint
	}{
		{"/data", MountPoint{Type: "volume", Destination: "/data", RW: true, CopyData: true,
			Spec: types.Mount{Type: "volume", Target: "/data"}}},
		{"/host:/ctr", MountPoint{Type: "bind", Source: "/host", Destination: "/ctr", RW: true, Propagation: "rprivate", CreateSource: true,
			Spec: types.Mount{Type: "bind", Source: "/host", Target: "/ctr"}}},
		{"/host/../x/:/ctr/./d/:ro", MountPoint{Type: "bind", Source: "/x", Destination: "/ctr/d", Mode: "ro", Propagation: "rprivate", CreateSource: true,
			Spec: types.Mount{Type: "bind", Source: "/host/../x/", Target: "/ctr/./d/", ReadOnly: true}}},
		{"/h:/c:rw,Z,rshared", MountPoint{Type: "bind", Source: "/h", Destination: "/c", RW: true, Mode: "rw,Z,rshared", Propagation: "rshared", CreateSource: true,
			Spec: types.Mount{Type: "bind", Source: "/h", Target: "/c", BindOptions: &types.BindOptions{Propagation: "rshared"}}}},
		{"/h:/c:slave,ro,z", MountPoint{Type: "bind", Source: "/h", Destination: "/c", Mode: "slave,ro,z", Propagation: "slave", CreateSource: true,
			Spec: types.Mount{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true, BindOptions: &types.BindOptions{Propagation: "slave"}}}},
		{"data:/d", MountPoint{Type: "volume", Name: "data", Destination: "/d", RW: true, CopyData: true,
			Spec: types.Mount{Type: "volume", Source: "data", Target: "/d"}}},
		{"data:/d:ro,nocopy", MountPoint{Type: "volume", Name: "data", Destination: "/d", Mode: "ro,nocopy",
			Spec: types.Mount{Type: "volume", Source: "data", Target: "/d", ReadOnly: true, VolumeOptions: &types.VolumeOptions{NoCopy: true}}}},
		{"trace-compose_data:/data:rw", MountPoint{Type: "volume", Name: "trace-compose_data", Destination: "/data", RW: true, Mode: "rw", CopyData: true,
			Spec: types.Mount{Type: "volume", Source: "trace-compose_data", Target: "/data"}}},
		{"/with space:/in ctr", MountPoint{Type: "bind", Source: "/with space", Destination: "/in ctr", RW: true, Propagation: "rprivate", CreateSource: true,
			Spec: types.Mount{Type: "bind", Source: "/with space", Target: "/in ctr"}}},
		// Names are checked when the volume is created, not here.
		{"local/name:/tmp", MountPoint{Type: "volume", Name: "local/name", Destination: "/tmp", RW: true, CopyData: true,
			Spec: types.Mount{Type: "volume", Source: "local/name", Target: "/tmp"}}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseBind(tt.spec)
			if err != nil {
				t.Fatalf("ParseBind(%q) error: %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseBind(%q) =\n%+v\nwant\n%+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestParseBindErrors(t *testing.T) {
	tests := map[string]string{
		"":                            `invalid volume specification: ''`,
		":":                           `invalid volume specification: ':'`,
		":/test":                      `invalid volume specification: ':/test'`,
		"/tmp:":                       `invalid volume specification: '/tmp:'`,
		"/tmp:::":                     `invalid volume specification: '/tmp:::'`,
		"/path:rw":                    `invalid volume specification: '/path:rw'`,
		"path:ro":                     `invalid volume specification: 'path:ro'`,
		"/path:shared":                `invalid volume specification: '/path:shared'`,
		"/path:/path:sw":              `invalid mode: sw`,
		"/path:/path:rwz":             `invalid mode: rwz`,
		"/p:/p:ro,rshared,rslave":     `invalid mode: ro,rshared,rslave`,
		"/p:/p:ro,rw":                 `invalid mode: ro,rw`,
		"./":                          `invalid volume specification: './': invalid mount config for type "volume": invalid mount path: './' mount path must be absolute`,
		"/:path":                      `invalid volume specification: '/:path': invalid mount config for type "bind": invalid mount path: 'path' mount path must be absolute`,
		"/tmp:tmp":                    `invalid volume specification: '/tmp:tmp': invalid mount config for type "bind": invalid mount path: 'tmp' mount path must be absolute`,
		"/":                           `invalid volume specification: '/': invalid mount config for type "volume": invalid specification: destination can't be '/'`,
		"/host:/":                     `invalid volume specification: '/host:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`,
		"name:/abs:rshared":           `invalid volume specification: 'name:/abs:rshared': invalid mount config for type "volume": field BindOptions must not be specified`,
		"/host:/ctr:ro:extra":         `invalid volume specification: '/host:/ctr:ro:extra'`,
		"data:/d:/other":              `invalid mode: /other`,
		"/host:/ctr/..//../":          `invalid volume specification: '/host:/ctr/..//../': invalid mount config for type "bind": invalid specification: destination can't be '/'`,
		"relative:../escape":          `invalid volume specification: 'relative:../escape': invalid mount config for type "volume": invalid mount path: '../escape' mount path must be absolute`,
		"/h:/c:nocopy,nocopy":         `invalid mode: nocopy,nocopy`,
		"/h:/c:cached,delegated":      `invalid mode: cached,delegated`,
		"/h:/c:z,Z":                   `invalid mode: z,Z`,
		"/h:/c:ro,":                   `invalid mode: ro,`,
		"/h:/c:private,rprivate":      `invalid mode: private,rprivate`,
		"/h:/c:consistent,cached,rw,": `invalid mode: consistent,cached,rw,`,
	}
	for spec, want := range tests {
		t.Run(spec, func(t *testing.T) {
			_, err := ParseBind(spec)
			if err == nil || err.Error() != want {
				t.Fatalf("ParseBind(%q) error = %v, want %q", spec, err, want)
			}
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("ParseBind(%q) error kind = %v, want invalid parameter", spec, errdefs.KindOf(err))
			}
		})
	}
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		in      types.Mount
		want    MountPoint
		wantErr string
	}{
		{name: "bind", in: types.Mount{Type: "bind", Source: dir, Target: "/b", ReadOnly: true},
			want: MountPoint{Type: "bind", Source: dir, Destination: "/b", Propagation: "rprivate"}},
		{name: "bind propagation", in: types.Mount{Type: "bind", Source: dir, Target: "/b/", BindOptions: &types.BindOptions{Propagation: "rslave"}},
			want: MountPoint{Type: "bind", Source: dir, Destination: "/b", RW: true, Propagation: "rslave"}},
		{name: "bind missing source", in: types.Mount{Type: "bind", Source: missing, Target: "/b"},
			wantErr: `invalid mount config for type "bind": bind source path does not exist: ` + missing},
		{name: "bind missing source created", in: types.Mount{Type: "bind", Source: missing, Target: "/b", BindOptions: &types.BindOptions{CreateMountpoint: true}},
			want: MountPoint{Type: "bind", Source: missing, Destination: "/b", RW: true, Propagation: "rprivate", CreateSource: true}},
		{name: "bind relative source", in: types.Mount{Type: "bind", Source: "rel", Target: "/b"},
			wantErr: `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{name: "bind no source", in: types.Mount{Type: "bind", Target: "/b"},
			wantErr: `invalid mount config for type "bind": field Source must not be empty`},
		{name: "bind bad propagation", in: types.Mount{Type: "bind", Source: dir, Target: "/b", BindOptions: &types.BindOptions{Propagation: "everywhere"}},
			wantErr: `invalid mount config for type "bind": invalid propagation mode: everywhere`},
		{name: "bind with volume options", in: types.Mount{Type: "bind", Source: dir, Target: "/b", VolumeOptions: &types.VolumeOptions{}},
			wantErr: `invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{name: "bind with tmpfs options", in: types.Mount{Type: "bind", Source: dir, Target: "/b", TmpfsOptions: &types.TmpfsOptions{}},
			wantErr: `invalid mount config for type "bind": field TmpfsOptions must not be specified`},
		{name: "no target", in: types.Mount{Type: "volume", Source: "v"},
			wantErr: `invalid mount config for type "volume": field Target must not be empty`},
		{name: "root target", in: types.Mount{Type: "volume", Source: "v", Target: "//"},
			wantErr: `invalid mount config for type "volume": invalid specification: destination can't be '/'`},
		{name: "volume", in: types.Mount{Type: "volume", Source: "trace-vol", Target: "/d"},
			want: MountPoint{Type: "volume", Name: "trace-vol", Destination: "/d", RW: true, CopyData: true}},
		{name: "anonymous read-only volume", in: types.Mount{Type: "volume", Target: "/anon", ReadOnly: true},
			want: MountPoint{Type: "volume", Destination: "/anon", CopyData: true}},
		{name: "volume nocopy driver", in: types.Mount{Type: "volume", Source: "v1", Target: "/d", VolumeOptions: &types.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &types.VolumeDriverConfig{Name: "local", Options: map[string]string{"type": "tmpfs"}}}},
			want: MountPoint{Type: "volume", Name: "v1", Destination: "/d", RW: true, Driver: "local"}},
		{name: "volume with bind options", in: types.Mount{Type: "volume", Source: "v", Target: "/d", BindOptions: &types.BindOptions{}},
			wantErr: `invalid mount config for type "volume": field BindOptions must not be specified`},
		{name: "anonymous volume subpath", in: types.Mount{Type: "volume", Target: "/d", VolumeOptions: &types.VolumeOptions{Subpath: "x"}},
			wantErr: `invalid mount config for type "volume": must not set Subpath when using anonymous volumes`},
		{name: "volume subpath escapes", in: types.Mount{Type: "volume", Source: "v", Target: "/d", VolumeOptions: &types.VolumeOptions{Subpath: "../x"}},
			wantErr: `invalid mount config for type "volume": subpath must be a relative path within the volume`},
		{name: "non-recursive bind", in: types.Mount{Type: "bind", Source: dir, Target: "/b", BindOptions: &types.BindOptions{NonRecursive: true}},
			want: MountPoint{Type: "bind", Source: dir, Destination: "/b", RW: true, Propagation: "rprivate"}},
		{name: "forced recursive read-only bind", in: types.Mount{Type: "bind", Source: dir, Target: "/b", ReadOnly: true, BindOptions: &types.BindOptions{ReadOnlyForceRecursive: true}},
			want: MountPoint{Type: "bind", Source: dir, Destination: "/b", Propagation: "rprivate"}},
		{name: "read-only bind options in conflict", in: types.Mount{Type: "bind", Source: dir, Target: "/b", ReadOnly: true, BindOptions: &types.BindOptions{ReadOnlyForceRecursive: true, ReadOnlyNonRecursive: true}},
			wantErr: `invalid mount config for type "bind": mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive`},
		{name: "tmpfs", in: types.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &types.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}},
			want: MountPoint{Type: "tmpfs", Destination: "/t", RW: true, TmpfsOptions: "noexec,nosuid,nodev,rprivate,mode=1777,size=1m"}},
		{name: "tmpfs odd size exec ro", in: types.Mount{Type: "tmpfs", Target: "/t", ReadOnly: true, TmpfsOptions: &types.TmpfsOptions{SizeBytes: 1000, Options: [][]string{{"exec"}}}},
			want: MountPoint{Type: "tmpfs", Destination: "/t", TmpfsOptions: "nosuid,nodev,rprivate,ro,size=1000,exec"}},
		{name: "tmpfs gigabytes", in: types.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &types.TmpfsOptions{SizeBytes: 3 << 30}},
			want: MountPoint{Type: "tmpfs", Destination: "/t", RW: true, TmpfsOptions: "noexec,nosuid,nodev,rprivate,size=3g"}},
		{name: "tmpfs with source", in: types.Mount{Type: "tmpfs", Source: "x", Target: "/t"},
			wantErr: `invalid mount config for type "tmpfs": field Source must not be specified`},
		{name: "tmpfs bad option", in: types.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &types.TmpfsOptions{Options: [][]string{{"suid"}}}},
			wantErr: `invalid mount config for type "tmpfs": invalid option: suid`},
		{name: "tmpfs bad option length", in: types.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &types.TmpfsOptions{Options: [][]string{{}}}},
			wantErr: `invalid mount config for type "tmpfs": invalid option array length`},
		{name: "unknown type", in: types.Mount{Type: "invalid", Target: "/x"},
			wantErr: `invalid mount config for type "invalid": mount type unknown`},
		{name: "image", in: types.Mount{Type: "image", Source: "busybox", Target: "/x/", ReadOnly: false, ImageOptions: &types.ImageMountOptions{Subpath: "etc"}},
			want: MountPoint{Type: "image", Name: "busybox", Destination: "/x", Propagation: "rprivate"}},
		{name: "image no source", in: types.Mount{Type: "image", Target: "/x"},
			wantErr: `invalid mount config for type "image": field Source must not be empty`},
		{name: "image subpath escapes", in: types.Mount{Type: "image", Source: "busybox", Target: "/x", ImageOptions: &types.ImageMountOptions{Subpath: "../etc"}},
			wantErr: `invalid mount config for type "image": subpath must be a relative path within the volume`},
		{name: "image absolute subpath", in: types.Mount{Type: "image", Source: "busybox", Target: "/x", ImageOptions: &types.ImageMountOptions{Subpath: "/etc"}},
			wantErr: `invalid mount config for type "image": subpath must be a relative path within the volume`},
		{name: "image with volume options", in: types.Mount{Type: "image", Source: "busybox", Target: "/x", VolumeOptions: &types.VolumeOptions{}},
			wantErr: `invalid mount config for type "image": field VolumeOptions must not be specified`},
		{name: "volume with image options", in: types.Mount{Type: "volume", Source: "v", Target: "/x", ImageOptions: &types.ImageMountOptions{}},
			wantErr: `invalid mount config for type "volume": field ImageOptions must not be specified`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMount(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseMount(%+v) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("ParseMount error kind = %v, want invalid parameter", errdefs.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMount(%+v) error: %v", tt.in, err)
			}
			tt.want.Spec = tt.in
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMount(%+v) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMountBindSourceStatError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can stat anything")
	}
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	os.Mkdir(locked, 0)
	t.Cleanup(func() { os.Chmod(locked, 0o700) })
	_, err := ParseMount(types.Mount{Type: "bind", Source: filepath.Join(locked, "x"), Target: "/x"})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("ParseMount of an unreadable source: %v, want the stat error", err)
	}
}

func TestParseTmpfs(t *testing.T) {
	got, err := ParseTmpfs(map[string]string{"/scratch": "size=1m", "/run/": "", "/ro": "ro,exec,mode=700,size=2m,size=3m"})
	if err != nil {
		t.Fatal(err)
	}
	want := []MountPoint{
		{Type: "tmpfs", Destination: "/ro", TmpfsOptions: "nosuid,nodev,rprivate,ro,exec,mode=700,size=3m",
			Spec: types.Mount{Type: "tmpfs", Target: "/ro", ReadOnly: true}},
		{Type: "tmpfs", Destination: "/run", RW: true, TmpfsOptions: "noexec,nosuid,nodev,rprivate",
			Spec: types.Mount{Type: "tmpfs", Target: "/run/"}},
		{Type: "tmpfs", Destination: "/scratch", RW: true, TmpfsOptions: "noexec,nosuid,nodev,rprivate,size=1m",
			Spec: types.Mount{Type: "tmpfs", Target: "/scratch"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTmpfs =\n%+v\nwant\n%+v", got, want)
	}

	bad := map[string]string{
		"/":   `invalid specification: destination can't be '/'`,
		"rel": `invalid mount path: 'rel' mount path must be absolute`,
		"":    `invalid mount path: '' mount path must be absolute`,
	}
	for dest, want := range bad {
		_, err := ParseTmpfs(map[string]string{dest: ""})
		if err == nil || err.Error() != want {
			t.Errorf("ParseTmpfs(%q) error = %v, want %q", dest, err, want)
		}
	}
	for opts, want := range map[string]string{
		"foo":          `Invalid tmpfs option ["foo"]`,
		"size=1m,bar=": `Invalid tmpfs option ["bar" ""]`,
		"suid,quota=1": `Invalid tmpfs option ["quota" "1"]`,
	} {
		_, err := ParseTmpfs(map[string]string{"/t": opts})
		if err == nil || err.Error() != want {
			t.Errorf("ParseTmpfs(/t:%q) error = %v, want %q", opts, err, want)
		}
	}
}

func TestMergeTmpfsOptions(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"noexec,nosuid,nodev,rprivate,exec", "nosuid,nodev,rprivate,exec"},
		{"rprivate,rshared,size=1m,size=2m", "rshared,size=2m"},
		{"defaults,ro,rw", "rw"},
		{"mode=700,uid=1,gid=2,nr_inodes=3", "mode=700,uid=1,gid=2,nr_inodes=3"},
	}
	for _, tt := range tests {
		got, err := MergeTmpfsOptions(strings.Split(tt.in, ","))
		if err != nil || strings.Join(got, ",") != tt.want {
			t.Errorf("MergeTmpfsOptions(%q) = %q, %v; want %q", tt.in, strings.Join(got, ","), err, tt.want)
		}
	}
}

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		in          string
		flags, prop uintptr
		data        string
	}{
		{"", 0, 0, ""},
		{"size=1m", 0, 0, "size=1m"},
		{"bind,ro", msBind | msRdonly, 0, ""},
		{"rbind,rslave,uid=1000", msBind | msRec, msSlave | msRec, "uid=1000"},
		{"ro,rw,noexec,exec,nosuid", msNosuid, 0, ""},
		{"defaults,addr=10.0.0.1,vers=4", 0, 0, "addr=10.0.0.1,vers=4"},
	}
	for _, tt := range tests {
		flags, prop, data := ParseMountOptions(tt.in)
		if flags != tt.flags || prop != tt.prop || data != tt.data {
			t.Errorf("ParseMountOptions(%q) = %#x, %#x, %q; want %#x, %#x, %q", tt.in, flags, prop, data, tt.flags, tt.prop, tt.data)
		}
	}
}

// FuzzParseBind checks that ParseBind never panics, that what it accepts
// has a clean absolute destination other than "/", and that an accepted
// bind spec keeps its source.
func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/data", "/h:/c", "/h:/c:ro,Z,rshared", "name:/d:nocopy", "::", "/:/", "a:b:c:d", "/x:/y:rw,ro", "/with space:/in ctr", `c:\x:/y`, "/h:/c:consistent"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		mp, err := ParseBind(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid volume specification: ") && !strings.HasPrefix(err.Error(), "invalid mode: ") {
				t.Fatalf("ParseBind(%q) error %q has an unexpected form", spec, err)
			}
			return
		}
		if !strings.HasPrefix(mp.Destination, "/") || mp.Destination == "/" || filepath.Clean(mp.Destination) != mp.Destination {
			t.Fatalf("ParseBind(%q) destination %q is not a clean absolute path other than /", spec, mp.Destination)
		}
		switch mp.Type {
		case "bind":
			if !strings.HasPrefix(mp.Source, "/") || !mp.CreateSource || mp.Propagation == "" {
				t.Fatalf("ParseBind(%q) = %+v: a bind needs an absolute source and a propagation", spec, mp)
			}
		case "volume":
			if mp.Source != "" || strings.HasPrefix(mp.Name, "/") {
				t.Fatalf("ParseBind(%q) = %+v: a volume has a name, not a host source", spec, mp)
			}
		default:
			t.Fatalf("ParseBind(%q) type %q", spec, mp.Type)
		}
		if mp.RW == strings.Contains(","+mp.Mode+",", ",ro,") {
			t.Fatalf("ParseBind(%q) RW=%v with mode %q", spec, mp.RW, mp.Mode)
		}
	})
}

// FuzzParseMountOptions checks that option strings never panic and that
// every keyword the table knows is turned into flags, not data.
func FuzzParseMountOptions(f *testing.F) {
	for _, s := range []string{"", "ro,size=1m", "rbind,rslave", "defaults,,noexec", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, data := ParseMountOptions(s)
		for _, o := range strings.Split(data, ",") {
			if _, known := mountFlags[o]; known {
				t.Fatalf("ParseMountOptions(%q) left keyword %q in data %q", s, o, data)
			}
		}
		if _, err := MergeTmpfsOptions(strings.Split(s, ",")); err != nil && !strings.HasPrefix(err.Error(), "Invalid tmpfs option [") {
			t.Fatalf("MergeTmpfsOptions(%q) error %q", s, err)
		}
	})
}

const (
	msBind   = syscall.MS_BIND
	msRdonly = syscall.MS_RDONLY
	msRec    = syscall.MS_REC
	msSlave  = syscall.MS_SLAVE
	msNosuid = syscall.MS_NOSUID
)

// FuzzParseTmpfs checks that tmpfs options never panic and that accepted
// ones always start with dockerd's defaults and name a clean destination.
func FuzzParseTmpfs(f *testing.F) {
	for _, s := range [][2]string{{"/t", "size=1m"}, {"/run", "ro,exec,mode=1777"}, {"/", ""}, {"t", "size=1m,size=2m"}, {"/x", "rbind,foo"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dest, opts string) {
		mps, err := ParseTmpfs(map[string]string{dest: opts})
		if err != nil {
			return
		}
		if len(mps) != 1 || !strings.HasPrefix(mps[0].Destination, "/") || mps[0].Destination == "/" {
			t.Fatalf("ParseTmpfs(%q: %q) = %+v", dest, opts, mps)
		}
		for _, o := range strings.Split(mps[0].TmpfsOptions, ",") {
			if _, known := mountFlags[o]; known {
				continue
			}
			if k, _, ok := strings.Cut(o, "="); !ok || !tmpfsDataKeys[k] {
				t.Fatalf("ParseTmpfs(%q: %q) kept option %q", dest, opts, o)
			}
		}
	})
}
