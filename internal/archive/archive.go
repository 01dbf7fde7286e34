// Package archive streams tar archives into and out of directories the way
// dockerd's layer store and "docker cp" do, without ever following a path
// that an archive planted.
//
// Apply unpacks a layer (or a docker cp payload) into a directory; Pack writes
// a directory (or chosen paths inside it) as a tar; DecompressStream sniffs
// gzip and bzip2 in front of either:
//
//	rc, err := archive.DecompressStream(blob)
//	if err != nil {
//		return err
//	}
//	defer rc.Close()
//	size, err := archive.Apply(ctx, diffDir, rc, archive.ApplyOptions{WhiteoutFormat: archive.OverlayWhiteouts})
//
// Every file system operation is made relative to a directory file
// descriptor that was resolved inside the target with openat2
// (RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so symbolic links inside the tree
// are resolved with chroot semantics, as dockerd's chrootarchive does, and
// never lead outside it. On kernels without openat2 (before 5.6) a walker
// that refuses every symbolic link in a parent path is used instead.
//
// The package is Linux-only and uses raw system calls for what os.Root does
// not offer (mknodat, xattrs, utimensat without following links).
package archive

import (
	"sync"
)

// WhiteoutFormat says how deletions recorded in a layer are represented on
// disk. Layers on the wire always use the AUFS convention of ".wh." files.
type WhiteoutFormat int

const (
	// NoWhiteouts applies whiteout entries as deletions: ".wh.name" removes
	// name, and ".wh..wh..opq" removes everything in its directory that the
	// archive did not itself create. This is moby's UnpackLayer behaviour,
	// used to extract onto a populated tree (docker cp, flattening).
	NoWhiteouts WhiteoutFormat = iota
	// OverlayWhiteouts converts whiteouts for an overlayfs upper or layer
	// directory: ".wh.name" becomes a 0:0 character device named name and
	// ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory. Pack
	// converts them back.
	OverlayWhiteouts
	// LiteralWhiteouts extracts ".wh." entries as the ordinary files they
	// are in the archive, as dockerd's Untar does for docker cp and the
	// archive API: copying a user's tree must not delete anything.
	LiteralWhiteouts
)

// Names of the AUFS whiteout convention that image layers use.
const (
	// WhiteoutPrefix prefixes a file name to mark that file as deleted.
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix prefixes AUFS's own metadata entries, which are
	// never extracted.
	WhiteoutMetaPrefix = WhiteoutPrefix + WhiteoutPrefix
	// WhiteoutLinkDir is the AUFS directory of hardlink targets.
	WhiteoutLinkDir = WhiteoutMetaPrefix + "plnk"
	// WhiteoutOpaqueDir marks its directory as opaque: nothing from lower
	// layers shows through it.
	WhiteoutOpaqueDir = WhiteoutMetaPrefix + ".opq"
)

// ImpliedDirectoryMode is the mode of parent directories that an archive
// implies without listing them, the same 0755 dockerd uses.
const ImpliedDirectoryMode = 0o755

// overlayOpaqueXattr is the attribute overlayfs reads to make a directory
// opaque. In a user namespace overlayfs would need "user.overlay.opaque"
// and the userxattr mount option; skiffd runs as real root.
const overlayOpaqueXattr = "trusted.overlay.opaque"

// paxXattrPrefix prefixes the PAX records that carry extended attributes.
const paxXattrPrefix = "SCHILY.xattr."

// ChownOpts overrides the owner of every extracted entry (docker cp's
// --archive off path copies files as the container's root).
type ChownOpts struct {
	UID int
	GID int
}

// ApplyOptions controls Apply. The zero value extracts with whiteouts applied
// as deletions, ownership restored when running as root, and xattrs set.
type ApplyOptions struct {
	// WhiteoutFormat selects how ".wh." entries are applied.
	WhiteoutFormat WhiteoutFormat
	// NoLchown keeps the extracting user as owner instead of the uid/gid
	// recorded in the archive. Without root, ownership is never changed.
	NoLchown bool
	// ChownOpts, if set, replaces the archive's uid/gid for every entry.
	ChownOpts *ChownOpts
	// NoOverwriteDirNonDir refuses to replace an existing directory with a
	// non-directory or the reverse (the API's noOverwriteDirNonDir).
	NoOverwriteDirNonDir bool
	// BestEffortXattrs ignores xattrs that the file system does not
	// support. EPERM is always ignored, as dockerd does.
	BestEffortXattrs bool
	// SkipDevices leaves out block and character devices, as dockerd does
	// in a user namespace. Devices are also skipped when not running as
	// root, since mknod would fail.
	SkipDevices bool
}

// PackOptions controls Pack. The zero value packs the whole directory
// without its root entry, as dockerd's layer diff does.
type PackOptions struct {
	// WhiteoutFormat, when OverlayWhiteouts, turns 0:0 character devices
	// into ".wh.name" files and opaque directories into a directory entry
	// followed by ".wh..wh..opq".
	WhiteoutFormat WhiteoutFormat
	// IncludeFiles lists the paths, relative to the directory, to pack;
	// empty means the whole directory. A path is packed with everything
	// below it.
	IncludeFiles []string
	// RebaseNames renames an included path (a key of the map, as given in
	// IncludeFiles) to its value in the archive, for docker cp's "copy
	// /etc/hosts as hosts.bak".
	RebaseNames map[string]string
}

// copyBufferSize is the size of the pooled buffers that file contents are
// streamed through, so memory stays flat however large a file is.
const copyBufferSize = 32 * 1024

var bufferPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufferSize)
	return &b
}}
