package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiffd/internal/config"
)

// testPKI is a CA with a server and a client certificate, plus a client
// certificate from a second, unrelated CA, written where serverTLSConfig
// can read them.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	caPool                    *x509.CertPool
	client, stranger          tls.Certificate
	otherKeyFile              string // a valid key that does not match certFile
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue signs tmpl for key with parent/parentKey (self-signed when parent is
// nil) and returns the certificate.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key := newKey(t)
	return issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil, key), key
}

func clientCert(t *testing.T, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	key := newKey(t)
	cert := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey, key)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{
		dir:          dir,
		caFile:       filepath.Join(dir, "ca.pem"),
		certFile:     filepath.Join(dir, "cert.pem"),
		keyFile:      filepath.Join(dir, "key.pem"),
		otherKeyFile: filepath.Join(dir, "other-key.pem"),
		caPool:       x509.NewCertPool(),
	}
	ca, caKey := newCA(t, "skiffd test CA")
	writePEM(t, p.caFile, "CERTIFICATE", ca.Raw)
	p.caPool.AddCert(ca)

	serverKey := newKey(t)
	server := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "skiffd"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey, serverKey)
	writePEM(t, p.certFile, "CERTIFICATE", server.Raw)
	writeKey(t, p.keyFile, serverKey)
	writeKey(t, p.otherKeyFile, newKey(t))

	p.client = clientCert(t, "client", ca, caKey)
	otherCA, otherCAKey := newCA(t, "someone else's CA")
	p.stranger = clientCert(t, "stranger", otherCA, otherCAKey)
	return p
}

// config is a --tlsverify configuration using p's files.
func (p *testPKI) config() *config.Config {
	return &config.Config{TLS: true, TLSVerify: true, TLSExplicit: true, TLSCACert: p.caFile, TLSCert: p.certFile, TLSKey: p.keyFile}
}

func (p *testPKI) serverConfig(t *testing.T) *tls.Config {
	t.Helper()
	tc, err := serverTLSConfig(p.config())
	if err != nil {
		t.Fatalf("serverTLSConfig: %v", err)
	}
	return tc
}

func TestServerTLSConfigOff(t *testing.T) {
	// No TLS asked for: no configuration, and the files are not looked at.
	tc, err := serverTLSConfig(&config.Config{TLSCert: "/nonexistent", TLSKey: "/nonexistent"})
	if tc != nil || err != nil {
		t.Errorf("serverTLSConfig(no TLS) = %v, %v; want nil, nil", tc, err)
	}
}

func TestServerTLSConfigVerify(t *testing.T) {
	p := newTestPKI(t)
	tc := p.serverConfig(t)
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %#x, want TLS 1.2", tc.MinVersion)
	}
	if tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("ClientAuth = %v, want RequireAndVerifyClientCert", tc.ClientAuth)
	}
	// Exactly the CA file's certificates: no system roots.
	if tc.ClientCAs == nil || !tc.ClientCAs.Equal(p.caPool) {
		t.Errorf("ClientCAs is not exactly the CA file's pool")
	}
	if len(tc.NextProtos) != 1 || tc.NextProtos[0] != "http/1.1" {
		t.Errorf("NextProtos = %q, want [http/1.1]", tc.NextProtos)
	}
	if len(tc.Certificates) != 1 {
		t.Errorf("Certificates has %d entries, want 1", len(tc.Certificates))
	}
}

func TestServerTLSConfigWithoutVerify(t *testing.T) {
	// --tlsverify=false: server certificate only; the CA file is not needed.
	p := newTestPKI(t)
	cfg := p.config()
	cfg.TLSVerify = false
	cfg.TLSCACert = filepath.Join(p.dir, "absent.pem")
	tc, err := serverTLSConfig(cfg)
	if err != nil {
		t.Fatalf("serverTLSConfig(TLS without verify): %v", err)
	}
	if tc.ClientAuth != tls.NoClientCert || tc.ClientCAs != nil {
		t.Errorf("ClientAuth, ClientCAs = %v, %v; want NoClientCert, nil", tc.ClientAuth, tc.ClientCAs)
	}
}

