package distribution

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// DefaultChunkSize is the PATCH size of PushBlobChunked when given 0.
const DefaultChunkSize = 8 << 20

// MountBlob asks the registry to mount blob d from repository from (a path
// on the same registry, "team/base") into this one without uploading it:
// POST /v2/<name>/blobs/uploads/?mount=<d>&from=<from>. It reports whether
// the blob was mounted; when the registry declines (202: it opened an
// upload instead, e.g. because from is not readable), it cancels nothing
// and the caller uploads with PushBlob. The token asked for covers push and
// pull here and pull on from.
func (r *Repository) MountBlob(ctx context.Context, d reference.Digest, from string) (bool, error) {
	u := r.url("blobs", "uploads") // JoinPath drops the trailing slash
	u.Path += "/"
	u.RawQuery = url.Values{"mount": {string(d)}, "from": {from}}.Encode()
	scope := append(scopeFor(r.ref.Path(), []string{ActionPush, ActionPull}), "repository:"+from+":"+ActionPull)
	resp, err := r.do(ctx, request{method: http.MethodPost, url: u, body: emptyBody, length: 0, scope: scope})
	if err != nil {
		return false, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		// An upload was started; abandon it (registries expire them).
		if loc, err := location(resp); err == nil {
			r.cancelUpload(ctx, loc)
		}
		return false, nil
	}
	return false, responseError(resp)
}

func emptyBody() io.Reader { return http.NoBody }

// cancelUpload deletes an upload session, ignoring failures: the registry
// expires abandoned sessions anyway.
func (r *Repository) cancelUpload(ctx context.Context, loc *url.URL) {
	resp, err := r.do(ctx, request{method: http.MethodDelete, url: loc, length: -1})
	if err == nil {
		drain(resp)
	}
}

// startUpload opens an upload session and returns its Location.
func (r *Repository) startUpload(ctx context.Context) (*url.URL, error) {
	u := r.url("blobs", "uploads")
	u.Path += "/"
	resp, err := r.do(ctx, request{method: http.MethodPost, url: u, body: emptyBody, length: 0})
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusAccepted {
		return nil, responseError(resp)
	}
	return location(resp)
}

// location resolves the Location header of resp, relative or absolute,
// against the request URL.
func location(resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, errdefs.System(fmt.Errorf("registry answered %s %s without a Location", resp.Request.Method, resp.Request.URL.Redacted()))
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return nil, errdefs.System(fmt.Errorf("registry sent an invalid Location %q: %w", l, err))
	}
	return u, nil
}

// withDigest returns loc with digest=d added to its query, keeping the
// registry's own parameters (upload state).
func withDigest(loc *url.URL, d reference.Digest) *url.URL {
	u := *loc
	q := u.Query()
	q.Set("digest", string(d))
	u.RawQuery = q.Encode()
	return &u
}

// PushBlob uploads a blob in one request (POST, then PUT ?digest= with the
// whole body): the monolithic upload. content must yield exactly desc.Size
// bytes; the registry checks the digest. content is sent once (a 401 then
// is an error, not a retry): the token is fetched before the upload starts.
func (r *Repository) PushBlob(ctx context.Context, desc Descriptor, content io.Reader) error {
	loc, err := r.startUpload(ctx)
	if err != nil {
		return err
	}
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	var q request
	if rs, ok := content.(io.ReadSeeker); ok {
		q.body = func() io.Reader { rs.Seek(0, io.SeekStart); return io.LimitReader(rs, desc.Size) }
	} else {
		q.stream = io.LimitReader(content, desc.Size)
	}
	q.method, q.url, q.header, q.length = http.MethodPut, withDigest(loc, desc.Digest), h, desc.Size
	resp, err := r.do(ctx, q)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return responseError(resp)
	}
	return nil
}

// PushBlobChunked uploads a blob in PATCH requests of chunkSize bytes
// (Content-Range "start-end"), following the Location each answer gives,
// then closes the upload with PUT ?digest=. Each chunk is held in memory,
// so chunkSize bounds the memory used.
func (r *Repository) PushBlobChunked(ctx context.Context, desc Descriptor, content io.Reader, chunkSize int) error {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	loc, err := r.startUpload(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	var off int64
	for off < desc.Size {
		n, err := io.ReadFull(content, buf[:min(int64(chunkSize), desc.Size-off)])
		if err != nil {
			return fmt.Errorf("read blob %s at %d: %w", desc.Digest, off, err)
		}
		chunk := buf[:n]
		h := http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+int64(n)-1, 10)},
		}
		resp, err := r.do(ctx, request{method: http.MethodPatch, url: loc, header: h,
			body: func() io.Reader { return bytes.NewReader(chunk) }, length: int64(n)})
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
			err := responseError(resp)
			drain(resp)
			return err
		}
		next, err := location(resp)
		drain(resp)
		if err != nil {
			return err
		}
		loc = next
		off += int64(n)
	}
	resp, err := r.do(ctx, request{method: http.MethodPut, url: withDigest(loc, desc.Digest), body: emptyBody, length: 0})
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return responseError(resp)
	}
	return nil
}

// PushBlobStream uploads a blob whose digest and size are not known in
// advance (a layer compressed on the fly): one streamed PATCH of all of
// content, then PUT ?digest= of the bytes sent. It returns their
// descriptor, with mediaType. content is read once; nothing is buffered
// beyond the transport's own buffers. The token is fetched before the
// upload starts, so a 401 then is an error, not a retry.
func (r *Repository) PushBlobStream(ctx context.Context, mediaType string, content io.Reader) (Descriptor, error) {
	loc, err := r.startUpload(ctx)
	if err != nil {
		return Descriptor{}, err
	}
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(content, h)}
	resp, err := r.do(ctx, request{method: http.MethodPatch, url: loc, header: http.Header{"Content-Type": {"application/octet-stream"}},
		stream: cr, length: -1})
	if err != nil {
		return Descriptor{}, err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
		err := responseError(resp)
		drain(resp)
		return Descriptor{}, err
	}
	next, err := location(resp)
	drain(resp)
	if err != nil {
		return Descriptor{}, err
	}
	desc := Descriptor{MediaType: mediaType, Digest: reference.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), Size: cr.n}
	resp, err = r.do(ctx, request{method: http.MethodPut, url: withDigest(next, desc.Digest), body: emptyBody, length: 0})
	if err != nil {
		return Descriptor{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return Descriptor{}, responseError(resp)
	}
	return desc, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
