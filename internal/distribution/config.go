package distribution

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"skiffd/internal/errdefs"
)

// DefaultCertsDir is where dockerd reads per-registry TLS material:
// <DefaultCertsDir>/<host:port>/{*.crt,*.cert,*.key}.
const DefaultCertsDir = "/etc/docker/certs.d"

// The Docker Hub names: references say docker.io, the API lives at
// registry-1.docker.io, and logins name the legacy index address.
const (
	HubDomain        = "docker.io"
	HubHost          = "registry-1.docker.io"
	HubIndexServer   = "https://index.docker.io/v1/"
	hubIndexHostname = "index.docker.io"
)

// Config is the registry part of the daemon configuration.
type Config struct {
	// Mirrors are the registry-mirrors, URLs such as
	// "https://mirror.example.com"; they are tried, in order, before
	// Docker Hub for docker.io references only.
	Mirrors []string
	// InsecureRegistries are insecure-registries entries: "host:port",
	// "host", or CIDRs such as "10.0.0.0/8". Loopback (127.0.0.0/8, ::1/128)
	// is always insecure, as in dockerd.
	InsecureRegistries []string
	// CertsDir overrides DefaultCertsDir (tests).
	CertsDir string
	// UserAgent is sent with every request.
	UserAgent string
	// Proxy chooses a proxy per request; nil means http.ProxyFromEnvironment
	// (HTTP_PROXY, HTTPS_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
	// LookupIP resolves host names for the insecure-CIDR check, as dockerd
	// does; nil means net.DefaultResolver.
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)

	// secureLoopback drops dockerd's default insecure loopback CIDRs, so
	// that tests can exercise certificate verification and certs.d against
	// registries that can only listen on loopback.
	secureLoopback bool
	// hubURL replaces https://registry-1.docker.io in tests.
	hubURL *url.URL
}

// Endpoint is one place to reach a registry's API: a base URL
// ("https://host:port") and the TLS configuration for it.
type Endpoint struct {
	URL *url.URL
	// Mirror is true for registry-mirrors entries.
	Mirror bool
	// TLS is nil for plain HTTP endpoints.
	TLS *tls.Config
}

func (c Config) certsDir() string {
	if c.CertsDir != "" {
		return c.CertsDir
	}
	return DefaultCertsDir
}

// IsInsecure reports whether hostport (a reference's domain, "host[:port]")
// is an insecure registry: listed by name, or with an IP (given or
// resolved) inside a listed or loopback CIDR. Docker Hub is never insecure
// by default.
func (c Config) IsInsecure(ctx context.Context, hostport string) bool {
	var nets []*net.IPNet
	defaults := []string{"127.0.0.0/8", "::1/128"}
	if c.secureLoopback {
		defaults = nil
	}
	for _, s := range append(defaults, c.InsecureRegistries...) {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
		if _, n, err := net.ParseCIDR(s); err == nil {
			nets = append(nets, n)
			continue
		}
		if strings.TrimSuffix(s, "/") == hostport {
			return true
		}
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if hostport != HubDomain && hostport != HubHost {
		lookup := c.LookupIP
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]net.IP, error) {
				return net.DefaultResolver.LookupIP(ctx, "ip", host)
			}
		}
		// A failed lookup is not an error: the registry is then secure,
		// and the connection attempt reports the failure.
		ips, _ = lookup(ctx, host)
	}
	for _, ip := range ips {
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// Endpoints returns the endpoints to try, in order, for a reference's
// domain, as dockerd's lookup does: for docker.io the mirrors (each with
// its own certs.d TLS) and then https://registry-1.docker.io; for any other
// registry https://<domain> and, when it is insecure, https without
// verification followed by http://<domain>. includeMirrors is false for
// login and push, which never use mirrors.
func (c Config) Endpoints(ctx context.Context, domain string, includeMirrors bool) ([]Endpoint, error) {
	if domain == HubDomain || domain == hubIndexHostname || domain == HubHost {
		var eps []Endpoint
		if includeMirrors {
			for _, m := range c.Mirrors {
				u, err := url.Parse(strings.TrimSuffix(m, "/"))
				if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
					return nil, errdefs.InvalidParameter(fmt.Errorf("invalid mirror: %q is not a valid URI", m))
				}
				ep := Endpoint{URL: &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}, Mirror: true}
				if u.Scheme == "https" {
					t, err := c.tlsConfig(ctx, u.Host)
					if err != nil {
						return nil, err
					}
					ep.TLS = t
				}
				eps = append(eps, ep)
			}
		}
		// dockerd reads no certs.d for Docker Hub itself.
		hub := Endpoint{URL: &url.URL{Scheme: "https", Host: HubHost}, TLS: defaultTLS()}
		if c.hubURL != nil {
			hub.URL = c.hubURL
		}
		return append(eps, hub), nil
	}
	t, err := c.tlsConfig(ctx, domain)
	if err != nil {
		return nil, err
	}
	eps := []Endpoint{{URL: &url.URL{Scheme: "https", Host: domain}, TLS: t}}
	if t.InsecureSkipVerify {
		eps = append(eps, Endpoint{URL: &url.URL{Scheme: "http", Host: domain}})
	}
	return eps, nil
}

func defaultTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// tlsConfig is dockerd's newTLSConfig: insecure registries skip
// verification; secure ones load certs.d/<hostport>.
func (c Config) tlsConfig(ctx context.Context, hostport string) (*tls.Config, error) {
	t := defaultTLS()
	if c.IsInsecure(ctx, hostport) {
		t.InsecureSkipVerify = true
		return t, nil
	}
	if err := LoadCertsDir(filepath.Join(c.certsDir(), strings.ReplaceAll(hostport, "/", "")), t); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadCertsDir reads dir as dockerd reads /etc/docker/certs.d/<host:port>:
// every *.crt is a CA added to a copy of the system roots; every *.cert is a
// client certificate whose key is the *.key of the same base name. A missing
// directory is no error. A *.cert without its key, or a *.key without its
// certificate, is an error with dockerd's text.
func LoadCertsDir(dir string, t *tls.Config) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		full := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			if t.RootCAs == nil {
				pool, err := x509.SystemCertPool()
				if err != nil || pool == nil {
					pool = x509.NewCertPool()
				}
				t.RootCAs = pool
			}
			pem, err := os.ReadFile(full)
			if err != nil {
				return err
			}
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("unable to load CA certificate %s", full)
			}
		case strings.HasSuffix(name, ".cert"):
			keyName := strings.TrimSuffix(name, ".cert") + ".key"
			if !hasEntry(entries, keyName) {
				return errdefs.InvalidParameter(fmt.Errorf("missing key %s for client certificate %s. CA certificates must use the extension .crt", keyName, name))
			}
			cert, err := tls.LoadX509KeyPair(full, filepath.Join(dir, keyName))
			if err != nil {
				return err
			}
			t.Certificates = append(t.Certificates, cert)
		case strings.HasSuffix(name, ".key"):
			certName := strings.TrimSuffix(name, ".key") + ".cert"
			if !hasEntry(entries, certName) {
				return errdefs.InvalidParameter(fmt.Errorf("missing client certificate %s for key %s", certName, name))
			}
		}
	}
	return nil
}

func hasEntry(entries []os.DirEntry, name string) bool {
	for _, e := range entries {
		if e.Name() == name {
			return true
		}
	}
	return false
}

// newHTTPClient builds the client for one endpoint. Redirects keep the
// Authorization header only while the host (with port) stays the same: Go's
// own rule compares host names without ports and lets subdomains through,
// which would hand registry credentials to blob storage on another port.
func (c Config) newHTTPClient(ep Endpoint) *http.Client {
	proxy := c.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		TLSClientConfig:       ep.TLS,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   8,
		ForceAttemptHTTP2:     true,
	}
	if ep.TLS == nil {
		tr.TLSClientConfig = defaultTLS()
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("stopped after 10 redirects")
			}
			if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
}
