package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

func openTestStore(t *testing.T, root string, opts Options) *Store {
	t.Helper()
	s, err := Open(root, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", root, err)
	}
	return s
}

func mustCreate(t *testing.T, s *Store, name string, opts, labels map[string]string) Volume {
	t.Helper()
	v, _, err := s.Create(name, "", opts, labels)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return v
}

func names(vs []Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestCreateGetAndReopen(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	s := openTestStore(t, root, Options{})
	v, created, err := s.Create("data", "local", nil, map[string]string{"a": "b"})
	if err != nil || !created {
		t.Fatalf("Create = %v, %v, %v", v, created, err)
	}
	if want := filepath.Join(root, "data", "_data"); v.Mountpoint != want {
		t.Errorf("Mountpoint = %q, want %q", v.Mountpoint, want)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("_data = %v, %v; want a 0755 directory", fi, err)
	}
	api := v.API()
	if api.Driver != "local" || api.Scope != "local" || api.Labels["a"] != "b" || api.Options != nil || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`).MatchString(api.CreatedAt) {
		t.Errorf("API() = %+v", api)
	}

	// Same name again: the existing volume, unchanged, not created.
	again, created, err := s.Create("data", "", nil, map[string]string{"other": "1"})
	if err != nil || created || !reflect.DeepEqual(again, v) {
		t.Errorf("second Create = %+v, %v, %v; want the first volume, not created", again, created, err)
	}

	s2 := openTestStore(t, root, Options{})
	got, err := s2.Get("data")
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Errorf("after reopen Get = %+v, %v; want %+v", got, err, v)
	}
	if _, err := s2.Get("nope"); err == nil || err.Error() != "get nope: no such volume" || !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(nope) = %v, want NotFound 'get nope: no such volume'", err)
	}
}

func TestCreateErrors(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	tests := []struct {
		name, driver string
		opts         map[string]string
		want         string
		kind         errdefs.Kind
	}{
		{"a", "", nil, "create a: volume name is too short, names should be at least two alphanumeric characters", errdefs.ErrInvalidParameter},
		{"hello world", "", nil, `create hello world: "hello world" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.ErrInvalidParameter},
		{"../x", "", nil, `create ../x: "../x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.ErrInvalidParameter},
		{".x", "", nil, `create .x: ".x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.ErrInvalidParameter},
		{"a/b", "", nil, `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.ErrInvalidParameter},
		{"vv", "", map[string]string{"bogus": "1"}, `create vv: invalid option: "bogus"`, errdefs.ErrInvalidParameter},
		{"vv", "", map[string]string{"type": "tmpfs"}, `create vv: missing required option: "device"`, errdefs.ErrInvalidParameter},
		{"vv", "", map[string]string{"device": "tmpfs"}, `create vv: missing required option: "type"`, errdefs.ErrInvalidParameter},
		{"vv", "", map[string]string{"o": "size=1m", "device": "tmpfs"}, `create vv: missing required option: "type"`, errdefs.ErrInvalidParameter},
		{"vv", "", map[string]string{"size": "1g"}, `create vv: quota size requested but no quota support`, errdefs.ErrInvalidParameter},
		{"vv", "", map[string]string{"size": "lots"}, `create vv: invalid size: 'lots'`, errdefs.ErrInvalidParameter},
		{"vv", "nfs-plugin", nil, `create vv: error looking up volume plugin nfs-plugin: plugin "nfs-plugin" not found`, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		_, _, err := s.Create(tt.name, tt.driver, tt.opts, nil)
		if err == nil || err.Error() != tt.want || errdefs.KindOf(err) != tt.kind {
			t.Errorf("Create(%q, %q, %v) = %v (%v), want %q (%v)", tt.name, tt.driver, tt.opts, err, errdefs.KindOf(err), tt.want, tt.kind)
		}
	}
	if list, _ := s.List(filters.NewArgs()); len(list) != 0 {
		t.Errorf("failed creates left volumes: %v", names(list))
	}
	entries, _ := os.ReadDir(s.Root())
	if len(entries) != 0 {
		t.Errorf("failed creates left files: %v", entries)
	}
}

func TestAnonymousVolume(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	labels := map[string]string{"x": "1"}
	v := mustCreate(t, s, "", nil, labels)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v.Name) {
		t.Errorf("anonymous name %q is not 64 hex digits", v.Name)
	}
	if !v.Anonymous() || v.Labels[AnonymousLabel] != "" || v.Labels["x"] != "1" {
		t.Errorf("anonymous labels = %v", v.Labels)
	}
	if _, ok := labels[AnonymousLabel]; ok {
		t.Error("Create changed the caller's label map")
	}
}

func TestLeftoversAndForeignDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	s := openTestStore(t, root, Options{})
	mustCreate(t, s, "kept", nil, nil)
	// A crash mid-create leaves a temporary directory; a hand-made
	// directory (or an older layout) has no metadata but is a volume.
	os.MkdirAll(filepath.Join(root, atomicfile.TempPrefix+"half-123", "_data"), 0o755)
	os.MkdirAll(filepath.Join(root, "handmade", "_data"), 0o755)
	os.WriteFile(filepath.Join(root, "stray-file"), nil, 0o600)
	s2 := openTestStore(t, root, Options{})
	list, err := s2.List(filters.NewArgs())
	if err != nil || !slices.Equal(names(list), []string{"handmade", "kept"}) {
		t.Errorf("List after reopen = %v, %v; want handmade, kept", names(list), err)
	}
	if _, err := os.Stat(filepath.Join(root, atomicfile.TempPrefix+"half-123")); !os.IsNotExist(err) {
		t.Errorf("temporary directory survived Open: %v", err)
	}
}

func TestListFilters(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{InUse: func(name string) []string {
		if name == "web-data" {
			return []string{"c2"}
		}
		return nil
	}})
	mustCreate(t, s, "db-data", nil, map[string]string{"app": "db", "tier": "back"})
	mustCreate(t, s, "web-data", nil, map[string]string{"app": "web"})
	mustCreate(t, s, "cache", nil, nil)
	if err := s.Acquire("db-data", "c1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args filters.Args
		want []string
	}{
		{filters.NewArgs(), []string{"cache", "db-data", "web-data"}},
		{filters.NewArgs(filters.Arg("label", "app")), []string{"db-data", "web-data"}},
		{filters.NewArgs(filters.Arg("label", "app=db")), []string{"db-data"}},
		{filters.NewArgs(filters.Arg("label", "app=db"), filters.Arg("label", "tier=front")), nil},
		{filters.NewArgs(filters.Arg("name", "data")), []string{"db-data", "web-data"}},
		{filters.NewArgs(filters.Arg("name", "^c")), []string{"cache"}},
		{filters.NewArgs(filters.Arg("dangling", "true")), []string{"cache"}},
		{filters.NewArgs(filters.Arg("dangling", "0")), []string{"db-data", "web-data"}},
		{filters.NewArgs(filters.Arg("driver", "local"), filters.Arg("name", "cache")), []string{"cache"}},
		{filters.NewArgs(filters.Arg("driver", "nfs")), nil},
	}
	for _, tt := range tests {
		p, _ := filters.ToParam(tt.args)
		got, err := s.List(tt.args)
		if err != nil || !slices.Equal(names(got), tt.want) {
			t.Errorf("List(%s) = %v, %v; want %v", p, names(got), err, tt.want)
		}
	}
	for _, bad := range []filters.Args{
		filters.NewArgs(filters.Arg("bogus", "1")),
		filters.NewArgs(filters.Arg("dangling", "maybe")),
		filters.NewArgs(filters.Arg("label!", "a")), // prune only
	} {
		if _, err := s.List(bad); !errors.Is(err, errdefs.ErrInvalidParameter) {
			p, _ := filters.ToParam(bad)
			t.Errorf("List(%s) error = %v, want invalid parameter", p, err)
		}
	}
}

func TestRemove(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	v := mustCreate(t, s, "data", nil, nil)
	os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644)
	s.Acquire("data", "cdef0e25b175")
	s.Acquire("data", "0123abcd")
	for _, force := range []bool{false, true} {
		err := s.Remove("data", force)
		want := "remove data: volume is in use - [0123abcd, cdef0e25b175]"
		if err == nil || err.Error() != want || !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Remove(in use, force=%v) = %v, want conflict %q", force, err, want)
		}
	}
	if got := s.Users("data"); !slices.Equal(got, []string{"0123abcd", "cdef0e25b175"}) {
		t.Errorf("Users = %v", got)
	}
	s.Release("data", "0123abcd")
	s.Release("data", "cdef0e25b175")
	s.Release("data", "never-acquired")
	s.Release("no-such-volume", "x")
	if err := s.Remove("data", false); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(v.Mountpoint)); !os.IsNotExist(err) {
		t.Errorf("volume directory survived Remove: %v", err)
	}
	if entries, _ := os.ReadDir(s.Root()); len(entries) != 0 {
		t.Errorf("Remove left %v in the volumes root", entries)
	}
	if err := s.Remove("data", false); err == nil || err.Error() != "get data: no such volume" || !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Remove(missing) = %v, want NotFound", err)
	}
	if err := s.Remove("data", true); err != nil {
		t.Errorf("Remove(missing, force) = %v, want nil", err)
	}
	if err := s.Acquire("data", "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Acquire(missing) = %v, want NotFound", err)
	}
	// Recreating a removed name works and starts empty.
	v = mustCreate(t, s, "data", nil, nil)
	if entries, _ := os.ReadDir(v.Mountpoint); len(entries) != 0 {
		t.Errorf("recreated volume is not empty: %v", entries)
	}
}

func TestPrune(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	anon := mustCreate(t, s, "", nil, map[string]string{"keep": "no"})
	os.WriteFile(filepath.Join(anon.Mountpoint, "f"), make([]byte, 1000), 0o644)
	os.Link(filepath.Join(anon.Mountpoint, "f"), filepath.Join(anon.Mountpoint, "hard"))
	anonUsed := mustCreate(t, s, "", nil, nil)
	s.Acquire(anonUsed.Name, "c1")
	mustCreate(t, s, "named", nil, map[string]string{"keep": "no"})
	mustCreate(t, s, "named-keep", nil, map[string]string{"keep": "yes"})
	mustCreate(t, s, "tmpfs-backed", map[string]string{"type": "tmpfs", "device": "tmpfs"}, nil)

	rep, err := s.Prune(context.Background(), filters.NewArgs())
	if err != nil || !slices.Equal(rep.Deleted, []string{anon.Name}) || rep.Reclaimed != 1000 {
		t.Fatalf("Prune() = %+v, %v; want only the unused anonymous volume, 1000 bytes", rep, err)
	}
	rep, err = s.Prune(context.Background(), filters.NewArgs(filters.Arg("all", "true"), filters.Arg("label!", "keep=yes")))
	if err != nil || !slices.Equal(rep.Deleted, []string{"named"}) {
		t.Fatalf("Prune(all, label!=keep=yes) = %+v, %v; want named", rep, err)
	}
	rep, err = s.Prune(context.Background(), filters.NewArgs(filters.Arg("all", "1"), filters.Arg("label", "keep=yes")))
	if err != nil || !slices.Equal(rep.Deleted, []string{"named-keep"}) {
		t.Fatalf("Prune(all, label=keep=yes) = %+v, %v; want named-keep", rep, err)
	}
	rep, err = s.Prune(context.Background(), filters.NewArgs(filters.Arg("all", "true")))
	if err != nil || len(rep.Deleted) != 0 || rep.Deleted == nil {
		t.Errorf("Prune(all) = %+v, %v; want nothing deleted (in use or option-backed), as an empty list", rep, err)
	}
	list, _ := s.List(filters.NewArgs())
	if got := names(list); !slices.Equal(got, []string{anonUsed.Name, "tmpfs-backed"}) && !slices.Equal(got, []string{"tmpfs-backed", anonUsed.Name}) {
		t.Errorf("left after prunes: %v", got)
	}
	for _, bad := range []struct {
		args filters.Args
		want string
	}{
		{filters.NewArgs(filters.Arg("all", "true"), filters.Arg("all", "false")), "invalid filter 'all=[false true]': only one value is expected"},
		{filters.NewArgs(filters.Arg("all", "maybe")), `invalid filter 'all': strconv.ParseBool: parsing "maybe": invalid syntax`},
		{filters.NewArgs(filters.Arg("dangling", "true")), "invalid filter 'dangling'"},
	} {
		if _, err := s.Prune(context.Background(), bad.args); err == nil || err.Error() != bad.want || !errors.Is(err, errdefs.ErrInvalidParameter) {
			t.Errorf("Prune error = %v, want %q", err, bad.want)
		}
	}
}

func TestDirSize(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 100), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b"), make([]byte, 20), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "a-again"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "link")) // 11 bytes of target, not the file
	got, err := DirSize(context.Background(), dir)
	if want := int64(100 + 20 + len("/etc/passwd")); err != nil || got != want {
		t.Errorf("DirSize = %d, %v; want %d", got, err, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DirSize(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("DirSize with a cancelled context = %v", err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func isMounted(t *testing.T, p string) bool {
	t.Helper()
	points, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	return points[p]
}

func TestTmpfsBackedVolume(t *testing.T) {
	requireRoot(t)
	root := filepath.Join(t.TempDir(), "volumes")
	s := openTestStore(t, root, Options{})
	v := mustCreate(t, s, "scratch", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000,noexec"}, nil)
	t.Cleanup(func() { unmount(v.Mountpoint) })
	if !v.NeedsMount() || v.API().Options["o"] != "size=1m,uid=1000,noexec" {
		t.Fatalf("volume = %+v", v)
	}
	p1, err := s.Mount("scratch", "c1")
	if err != nil || p1 != v.Mountpoint {
		t.Fatalf("Mount = %q, %v", p1, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p1, &st); err != nil || st.Type != 0x01021994 || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Errorf("statfs = type %#x, %d blocks of %d (%v); want a 1 MiB tmpfs", st.Type, st.Blocks, st.Bsize, err)
	}
	var fst syscall.Stat_t
	if err := syscall.Stat(p1, &fst); err != nil || fst.Uid != 1000 {
		t.Errorf("mounted root owner = %d (%v), want 1000 from o=uid=1000", fst.Uid, err)
	}
	if _, err := s.Mount("scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(p1, "f"), []byte("in tmpfs"), 0o644)
	if err := s.Remove("scratch", false); err == nil || !strings.Contains(err.Error(), "volume has active mounts") {
		t.Errorf("Remove while mounted = %v, want 'volume has active mounts'", err)
	}
	if err := s.Unmount("scratch", "c1"); err != nil || !isMounted(t, p1) {
		t.Fatalf("first Unmount = %v; still mounted = %v, want true", err, isMounted(t, p1))
	}

	// A restarted daemon finds it mounted and unmounts on the last Unmount.
	s2 := openTestStore(t, root, Options{})
	if _, err := s2.Mount("scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Unmount("scratch", "c2"); err != nil || isMounted(t, p1) {
		t.Fatalf("last Unmount = %v; still mounted = %v", err, isMounted(t, p1))
	}
	if _, err := os.Stat(filepath.Join(p1, "f")); !os.IsNotExist(err) {
		t.Errorf("tmpfs content visible after unmount: %v", err)
	}
	if err := s2.Unmount("scratch", "c2"); err != nil {
		t.Errorf("extra Unmount = %v, want nil", err)
	}
	if err := s2.Remove("scratch", false); err != nil {
		t.Errorf("Remove: %v", err)
	}
}

func TestBindBackedVolumeRemoveKeepsHostFiles(t *testing.T) {
	requireRoot(t)
	host := t.TempDir()
	sentinel := filepath.Join(host, "sentinel")
	os.WriteFile(sentinel, []byte("host data"), 0o644)
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	v := mustCreate(t, s, "hostdir", map[string]string{"type": "none", "device": host, "o": "bind,ro"}, nil)
	t.Cleanup(func() { unmount(v.Mountpoint) })
	p, err := s.Mount("hostdir", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "sentinel")); err != nil || string(b) != "host data" {
		t.Errorf("bind volume content = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(p, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into o=bind,ro volume = %v, want EROFS", err)
	}
	s.Unmount("hostdir", "c1")
	// Mounted again behind the store's back: Remove must refuse rather
	// than delete through the mount.
	if err := syscall.Mount(host, v.Mountpoint, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("hostdir", false); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if b, err := os.ReadFile(sentinel); err != nil || string(b) != "host data" {
		t.Fatalf("host file after Remove = %q, %v", b, err)
	}
}

func TestPopulateFrom(t *testing.T) {
	requireRoot(t)
	rootfs := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600)
	srv := filepath.Join(rootfs, "srv")
	os.MkdirAll(filepath.Join(srv, "sub"), 0o750)
	os.Chown(srv, 1234, 5678)
	os.Chmod(srv, 0o770|os.ModeSticky)
	os.WriteFile(filepath.Join(srv, "index.html"), []byte("hello"), 0o640)
	os.Chown(filepath.Join(srv, "index.html"), 33, 33)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(srv, "abs-link"))
	// Image symlinks resolve inside the rootfs: /link-to-srv -> /srv, and
	// /escape -> ../../.. (clamped to the rootfs root, never the host's).
	os.Symlink("/srv", filepath.Join(rootfs, "link-to-srv"))
	os.Symlink("../../../../../../../"+outside[1:], filepath.Join(rootfs, "escape"))

	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	v := mustCreate(t, s, "web", nil, nil)
	if err := s.PopulateFrom(context.Background(), "web", rootfs, "/link-to-srv/"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "index.html")); err != nil || string(b) != "hello" {
		t.Errorf("copied file = %q, %v", b, err)
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(v.Mountpoint, "index.html"), &st)
	if st.Uid != 33 || st.Gid != 33 || st.Mode&0o777 != 0o640 {
		t.Errorf("copied file owner %d:%d mode %o, want 33:33 640", st.Uid, st.Gid, st.Mode&0o777)
	}
	syscall.Stat(v.Mountpoint, &st)
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o1770 {
		t.Errorf("volume root owner %d:%d mode %o, want 1234:5678 1770 from the source", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if target, err := os.Readlink(filepath.Join(v.Mountpoint, "abs-link")); err != nil || target != filepath.Join(outside, "secret") {
		t.Errorf("symlink copied as %q, %v; want the link itself", target, err)
	}
	if fi, err := os.Stat(filepath.Join(v.Mountpoint, "sub")); err != nil || !fi.IsDir() {
		t.Errorf("sub directory: %v, %v", fi, err)
	}

	// Not empty any more: a second populate changes nothing.
	os.WriteFile(filepath.Join(srv, "later"), nil, 0o644)
	if err := s.PopulateFrom(context.Background(), "web", rootfs, "/srv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "later")); !os.IsNotExist(err) {
		t.Errorf("populate of a non-empty volume copied again: %v", err)
	}

	// A link climbing out is clamped to the rootfs: the host directory is
	// never read.
	v2 := mustCreate(t, s, "escape", nil, nil)
	if err := s.PopulateFrom(context.Background(), "escape", rootfs, "/escape"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v2.Mountpoint, "secret")); !os.IsNotExist(err) {
		t.Errorf("populate followed a symlink out of the rootfs: %v", err)
	}
	// Missing targets and files copy nothing.
	for _, target := range []string{"/does/not/exist", "/srv/index.html"} {
		v3 := mustCreate(t, s, "empty-"+strings.ReplaceAll(target[1:], "/", "-"), nil, nil)
		if err := s.PopulateFrom(context.Background(), v3.Name, rootfs, target); err != nil {
			t.Errorf("PopulateFrom(%s) = %v", target, err)
		}
		if entries, _ := os.ReadDir(v3.Mountpoint); len(entries) != 0 {
			t.Errorf("PopulateFrom(%s) copied %v", target, entries)
		}
	}
	if err := s.PopulateFrom(context.Background(), "nope", rootfs, "/srv"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("PopulateFrom(missing volume) = %v", err)
	}
}

func TestConcurrentCreateAndPrune(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	const n = 16
	created := make(chan bool, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, c, err := s.Create("shared", "", nil, nil)
			if err != nil {
				errs <- err
			}
			created <- c
		}()
		go func() {
			defer wg.Done()
			_, err := s.Prune(context.Background(), filters.NewArgs(filters.Arg("label", "nothing-has-this")))
			if err != nil && err.Error() != "a prune operation is already running" {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(created)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	count := 0
	for c := range created {
		if c {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d of %d concurrent creates reported creating the volume, want 1", count, n)
	}
}

func TestConcurrentPopulate(t *testing.T) {
	requireRoot(t)
	rootfs := t.TempDir()
	for i := range 50 {
		dir := filepath.Join(rootfs, "srv", "d"+strconv.Itoa(i))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "f"), []byte(strconv.Itoa(i)), 0o644)
	}
	s := openTestStore(t, filepath.Join(t.TempDir(), "volumes"), Options{})
	v := mustCreate(t, s, "shared", nil, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.PopulateFrom(context.Background(), "shared", rootfs, "/srv")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	entries, _ := os.ReadDir(v.Mountpoint)
	if len(entries) != 50 {
		t.Errorf("volume holds %d entries after concurrent populates, want 50", len(entries))
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "d7", "f")); err != nil || string(b) != "7" {
		t.Errorf("d7/f = %q, %v", b, err)
	}
}
