package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"skiffd/internal/errdefs"
)

const (
	// maxJSONSize bounds the JSON members (manifests, indexes, configs)
	// read into memory.
	maxJSONSize = 16 << 20
	// maxMemberInMemory and memoryBudget decide which archive members are
	// kept in memory rather than spilled to a temporary file: small ones,
	// up to a total, so memory stays flat whatever the archive holds.
	maxMemberInMemory = 64 << 10
	memoryBudget      = 32 << 20
	// maxLinkDepth bounds how many symbolic links a member lookup follows.
	maxLinkDepth = 40
)

// member is one regular file of a loaded archive: in memory, spilled to a
// file, or a layer taken straight from the stream.
type member struct {
	data []byte
	path string
	size int64

	// staged is the layer unpacked from the member, until it is committed.
	staged stagedLayer
	// diffID is the diff ID of a layer member whose content was read
	// (staged, then committed) or skipped as known.
	diffID string
	// chain is a registered layer with the member's content: the chain
	// it was committed as, or for a known member, one with its diff ID.
	chain string
	// stageErr is why unpacking a member that looked like a layer failed;
	// it fails the load only if an image uses the member.
	stageErr error
}

// isLayer reports a member taken as a layer, whose bytes are not kept.
func (m *member) isLayer() bool { return m.staged != nil || m.chain != "" || m.stageErr != nil }

func (m *member) open() (io.ReadCloser, error) {
	if m.path == "" {
		return io.NopCloser(bytes.NewReader(m.data)), nil
	}
	return os.Open(m.path)
}

// archiveFiles is the content of a loaded archive, by cleaned member name.
type archiveFiles struct {
	dir     string
	files   map[string]*member
	links   map[string]string
	memUsed int64

	// stage, when not nil, unpacks a member that is a layer tar straight
	// from the stream; br peeks at members to find them.
	stage func(ctx context.Context, r io.Reader) (stagedLayer, error)
	br    *bufio.Reader
	// known, when not nil, names a registered layer with the diff ID a
	// "blobs/sha256/<hex>" member claims, held until close, so that the
	// member's content can be skipped.
	known func(diffID string) (chain string, ok bool)
	// staged lists every staged member, including ones whose name a later
	// member took over.
	staged []*member
	// held releases the chains held for this archive's layers.
	held []func()
}

func newArchiveFiles(dir string) *archiveFiles {
	return &archiveFiles{dir: dir, files: make(map[string]*member), links: make(map[string]string)}
}

// close discards the staged layers that were not committed and releases
// the held chains.
func (a *archiveFiles) close() {
	for _, m := range a.staged {
		if m.staged != nil {
			m.staged.Discard()
			m.staged = nil
		}
	}
	for _, release := range a.held {
		release()
	}
	a.held = nil
}

// cleanName maps a member name to a path relative to the archive root:
// "../x", "/x" and "./x" are all "x", so no name can point outside it.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *archiveFiles) get(name string) (*member, error) {
	name = cleanName(name)
	for range maxLinkDepth {
		if m, ok := a.files[name]; ok {
			return m, nil
		}
		target, ok := a.links[name]
		if !ok {
			break
		}
		name = target
	}
	return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: open %s: %w", name, syscall.ENOENT))
}

func (a *archiveFiles) has(name string) bool {
	_, err := a.get(name)
	return err == nil
}

// readJSON returns the bytes of a small member.
func (a *archiveFiles) readJSON(name string) ([]byte, error) {
	m, err := a.get(name)
	if err != nil {
		return nil, err
	}
	if m.isLayer() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s is a layer, not a JSON document", cleanName(name)))
	}
	if m.size > maxJSONSize {
		return nil, errdefs.InvalidParameter(fmt.Errorf("failed to load image: %s is larger than %d bytes", cleanName(name), maxJSONSize))
	}
	if m.path == "" {
		return m.data, nil
	}
	return os.ReadFile(m.path)
}

// readArchive reads the outer tar once, keeping small members in memory
// and spilling the others to files in dir, without staging any.
func readArchive(ctx context.Context, r io.Reader, dir string) (*archiveFiles, error) {
	a := newArchiveFiles(dir)
	if err := a.read(ctx, r); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// read reads the outer tar once. A member that is a layer tar is staged
// from the stream when a.stage is set; other small members are kept in
// memory and the rest spilled to files in a.dir, named by a counter, never
// by member names.
func (a *archiveFiles) read(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return tarError(err)
		}
		name := cleanName(hdr.Name)
		if name == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			m, err := a.member(ctx, name, tr, hdr.Size)
			if err != nil {
				return err
			}
			a.files[name] = m
			delete(a.links, name)
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			a.links[name] = cleanName(target)
			delete(a.files, name)
		case tar.TypeLink:
			a.links[name] = cleanName(hdr.Linkname)
			delete(a.files, name)
		}
	}
}

// member takes in the content of the regular member name, of size bytes.
func (a *archiveFiles) member(ctx context.Context, name string, r io.Reader, size int64) (*member, error) {
	if a.stage == nil {
		return a.store(r, size)
	}
	if d, ok := digestName(name); ok && a.known != nil {
		if chain, ok := a.known(d); ok {
			// The layer is registered already; the tar reader skips the
			// content when it moves to the next member.
			return &member{size: size, diffID: d, chain: chain}, nil
		}
	}
	a.br.Reset(r)
	head, err := a.br.Peek(tarBlockSize)
	if err != nil && err != io.EOF {
		return nil, tarError(err)
	}
	if !looksLikeLayer(head) {
		return a.store(a.br, size)
	}
	sr := &sourceReader{r: a.br}
	st, err := a.stage(ctx, sr)
	if err != nil {
		if sr.err != nil {
			return nil, tarError(sr.err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return &member{size: size, stageErr: err}, nil
	}
	m := &member{size: size, staged: st, diffID: st.DiffID()}
	a.staged = append(a.staged, m)
	return m, nil
}

// sourceReader remembers the error of reading the outer archive, to tell
// a broken archive from a broken layer in it.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// tarError words a malformed outer archive as dockerd does, whose
// unpacking runs in a child process ("echo notatar | docker load").
func tarError(err error) error {
	return errdefs.InvalidParameter(fmt.Errorf("Error processing tar file(exit status 1): %w", err))
}

func (a *archiveFiles) store(r io.Reader, size int64) (*member, error) {
	if size <= maxMemberInMemory && a.memUsed+size <= memoryBudget {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, tarError(err)
		}
		a.memUsed += size
		return &member{data: buf, size: size}, nil
	}
	f, err := os.CreateTemp(a.dir, "member-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, fmt.Errorf("load: %w", cerr)
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("load: %w", err)
		}
		return nil, tarError(err)
	}
	return &member{path: f.Name(), size: n}, nil
}