func TestServerTLSConfigErrors(t *testing.T) {
	p := newTestPKI(t)
	garbage := filepath.Join(p.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("this is not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(p.dir, "missing.pem")
	const keyPairErr = "invalid TLS configuration: error reading X509 key pair - make sure the key is not encrypted (cert: %q, key: %q): %s"
	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   string
	}{
		{"missing cert", func(c *config.Config) { c.TLSCert = missing },
			fmt.Sprintf("invalid TLS configuration: could not load X509 key pair (cert: %q, key: %q): open %s: no such file or directory", missing, p.keyFile, missing)},
		{"missing key", func(c *config.Config) { c.TLSKey = missing },
			fmt.Sprintf("invalid TLS configuration: could not load X509 key pair (cert: %q, key: %q): open %s: no such file or directory", p.certFile, missing, missing)},
		{"garbage key", func(c *config.Config) { c.TLSKey = garbage },
			fmt.Sprintf(keyPairErr, p.certFile, garbage, "tls: failed to find any PEM data in key input")},
		{"garbage cert", func(c *config.Config) { c.TLSCert = garbage },
			fmt.Sprintf(keyPairErr, garbage, p.keyFile, "tls: failed to find any PEM data in certificate input")},
		{"key not matching cert", func(c *config.Config) { c.TLSKey = p.otherKeyFile },
			fmt.Sprintf(keyPairErr, p.certFile, p.otherKeyFile, "tls: private key does not match public key")},
		{"missing CA", func(c *config.Config) { c.TLSCACert = missing },
			fmt.Sprintf("invalid TLS configuration: could not read CA certificate %q: open %s: no such file or directory", missing, missing)},
		{"CA file holding a key", func(c *config.Config) { c.TLSCACert = p.keyFile },
			fmt.Sprintf("invalid TLS configuration: failed to append certificates from PEM file: %q", p.keyFile)},
		{"CA file of garbage", func(c *config.Config) { c.TLSCACert = garbage },
			fmt.Sprintf("invalid TLS configuration: failed to append certificates from PEM file: %q", garbage)},
		{"empty CA path", func(c *config.Config) { c.TLSCACert = "" },
			`invalid TLS configuration: could not read CA certificate "": open : no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.config()
			tt.modify(cfg)
			tc, err := serverTLSConfig(cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("serverTLSConfig() = %v, %v;\nwant error %q", tc, err, tt.want)
			}
		})
	}
}

// TestTLSVerifyHandshakes serves HTTP over a tcp listener from
// openListeners with --tlsverify, and a unix one beside it, and tries
// clients with and without acceptable certificates.
func TestTLSVerifyHandshakes(t *testing.T) {
	p := newTestPKI(t)
	cfg := p.config()
	sock := filepath.Join(t.TempDir(), "s.sock")
	cfg.Hosts = []string{"tcp://127.0.0.1:0", "unix://" + sock}
	logger, logs := testLogger(t)
	ls, err := openListeners(cfg, p.serverConfig(t), noEnv, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, l := range ls {
			l.Close()
		}
	})
	serve(t, ls)
	if strings.Contains(logs.String(), "without --tlsverify") {
		t.Errorf("warned about a verifying listener:\n%s", logs)
	}
	addr := ls[0].Addr.Addr

	fetch := func(tc *tls.Config) (*http.Response, string, error) {
		tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, string(body), err
	}
	tests := []struct {
		name    string
		client  *tls.Config
		wantErr string // "" for success
	}{
		{"CA's client", &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{p.client}}, ""},
		{"CA's client over TLS 1.2", &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{p.client}, MaxVersion: tls.VersionTLS12}, ""},
		{"no client certificate", &tls.Config{RootCAs: p.caPool}, "certificate required"},
		{"no client certificate over TLS 1.2", &tls.Config{RootCAs: p.caPool, MaxVersion: tls.VersionTLS12}, "handshake failure"},
		// A Go client only offers a certificate the server's CA list
		// accepts, so the stranger's is pushed regardless.
		{"other CA's client", &tls.Config{RootCAs: p.caPool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &p.stranger, nil
		}}, "unknown certificate authority"},
		{"TLS 1.1 client", &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{p.client},
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "protocol version not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := fetch(tt.client)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("GET = %v, %v; want an error containing %q", resp, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Errorf("GET = %d %q, want 200 ok", resp.StatusCode, body)
			}
			// HTTP/2 is never negotiated: hijacking needs HTTP/1.1.
			if resp.Proto != "HTTP/1.1" {
				t.Errorf("GET spoke %s, want HTTP/1.1", resp.Proto)
			}
		})
	}

	// The unix socket beside it is plain HTTP.
	if body, err := get(t, ls[1].Addr); err != nil || body != "ok" {
		t.Errorf("GET over the unix socket = %q, %v; want ok", body, err)
	}
}
