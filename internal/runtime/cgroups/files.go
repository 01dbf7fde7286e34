package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// writeFile writes one value to a cgroup control file with a single write(2),
// which is how the kernel parses it. The file is never created: a missing
// file means a missing controller or feature, reported as fs.ErrNotExist.
// O_TRUNC means nothing to cgroupfs (runc passes it too) but makes the
// function behave on plain files as well.
func writeFile(dir, name, value string) error {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// os.File.Write wraps in *fs.PathError already; add the value, which
		// is what explains EINVAL or EBUSY from the kernel.
		return fmt.Errorf("write %q: %w", value, err)
	}
	return nil
}

// writeLines writes each value to dir/name with a write of its own, through
// one open: a file such as devices.allow takes one rule a write.
func writeLines(dir, name string, values []string) error {
	if len(values) == 0 {
		return nil
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, v := range values {
		if _, err := f.Write([]byte(v)); err != nil {
			return fmt.Errorf("write %q: %w", v, err)
		}
	}
	return nil
}

// readFile returns the content of a cgroup file.
func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(b), err
}

// readUint reads a file holding one unsigned number; "max" reads as
// maxValue.
func readUint(dir, name string, maxValue uint64) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(strings.TrimSpace(s), maxValue)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// parseUint parses a cgroup number. "max" is maxValue; negative values (v1
// reports -1 in a few places) read as 0, the way runc's parser treats them.
func parseUint(s string, maxValue uint64) (uint64, error) {
	if s == "max" {
		return maxValue, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, err
	}
	return v, nil
}

// exists reports whether dir/name exists.
func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// isNotExist reports a missing file or directory, including the ENODEV some
// kernels return for control files of absent features.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// parseKeyValues parses "key value" lines (memory.stat, cpu.stat,
// memory.events, memory.oom_control, cpuacct.stat). Lines that are not a key
// and one unsigned number are skipped: kernels add fields over time.
func parseKeyValues(s string) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || k == "" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// parsePids parses cgroup.procs: one decimal pid per line.
func parsePids(s string) ([]int, error) {
	var out []int
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("bad pid %q in cgroup.procs", line)
		}
		out = append(out, pid)
	}
	return out, nil
}
