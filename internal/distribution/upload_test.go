package distribution

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestChunkedUploadProtocol checks the requests of a chunked upload against
// a fake registry whose Locations are relative on POST and absolute (with
// upload state in the query) on PATCH: each PATCH carries the next
// "start-end" Content-Range at the Location the previous answer gave, and
// the closing PUT keeps the state and adds the digest.
func TestChunkedUploadProtocol(t *testing.T) {
	blob, desc := randomBlob(2500)
	var mu sync.Mutex
	var got bytes.Buffer
	var log []string
	var base string
	srv, c := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Range"))
		switch r.Method {
		case http.MethodPost:
			w.Header().Set("Location", "/v2/lib/blob/blobs/uploads/u1?_state=0")
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPatch:
			io.Copy(&got, r.Body)
			w.Header().Set("Location", fmt.Sprintf("%s/v2/lib/blob/blobs/uploads/u1?_state=%d", base, got.Len()))
			w.Header().Set("Range", fmt.Sprintf("0-%d", got.Len()-1))
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPut:
			w.WriteHeader(http.StatusCreated)
		}
	})
	base = srv.URL
	repo := fakeRepo(t, srv, c, AuthConfig{})
	if err := repo.PushBlobChunked(testCtx(t), desc, bytes.NewReader(blob), 1000); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"POST /v2/lib/blob/blobs/uploads/ ",
		"PATCH /v2/lib/blob/blobs/uploads/u1?_state=0 0-999",
		"PATCH /v2/lib/blob/blobs/uploads/u1?_state=1000 1000-1999",
		"PATCH /v2/lib/blob/blobs/uploads/u1?_state=2000 2000-2499",
		"PUT /v2/lib/blob/blobs/uploads/u1?_state=2500&digest=" + strings.Replace(string(desc.Digest), ":", "%3A", 1) + " ",
	}
	if strings.Join(log, "\n") != strings.Join(want, "\n") || !bytes.Equal(got.Bytes(), blob) {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}
