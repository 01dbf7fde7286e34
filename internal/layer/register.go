package layer

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"skiffd/internal/archive"
	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
	"skiffd/internal/zstd"
)

// DiffIDMismatchError reports a layer whose content does not hash to the
// diff ID it was registered under. Register marks it errdefs.InvalidParameter.
type DiffIDMismatchError struct {
	Expected, Actual string
}

func (e *DiffIDMismatchError) Error() string {
	return fmt.Sprintf("invalid diffID: expected %q, got %q", e.Expected, e.Actual)
}

// Register reads one layer tar from r (plain, gzip or bzip2), unpacks it on
// top of the layer parent ("" for a base layer) and registers it durably.
// When want is not empty the uncompressed stream must hash to it; otherwise
// a *DiffIDMismatchError (errdefs.InvalidParameter) is returned and nothing
// is registered. If the resulting chain is already registered, Register
// returns it; when want is given it then does not read r at all.
//
// Register is safe for concurrent use: registrations of one chain are
// serialised, so two loads of the same layer at once produce one layer.
// It reads the stream once, hashing it as it unpacks, and reads r to its
// end (tar padding included) unless it fails. It is Stage then Commit.
func (s *Store) Register(ctx context.Context, r io.Reader, parent, want string) (Layer, error) {
	if want != "" && !validDigest(want) {
		return Layer{}, errdefs.InvalidParameter(fmt.Errorf("invalid diffID %q", want))
	}
	if parent != "" {
		if _, err := s.Get(parent); err != nil {
			return Layer{}, err
		}
	}
	if want != "" {
		// The chain is known before reading: holding its lock throughout
		// makes a concurrent registration of the same layer wait and then
		// find it, rather than unpack it a second time.
		chain := ChainID(parent, want)
		defer s.locks.lock(chain)()
		if l, err := s.Get(chain); err == nil {
			return l, nil
		}
	}
	st, err := s.stage(ctx, r)
	if err != nil {
		return Layer{}, fmt.Errorf("register layer: %w", err)
	}
	defer st.Discard()
	if want == "" {
		return st.Commit(parent)
	}
	if st.diffID != want {
		return Layer{}, errdefs.InvalidParameter(&DiffIDMismatchError{Expected: want, Actual: st.diffID})
	}
	return st.commitLocked(parent)
}

// Staged is a layer unpacked into a temporary directory of the store but
// not yet part of any chain. An overlay diff directory does not depend on
// the layers below it, so a layer can be unpacked before its parent is
// known (an image archive names the parents only at its end) and receive
// its chain ID, which is only its name, from Commit. Until then it is a
// temporary directory, which Open removes after a crash.
//
// A Staged is not safe for concurrent use. Commit or Discard it; Discard
// after Commit does nothing, so it can be deferred.
type Staged struct {
	s             *Store
	dir           string // the temporary directory; "" once committed or discarded
	diffID        string
	size, tarSize int64
}

// Stage reads one layer tar from r (plain, gzip or bzip2) and unpacks it
// into a temporary directory of the store, hashing the uncompressed stream
// and recording its tar-split as Register does, in a single pass that
// reads r to its end. A malformed stream is an errdefs.InvalidParameter
// error. Staging is safe for concurrent use.
func (s *Store) Stage(ctx context.Context, r io.Reader) (*Staged, error) {
	st, err := s.stage(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("stage layer: %w", err)
	}
	return st, nil
}

// DiffID is "sha256:" and the hex digest of the uncompressed tar stream.
func (st *Staged) DiffID() string { return st.diffID }

// Size is the layer's content size: file data and symlink targets.
func (st *Staged) Size() int64 { return st.size }

// TarSize is the length of the uncompressed tar stream.
func (st *Staged) TarSize() int64 { return st.tarSize }

// errStagedUsed reports a Staged that was already committed or discarded.
var errStagedUsed = errors.New("staged layer already committed or discarded")

// Commit registers the staged layer durably on top of parent ("" for a
// base layer, otherwise a registered chain) and returns it. If that chain
// is registered already, the staged copy is discarded and the registered
// layer returned. After Commit succeeds the Staged is used up; after it
// fails, Discard still removes what was staged.
func (st *Staged) Commit(parent string) (Layer, error) {
	if st.dir == "" {
		return Layer{}, errStagedUsed
	}
	if parent != "" {
		if _, err := st.s.Get(parent); err != nil {
			return Layer{}, err
		}
	}
	defer st.s.locks.lock(ChainID(parent, st.diffID))()
	return st.commitLocked(parent)
}

