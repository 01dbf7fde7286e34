package container

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

// fakeArchive answers like an engine with one container, "web", holding
// /etc/hostname.
type fakeArchive struct {
	calls   []string
	changes []types.Change
	put     string
}

var hostnameStat = &types.PathStat{Name: "hostname", Size: 13, Mode: 0o644, Mtime: time.Date(2026, 11, 26, 9, 9, 11, 939928381, time.UTC)}

func (f *fakeArchive) lookup(name, p string) error {
	if name != "web" {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", name))
	}
	if p != "/etc/hostname" {
		return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, name))
	}
	return nil
}

func (f *fakeArchive) ContainerStatPath(ctx context.Context, name, p string) (*types.PathStat, error) {
	if err := f.lookup(name, p); err != nil {
		return nil, err
	}
	return hostnameStat, nil
}

func (f *fakeArchive) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *types.PathStat, error) {
	if err := f.lookup(name, p); err != nil {
		return nil, nil, err
	}
	return io.NopCloser(strings.NewReader("TAR")), hostnameStat, nil
}

func (f *fakeArchive) ContainerExtractToDir(ctx context.Context, name, p string, opts types.ExtractOptions, content io.Reader) error {
	b, _ := io.ReadAll(content)
	f.calls = append(f.calls, fmt.Sprintf("extract %s %s %v %v %s", name, p, opts.NoOverwriteDirNonDir, opts.CopyUIDGID, b))
	if p == "/etc/hostname" {
		return errdefs.InvalidParameter(errors.New("extraction point is not a directory"))
	}
	return nil
}

func (f *fakeArchive) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	if name != "web" {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", name))
	}
	_, err := io.WriteString(w, "EXPORT")
	return err
}

func (f *fakeArchive) ContainerChanges(ctx context.Context, name string) ([]types.Change, error) {
	if name != "web" {
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", name))
	}
	return f.changes, nil
}

func serveArchive(t *testing.T, f *fakeArchive) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range map[string]wire.HandlerFunc{
		"HEAD /containers/{id}/archive": ArchiveHead(f),
		"GET /containers/{id}/archive":  ArchiveGet(f),
		"PUT /containers/{id}/archive":  ArchivePut(f),
		"GET /containers/{id}/export":   Export(f),
		"GET /containers/{id}/changes":  Changes(f),
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				wire.WriteError(w, errdefs.Status(err), err.Error())
			}
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestArchiveHandlers(t *testing.T) {
	f := &fakeArchive{}
	srv := serveArchive(t, f)
	// dockerd's header for this stat, from the cp trace.
	const hostnameHeader = "eyJuYW1lIjoiaG9zdG5hbWUiLCJzaXplIjoxMywibW9kZSI6NDIwLCJtdGltZSI6IjIwMjYtMTEtMjZUMDk6MDk6MTEuOTM5OTI4MzgxWiIsImxpbmtUYXJnZXQiOiIifQ=="
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		header                   string
		contentType              string
		wantBody                 string
	}{
		{name: "head", method: "HEAD", path: "/containers/web/archive?path=%2Fetc%2Fhostname", status: 200, header: hostnameHeader},
		{name: "head missing", method: "HEAD", path: "/containers/web/archive?path=%2Fno", status: 404},
		{name: "head no path", method: "HEAD", path: "/containers/web/archive", status: 400},
		{name: "get", method: "GET", path: "/containers/web/archive?path=%2Fetc%2Fhostname", status: 200, header: hostnameHeader,
			contentType: "application/x-tar", wantBody: "TAR"},
		{name: "get missing", method: "GET", path: "/containers/web/archive?path=%2Fno%2Fsuch%2Fpath", status: 404, contentType: "application/json",
			wantBody: `{"message":"Could not find the file /no/such/path in container web"}` + "\n"},
		{name: "get no path", method: "GET", path: "/containers/web/archive", status: 400, wantBody: `{"message":"bad parameter: pathcannot be empty"}` + "\n"},
		{name: "put", method: "PUT", path: "/containers/web/archive?noOverwriteDirNonDir=true&path=%2Ftmp%2F", body: "DATA", status: 200, wantBody: ""},
		{name: "put not dir", method: "PUT", path: "/containers/web/archive?path=%2Fetc%2Fhostname&copyUIDGID=1", body: "DATA", status: 400,
			wantBody: `{"message":"extraction point is not a directory"}` + "\n"},
		{name: "export", method: "GET", path: "/containers/web/export", status: 200, contentType: "application/octet-stream", wantBody: "EXPORT"},
		{name: "export missing", method: "GET", path: "/containers/nope/export", status: 404, contentType: "application/json"},
		{name: "changes none", method: "GET", path: "/containers/web/changes", status: 200, contentType: "application/json", wantBody: "null\n"},
		{name: "changes missing", method: "GET", path: "/containers/nope/changes", status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s = %d %q, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
			}
			if got := resp.Header.Get("X-Docker-Container-Path-Stat"); got != tc.header {
				t.Errorf("stat header = %q, want %q", got, tc.header)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.method == "HEAD" && len(b) != 0 {
				t.Errorf("HEAD sent a body %q", b)
			}
			if tc.wantBody != "" || tc.method == "PUT" {
				if string(b) != tc.wantBody {
					t.Errorf("body = %q, want %q", b, tc.wantBody)
				}
			}
		})
	}
	want := []string{"extract web /tmp/ true false DATA", "extract web /etc/hostname false true DATA"}
	if strings.Join(f.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls = %q, want %q", f.calls, want)
	}

	f.changes = []types.Change{{Path: "/tmp", Kind: types.ChangeModify}, {Path: "/tmp/a", Kind: types.ChangeAdd}, {Path: "/x", Kind: types.ChangeDelete}}
	resp, err := http.Get(srv.URL + "/containers/web/changes")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `[{"Path":"/tmp","Kind":0},{"Path":"/tmp/a","Kind":1},{"Path":"/x","Kind":2}]` + "\n"; string(b) != want {
		t.Errorf("changes = %q, want %q", b, want)
	}
}

// TestPathStatJSON pins the JSON names and the mode as a plain number.
func TestPathStatJSON(t *testing.T) {
	st := types.PathStat{Name: "run", Mode: os.ModeSymlink | 0o777, LinkTarget: "/run", Mtime: time.Unix(0, 0).UTC()}
	w := httptest.NewRecorder()
	if err := setPathStat(w, &st); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(w.Header().Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"run","size":0,"mode":134218239,"mtime":"1970-01-01T00:00:00Z","linkTarget":"/run"}`; string(b) != want {
		t.Errorf("stat JSON = %s, want %s", b, want)
	}
}
