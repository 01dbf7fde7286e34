package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
)

type fakeCommit struct {
	name string
	opts types.CommitOptions
}

func (f *fakeCommit) CommitContainer(ctx context.Context, name string, opts types.CommitOptions) (string, error) {
	if name != "web" {
		return "", errdefs.NotFound(fmt.Errorf("No such container: %s", name))
	}
	f.name, f.opts = name, opts
	return "sha256:b3449080e0a9ad5212855ce3b1ef16118d23da5e6c752871fa9354f73b818ac7", nil
}

func TestCommit(t *testing.T) {
	f := &fakeCommit{}
	h := Commit(f)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			wire.WriteError(w, errdefs.Status(err), err.Error())
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, query, body, contentType string
		status                         int
		wantBody                       string
		check                          func(types.CommitOptions) error
	}{
		{
			name:     "cli trace",
			query:    "author=trace+author&changes=LABEL+trace-prune%3D1&changes=ENV+TRACE%3D1&comment=trace+message&container=web&repo=docker.io%2Flibrary%2Ftrace-committed&tag=1",
			status:   201,
			wantBody: `{"Id":"sha256:b3449080e0a9ad5212855ce3b1ef16118d23da5e6c752871fa9354f73b818ac7"}` + "\n",
			check: func(o types.CommitOptions) error {
				if o.Repo != "docker.io/library/trace-committed" || o.Tag != "1" || o.Author != "trace author" || o.Comment != "trace message" ||
					!o.Pause || len(o.Changes) != 2 || o.Changes[1] != "ENV TRACE=1" || o.Config != nil {
					return fmt.Errorf("options %+v", o)
				}
				return nil
			},
		},
		{name: "pause off", query: "container=web&pause=0", status: 201, check: func(o types.CommitOptions) error {
			if o.Pause {
				return errors.New("pause=0 paused")
			}
			return nil
		}},
		{name: "pause empty", query: "container=web&pause=", status: 201, check: func(o types.CommitOptions) error {
			if !o.Pause {
				return errors.New("an empty pause did not default to true")
			}
			return nil
		}},
		{name: "config body", query: "container=web", body: `{"Cmd":["sh"],"Env":["A=1"]}`, contentType: "application/json", status: 201,
			check: func(o types.CommitOptions) error {
				if o.Config == nil || len(o.Config.Cmd) != 1 || o.Config.Cmd[0] != "sh" || o.Config.Env[0] != "A=1" {
					return fmt.Errorf("config %+v", o.Config)
				}
				return nil
			}},
		{name: "bad body", query: "container=web", body: `{"Cmd":`, contentType: "application/json", status: 400},
		{name: "bad content type", query: "container=web", body: `x`, contentType: "text/plain", status: 400},
		{name: "missing container", query: "container=nope", status: 404, wantBody: `{"message":"No such container: nope"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.opts = types.CommitOptions{}
			req, _ := http.NewRequest("POST", srv.URL+"/commit?"+tc.query, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.wantBody != "" && string(b) != tc.wantBody) {
				t.Fatalf("POST /commit?%s = %d %q, want %d %q", tc.query, resp.StatusCode, b, tc.status, tc.wantBody)
			}
			if tc.check != nil {
				if err := tc.check(f.opts); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
