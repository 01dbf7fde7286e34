package audit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Peer is who is on the other end of an API connection.
//
// For a unix socket it is the process that connected, from SO_PEERCRED:
// the credentials the kernel recorded at connect(2), which the peer cannot
// forge. Comm is read from /proc/<pid>/comm when the connection is
// accepted; a process that exits or execs afterwards is not followed
// (the pid may even be reused), so Comm is the name at connect time.
//
// For TLS it is the verified client certificate; for plain TCP only the
// remote address.
type Peer struct {
	UID  *uint32 `json:"uid,omitempty"`
	GID  *uint32 `json:"gid,omitempty"`
	PID  *int32  `json:"pid,omitempty"`
	Comm string  `json:"comm,omitempty"`

	Addr string `json:"addr,omitempty"` // remote address for TCP

	CertSubject string `json:"cert_subject,omitempty"`
	CertIssuer  string `json:"cert_issuer,omitempty"`
	CertSerial  string `json:"cert_serial,omitempty"`
}

type connKey struct{}

// connInfo is what ConnContext learns once per connection.
type connInfo struct {
	listener string
	peer     Peer
}

// ConnContext is for http.Server.ConnContext: it records the listener and,
// for unix sockets, the peer's credentials, once per connection so that
// keep-alive requests pay nothing. listener names the listener as -H gave it.
func ConnContext(listener string) func(ctx context.Context, c net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		ci := &connInfo{listener: listener}
		// The connection itself, under TLS or the server's wrapper
		// (wire.BatchConn).
		nc := c
		for {
			u, ok := nc.(interface{ NetConn() net.Conn })
			if !ok {
				break
			}
			nc = u.NetConn()
		}
		switch conn := nc.(type) {
		case *net.UnixConn:
			ci.peer = unixPeer(conn)
		default:
			ci.peer.Addr = c.RemoteAddr().String()
		}
		return context.WithValue(ctx, connKey{}, ci)
	}
}

// unixPeer reads SO_PEERCRED. A failure leaves the identity empty rather
// than refusing the connection: the audit log then shows an unknown peer.
func unixPeer(c *net.UnixConn) Peer {
	var p Peer
	raw, err := c.SyscallConn()
	if err != nil {
		return p
	}
	var cred *syscall.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return p
	}
	p.UID, p.GID, p.PID = &cred.Uid, &cred.Gid, &cred.Pid
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(int(cred.Pid)) + "/comm"); err == nil {
		p.Comm = strings.TrimSuffix(string(b), "\n")
	}
	return p
}

// tlsPeer fills the certificate fields from a verified client certificate.
func tlsPeer(p *Peer, cs *tls.ConnectionState) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return
	}
	var cert *x509.Certificate = cs.PeerCertificates[0]
	p.CertSubject = cert.Subject.String()
	p.CertIssuer = cert.Issuer.String()
	p.CertSerial = cert.SerialNumber.String()
}
