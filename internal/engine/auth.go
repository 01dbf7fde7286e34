package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
	"skiffd/internal/distribution"
	"skiffd/internal/errdefs"
)

// Login answers POST /auth: it checks the credentials against the registry
// the server address names (Docker Hub when empty) and returns dockerd's
// answer, with the identity token a token server issued, if any. A refusal
// is errdefs.Unauthorized with dockerd's text.
func (e *Engine) Login(ctx context.Context, ac types.AuthConfig) (*types.AuthResponse, error) {
	status, token, err := e.reg.client().Login(ctx, ac.ServerAddress, distribution.AuthConfig(ac))
	if err != nil {
		return nil, err
	}
	return &types.AuthResponse{Status: status, IdentityToken: token}, nil
}

// searchLimit is dockerd's default and largest number of search results.
const (
	searchDefaultLimit = 25
	searchMaxLimit     = 100
)

// SearchImages answers GET /images/search through the registry's v1 search
// API: Docker Hub's index for plain terms, "host[:port]/term" for another
// registry. Registries without that API (the CNCF distribution registry
// has none) give dockerd's error; nothing is made up.
func (e *Engine) SearchImages(ctx context.Context, term string, limit int, authHeader string) ([]types.SearchResult, error) {
	if limit == 0 {
		limit = searchDefaultLimit
	}
	if limit < 1 || limit > searchMaxLimit {
		return nil, errdefs.InvalidParameter(fmt.Errorf("limit %d is outside the range of [1, 100]", limit))
	}
	if _, err := distribution.DecodeAuthConfig(authHeader); err != nil {
		return nil, err
	}
	host, remote := distribution.HubDomain, term
	if i := strings.IndexByte(term, '/'); i > 0 {
		if d := term[:i]; strings.ContainsAny(d, ".:") || d == "localhost" {
			host, remote = d, term[i+1:]
		}
	}
	var bases []*url.URL
	var clients []*http.Client
	if host == distribution.HubDomain {
		u, _ := url.Parse("https://index.docker.io")
		bases, clients = append(bases, u), append(clients, &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}})
	} else {
		eps, err := e.reg.cfg().Endpoints(ctx, host, false)
		if err != nil {
			return nil, err
		}
		for _, ep := range eps {
			bases = append(bases, ep.URL)
			clients = append(clients, &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: ep.TLS}})
		}
	}
	var lastErr error
	for i, base := range bases {
		res, err := searchV1(ctx, clients[i], base, remote, limit)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if errdefs.KindOf(err) != errdefs.ErrUnavailable {
			break
		}
	}
	return nil, lastErr
}

func searchV1(ctx context.Context, hc *http.Client, base *url.URL, term string, limit int) ([]types.SearchResult, error) {
	u := base.JoinPath("v1", "search")
	u.RawQuery = url.Values{"q": {term}, "n": {strconv.Itoa(limit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errdefs.Unavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, errdefs.System(fmt.Errorf("Unexpected status code %d", resp.StatusCode))
	}
	var body struct {
		Results []types.SearchResult `json:"results"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil, errdefs.System(fmt.Errorf("error decoding search results: %w", err))
	}
	if len(body.Results) > limit {
		body.Results = body.Results[:limit]
	}
	if body.Results == nil {
		body.Results = []types.SearchResult{}
	}
	return body.Results, nil
}
