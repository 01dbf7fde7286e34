package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"skiffd/internal/config"
)

// serverCipherSuites are the TLS 1.2 suites the API accepts: forward-secret
// AEAD only, the same set as dockerd (go-connections' DefaultServerAcceptedCiphers).
// TLS 1.3 suites are not configurable and all qualify.
var serverCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLSConfig returns the TLS configuration for the API's TCP and
// socket-activated listeners, or nil, nil when neither cfg.TLS nor
// cfg.TLSVerify is set. With TLSVerify, clients must present a certificate
// that chains to a certificate in TLSCACert; the system roots are never
// consulted, so a certificate from any public CA is refused.
//
// Errors name the files involved and use dockerd's wording, prefixed, as
// dockerd does, with "invalid TLS configuration". The files are read once:
// replacing them needs a restart.
func serverTLSConfig(cfg *config.Config) (*tls.Config, error) {
	if !cfg.TLS && !cfg.TLSVerify {
		return nil, nil
	}
	cert, err := loadKeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("invalid TLS configuration: %w", err)
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: serverCipherSuites,
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 only: attach and exec hijack the connection, which
		// HTTP/2 cannot do.
		NextProtos: []string{"http/1.1"},
	}
	if cfg.TLSVerify {
		pool, err := loadCAPool(cfg.TLSCACert)
		if err != nil {
			return nil, fmt.Errorf("invalid TLS configuration: %w", err)
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = pool
	}
	return tc, nil
}

// loadKeyPair loads the server certificate and its key, telling a missing
// file apart from one that does not parse or does not match (go-connections'
// wording for both).
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		return cert, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("could not load X509 key pair (cert: %q, key: %q): %w", certFile, keyFile, err)
	}
	return tls.Certificate{}, fmt.Errorf("error reading X509 key pair - make sure the key is not encrypted (cert: %q, key: %q): %w", certFile, keyFile, err)
}

// loadCAPool returns a pool holding exactly the certificates in caFile.
func loadCAPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("could not read CA certificate %q: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("failed to append certificates from PEM file: %q", caFile)
	}
	return pool, nil
}

// tlsReloader lets a reload swap the server's TLS configuration (and so
// its certificate and client CAs) for new connections: the listener's
// config hands every handshake the current one through GetConfigForClient.
// Established connections finished their handshake and are untouched.
type tlsReloader struct {
	cur atomic.Pointer[tls.Config]
}

// newTLSReloader returns the reloader and the config to give listeners:
// a clone of tc (so the start-up checks still see its client
// authentication) that defers each handshake to the current config.
func newTLSReloader(tc *tls.Config) (*tlsReloader, *tls.Config) {
	if tc == nil {
		return nil, nil
	}
	r := &tlsReloader{}
	r.cur.Store(tc)
	base := tc.Clone()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.cur.Load(), nil }
	return r, base
}
