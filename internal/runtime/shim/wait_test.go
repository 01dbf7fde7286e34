package shim

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/jsonlog"
	"skiffd/internal/runtime/spec"
)

// TestWaitAnswersAfterOutputLogged: a wait is answered once the process's
// output is in its log, not as soon as the process is reaped, as dockerd
// reports an exit once its copiers are done. A `logs -f` follower ends at
// the exit the daemon records, and `docker logs` right after `docker
// wait` reads the log: output still on its way (up to a pipe's worth)
// would be missing from both. The log here is a FIFO the test reads only
// when it chooses, which holds the output back deterministically.
func TestWaitAnswersAfterOutputLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened read-write, so that neither this open nor the writer's blocks.
	fifo, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	w, err := jsonlog.Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	p, c, err := newProc("", &spec.Process{}, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	p.startCopiers()
	// More than the FIFO holds: the copier blocks on the log.
	out := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 4096)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.stdout.Write([]byte(out))
		c.close()
		wrote <- err
	}()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	p.setExit(ExitStatus{Code: 0, ExitedAt: time.Now()})

	s := &shim{init: p, execs: map[string]*proc{}}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "conn")
		defer f.Close()
		nc, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return nc.(*net.UnixConn)
	}
	server, client := conn(fds[0]), conn(fds[1])
	defer client.Close()
	go s.handle(server)
	if _, err := client.Write([]byte(`{"v":1,"op":"wait"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	answered := make(chan *Response, 1)
	go func() {
		line, err := bufio.NewReader(client).ReadBytes('\n')
		var r Response
		if err == nil {
			err = json.Unmarshal(line, &r)
		}
		if err != nil {
			r.Error = err.Error()
		}
		answered <- &r
	}()
	select {
	case r := <-answered:
		t.Fatalf("wait answered (%+v) while the output was still on its way to the log", r)
	case <-time.After(300 * time.Millisecond):
	}
	go io.Copy(io.Discard, fifo)
	r := <-answered
	if r.Error != "" || r.Exit == nil {
		t.Fatalf("wait = %+v", r)
	}
	select {
	case <-p.drained:
	default:
		t.Fatal("wait answered before the output was drained")
	}
}
