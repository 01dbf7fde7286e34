package shim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"skiffd/internal/runtime/spec"
	"skiffd/internal/runtime/syslog"
)

// dialSyslog connects the syslog driver of a container, with its TLS
// files for tcp+tls, as dockerd's driver does at the container's start.
func dialSyslog(l *spec.Syslog) (*syslog.Writer, error) {
	cfg := syslog.Config{Proto: l.Proto, Address: l.Address, Facility: l.Facility, Format: l.Format, Tag: l.Tag, Hostname: l.Hostname}
	if l.Proto == "tcp+tls" {
		tc := &tls.Config{InsecureSkipVerify: l.TLSSkipVerify, MinVersion: tls.VersionTLS12}
		if l.TLSCA != "" {
			pem, err := os.ReadFile(l.TLSCA)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("syslog-tls-ca-cert %s: no certificate", l.TLSCA)
			}
		}
		if l.TLSCert != "" || l.TLSKey != "" {
			if l.TLSCert == "" || l.TLSKey == "" {
				return nil, errors.New("syslog-tls-cert and syslog-tls-key go together")
			}
			c, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{c}
		}
		cfg.TLS = tc
	}
	return syslog.Dial(cfg)
}
