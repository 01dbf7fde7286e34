package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"skiffd/internal/atomicfile"
)

// The init layer is the topmost lower directory of every container's
// overlay: the mount points the runtime puts file systems and files on
// (/proc, /sys, /dev, and /etc/hosts, /etc/hostname, /etc/resolv.conf
// with their parent), made once per store, as dockerd keeps them in its
// init layer. Images seldom have them all, and init made the missing ones
// in the container's upper directory at every start: each an overlay
// create, with a copy-up of /etc, about 1.1 ms of every start of an image
// without them (issue 13: API start 11.0-11.3 ms for an image with only
// /bin, 9.9-10.1 ms for the same image with the mount points, same daemon,
// interleaved). The container's upper directory now holds only what its
// processes change. As in dockerd, the layer's /etc directory is the one
// the container sees (its mode and times), merged with the image's.
//
// InitDirName, the init layer's directory in the store, carries a
// version: a different set of paths is another directory, made beside.
const InitDirName = "init-v1"

var (
	initLayerDirs  = []string{"dev", "etc", "proc", "sys"}
	initLayerFiles = []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"}
)

// InitDir returns the init layer's directory.
func (s *Store) InitDir() string { return filepath.Join(s.root, InitDirName) }

// makeInitLayer makes the init layer if the store has none: in a
// temporary directory (which Open removes if a crash leaves it), renamed
// into place once whole.
func (s *Store) makeInitLayer() error {
	dir := s.InitDir()
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(s.root, atomicfile.TempPrefix+InitDirName+"-")
	if err != nil {
		return fmt.Errorf("make the init layer: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("make the init layer: %w", err)
	}
	// Modes set outright: containers see them, whatever the daemon's
	// umask.
	for _, d := range initLayerDirs {
		p := filepath.Join(tmp, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("make the init layer: %w", err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return fmt.Errorf("make the init layer: %w", err)
		}
	}
	for _, f := range initLayerFiles {
		p := filepath.Join(tmp, f)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return fmt.Errorf("make the init layer: %w", err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return fmt.Errorf("make the init layer: %w", err)
		}
	}
	for _, d := range []string{filepath.Join(tmp, "etc"), tmp} {
		if err := atomicfile.SyncDir(d); err != nil {
			return fmt.Errorf("make the init layer: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("make the init layer: %w", err)
	}
	return atomicfile.SyncDir(s.root)
}
