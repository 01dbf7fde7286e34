package distribution

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"skiffd/internal/errdefs"
)

// LoginSucceeded is the status dockerd answers POST /auth with.
const LoginSucceeded = "Login Succeeded"

// RegistryHost returns the registry a login's server address names, as
// dockerd reads it: the scheme and any path dropped, and Docker Hub (an
// empty address, "https://index.docker.io/v1/", "index.docker.io",
// "docker.io") as "docker.io".
func RegistryHost(serverAddress string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(serverAddress, "http://"), "https://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", hubIndexHostname, HubDomain, HubHost:
		return HubDomain
	}
	return s
}

// Login checks credentials against a registry as dockerd's POST /auth does
// and returns dockerd's status text (LoginSucceeded) and, when the
// registry's token server gave one, an identity token (an OAuth2 refresh
// token) the client may store instead of the password.
//
// serverAddress is auth.ServerAddress when empty. Mirrors are never used.
// For each endpoint (https, then http for insecure registries) it pings
// /v2/, then sends GET /v2/ with the credentials: through a token fetched
// without scope (asking for offline access) when the registry challenges
// with Bearer, or as basic auth. Failures read as in dockerd: a token
// server's refusal as `Get "https://host/v2/": unauthorized: <details>`, a
// registry's own refusal as "login attempt to https://host/v2/ failed with
// status: 401 Unauthorized"; both are errdefs.Unauthorized and end the
// attempt (no fallback to plain HTTP after a refusal).
func (c *Client) Login(ctx context.Context, serverAddress string, auth AuthConfig) (status, identityToken string, err error) {
	if serverAddress == "" {
		serverAddress = auth.ServerAddress
	}
	eps, err := c.cfg.Endpoints(ctx, RegistryHost(serverAddress), false)
	if err != nil {
		return "", "", err
	}
	for _, ep := range eps {
		identityToken, err = c.loginEndpoint(ctx, ep, auth)
		if err == nil {
			return LoginSucceeded, identityToken, nil
		}
		if errdefs.KindOf(err) == errdefs.ErrUnauthorized {
			return "", "", err
		}
	}
	return "", "", err
}

func (c *Client) loginEndpoint(ctx context.Context, ep Endpoint, auth AuthConfig) (string, error) {
	hc := c.httpClient(ep)
	challenges, err := ping(ctx, c, hc, ep)
	if err != nil {
		return "", err
	}
	a := newAuthorizer(c, hc, auth, challenges, nil)
	a.offline = true
	endpointStr := strings.TrimRight(ep.URL.String(), "/") + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpointStr, nil)
	if err != nil {
		return "", err
	}
	c.setHeaders(req)
	if _, err := a.authorize(ctx, req, nil, false); err != nil {
		return "", &url.Error{Op: "Get", URL: endpointStr, Err: err}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", errdefs.Unavailable(err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("login attempt to %s failed with status: %d %s", endpointStr, resp.StatusCode, http.StatusText(resp.StatusCode))
		if resp.StatusCode == http.StatusUnauthorized {
			return "", errdefs.Unauthorized(err)
		}
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refresh != "" {
		return a.refresh, nil
	}
	return auth.IdentityToken, nil
}
