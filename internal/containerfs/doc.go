// Package containerfs is a container's file system seen from outside, for
// docker cp, export, diff and commit: it resolves container paths inside
// the container's root with chroot semantics (openat2 RESOLVE_IN_ROOT, so
// a symlink the container planted never leads to the host, CVE-2018-15664),
// stats them, packs them as tar (putting the content of volumes, binds and
// the engine's network files in place of what the root holds under them),
// extracts tars into them with dockerd's traversal checks, looks up the
// container's user in its own /etc/passwd and /etc/group, lists the
// changes of an overlay upper directory, and packs that directory as a
// layer without the mount points the runtime created.
//
// It knows nothing of containers' records, locks or events. The caller
// picks the container, keeps it locked and its root file system mounted
// while an FS is open, and names the mounts the container sees:
//
//	fs, err := containerfs.Open(rootfs, containerfs.Options{
//		Name:   "web", // as the client named it, for errors
//		Mounts: []containerfs.Mount{{Destination: "/data", Source: volumeDir, RW: true}},
//	})
//	if err != nil {
//		return err
//	}
//	defer fs.Close()
//	p, err := fs.Resolve("/data/report.txt") // NotFound: "Could not find the file ..."
//	if err != nil {
//		return err
//	}
//	defer p.Close()
//	stat := p.Stat() // the X-Docker-Container-Path-Stat content
//	err = fs.Pack(ctx, w, p) // a tar whose top entry is "report.txt"
//
// Extract goes the other way; Changes and NewDiff read an overlay upper
// directory by its path and need no FS. Errors carry errdefs kinds and
// dockerd's wording.
package containerfs