// commitLocked is Commit once the parent is checked and the lock of the
// resulting chain held.
func (st *Staged) commitLocked(parent string) (Layer, error) {
	if st.dir == "" {
		return Layer{}, errStagedUsed
	}
	l := Layer{ChainID: ChainID(parent, st.diffID), DiffID: st.diffID, Parent: parent, Size: st.size, TarSize: st.tarSize}
	if existing, err := st.s.Get(l.ChainID); err == nil {
		// The copy is not needed; were its removal to fail, the next Open
		// removes it.
		st.Discard()
		return existing, nil
	}
	if err := st.s.commit(st, l); err != nil {
		return Layer{}, fmt.Errorf("register layer %s: %w", l.ChainID, err)
	}
	return l, nil
}

// Discard removes the staged layer. It does nothing once the layer is
// committed or discarded.
func (st *Staged) Discard() error {
	if st.dir == "" {
		return nil
	}
	dir := st.dir
	st.dir = ""
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("discard staged layer: %w", err)
	}
	return nil
}

// stage extracts the layer stream r into a new temporary directory,
// recording its tar-split and hashing it on the way.
func (s *Store) stage(ctx context.Context, r io.Reader) (_ *Staged, err error) {
	tmp, err := os.MkdirTemp(s.root, atomicfile.TempPrefix+"register-")
	if err != nil {
		return nil, err
	}
	u := &Staged{s: s, dir: tmp}
	defer func() {
		if err != nil {
			u.Discard()
		}
	}()
	diff := filepath.Join(tmp, diffDirName)
	if err := os.Mkdir(diff, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(diff, 0o755); err != nil {
		return nil, err
	}
	rc, err := archive.DecompressStream(r)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	hr := &hashingReader{r: rc, h: sha256.New()}

	sf, err := os.OpenFile(filepath.Join(tmp, splitFileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer sf.Close()
	sw, err := newSplitWriter(sf)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(diff)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	ap, err := archive.NewApplier(ctx, diff, archive.ApplyOptions{WhiteoutFormat: archive.OverlayWhiteouts})
	if err != nil {
		return nil, err
	}
	defer ap.Close()
	kept := &keeper{root: root, sw: sw, live: make(map[string]liveFile)}
	ap.BeforeRemove = kept.beforeRemove

	rec := &recorder{r: hr, sw: sw}
	tr := tar.NewReader(rec)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, streamErr("read tar header", err)
		}
		u.size += entrySize(hdr)
		// Only a plain regular file's data is its content byte for byte;
		// everything else (sparse maps and data, bodies of skipped entries)
		// stays in the tar-split.
		backed := hdr.Typeflag == tar.TypeReg && hdr.Size > 0 && !isSparse(hdr)
		if backed {
			rec.content, rec.n = true, 0
		}
		err = ap.ApplyEntry(hdr, tr)
		rec.content = false
		if err != nil {
			return nil, streamErr("apply layer", err)
		}
		if !backed || rec.n == 0 {
			continue
		}
		// The applier reads a file's content only to write it, and then
		// reads all of it.
		if rec.n != hdr.Size {
			return nil, fmt.Errorf("apply %q: read %d of %d content bytes", hdr.Name, rec.n, hdr.Size)
		}
		p, err := ap.Resolve(hdr.Name)
		if err != nil {
			return nil, err
		}
		if err := kept.add(p, rec.n); err != nil {
			return nil, err
		}
	}
	if err := ap.Finish(); err != nil {
		return nil, err
	}
	// Whatever follows the end-of-archive marker (more zero blocks, up to
	// the record size of the writer) is part of the diff ID and the tar.
	if _, err := io.Copy(io.Discard, rec); err != nil {
		return nil, streamErr("read tar padding", err)
	}
	if err := sw.finish(); err != nil {
		return nil, fmt.Errorf("write tar-split: %w", err)
	}
	if err := sf.Close(); err != nil {
		return nil, fmt.Errorf("write tar-split: %w", err)
	}
	u.diffID = "sha256:" + hex.EncodeToString(hr.h.Sum(nil))
	u.tarSize = hr.n
	return u, nil
}

// commit makes the staged layer durable and registers it as l.
func (s *Store) commit(u *Staged, l Layer) error {
	if !s.noSync {
		// One syncfs flushes every file and directory of the layer, far
		// cheaper than an fsync of each.
		if err := syncfs(u.dir); err != nil {
			return err
		}
	}
	meta, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(u.dir, metaFileName), meta, 0o600); err != nil {
		return err
	}
	if testHookBeforeRename != nil {
		testHookBeforeRename()
	}
	final := s.dir(l.ChainID)
	if err := os.Rename(u.dir, final); err != nil {
		if !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
		// A directory that Open did not load, its layer.json unreadable,
		// is in the way: nothing refers to it.
		if err := os.RemoveAll(final); err != nil {
			return err
		}
		if err := os.Rename(u.dir, final); err != nil {
			return err
		}
	}
	u.dir = ""
	if testHookAfterRename != nil {
		testHookAfterRename()
	}
	if !s.noSync {
		if err := atomicfile.SyncDir(s.root); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.layers[l.ChainID] = l
	s.mu.Unlock()
	return nil
}

// Hooks for the crash test, which kills the process at these points.
var testHookBeforeRename, testHookAfterRename func()

// streamErr wraps an error met while reading the layer, marking malformed
// archives as the client's fault.
func streamErr(op string, err error) error {
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath) ||
		errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, zstd.ErrCorrupt) || errors.Is(err, zstd.ErrChecksum) {
		return errdefs.InvalidParameter(fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// entrySize is what an entry adds to a layer's size, which dockerd
// reports as the sum of its files' sizes: file data and symlink targets.
func entrySize(hdr *tar.Header) int64 {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return hdr.Size
	case tar.TypeSymlink:
		return int64(len(hdr.Linkname))
	}
	return 0
}

// isSparse reports an entry in any of the GNU sparse forms, whose data in
// the stream is not the file's bytes.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// recorder sits under the tar.Reader and records every byte it reads into
// the tar-split, except while content is set, when it only counts them:
// the tar.Reader then reads a file's data on behalf of the applier.
type recorder struct {
	r       io.Reader
	sw      *splitWriter
	content bool
	n       int64
}

func (c *recorder) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if c.content {
			c.n += int64(n)
		} else if werr := c.sw.raw(p[:n]); werr != nil {
			return n, fmt.Errorf("write tar-split: %w", werr)
		}
	}
	return n, err
}

