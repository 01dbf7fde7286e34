package distribution

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"skiffd/internal/skifftest"
	"strings"
	"sync"
	"testing"
	"time"
)

// registryOpts configures a test registry.
type registryOpts struct {
	tls       *testCA // serve HTTPS with a certificate from this CA
	clientCAs bool    // require client certificates signed by tls
	htpasswd  map[string]string
	token     *tokenServer
}

// startRegistry starts the real registry (skifftest.StartRegistry) with
// the test CA's material and returns "127.0.0.1:port".
func startRegistry(t *testing.T, o registryOpts) string {
	t.Helper()
	dir := t.TempDir()
	var ro skifftest.RegistryOptions
	if o.tls != nil {
		ro.CertFile, ro.KeyFile = o.tls.issueServer(t, dir)
		ro.ClientCert = o.tls.clientCert(t)
		if o.clientCAs {
			ro.ClientCAFile = o.tls.certFile(t, dir)
		}
	}
	ro.Htpasswd = o.htpasswd
	if o.token != nil {
		ro.ExtraAuth = fmt.Sprintf("  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			o.token.srv.URL, tokenService, tokenIssuer, o.token.bundle(t, dir))
	}
	return skifftest.StartRegistry(t, ro)
}

func freeAddr(t *testing.T) string { return skifftest.FreeAddr(t) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey

	once                        sync.Once
	client                      []tls.Certificate
	clientCertPEM, clientKeyPEM []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "skiffd test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, der: der, key: key}
}

func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

func (ca *testCA) certFile(t *testing.T, dir string) string {
	f := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f, ca.certPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// issueServer writes a server certificate for 127.0.0.1 and its key.
func (ca *testCA) issueServer(t *testing.T, dir string) (string, string) {
	c, k := ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	})
	cf, kf := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(cf, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

// clientPair returns a client certificate and key (PEM), made once.
func (ca *testCA) clientPair(t *testing.T) ([]byte, []byte) {
	ca.once.Do(func() {
		ca.clientCertPEM, ca.clientKeyPEM = ca.issue(t, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "skiffd test client"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			KeyUsage:    x509.KeyUsageDigitalSignature,
		})
		pair, err := tls.X509KeyPair(ca.clientCertPEM, ca.clientKeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		ca.client = []tls.Certificate{pair}
	})
	return ca.clientCertPEM, ca.clientKeyPEM
}

func (ca *testCA) clientCert(t *testing.T) []tls.Certificate {
	ca.clientPair(t)
	return ca.client
}

// certsDir lays out a certs.d directory for hostport as dockerd reads it:
// ca.crt, and client.cert/client.key when withClient.
func (ca *testCA) certsDir(t *testing.T, hostport string, withClient bool) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, hostport)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.certPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if withClient {
		c, k := ca.clientPair(t)
		os.WriteFile(filepath.Join(dir, "client.cert"), c, 0o644)
		os.WriteFile(filepath.Join(dir, "client.key"), k, 0o600)
	}
	return root
}

const (
	tokenService = "skiffd-test-registry"
	tokenIssuer  = "skiffd-test-issuer"
)

// tokenServer is a minimal Docker token service: GET with optional basic
// credentials (and offline_token), POST with the OAuth2 password and
// refresh_token grants. Anonymous callers get pull only; users in the map
// get every action they ask for. Tokens are ES256 JWTs whose x5c
// certificate is the registry's rootcertbundle.
type tokenServer struct {
	srv     *httptest.Server
	key     *ecdsa.PrivateKey
	certDER []byte
	users   map[string]string

	mu        sync.Mutex
	requests  []tokenRequest
	expiresIn int
	refresh   map[string]string // refresh token -> user
}

type tokenRequest struct {
	Method, Account, Grant, Service string
	Scopes                          []string
	Offline                         bool
}

func newTokenServer(t *testing.T, users map[string]string) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "skiffd test token signer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{key: key, certDER: der, users: users, expiresIn: 300, refresh: map[string]string{}}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) bundle(t *testing.T, dir string) string {
	f := filepath.Join(dir, "token-root.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.certDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (ts *tokenServer) log() []tokenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]tokenRequest(nil), ts.requests...)
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	var tr tokenRequest
	tr.Method = r.Method
	var user string
	authed := false
	fail := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"details":"incorrect username or password"}`))
	}
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		tr.Scopes, tr.Account, tr.Service = q["scope"], q.Get("account"), q.Get("service")
		tr.Offline = q.Get("offline_token") == "true"
		if u, p, ok := r.BasicAuth(); ok {
			if want, known := ts.users[u]; !known || want != p {
				ts.record(tr)
				fail()
				return
			}
			user, authed = u, true
		}
	case http.MethodPost:
		r.ParseForm()
		tr.Grant, tr.Service = r.PostForm.Get("grant_type"), r.PostForm.Get("service")
		if s := r.PostForm.Get("scope"); s != "" {
			tr.Scopes = strings.Split(s, " ")
		}
		tr.Offline = r.PostForm.Get("access_type") == "offline"
		switch tr.Grant {
		case "password":
			u, p := r.PostForm.Get("username"), r.PostForm.Get("password")
			if want, known := ts.users[u]; !known || want != p {
				ts.record(tr)
				fail()
				return
			}
			user, authed = u, true
		case "refresh_token":
			ts.mu.Lock()
			u, ok := ts.refresh[r.PostForm.Get("refresh_token")]
			ts.mu.Unlock()
			if !ok {
				ts.record(tr)
				fail()
				return
			}
			user, authed = u, true
		default:
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	ts.record(tr)
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, s := range tr.Scopes {
		parts := strings.Split(s, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		var acts []string
		for _, a := range strings.Split(parts[2], ",") {
			if a == "pull" || authed {
				acts = append(acts, a)
			}
		}
		grants = append(grants, access{Type: "repository", Name: parts[1], Actions: acts})
	}
	now := time.Now()
	ts.mu.Lock()
	exp := ts.expiresIn
	ts.mu.Unlock()
	claims := map[string]any{
		"iss": tokenIssuer, "sub": user, "aud": tokenService,
		"exp": now.Add(time.Duration(exp) * time.Second).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": grants,
	}
	resp := map[string]any{"expires_in": exp, "issued_at": now.UTC().Format(time.RFC3339)}
	tok := ts.sign(claims)
	if r.Method == http.MethodPost {
		resp["access_token"] = tok // the OAuth2 name
	} else {
		resp["token"] = tok
	}
	if authed && tr.Offline {
		rt := fmt.Sprintf("refresh-%s-%d", user, now.UnixNano())
		ts.mu.Lock()
		ts.refresh[rt] = user
		ts.mu.Unlock()
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (ts *tokenServer) record(tr tokenRequest) {
	ts.mu.Lock()
	ts.requests = append(ts.requests, tr)
	ts.mu.Unlock()
}

// sign makes an ES256 JWT with the signing certificate in x5c, the form
// the registry's token verifier checks against its rootcertbundle.
func (ts *tokenServer) sign(claims map[string]any) string {
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}
