package volume

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

func duplicateMountPoint(dest string) error {
	return errdefs.InvalidParameter(fmt.Errorf("Duplicate mount point: %s", dest))
}

// CollectMounts parses everything a container create asks to mount, in
// dockerd's order and with its conflict rules:
//
//   - HostConfig.Tmpfs, parsed first; these come back in tmpfs, since
//     inspect's Mounts does not list them;
//   - HostConfig.Binds (-v): a destination used twice, or also a --tmpfs
//     destination, is "Duplicate mount point: <dest>";
//   - HostConfig.Mounts (--mount): the same, against everything above;
//   - Config.Volumes (image VOLUMEs and `-v /path`): an anonymous volume for
//     each destination nothing above already covers.
//
// mounts is sorted so that a parent directory is mounted before what is
// mounted inside it. Volume mount points still need their volume: Name is
// "" for the anonymous ones, and Source is set once the volume exists. All
// errors are InvalidParameter.
func CollectMounts(configVolumes map[string]struct{}, binds []string, specs []types.Mount, tmpfs map[string]string) (mounts, tmpfsMounts []MountPoint, err error) {
	tmpfsMounts, err = ParseTmpfs(tmpfs)
	if err != nil {
		return nil, nil, err
	}
	taken := map[string]bool{}
	for _, m := range tmpfsMounts {
		taken[m.Destination] = true
	}
	for _, b := range binds {
		mp, err := ParseBind(b)
		if err != nil {
			return nil, nil, err
		}
		if taken[mp.Destination] {
			return nil, nil, duplicateMountPoint(mp.Destination)
		}
		taken[mp.Destination] = true
		mounts = append(mounts, mp)
	}
	for _, spec := range specs {
		mp, err := ParseMount(spec)
		if err != nil {
			return nil, nil, err
		}
		if taken[mp.Destination] {
			return nil, nil, duplicateMountPoint(spec.Target)
		}
		taken[mp.Destination] = true
		mounts = append(mounts, mp)
	}
	for _, dest := range slices.Sorted(maps.Keys(configVolumes)) {
		if err := validateTarget(dest); err != nil {
			return nil, nil, errdefs.InvalidParameter(fmt.Errorf("%v: %w", invalidSpec(dest), err))
		}
		clean := path.Clean(dest)
		if taken[clean] {
			continue
		}
		taken[clean] = true
		mounts = append(mounts, MountPoint{
			Type:        types.MountTypeVolume,
			Destination: clean,
			RW:          true,
			CopyData:    true,
			Spec:        types.Mount{Type: types.MountTypeVolume, Target: dest},
		})
	}
	SortForMounting(mounts)
	SortForMounting(tmpfsMounts)
	return mounts, tmpfsMounts, nil
}

// SortForMounting orders mount points so that each comes after any mount
// point above it ("/a" before "/a/b"): fewer path components first, then by
// destination for a stable order.
func SortForMounting(mounts []MountPoint) {
	slices.SortStableFunc(mounts, func(a, b MountPoint) int {
		da, db := strings.Count(a.Destination, "/"), strings.Count(b.Destination, "/")
		if da != db {
			return da - db
		}
		return strings.Compare(a.Destination, b.Destination)
	})
}