// liveFile is a file whose content the tar-split takes from the diff
// directory.
type liveFile struct {
	k int   // its number among the 'f' records
	n int64 // its size
}

// keeper tracks which recorded contents are still in the diff directory,
// and moves a content into the tar-split before a later entry of the same
// layer removes or replaces its file.
type keeper struct {
	root *os.Root
	sw   *splitWriter
	live map[string]liveFile
}

func (k *keeper) add(p string, n int64) error {
	if _, ok := k.live[p]; ok {
		// The applier reports a removal before it writes over a path.
		return fmt.Errorf("apply %q: earlier content was replaced unseen", p)
	}
	i, err := k.sw.file(p, n)
	if err != nil {
		return fmt.Errorf("write tar-split: %w", err)
	}
	k.live[p] = liveFile{k: i, n: n}
	return nil
}

func (k *keeper) beforeRemove(p string, dir bool) error {
	if len(k.live) == 0 {
		return nil
	}
	if !dir {
		return k.keep(p)
	}
	return fs.WalkDir(k.root.FS(), p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			return k.keep(q)
		}
		return nil
	})
}

// keep copies the content of p into the tar-split if it is recorded.
func (k *keeper) keep(p string) error {
	lf, ok := k.live[p]
	if !ok {
		return nil
	}
	f, err := openRegular(k.root, p, lf.n)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := k.sw.inlineFile(lf.k, f, lf.n); err != nil {
		return fmt.Errorf("write tar-split: %w", err)
	}
	delete(k.live, p)
	return nil
}

// syncfs flushes the whole file system that holds dir.
func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := sys.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}
