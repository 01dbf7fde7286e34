package logs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"skiffd/internal/runtime/jsonlog"
)

// logFile is one open file of a log's set. A compressed rotated file
// (compress=true, <path>.N.gz) is known by its gzip header until load
// decompresses it into an unlinked temporary file, which the reader then
// seeks in as in any other: ino and mtime are then what the file had
// before compression, and nameIno the inode of the .gz.
type logFile struct {
	f       *os.File
	name    string
	ino     uint64
	nameIno uint64
	size    int64 // when opened (gz: once loaded)
	gz      bool
	mtime   int64 // gz only: the original file's, from the header
}

func (f *logFile) close() {
	if f.f != nil {
		f.f.Close()
	}
}

// id is the identity of f's content: its inode and modification time,
// which the shim no longer changes once the file is rotated, and which a
// compressed file's header keeps. The inode alone would not do: the
// kernel reuses a compressed file's for the next live file.
func (f *logFile) id() [2]int64 {
	if f.gz {
		return [2]int64{int64(f.ino), f.mtime}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.f.Fd()), &st); err != nil {
		return [2]int64{int64(f.ino), -1}
	}
	return [2]int64{int64(st.Ino), st.Mtim.Nano()}
}

// openGzip opens compressed rotated file name, reading its header only.
func openGzip(name string) (*logFile, error) {
	zf, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer zf.Close()
	st, err := zf.Stat()
	if err != nil {
		return nil, fmt.Errorf("open rotated log: %w", err)
	}
	zr, err := gzip.NewReader(zf)
	if err != nil {
		return nil, fmt.Errorf("open rotated log %s: %w", name, err)
	}
	lf := &logFile{name: name, ino: inode(st), nameIno: inode(st), gz: true, mtime: -1}
	if ino, mtime, ok := jsonlog.ParseGzipIdentity(zr.Comment); ok {
		lf.ino, lf.mtime = ino, mtime
	}
	return lf, nil
}

// load decompresses a compressed file; others are loaded already.
func (f *logFile) load() error {
	if f.f != nil {
		return nil
	}
	zf, err := os.Open(f.name)
	if err != nil {
		return fmt.Errorf("open rotated log: %w", err)
	}
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		return fmt.Errorf("open rotated log %s: %w", f.name, err)
	}
	tmp, err := os.CreateTemp("", "skiffd-log-*")
	if err != nil {
		return fmt.Errorf("decompress rotated log %s: %w", f.name, err)
	}
	os.Remove(tmp.Name())
	n, err := io.Copy(tmp, zr)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("decompress rotated log %s: %w", f.name, err)
	}
	f.f, f.size = tmp, n
	return nil
}

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
	return &logFile{f: f, name: name, ino: inode(st), nameIno: inode(st), size: st.Size()}, nil
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
	set, err := openSetLazily(path)
	if err != nil {
		return nil, err
	}
	for _, f := range set {
		if err := f.load(); err != nil {
			for _, f := range set {
				f.close()
			}
			return nil, err
		}
	}
	return set, nil
}

// openSetLazily is openSet without decompressing the compressed files.
func openSetLazily(path string) ([]*logFile, error) {
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
			f, err = openGzip(rotatedName(path, n) + ".gz")
		}
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
		if statIno(f.name) != f.nameIno {
			closeAll()
			return nil, errSetChanged
		}
	}
	seen := make(map[[2]int64]bool, len(set))
	for _, f := range set {
		if !f.gz {
			if seen[f.id()] {
				closeAll()
				return nil, errSetChanged
			}
			seen[f.id()] = true
		}
	}
	// A compressed copy of a file still there under its plain name (a
	// shim stopped between the two) is read once, as the plain file.
	set = slices.DeleteFunc(set, func(f *logFile) bool {
		if f.gz && seen[f.id()] {
			f.close()
			return true
		}
		return false
	})
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
	set, err := openSetLazily(path)
	if err != nil {
		return nil, err
	}
	next := set[0]
	cid := cur.id()
	for i, f := range set {
		if f.id() == cid {
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
	if next != nil {
		if err := next.load(); err != nil {
			return nil, err
		}
	}
	return next, nil
}
