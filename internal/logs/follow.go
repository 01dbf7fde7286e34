package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// logFile is one open file of a log's set.
type logFile struct {
	f    *os.File
	name string
	ino  uint64
	size int64 // when opened
}

func (f *logFile) close() { f.f.Close() }

// openFile opens name and records its identity and size.
func openFile(name string) (*logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &logFile{f: f, name: name, ino: inode(st), size: st.Size()}, nil
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// statIno returns the inode at name, or 0 if there is none.
func statIno(name string) uint64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return inode(fi)
}

// rotatedName is the name of the n-th rotated file (0 is the live one).
func rotatedName(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}

// openSet opens the live log at path and its rotated files, and returns them
// oldest first, the live file last.
//
// The shim rotates without telling anyone, so the set is checked after
// opening: every name must still name the file opened under it, or a
// rotation ran meanwhile and the set is opened again. The shim renames
// <path>.N-1 to <path>.N one at a time, leaving at most one gap, so the
// probe stops only at two missing names in a row. A live file missing
// while <path>.1 exists is the moment between the shim's rename and create.
func openSet(path string) ([]*logFile, error) {
	const attempts = 100
	var lastErr error
	for range attempts {
		set, err := tryOpenSet(path)
		if err == nil {
			return set, nil
		}
		lastErr = err
		if errors.Is(err, errSetChanged) {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && statIno(rotatedName(path, 1)) != 0 {
			time.Sleep(time.Millisecond) // the shim is about to create it
			continue
		}
		return nil, err
	}
	return nil, lastErr
}

var errSetChanged = errors.New("log files rotated while being opened")

func tryOpenSet(path string) ([]*logFile, error) {
	live, err := openFile(path)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	set := []*logFile{live}
	closeAll := func() {
		for _, f := range set {
			f.close()
		}
	}
	for n, missing := 1, 0; missing < 2; n++ {
		f, err := openFile(rotatedName(path, n))
		if errors.Is(err, fs.ErrNotExist) {
			missing++
			continue
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open rotated log: %w", err)
		}
		missing = 0
		set = append(set, f)
	}
	for _, f := range set {
		if statIno(f.name) != f.ino {
			closeAll()
			return nil, errSetChanged
		}
	}
	seen := make(map[uint64]bool, len(set))
	for _, f := range set {
		if seen[f.ino] {
			closeAll()
			return nil, errSetChanged
		}
		seen[f.ino] = true
	}
	// Oldest first.
	for i, j := 0, len(set)-1; i < j; i, j = i+1, j-1 {
		set[i], set[j] = set[j], set[i]
	}
	return set, nil
}

// successor finds the file the shim wrote after cur, once cur has been
// rotated away: the next newer file of the set, or, if cur is gone from the
// set (rotated out), the oldest one, so as little as possible is lost. It
// returns nil if cur is still the live file.
func successor(path string, cur *logFile) (*logFile, error) {
	set, err := openSet(path)
	if err != nil {
		return nil, err
	}
	next := set[0]
	for i, f := range set {
		if f.ino == cur.ino {
			if i == len(set)-1 {
				next = nil
			} else {
				next = set[i+1]
			}
			break
		}
	}
	for _, f := range set {
		if f != next {
			f.close()
		}
	}
	return next, nil
}
