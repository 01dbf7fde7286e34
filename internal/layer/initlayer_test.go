package layer

import (
	"archive/tar"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/atomicfile"
)

// statOf lstats p or fails the test.
func statOf(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// TestInitLayer: a container's root has the runtime's mount points over
// any image, made once per chain in an init layer as dockerd makes its
// own: a directory the image has stays the image's (its /etc and /dev keep
// their owner, mode and time, its /sys is not in the layer), anything else
// at those paths is replaced (its /etc/hosts and /dev/console by empty
// files, a dangling /etc/hosts link by a file, a stale /etc/mtab file by
// the link to /proc/mounts), a file whited out or under an opaque /etc in a
// later layer is made anew, an /etc symbolic link becomes a directory;
// modes do not depend on the daemon's umask; the layer goes with its
// chain.
func TestInitLayer(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	s := newStore(t)

	etcTime := time.Unix(1600000000, 0)
	etc := tarEntry{hdr: tar.Header{Name: "etc", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8, ModTime: etcTime}}
	dev := tarEntry{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 5, Gid: 5, ModTime: etcTime}}
	sysDir := tarEntry{hdr: tar.Header{Name: "sys", Typeflag: tar.TypeDir, Mode: 0o555, ModTime: etcTime}}
	base := register(t, s, buildTar(t, etc, file("etc/hosts", "127.0.0.1 image"), file("etc/hostname", "img"),
		file("etc/resolv.conf", "nameserver 9.9.9.9"), file("etc/mtab", "stale"), dev, file("dev/console", "c"), sysDir,
		file("bin/sh", "x")), "")
	// A later layer deletes /etc/hostname and empties nothing else.
	top := register(t, s, buildTar(t, whiteout("etc/hostname")), base.ChainID)
	// Another chain: /etc opaque in the top layer, so the base's files
	// are gone from it.
	opq := register(t, s, buildTar(t, dir("etc"), opaque("etc"), file("etc/motd", "m")), base.ChainID)
	// A third: /etc a symbolic link.
	link := register(t, s, buildTar(t, symlink("etc", "usr/etc"), dir("usr"), dir("usr/etc"), file("usr/etc/x", "x")), "")
	// A fourth: /etc/hosts a link to nowhere, /etc/resolv.conf a
	// directory.
	dangling := register(t, s, buildTar(t, dir("etc"), symlink("etc/hosts", "/nowhere"), dir("etc/resolv.conf")), "")

	// The image's /etc and /dev as the base layer has them; a later layer
	// that touches /etc (the whiteout's parent) sets the merged view's
	// own, as overlay takes a directory's attributes from its topmost
	// layer.
	_, rootfs := mountRootfs(t, s, base.ChainID)
	init := filepath.Join(s.dir(base.ChainID), initDirName)
	for _, d := range []struct {
		name          string
		mode, uid, gd uint32
	}{{"etc", 0o750, 7, 8}, {"dev", 0o700, 5, 5}} {
		for _, root := range []string{init, rootfs} {
			if st := statOf(t, filepath.Join(root, d.name)); st.Mode != syscall.S_IFDIR|d.mode || st.Uid != d.uid || st.Gid != d.gd || st.Mtim.Sec != etcTime.Unix() {
				t.Errorf("%s in %s: mode %o owner %d:%d mtime %d, want the image's %o %d:%d %d", d.name, root, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, d.mode, d.uid, d.gd, etcTime.Unix())
			}
		}
	}
	if st := statOf(t, filepath.Join(rootfs, "sys")); st.Mode != syscall.S_IFDIR|0o555 {
		t.Errorf("container's /sys: mode %o, want the image's 555", st.Mode)
	}
	if _, err := os.Lstat(filepath.Join(init, "sys")); err == nil {
		t.Errorf("init layer has sys, which the image has")
	}
	for _, d := range []string{"dev/pts", "dev/shm", "proc"} {
		if st := statOf(t, filepath.Join(rootfs, d)); st.Mode != syscall.S_IFDIR|0o755 {
			t.Errorf("container's /%s: mode %o, want a 0755 directory", d, st.Mode)
		}
	}
	for _, f := range initLayerFiles {
		if st := statOf(t, filepath.Join(rootfs, f.name)); st.Size != 0 || st.Mode != syscall.S_IFREG|0o755 {
			t.Errorf("container's /%s: size %d mode %o, want dockerd's empty 0755 file over the image's", f.name, st.Size, st.Mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(rootfs, "etc/mtab")); err != nil || target != "/proc/mounts" {
		t.Errorf("container's /etc/mtab links to %q (%v), want /proc/mounts over the image's file", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd")); err == nil || len(b) > 0 {
		t.Errorf("container's /etc/passwd = %q, %v: the image has none", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "bin/sh")); err != nil || string(b) != "x" {
		t.Errorf("container's /bin/sh = %q, %v, want the image's", b, err)
	}

	_, rootfs = mountRootfs(t, s, top.ChainID)
	init = filepath.Join(s.dir(top.ChainID), initDirName)
	if st := statOf(t, filepath.Join(rootfs, "etc/hostname")); st.Size != 0 || st.Mode != syscall.S_IFREG|0o755 {
		t.Errorf("container's /etc/hostname whited out above: size %d mode %o, want an empty 0755 mount point", st.Size, st.Mode)
	}

	_, rootfs = mountRootfs(t, s, dangling.ChainID)
	if st := statOf(t, filepath.Join(rootfs, "etc/hosts")); st.Size != 0 || st.Mode != syscall.S_IFREG|0o755 {
		t.Errorf("container's /etc/hosts over a dangling link: size %d mode %o, want an empty 0755 file", st.Size, st.Mode)
	}
	if st := statOf(t, filepath.Join(rootfs, "etc/resolv.conf")); st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("container's /etc/resolv.conf: mode %o, want the image's directory kept, as dockerd", st.Mode)
	}

	_, rootfs = mountRootfs(t, s, opq.ChainID)
	for _, f := range append(initLayerFiles, initLayerLinks...) {
		if _, err := os.Lstat(filepath.Join(rootfs, f.name)); err != nil {
			t.Errorf("under an opaque /etc: %s missing: %v", f.name, err)
		}
	}
	_, rootfs = mountRootfs(t, s, link.ChainID)
	if st := statOf(t, filepath.Join(rootfs, "etc")); st.Mode != syscall.S_IFDIR|0o755 {
		t.Errorf("an /etc link becomes a 0755 directory, got mode %o", st.Mode)
	}

	// Made once: a second container of the chain gets the same one.
	mark := filepath.Join(init, "proc", "kept")
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mountRootfs(t, s, top.ChainID)
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the init layer was made again: %v", err)
	}
}

// TestInitLayerCrashLeftover: what a crash leaves of an init layer being
// made is removed by Open, and a removed chain takes its layer along.
func TestInitLayerCrashLeftover(t *testing.T) {
	s := newStore(t)
	half := filepath.Join(s.root, atomicfile.TempPrefix+"init-123")
	if err := os.MkdirAll(filepath.Join(half, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("half-made init layer after Open: %v", err)
	}
	l := register(t, s2, buildTar(t, file("a", "a")), "")
	containerDir, _ := mountRootfs(t, s2, l.ChainID)
	if err := UnmountRootfs(containerDir); err != nil {
		t.Fatal(err)
	}
	if err := s2.Remove(l.ChainID); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(s2.root); err != nil || len(entries) != 0 {
		t.Errorf("store root after the chain's removal = %v, %v, want empty", entries, err)
	}
}
