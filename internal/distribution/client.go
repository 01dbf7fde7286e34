package distribution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// The actions of a repository scope.
const (
	ActionPull = "pull"
	ActionPush = "push"
)

// Client talks to registries with one daemon configuration. It is safe for
// concurrent use; it keeps one HTTP client (connection pool) per endpoint.
type Client struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*http.Client // by endpoint URL
}

// NewClient returns a Client for cfg.
func NewClient(cfg Config) *Client {
	return &Client{cfg: cfg, now: time.Now, clients: map[string]*http.Client{}}
}

func (c *Client) httpClient(ep Endpoint) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := ep.URL.String()
	if hc, ok := c.clients[key]; ok {
		return hc
	}
	hc := c.cfg.newHTTPClient(ep)
	c.clients[key] = hc
	return hc
}

// Repository is one repository on one endpoint with one set of credentials
// and granted actions: the handle every manifest and blob call goes through.
// It is safe for concurrent use.
type Repository struct {
	c     *Client
	ref   reference.Named // name only
	creds AuthConfig
	scope []string

	mu   sync.Mutex
	ep   Endpoint
	hc   *http.Client
	auth *authorizer
	rest []Endpoint // the endpoints after ep, for a mirror's fallback
}

// Repository pings the endpoints of ref's registry in dockerd's order and
// returns a handle on ref's repository at the first that answers as a v2
// registry. actions are the scope actions to ask tokens for (ActionPull,
// or ActionPush and ActionPull for a push); mirrors are used only when
// actions is pull alone. The error of the last endpoint is returned when
// none answers.
func (c *Client) Repository(ctx context.Context, ref reference.Named, auth AuthConfig, actions ...string) (*Repository, error) {
	if len(actions) == 0 {
		actions = []string{ActionPull}
	}
	pullOnly := len(actions) == 1 && actions[0] == ActionPull
	eps, err := c.cfg.Endpoints(ctx, ref.Domain(), pullOnly)
	if err != nil {
		return nil, err
	}
	r := &Repository{c: c, ref: reference.TrimNamed(ref), creds: auth, scope: scopeFor(ref.Path(), actions)}
	if err := r.bind(ctx, eps); err != nil {
		return nil, err
	}
	return r, nil
}

// bind moves the repository to the first of eps whose /v2/ answers.
func (r *Repository) bind(ctx context.Context, eps []Endpoint) error {
	var lastErr error
	for i, ep := range eps {
		hc := r.c.httpClient(ep)
		challenges, err := ping(ctx, r.c, hc, ep)
		if err != nil {
			lastErr = err
			continue
		}
		r.mu.Lock()
		r.ep, r.hc, r.rest = ep, hc, eps[i+1:]
		r.auth = newAuthorizer(r.c, hc, r.creds, challenges, r.scope)
		r.mu.Unlock()
		return nil
	}
	if lastErr == nil {
		lastErr = errdefs.Unavailable(errors.New("no registry endpoint"))
	}
	return lastErr
}

// fallBack moves a repository bound to a mirror to the next endpoint, as
// dockerd falls back from a mirror on any error. It reports whether it
// moved.
func (r *Repository) fallBack(ctx context.Context) bool {
	r.mu.Lock()
	mirror, rest := r.ep.Mirror, r.rest
	r.mu.Unlock()
	if !mirror || len(rest) == 0 || ctx.Err() != nil {
		return false
	}
	return r.bind(ctx, rest) == nil
}

func (r *Repository) current() (Endpoint, *http.Client, *authorizer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ep, r.hc, r.auth
}

// Endpoint returns the endpoint the repository talks to.
func (r *Repository) Endpoint() Endpoint {
	ep, _, _ := r.current()
	return ep
}

// Named returns the repository name (no tag or digest).
func (r *Repository) Named() reference.Named { return r.ref }

// ping sends GET /v2/ and returns the challenges of a 401. A response that
// is neither 200 nor 401 is an error, as is any failure to connect; both
// make Repository try the next endpoint.
func ping(ctx context.Context, c *Client, hc *http.Client, ep Endpoint) ([]Challenge, error) {
	u := ep.URL.JoinPath("/v2/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	c.setHeaders(req)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errdefs.Unavailable(err)
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return nil, nil
	case http.StatusUnauthorized:
		return ResponseChallenges(resp.Header), nil
	}
	return nil, errdefs.Unavailable(fmt.Errorf("%s %q: %w", req.Method, u, responseError(resp)))
}

