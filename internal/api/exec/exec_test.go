package exec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/stdcopy"
)

type fake struct {
	created *types.ExecConfig
	started *types.ExecStartConfig
}

func (f *fake) ContainerExecCreate(ctx context.Context, container string, cfg *types.ExecConfig) (string, error) {
	if container == "stopped" {
		return "", errdefs.Conflict(errors.New("Container stopped is not running"))
	}
	f.created = cfg
	return "e1", nil
}

func (f *fake) ContainerExecStart(ctx context.Context, id string, cfg *types.ExecStartConfig) error {
	f.started = cfg
	if cfg.Detach {
		return nil
	}
	stdin, stdout, stderr, err := cfg.GetStreams(cfg.Tty)
	if err != nil {
		return err
	}
	in, _ := io.ReadAll(stdin)
	stdout.Write(append([]byte("got "), in...))
	stderr.Write([]byte("e"))
	return nil
}

func (f *fake) ContainerExecInspect(ctx context.Context, id string) (*types.ExecInspect, error) {
	if id != "e1" {
		return nil, errdefs.NotFound(errors.New("No such exec instance: " + id))
	}
	code := 5
	return &types.ExecInspect{ID: id, ExitCode: &code, ProcessConfig: types.ExecProcessConfig{Entrypoint: "sh", Arguments: []string{}}}, nil
}

func (f *fake) ContainerExecResize(ctx context.Context, id string, h, w int) error { return nil }

func server(t *testing.T, f *fake) *httptest.Server {
	mux := http.NewServeMux()
	for pattern, h := range map[string]wire.HandlerFunc{
		"POST /containers/{id}/exec": Create(f), "POST /exec/{id}/start": Start(f), "GET /exec/{id}/json": Inspect(f), "POST /exec/{id}/resize": Resize(f),
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Api-Version", "1.50")
			if err := h(w, r); err != nil {
				wire.WriteError(w, errdefs.Status(err), err.Error())
			}
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string) (int, string) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCreateAndInspect(t *testing.T) {
	f := &fake{}
	srv := server(t, f)
	code, body := post(t, srv.URL+"/containers/web/exec", `{"AttachStdout":true,"Env":["X=1"],"WorkingDir":"/tmp","User":"1000","Cmd":["sh","-c","exit 5"]}`)
	if code != 201 || body != `{"Id":"e1"}`+"\n" || f.created.WorkingDir != "/tmp" || f.created.User != "1000" {
		t.Errorf("exec create = %d %q, cfg %+v", code, body, f.created)
	}
	if code, body := post(t, srv.URL+"/containers/web/exec", `{"Cmd":[]}`); code != 400 || !strings.Contains(body, "No exec command specified") {
		t.Errorf("exec without cmd = %d %q", code, body)
	}
	if code, _ := post(t, srv.URL+"/containers/stopped/exec", `{"Cmd":["true"]}`); code != 409 {
		t.Errorf("exec in stopped container = %d, want 409", code)
	}
	resp, _ := http.Get(srv.URL + "/exec/e1/json")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"ExitCode":5`) {
		t.Errorf("exec inspect = %q", b)
	}
	resp, _ = http.Get(srv.URL + "/exec/nope/json")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("inspect unknown exec = %d", resp.StatusCode)
	}
}

func TestStartDetached(t *testing.T) {
	f := &fake{}
	srv := server(t, f)
	code, body := post(t, srv.URL+"/exec/e1/start", `{"Detach":true,"Tty":false}`)
	if code != 200 || body != "" || !f.started.Detach {
		t.Errorf("detached start = %d %q", code, body)
	}
}

func TestStartHijacked(t *testing.T) {
	f := &fake{}
	srv := server(t, f)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := `{"Detach":false,"Tty":false}`
	io.WriteString(conn, "POST /exec/e1/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"+body+"input")
	conn.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	var hdrs []string
	for {
		line, _ := br.ReadString('\n')
		if line == "\r\n" || line == "" {
			break
		}
		hdrs = append(hdrs, strings.TrimSpace(line))
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101 UPGRADED") || !strings.Contains(strings.Join(hdrs, "|"), "Api-Version: 1.50") {
		t.Errorf("exec start answer %q %q: want 101 with the API headers", status, hdrs)
	}
	var out, errb strings.Builder
	if _, err := stdcopy.Copy(&out, &errb, br); err != nil {
		t.Fatal(err)
	}
	if out.String() != "got input" || errb.String() != "e" {
		t.Errorf("exec stream stdout %q stderr %q", out.String(), errb.String())
	}
}
