package shimclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/runtime/shim"
)

// waitCreating waits for the state file of the container in dir while a
// shim for dir still runs: a daemon killed during a create leaves its
// shim creating the container on its own, and that shim writes its state
// a moment later. Deciding before then that "nothing runs" would delete
// the directory under a shim that then waits forever for a start (issue
// 9). It returns the state, or the error of reading it once no shim for
// dir is left, or ctx's error.
func waitCreating(ctx context.Context, dir string) (*shim.State, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := shim.ReadState(dir)
		if !errors.Is(err, os.ErrNotExist) {
			return st, err
		}
		if !dirLocked(dir) && !shimRunsFor(dir) {
			// The shim may have written its state just before leaving.
			return shim.ReadState(dir)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// shimRunsFor reports whether a process runs as the shim of dir (its
// command line is "skiffd shim <dir>...", a shim of an older skiffd
// naming one): a shim that has taken the container's directory but not
// yet written its state holds the directory's lock (dirLocked), one of an
// older skiffd only names it.
func shimRunsFor(dir string) bool {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := "\x00" + filepath.Clean(dir) + "\x00"
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(b), "skiffd") && strings.Contains(string(b), "\x00shim\x00") && strings.Contains(string(b), want) {
			return true
		}
	}
	return false
}
