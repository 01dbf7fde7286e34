package skifftest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"
)

// BusyboxPath is where Debian's busybox-static puts the binary that test
// images are made of (.ci/run installs it).
const BusyboxPath = "/bin/busybox"

// busyboxApplets are linked in the test image's /bin.
var busyboxApplets = []string{"sh", "ls", "cat", "echo", "env", "ps", "sleep", "id", "mkdir", "rm", "touch", "wc", "df",
	"hostname", "true", "false", "test", "printf", "grep", "head", "sed", "stat", "top", "uname", "whoami", "ln", "mv", "cp",
	"chmod", "find", "tail", "kill", "date", "pwd", "readlink", "mount", "dd", "seq", "sync", "nc", "wget", "ip", "ifconfig", "httpd", "ping", "nslookup"}

// Entry is one member of a test tar.
type Entry struct {
	Name     string
	Body     string
	Mode     int64 // default 0644 for files, 0755 for dirs
	Type     byte  // default tar.TypeReg, or tar.TypeDir when Name ends in "/"
	Linkname string
	UID, GID int
}

// Tar builds an uncompressed tar from entries.
func Tar(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Typeflag: e.Type, Linkname: e.Linkname, Uid: e.UID, Gid: e.GID, ModTime: mtime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			if len(e.Name) > 0 && e.Name[len(e.Name)-1] == '/' {
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.Body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BusyboxRootfs returns the entries of a minimal root filesystem: a static
// busybox with its applets linked in /bin, /etc/passwd and /etc/group, and
// /tmp. It fails the test when busybox-static is not installed.
func BusyboxRootfs(t testing.TB) []Entry {
	t.Helper()
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatalf("busybox-static is needed for test images (.ci/run installs it): %v", err)
	}
	entries := []Entry{
		{Name: "bin/"},
		{Name: "bin/busybox", Body: string(bin), Mode: 0o755},
		{Name: "etc/"},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n"},
		{Name: "etc/group", Body: "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nstaff:x:50:user\n"},
		{Name: "tmp/", Mode: 0o1777},
		{Name: "root/", Mode: 0o700},
	}
	for _, a := range busyboxApplets {
		entries = append(entries, Entry{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	return entries
}

// BusyboxTar is BusyboxRootfs as a tar, what `docker import` takes.
func BusyboxTar(t testing.TB) []byte {
	t.Helper()
	return Tar(t, BusyboxRootfs(t))
}

// ArchiveImage describes one image of a docker-archive built by
// DockerArchive: its layers (each a tar, gzip-compressed when Gzip[i]), its
// run config and its tags.
type ArchiveImage struct {
	Layers   [][]byte
	Gzip     []bool
	Cmd      []string
	Env      []string
	RepoTags []string
}

// DockerArchive builds a `docker save`-style archive (manifest.json,
// config blobs, layer blobs) and returns it with each image's ID.
func DockerArchive(t testing.TB, images []ArchiveImage) ([]byte, []string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	add := func(name string, data []byte) {
		if written[name] {
			return
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	type manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []manifestEntry
	var ids []string
	for _, img := range images {
		var diffIDs, layerPaths []string
		for i, l := range img.Layers {
			d := sha256.Sum256(l)
			diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(d[:]))
			blob := l
			if i < len(img.Gzip) && img.Gzip[i] {
				var gz bytes.Buffer
				zw := gzip.NewWriter(&gz)
				zw.Write(l)
				zw.Close()
				blob = gz.Bytes()
			}
			b := sha256.Sum256(blob)
			p := "blobs/sha256/" + hex.EncodeToString(b[:])
			add(p, blob)
			layerPaths = append(layerPaths, p)
		}
		created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		var history []map[string]any
		for range img.Layers {
			history = append(history, map[string]any{"created": created, "created_by": "skifftest layer"})
		}
		cfg, _ := json.Marshal(map[string]any{
			"architecture": "amd64", "os": "linux", "created": created,
			"config":  map[string]any{"Cmd": img.Cmd, "Env": img.Env},
			"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
			"history": history,
		})
		c := sha256.Sum256(cfg)
		cp := "blobs/sha256/" + hex.EncodeToString(c[:])
		add(cp, cfg)
		ids = append(ids, "sha256:"+hex.EncodeToString(c[:]))
		manifest = append(manifest, manifestEntry{Config: cp, RepoTags: img.RepoTags, Layers: layerPaths})
	}
	m, _ := json.Marshal(manifest)
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), ids
}

// TarNames lists a tar's entry names in order, failing t on a malformed
// stream.
func TarNames(t testing.TB, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		names = append(names, hdr.Name)
	}
}

// TarContents maps a tar's entries to their content, failing t on a
// malformed stream.
func TarContents(t testing.TB, b []byte) map[string]string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar entry %s: %v", hdr.Name, err)
		}
		out[hdr.Name] = string(body)
	}
}
