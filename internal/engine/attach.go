package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/logs"
	"skiffd/internal/runtime/shimclient"
)

// defaultDetachKeys is dockerd's detach sequence.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// ContainerAttach answers POST /containers/{id}/attach (and the attach of
// docker run and docker start -a). An attach opened before the start waits
// for it and receives the process's output from the first byte.
func (e *Engine) ContainerAttach(ctx context.Context, name string, cfg *types.AttachConfig) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	keys := cfg.DetachKeys
	if keys == "" {
		keys = defaultDetachKeys
	}
	detach, err := parseDetachKeys(keys)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	c.Lock()
	switch {
	case c.State.Paused:
		c.Unlock()
		return errdefs.Conflict(fmt.Errorf("You cannot attach to a paused container, unpause it first"))
	case c.State.Restarting:
		c.Unlock()
		return errdefs.Conflict(fmt.Errorf("You cannot attach to a restarting container, wait until it is running"))
	}
	tty := c.Config.Tty
	openStdin := c.Config.OpenStdin
	logPath := e.logFile(c)
	noLog := c.HostConfig.LogConfig.Type == "none" || logPath == ""
	opts := shimclient.AttachOptions{Stdin: cfg.Stdin && openStdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr}
	// Register for the stream under the lock, so a start cannot slip in
	// between looking at the state and waiting for it.
	cs := e.state(c.ID)
	var wait *pendingAttach
	var rc *shimclient.Container
	if cfg.Stream {
		cs.mu.Lock()
		rc = cs.rc
		if rc == nil {
			wait = &pendingAttach{opts: opts, ready: make(chan attachResult, 1)}
			cs.pending = append(cs.pending, wait)
		}
		cs.mu.Unlock()
	}
	c.Unlock()
	dropWait := func() {
		if wait == nil {
			return
		}
		cs.mu.Lock()
		for i, p := range cs.pending {
			if p == wait {
				cs.pending = append(cs.pending[:i:i], cs.pending[i+1:]...)
				break
			}
		}
		cs.mu.Unlock()
		select {
		case r := <-wait.ready:
			if r.st != nil {
				r.st.Close()
			}
		default:
		}
	}

	stdin, stdout, stderr, err := cfg.GetStreams(tty)
	if err != nil {
		dropWait()
		return err
	}
	defer stdin.Close()
	// After the take-over the request's ctx no longer ends when the client
	// goes away: the connection tells (issue 9, item 6). A client that
	// half-closes has not gone: the docker CLI does so at once when it has
	// no input.
	hangup := clientHangup(stdin)
	// With stdin, the client's input is read from now on, so that its end
	// is seen even before the start. As dockerd: with StdinOnce (and no
	// terminal) the end of the input closes the process's stdin and the
	// output goes on; otherwise it ends the attach.
	inputEnded := make(chan struct{})
	var input io.Reader
	if opts.Stdin {
		pr, pw := io.Pipe()
		defer pr.Close()
		input = pr
		keepOutput := c.Config.StdinOnce && !tty
		go func() {
			_, err := io.Copy(pw, stdin)
			pw.CloseWithError(err)
			if err != nil || !keepOutput {
				close(inputEnded)
			}
		}()
	}
	if tty {
		stderr = stdout
	}
	if !cfg.Stdout {
		stdout = nil
	}
	if !cfg.Stderr {
		stderr = nil
	}
	e.logEvent(c, "attach", nil)

	if cfg.Logs && !noLog && (stdout != nil || stderr != nil) {
		err := logs.Read(ctx, logPath, logs.ReadOptions{Tail: -1}, nil, func(m logs.Message) error {
			w := stdout
			if m.Stream == "stderr" {
				w = stderr
			}
			if w == nil {
				return nil
			}
			_, err := w.Write(m.Line)
			return err
		})
		if err != nil && !isNotExist(err) {
			dropWait()
			return nil
		}
	}
	if !cfg.Stream {
		return nil
	}

	var st *shimclient.Stream
	if wait != nil {
		select {
		case r := <-wait.ready:
			if r.err != nil {
				return nil
			}
			st = r.st
		case <-ctx.Done():
			dropWait()
			return nil
		case <-hangup:
			dropWait()
			return nil
		case <-inputEnded:
			dropWait()
			return nil
		}
	} else {
		st, err = rc.Attach(ctx, opts)
		if err != nil {
			// The process ended meanwhile: nothing more to stream.
			return nil
		}
	}
	defer st.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-hangup:
			st.Close() // ends the Copy below
		case <-inputEnded:
			st.Close()
		case <-stop:
		}
	}()

	if opts.Stdin {
		// As in dockerd, the detach keys work only with a terminal: without
		// one stdin is binary data.
		if !tty {
			detach = nil
		}
		go copyStdin(st, input, detach, c.Config.StdinOnce && !tty)
	}
	st.Copy(stdout, stderr)
	return nil
}

// copyStdin feeds the client's input to the process until the client
// half-closes (then, with StdinOnce, the process's stdin is closed; the
// caller ends the attach otherwise) or types the detach sequence (then
// the attach ends).
func copyStdin(st *shimclient.Stream, in io.Reader, detach []byte, stdinOnce bool) {
	r := in
	if len(detach) > 0 {
		r = newEscapeReader(in, detach)
	}
	_, err := io.Copy(st, r)
	switch {
	case errors.Is(err, errDetached):
		st.Close()
	case err == nil && stdinOnce:
		st.CloseStdin()
	case err == nil:
		// The process's stdin stays open for later attaches.
	default:
		st.Close()
	}
}

// clientHangup returns a channel closed when the client of a taken-over
// connection has gone away (nil, never closed, when the connection cannot
// tell).
func clientHangup(conn io.Reader) <-chan struct{} {
	if h, ok := conn.(interface{ Hangup() <-chan struct{} }); ok {
		return h.Hangup()
	}
	return nil
}

// errDetached ends an attach whose client typed the detach keys.
var errDetached = errors.New("detached from the container")

// parseDetachKeys reads a detach sequence: comma-separated keys, each a
// single character or ctrl-<x> for x in a-z, @, [, \, ], ^ and _.
func parseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@' || ch == '[' || ch == '\\' || ch == ']' || ch == '^' || ch == '_':
				out = append(out, ch-'@')
			default:
				return nil, fmt.Errorf("Unknown character: '%s'", k)
			}
		default:
			return nil, fmt.Errorf("Unknown character: '%s'", k)
		}
	}
	return out, nil
}

// escapeReader passes bytes through until the detach sequence appears;
// bytes that may start the sequence are held back until it is clear
// whether they do, then passed on.
type escapeReader struct {
	r       io.Reader
	keys    []byte
	matched int    // bytes of keys seen so far
	out     []byte // bytes ready to deliver
	err     error
}

func newEscapeReader(r io.Reader, keys []byte) *escapeReader {
	return &escapeReader{r: r, keys: keys}
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			if len(e.keys) == 0 {
				e.out = append(e.out, b)
				continue
			}
			if b == e.keys[e.matched] {
				e.matched++
				if e.matched == len(e.keys) {
					e.err = errDetached
					e.matched = 0
					break
				}
				continue
			}
			e.out = append(e.out, e.keys[:e.matched]...)
			e.matched = 0
			if b == e.keys[0] {
				e.matched = 1
				continue
			}
			e.out = append(e.out, b)
		}
		if err != nil && e.err == nil {
			if err == io.EOF && e.matched > 0 {
				e.out = append(e.out, e.keys[:e.matched]...)
				e.matched = 0
			}
			e.err = err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}