func (c *Client) setHeaders(req *http.Request) {
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// url returns the endpoint URL of a path below /v2/<name>/.
func (r *Repository) url(parts ...string) *url.URL {
	ep, _, _ := r.current()
	return ep.URL.JoinPath(append([]string{"v2", r.ref.Path()}, parts...)...)
}

// request describes one API call. body, when set, must give a fresh reader
// on every call so that the request can be repeated after a token refresh;
// a nil body func with a non-nil stream sends the stream once.
type request struct {
	method  string
	url     *url.URL
	header  http.Header
	body    func() io.Reader
	stream  io.Reader
	length  int64 // -1 unknown
	scope   []string
	noRetry bool
}

// do sends req with credentials for the repository's registry and repeats
// it once with a fresh token when the registry answers 401 to a token that
// was cached (it may have been revoked or expired early).
func (r *Repository) do(ctx context.Context, q request) (*http.Response, error) {
	_, hc, auth := r.current()
	scope := q.scope
	if scope == nil {
		scope = auth.scope
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		switch {
		case q.body != nil:
			body = q.body()
		case q.stream != nil:
			body = q.stream
		}
		req, err := http.NewRequestWithContext(ctx, q.method, q.url.String(), body)
		if err != nil {
			return nil, err
		}
		if q.body == nil && q.stream != nil {
			req.GetBody = nil
		}
		if q.length >= 0 && body != nil {
			req.ContentLength = q.length
		}
		for k, vs := range q.header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		r.c.setHeaders(req)
		cached, err := auth.authorize(ctx, req, scope, attempt > 0)
		if err != nil {
			// As in dockerd, where tokens are fetched inside the transport,
			// the failure names the registry request, not the realm:
			// Get "https://host/v2/...": unauthorized: ...
			return nil, &url.Error{Op: opName(req.Method), URL: req.URL.String(), Err: err}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		replayable := q.body != nil || q.stream == nil
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && replayable {
			// A cached token may have been revoked or may have expired
			// early: fetch a fresh one. A registry whose /v2/ answered
			// 200 may still challenge here: learn the challenge.
			if cached || auth.learn(ResponseChallenges(resp.Header)) {
				drain(resp)
				continue
			}
		}
		return resp, nil
	}
}

// authorizer adds credentials to requests for one registry endpoint.
type authorizer struct {
	c     *Client
	hc    *http.Client
	creds AuthConfig
	scope []string // the repository's default scope

	mu         sync.Mutex
	challenges []Challenge      // from the ping, or learnt from a later 401
	tokens     map[string]token // by scope key
	// refresh is the refresh token a token server returned (an OAuth2
	// identity token); Login hands it back to the client.
	refresh string
	// offline asks token servers for a refresh token (login).
	offline bool
}

type token struct {
	value   string
	expires time.Time
}

func newAuthorizer(c *Client, hc *http.Client, creds AuthConfig, challenges []Challenge, scope []string) *authorizer {
	return &authorizer{c: c, hc: hc, creds: creds, challenges: challenges, scope: scope, tokens: map[string]token{}}
}

// learn adopts the challenges of a 401 when the ping gave none, and
// reports whether it did (so that the request is worth repeating).
func (a *authorizer) learn(chs []Challenge) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.challenges) > 0 || len(chs) == 0 || a.creds.RegistryToken != "" {
		return false
	}
	a.challenges = chs
	return true
}

func (a *authorizer) challenge(scheme string) (Challenge, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.challenges {
		if ch.Scheme == scheme {
			return ch, true
		}
	}
	return Challenge{}, false
}

// authorize sets the Authorization header of req. cached reports whether
// the header came from the token cache, so that a 401 is worth one retry
// with a fresh token (force).
func (a *authorizer) authorize(ctx context.Context, req *http.Request, scope []string, force bool) (cached bool, err error) {
	if a.creds.RegistryToken != "" {
		req.Header.Set("Authorization", "Bearer "+a.creds.RegistryToken)
		return false, nil
	}
	if ch, ok := a.challenge("bearer"); ok {
		tok, cached, err := a.token(ctx, ch, scope, force)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		return cached, nil
	}
	if _, ok := a.challenge("basic"); ok {
		user, pass := a.creds.credentials()
		if user == "" || pass == "" {
			return false, errdefs.Unauthorized(errors.New("no basic auth credentials"))
		}
		req.SetBasicAuth(user, pass)
	}
	return false, nil
}

// scopeFor returns the token scope for actions on the repository at path,
// e.g. "repository:lib/app:pull,push" (push listed before pull, as the
// docker daemon asks).
func scopeFor(path string, actions []string) []string {
	acts := append([]string(nil), actions...)
	sort.Slice(acts, func(i, j int) bool { return acts[i] > acts[j] })
	return []string{"repository:" + path + ":" + strings.Join(acts, ",")}
}

func scopeKey(scope []string) string {
	s := append([]string(nil), scope...)
	sort.Strings(s)
	return strings.Join(s, " ")
}

// readAllLimited reads at most limit bytes of r and fails when there is
// more, so that a hostile registry cannot make the daemon buffer an
// unbounded manifest.
func readAllLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errdefs.InvalidParameter(fmt.Errorf("%s exceeds the %d byte limit", what, limit))
	}
	return b.Bytes(), nil
}
