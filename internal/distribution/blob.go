package distribution

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// maxResumes bounds how many times in a row a blob download is resumed
// without receiving a byte in between.
const maxResumes = 5

// StatBlob checks with HEAD whether the registry has blob d in this
// repository and returns its size. A missing blob is an errdefs.NotFound.
func (r *Repository) StatBlob(ctx context.Context, d reference.Digest) (int64, error) {
	resp, err := r.do(ctx, request{method: http.MethodHead, url: r.url("blobs", string(d)), length: -1})
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength, nil
	case http.StatusNotFound:
		return 0, errdefs.NotFound(Errors{{Code: CodeBlobUnknown, Message: codeMessages[CodeBlobUnknown], Status: resp.StatusCode}})
	}
	return 0, responseError(resp)
}

// BlobExists reports whether the repository has blob d (HEAD).
func (r *Repository) BlobExists(ctx context.Context, d reference.Digest) (bool, error) {
	_, err := r.StatBlob(ctx, d)
	if errdefs.KindOf(err) == errdefs.ErrNotFound {
		return false, nil
	}
	return err == nil, err
}

// OpenBlob starts downloading the blob desc describes and returns a reader
// of its bytes as they arrive. The reader verifies while reading: it fails
// as soon as more than desc.Size bytes come, and at the end it returns an
// error instead of io.EOF unless exactly desc.Size bytes with digest
// desc.Digest were read ("filesystem layer verification failed for digest
// ..."). A caller that unpacks as it reads must therefore treat only io.EOF
// as success, and register nothing before it.
//
// When the connection drops mid-blob, the reader asks for the rest with a
// Range request; a server that answers 206 with the matching Content-Range
// continues there, one that answers 200 is read again from the start with
// the bytes already delivered skipped. Redirects to blob storage are
// followed without the registry credentials.
//
// OpenBlob does not retry the first request; the caller's retry policy
// covers it.
func (r *Repository) OpenBlob(ctx context.Context, desc Descriptor) (io.ReadCloser, error) {
	if desc.Size < 0 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid size %d for blob %s", desc.Size, desc.Digest))
	}
	if _, err := reference.ParseDigest(string(desc.Digest)); err != nil {
		return nil, err
	}
	br := &blobReader{r: r, ctx: ctx, desc: desc, h: sha256.New()}
	if err := br.open(0); err != nil {
		return nil, err
	}
	return br, nil
}

type blobReader struct {
	r    *Repository
	ctx  context.Context
	desc Descriptor
	h    hash.Hash
	n    int64 // bytes delivered
	body io.ReadCloser
	skip int64 // bytes of body to discard (server ignored Range)
	err  error // sticky
	// resumes counts consecutive resumes without progress.
	resumes int
}

// open starts a GET from offset.
func (b *blobReader) open(offset int64) error {
	h := http.Header{}
	if offset > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := b.r.do(b.ctx, request{method: http.MethodGet, url: b.r.url("blobs", string(b.desc.Digest)), header: h, length: -1})
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		b.skip = offset
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			drain(resp)
			return fmt.Errorf("blob %s: server answered a range request from %d with Content-Range %q", b.desc.Digest, offset, resp.Header.Get("Content-Range"))
		}
		b.skip = 0
	case resp.StatusCode == http.StatusNotFound:
		drain(resp)
		return errdefs.NotFound(Errors{{Code: CodeBlobUnknown, Message: codeMessages[CodeBlobUnknown], Status: resp.StatusCode}})
	default:
		defer drain(resp)
		return responseError(resp)
	}
	b.body = resp.Body
	return nil
}

// contentRangeStart parses "bytes <start>-<end>/<size|*>".
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		if b.body == nil {
			if err := b.open(b.n); err != nil {
				// A failed reopen (the registry restarting, a reset
				// connection) is retried like a dropped body; answers with
				// an error kind (not found, unauthorized...) are final.
				if b.n == 0 || !transient(err) || !b.backoff() {
					b.err = err
					return 0, err
				}
				continue
			}
		}
		if b.skip > 0 {
			if _, err := io.CopyN(io.Discard, b.body, b.skip); err != nil {
				if rerr := b.resume(err); rerr != nil {
					return 0, rerr
				}
				continue
			}
			b.skip = 0
		}
		if rem := b.desc.Size - b.n; int64(len(p)) > rem+1 {
			// Read one byte past the expected end so that an overlong
			// body is caught.
			p = p[:rem+1]
		}
		n, err := b.body.Read(p)
		if n > 0 {
			b.resumes = 0
			if b.n+int64(n) > b.desc.Size {
				b.err = b.verifyErr()
				return 0, b.err
			}
			b.h.Write(p[:n])
			b.n += int64(n)
		}
		switch {
		case err == io.EOF:
			if verr := b.verify(); verr != nil {
				b.err = verr
				// Bytes read with this call are already hashed; the caller
				// gets them with the error and must discard everything.
				return n, verr
			}
			b.err = io.EOF
			return n, io.EOF
		case err != nil:
			if n > 0 {
				// Deliver what came; the next Read resumes.
				b.body.Close()
				b.body = nil
				if b.ctx.Err() != nil {
					b.err = b.ctx.Err()
				}
				return n, nil
			}
			if rerr := b.resume(err); rerr != nil {
				return 0, rerr
			}
			continue
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume drops the broken body; the next loop reopens at b.n. It gives up
// on cancellation and after maxResumes attempts without progress.
func (b *blobReader) resume(cause error) error {
	b.body.Close()
	b.body = nil
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return err
	}
	b.resumes++
	if b.resumes > maxResumes {
		b.err = fmt.Errorf("blob %s: %w", b.desc.Digest, cause)
		return b.err
	}
	return nil
}

// transient reports whether err may go away on retry: a transport error or
// a 5xx/429 answer, not a refusal that names the blob or the credentials.
func transient(err error) bool {
	switch errdefs.KindOf(err) {
	case errdefs.ErrNotFound, errdefs.ErrUnauthorized, errdefs.ErrForbidden, errdefs.ErrInvalidParameter, errdefs.ErrNotImplemented:
		return false
	}
	return true
}

// backoff waits before another reopen attempt, longer each time, and
// reports false when the attempts are used up or ctx is done.
func (b *blobReader) backoff() bool {
	b.resumes++
	if b.resumes > maxResumes {
		return false
	}
	t := time.NewTimer(time.Duration(50<<b.resumes) * time.Millisecond)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *blobReader) verifyErr() error {
	return errdefs.InvalidParameter(fmt.Errorf("filesystem layer verification failed for digest %s", b.desc.Digest))
}

func (b *blobReader) verify() error {
	if b.n != b.desc.Size {
		if b.n < b.desc.Size {
			// The body ended cleanly before the descriptor's size: the
			// registry's blob is not the one the manifest names (a dropped
			// connection shows as io.ErrUnexpectedEOF and is resumed).
			return fmt.Errorf("%w: got %d of %d bytes", b.verifyErr(), b.n, b.desc.Size)
		}
		return b.verifyErr()
	}
	if "sha256:"+hex.EncodeToString(b.h.Sum(nil)) != string(b.desc.Digest) {
		return b.verifyErr()
	}
	return nil
}

func (b *blobReader) Close() error {
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	if b.err == nil {
		b.err = errors.New("read of closed blob")
	}
	return nil
}
