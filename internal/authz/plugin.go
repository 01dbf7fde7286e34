// Package authz is the client side of Docker's authorization plugin
// protocol (AuthZPlugin.AuthZReq and AuthZPlugin.AuthZRes, JSON over HTTP on
// a unix or tcp socket), compatible with plugins written for dockerd's
// --authorization-plugin. It finds plugins where dockerd does, activates
// them with the Plugin.Activate handshake, and runs a request through an
// ordered Chain of them around a handler.
//
//	chain, err := authz.NewChain([]string{"opa"}, authz.Dirs{}, logger)
//	chain.Serve(w, r, body, forwardBody, handler)
package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Where dockerd looks for plugins: sockets first, then spec files.
const (
	DefaultSocketsDir = "/run/docker/plugins"
	// DefaultRetryTimeout is how long a call to a plugin that cannot be
	// reached is retried, with backoff, before the request fails: dockerd's
	// plugin client default.
	DefaultRetryTimeout = 30 * time.Second

	implements      = "authz"
	versionMimetype = "application/vnd.docker.plugins.v1.2+json"
)

// DefaultSpecsDirs are the directories holding NAME.spec and NAME.json.
var DefaultSpecsDirs = []string{"/etc/docker/plugins", "/usr/lib/docker/plugins"}

// Dirs says where to look for plugins; zero fields take dockerd's
// directories. Tests point them at a temp dir.
type Dirs struct {
	Sockets string
	Specs   []string
	// RetryTimeout bounds the retries of a call to an unreachable plugin;
	// zero is DefaultRetryTimeout.
	RetryTimeout time.Duration
}

// ErrNotFound is dockerd's error for a plugin that no socket or spec names.
var ErrNotFound = errors.New("plugin not found")

// errNotImplements is dockerd's error for a plugin whose handshake does not
// list "authz".
var errNotImplements = errors.New("Plugin does not implement the requested driver")

// validName reports whether name matches ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$
// (written out: see container.validName).
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return name != ""
}

// Plugin is one authorization plugin, activated lazily on first use (as
// dockerd does), so a plugin that starts after the daemon still works.
type Plugin struct {
	name string
	dirs Dirs

	mu     sync.Mutex
	client *http.Client // nil until found and activated
	base   string       // URL prefix for calls
}

// Name is the name given to --authorization-plugin.
func (p *Plugin) Name() string { return p.name }

// newPlugin checks the name; finding and activating happen on first use.
func newPlugin(name string, dirs Dirs) (*Plugin, error) {
	if !validName(name) {
		return nil, fmt.Errorf("invalid authorization plugin name %q", name)
	}
	if dirs.Sockets == "" {
		dirs.Sockets = DefaultSocketsDir
	}
	if dirs.Specs == nil {
		dirs.Specs = DefaultSpecsDirs
	}
	if dirs.RetryTimeout == 0 {
		dirs.RetryTimeout = DefaultRetryTimeout
	}
	return &Plugin{name: name, dirs: dirs}, nil
}

// locate finds the plugin's address the way dockerd's v1 registry does:
// DIR/NAME.sock or DIR/NAME/NAME.sock, then NAME.spec or NAME.json in each
// spec directory (also under NAME/).
func (p *Plugin) locate() (network, addr string, err error) {
	paths := func(base, ext string) []string {
		return []string{filepath.Join(base, p.name+ext), filepath.Join(base, p.name, p.name+ext)}
	}
	for _, s := range paths(p.dirs.Sockets, ".sock") {
		if fi, err := os.Stat(s); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return "unix", s, nil
		}
	}
	for _, dir := range p.dirs.Specs {
		for _, ext := range []string{".spec", ".json"} {
			for _, s := range paths(dir, ext) {
				b, err := os.ReadFile(s)
				if err != nil {
					continue
				}
				raw := strings.TrimSpace(string(b))
				if ext == ".json" {
					var spec struct{ Addr string }
					if err := json.Unmarshal(b, &spec); err != nil {
						return "", "", fmt.Errorf("%s: %w", s, err)
					}
					raw = spec.Addr
				}
				return parseAddr(raw)
			}
		}
	}
	return "", "", ErrNotFound
}

func parseAddr(raw string) (network, addr string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "unix":
		return "unix", u.Path, nil
	case "tcp", "http":
		return "tcp", u.Host, nil
	case "":
		return "", "", errors.New("Unknown protocol")
	}
	return "", "", fmt.Errorf("Unknown protocol: %s", u.Scheme)
}

// ready finds and activates the plugin if that has not happened yet.
func (p *Plugin) ready(ctx context.Context) (*http.Client, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, p.base, nil
	}
	network, addr, err := p.locate()
	if err != nil {
		return nil, "", err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
	base := "http://plugin"
	if network == "tcp" {
		base = "http://" + addr
	}
	var m struct{ Implements []string }
	if err := call(ctx, c, base, "Plugin.Activate", nil, &m, p.dirs.RetryTimeout); err != nil {
		c.CloseIdleConnections()
		return nil, "", err
	}
	found := false
	for _, imp := range m.Implements {
		found = found || imp == implements
	}
	if !found {
		c.CloseIdleConnections()
		return nil, "", errNotImplements
	}
	p.client, p.base = c, base
	return c, base, nil
}

// forget drops the activated client so the next call finds and activates
// the plugin again (it may have been restarted on a new socket).
func (p *Plugin) forget(c *http.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == c {
		p.client = nil
		c.CloseIdleConnections()
	}
}

// Close releases idle connections.
func (p *Plugin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		p.client.CloseIdleConnections()
		p.client = nil
	}
}

// Call sends one AuthZ message.
func (p *Plugin) Call(ctx context.Context, method string, req *Request) (*Response, error) {
	c, base, err := p.ready(ctx)
	if err != nil {
		return nil, err
	}
	var res Response
	if err := call(ctx, c, base, method, req, &res, p.dirs.RetryTimeout); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			p.forget(c)
		}
		return nil, err
	}
	return &res, nil
}

// call POSTs a JSON message to /METHOD, retrying a plugin it cannot reach
// with backoff until timeout, as dockerd's plugin client does. A non-200
// answer is an error carrying the plugin's Err field, or its body.
func call(ctx context.Context, c *http.Client, base, method string, in, out any, timeout time.Duration) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	start := time.Now()
	backoff := 100 * time.Millisecond
	for {
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+method, bytes.NewReader(body))
		if err != nil {
			return err
		}
		hr.Header.Set("Accept", versionMimetype)
		resp, err := c.Do(hr)
		if err != nil {
			if ctx.Err() != nil || time.Since(start)+backoff > timeout {
				return err
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			var e struct{ Err string }
			if json.Unmarshal(b, &e) == nil && e.Err != "" {
				return errors.New(e.Err)
			}
			return fmt.Errorf("%s: %s", method, bytes.TrimSpace(b))
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: invalid answer: %w", method, err)
		}
		return nil
	}
}
