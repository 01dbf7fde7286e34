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
// any image, made once per chain in an init layer that holds only what the
// image lacks, as dockerd's init layer: an image's own /etc keeps its
// owner, mode and time, its /etc/hosts stays its own, a file whited out or
// under an opaque /etc in a later layer is made anew, an /etc symbolic
// link becomes a directory; modes do not depend on the daemon's umask; the
// layer goes with its chain.
func TestInitLayer(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	s := newStore(t)

	etcTime := time.Unix(1600000000, 0)
	etc := tarEntry{hdr: tar.Header{Name: "etc", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8, ModTime: etcTime}}
	base := register(t, s, buildTar(t, etc, file("etc/hosts", "127.0.0.1 image"), file("etc/hostname", "img"),
		file("etc/resolv.conf", "nameserver 9.9.9.9"), file("bin/sh", "x")), "")
	// A later layer deletes /etc/hostname and empties nothing else.
	top := register(t, s, buildTar(t, whiteout("etc/hostname")), base.ChainID)
	// Another chain: /etc opaque in the top layer, so the base's files
	// are gone from it.
	opq := register(t, s, buildTar(t, dir("etc"), opaque("etc"), file("etc/motd", "m")), base.ChainID)
	// A third: /etc a symbolic link.
	link := register(t, s, buildTar(t, symlink("etc", "usr/etc"), dir("usr"), dir("usr/etc"), file("usr/etc/x", "x")), "")

	// The image's /etc as the base layer has it; a later layer that
	// touches /etc (the whiteout's parent) sets the merged view's own, as
	// overlay takes a directory's attributes from its topmost layer.
	_, rootfs := mountRootfs(t, s, base.ChainID)
	init := filepath.Join(s.dir(base.ChainID), initDirName)
	if st := statOf(t, filepath.Join(init, "etc")); st.Mode != syscall.S_IFDIR|0o750 || st.Uid != 7 || st.Gid != 8 || st.Mtim.Sec != etcTime.Unix() {
		t.Errorf("init layer etc: mode %o owner %d:%d mtime %d, want the image's 750 7:8 %d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, etcTime.Unix())
	}
	if st := statOf(t, filepath.Join(rootfs, "etc")); st.Mode != syscall.S_IFDIR|0o750 || st.Uid != 7 || st.Mtim.Sec != etcTime.Unix() {
		t.Errorf("container's /etc: mode %o owner %d mtime %d, want the image's", st.Mode, st.Uid, st.Mtim.Sec)
	}
	for _, f := range []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(init, f)); err == nil {
			t.Errorf("init layer has %s, which the image has", f)
		}
	}
	if st := statOf(t, filepath.Join(rootfs, ".dockerenv")); st.Size != 0 || st.Mode != syscall.S_IFREG|0o755 {
		t.Errorf("container's /.dockerenv: size %d mode %o, want dockerd's empty 0755 file", st.Size, st.Mode)
	}
	if target, err := os.Readlink(filepath.Join(rootfs, "etc/mtab")); err != nil || target != "/proc/mounts" {
		t.Errorf("container's /etc/mtab links to %q (%v), want /proc/mounts", target, err)
	}

	_, rootfs = mountRootfs(t, s, top.ChainID)
	init = filepath.Join(s.dir(top.ChainID), initDirName)
	for _, d := range initLayerDirs {
		if st := statOf(t, filepath.Join(init, d)); st.Mode != syscall.S_IFDIR|0o755 {
			t.Errorf("init layer %s: mode %o", d, st.Mode)
		}
	}
	want := map[string]bool{"etc/hostname": true, ".dockerenv": true} // whited out above the base; not in the image
	for _, f := range initLayerFiles {
		_, err := os.Lstat(filepath.Join(init, f.name))
		if (err == nil) != want[f.name] {
			t.Errorf("init layer has %s: %v, want %v", f.name, err == nil, want[f.name])
		}
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/hosts")); err != nil || string(b) != "127.0.0.1 image" {
		t.Errorf("container's /etc/hosts = %q, %v, want the image's", b, err)
	}
	if st := statOf(t, filepath.Join(rootfs, "etc/hostname")); st.Size != 0 || st.Mode != syscall.S_IFREG|0o644 {
		t.Errorf("container's /etc/hostname: size %d mode %o, want an empty 0644 mount point", st.Size, st.Mode)
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
