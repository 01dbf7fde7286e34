package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"skiffd/internal/errdefs"
)

// clientID is the OAuth2 client_id dockerd sends to token servers.
const clientID = "docker"

// minTokenLifetime is the shortest lifetime a token is given when the
// server says less (or nothing), as distribution's client does.
const minTokenLifetime = 60 * time.Second

// tokenResponse is a token server's JSON answer. Docker's token protocol
// names the token "token"; OAuth2 names it "access_token"; servers send
// either or both.
type tokenResponse struct {
	Token        string    `json:"token"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresIn    int       `json:"expires_in"`
	IssuedAt     time.Time `json:"issued_at"`
}

// token returns a bearer token for scope, from the cache unless it has
// expired (or force is set), else from the challenge's realm.
func (a *authorizer) token(ctx context.Context, ch Challenge, scope []string, force bool) (string, bool, error) {
	key := scopeKey(scope)
	now := a.c.now()
	a.mu.Lock()
	t, ok := a.tokens[key]
	a.mu.Unlock()
	if ok && !force && now.Before(t.expires) {
		return t.value, true, nil
	}
	t, err := a.fetchToken(ctx, ch, scope)
	if err != nil {
		return "", false, err
	}
	a.mu.Lock()
	a.tokens[key] = t
	a.mu.Unlock()
	return t.value, false, nil
}

// fetchToken asks the realm for a token. With an identity token (refresh
// token) it uses the OAuth2 form POST (grant_type=refresh_token); otherwise
// a GET with basic credentials when there are any (anonymous when not).
// A GET that the server refuses with 404 or 405 is retried as the OAuth2
// password grant, and a POST refused that way as a GET, so that servers
// speaking only one of the two protocols work.
func (a *authorizer) fetchToken(ctx context.Context, ch Challenge, scope []string) (token, error) {
	realm, err := url.Parse(ch.Params["realm"])
	if err != nil || realm.Host == "" || (realm.Scheme != "http" && realm.Scheme != "https") {
		return token{}, errdefs.Unauthorized(fmt.Errorf("invalid token auth challenge realm: %q", ch.Params["realm"]))
	}
	service := ch.Params["service"]
	user, pass := a.creds.credentials()
	a.mu.Lock()
	refresh := a.refresh
	a.mu.Unlock()
	if refresh == "" {
		refresh = a.creds.IdentityToken
	}
	var tr tokenResponse
	var status int
	if refresh != "" {
		tr, status, err = a.postToken(ctx, realm, service, scope, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) && user != "" {
			tr, _, err = a.getToken(ctx, realm, service, scope, user, pass)
		}
	} else {
		tr, status, err = a.getToken(ctx, realm, service, scope, user, pass)
		if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) && user != "" {
			tr, _, err = a.postToken(ctx, realm, service, scope, url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
		}
	}
	if err != nil {
		return token{}, err
	}
	value := tr.Token
	if value == "" {
		value = tr.AccessToken
	}
	if value == "" {
		return token{}, errdefs.Unauthorized(errors.New("authorization server did not include a token in the response"))
	}
	if tr.RefreshToken != "" {
		a.mu.Lock()
		a.refresh = tr.RefreshToken
		a.mu.Unlock()
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	if lifetime < minTokenLifetime {
		lifetime = minTokenLifetime
	}
	issued := tr.IssuedAt
	if issued.IsZero() {
		issued = a.c.now()
	}
	return token{value: value, expires: issued.Add(lifetime)}, nil
}

func (a *authorizer) getToken(ctx context.Context, realm *url.URL, service string, scope []string, user, pass string) (tokenResponse, int, error) {
	u := *realm
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scope {
		q.Add("scope", s)
	}
	if user != "" {
		q.Set("account", user)
	}
	if a.offline {
		q.Set("offline_token", "true")
		q.Set("client_id", clientID)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return tokenResponse{}, 0, err
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	return a.sendToken(req)
}

func (a *authorizer) postToken(ctx context.Context, realm *url.URL, service string, scope []string, form url.Values) (tokenResponse, int, error) {
	form.Set("client_id", clientID)
	if service != "" {
		form.Set("service", service)
	}
	if len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	if a.offline {
		form.Set("access_type", "offline")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return a.sendToken(req)
}

func (a *authorizer) sendToken(req *http.Request) (tokenResponse, int, error) {
	a.c.setHeaders(req)
	resp, err := a.hc.Do(req)
	if err != nil {
		return tokenResponse{}, 0, errdefs.Unavailable(err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, resp.StatusCode, responseError(resp)
	}
	body, err := readAllLimited(resp.Body, 1<<20, "token response")
	if err != nil {
		return tokenResponse{}, resp.StatusCode, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return tokenResponse{}, resp.StatusCode, errdefs.Unauthorized(fmt.Errorf("unable to decode token response: %w", err))
	}
	return tr, resp.StatusCode, nil
}

// opName spells a method as net/url errors do ("Get", "Post").
func opName(method string) string {
	if method == "" {
		return ""
	}
	return method[:1] + strings.ToLower(method[1:])
}
