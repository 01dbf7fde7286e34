package authz

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
)

// MaxBodySize is the largest request body forwarded to plugins: dockerd's
// maxBodySize (1 MiB). A body that must be forwarded and is larger is
// refused, as dockerd does since the CVE-2024-41110 and CVE-2026-34040
// fixes, so a plugin never judges less than the handler reads.
const MaxBodySize = 1 << 20

// The message dockerd gives a body that is too large to forward.
var errBodyTooLarge = fmt.Sprintf("request body too large for authorization plugin: size exceeds %d bytes", MaxBodySize)

// Request is what a plugin receives (dockerd's authorization.Request).
type Request struct {
	User                    string            `json:"User,omitempty"`
	UserAuthNMethod         string            `json:"UserAuthNMethod,omitempty"`
	RequestMethod           string            `json:"RequestMethod,omitempty"`
	RequestURI              string            `json:"RequestUri,omitempty"`
	RequestBody             []byte            `json:"RequestBody,omitempty"`
	RequestHeaders          map[string]string `json:"RequestHeaders,omitempty"`
	RequestPeerCertificates []PeerCertificate `json:"RequestPeerCertificates,omitempty"`
	ResponseStatusCode      int               `json:"ResponseStatusCode,omitempty"`
	ResponseBody            []byte            `json:"ResponseBody,omitempty"`
	ResponseHeaders         map[string]string `json:"ResponseHeaders,omitempty"`
}

// Response is a plugin's answer.
type Response struct {
	Allow bool   `json:"Allow"`
	Msg   string `json:"Msg,omitempty"`
	Err   string `json:"Err,omitempty"`
}

// PeerCertificate is a client certificate, sent as its PEM encoding in a
// JSON byte string, as dockerd does.
type PeerCertificate x509.Certificate

// MarshalJSON encodes the certificate as PEM bytes.
func (pc PeerCertificate) MarshalJSON() ([]byte, error) {
	return json.Marshal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pc.Raw}))
}

// UnmarshalJSON decodes PEM bytes (for plugins written in Go, and tests).
func (pc *PeerCertificate) UnmarshalJSON(b []byte) error {
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		return fmt.Errorf("no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err
	}
	*pc = PeerCertificate(*c)
	return nil
}

// Chain is the ordered list of plugins every request passes; all must
// allow. A Chain is immutable: reloading builds a new one.
type Chain struct {
	plugins []*Plugin
	logger  *slog.Logger
}

// NewChain prepares plugins by name, in order. Plugins are found and
// activated on first use, not here.
func NewChain(names []string, dirs Dirs, logger *slog.Logger) (*Chain, error) {
	c := &Chain{logger: logger}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p, err := newPlugin(n, dirs)
		if err != nil {
			return nil, err
		}
		c.plugins = append(c.plugins, p)
	}
	return c, nil
}

// Len is the number of plugins; a nil Chain has none.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.plugins)
}

// Names lists the plugins in order.
func (c *Chain) Names() []string {
	if c == nil {
		return nil
	}
	var n []string
	for _, p := range c.plugins {
		n = append(n, p.name)
	}
	return n
}

// Close releases the plugins' idle connections. A request still running
// under the chain finishes (it reconnects if it must).
func (c *Chain) Close() {
	if c == nil {
		return
	}
	for _, p := range c.plugins {
		p.Close()
	}
}

// Denied is a plugin's refusal; the API answers it with 403.
type Denied struct{ Plugin, Msg string }

func (e *Denied) Error() string {
	return fmt.Sprintf("authorization denied by plugin %s: %s", e.Plugin, e.Msg)
}

// Failed is a plugin that could not be asked or answered with an error;
// the API answers it with 500.
type Failed struct{ Err error }

func (e *Failed) Error() string { return e.Err.Error() }
func (e *Failed) Unwrap() error { return e.Err }

// BodyTooLarge is returned for a body the chain must see whole but cannot.
type BodyTooLarge struct{}

func (BodyTooLarge) Error() string { return errBodyTooLarge }

// ask runs msg through every plugin in order with method.
func (c *Chain) ask(ctx context.Context, method string, msg *Request) error {
	for _, p := range c.plugins {
		res, err := p.Call(ctx, method, msg)
		if err != nil {
			return &Failed{fmt.Errorf("plugin %s failed with error: %w", p.name, err)}
		}
		if res.Err != "" {
			return &Failed{fmt.Errorf("plugin %s failed with error: %s", p.name, res.Err)}
		}
		if !res.Allow {
			return &Denied{Plugin: p.name, Msg: res.Msg}
		}
	}
	return nil
}

// Serve runs r through the chain around next. body is the whole request
// body, already read and put back into r.Body by the caller, which refused
// a body it could not read whole (see MaxBodySize); forwardBody says
// whether plugins see it (false for the tar streams of load, import, cp in
// and build, which dockerd does not forward either: the plugin then judges
// by method, URI and headers). writeErr writes an error answer.
//
// The response is held back until AuthZRes allows it, except for streams:
// a handler that flushes (logs -f, events, progress) or hijacks (attach,
// exec) sends what it has, as dockerd's response modifier does. AuthZRes
// still sees the rest of a flushed stream, but its refusal can no longer
// reach the client and is only logged; a hijacked connection is not sent
// to AuthZRes at all.
func (c *Chain) Serve(w http.ResponseWriter, r *http.Request, body []byte, forwardBody bool, next http.Handler, writeErr func(http.ResponseWriter, error)) {
	msg := &Request{
		RequestMethod:  r.Method,
		RequestURI:     r.RequestURI,
		RequestHeaders: flatten(r.Header),
	}
	if forwardBody && len(body) > 0 && !strings.HasSuffix(r.URL.Path, "/auth") {
		msg.RequestBody = body
	}
	if r.TLS != nil {
		for _, pc := range r.TLS.PeerCertificates {
			msg.RequestPeerCertificates = append(msg.RequestPeerCertificates, PeerCertificate(*pc))
		}
		if len(r.TLS.PeerCertificates) > 0 {
			msg.User = r.TLS.PeerCertificates[0].Subject.CommonName
			msg.UserAuthNMethod = "TLS"
		}
	}
	if err := c.ask(r.Context(), "AuthZPlugin.AuthZReq", msg); err != nil {
		writeErr(w, err)
		return
	}

	rm := &responseModifier{rw: w}
	next.ServeHTTP(rm, r)
	if rm.hijacked {
		return
	}
	msg.ResponseStatusCode = rm.status
	if msg.ResponseStatusCode == 0 {
		msg.ResponseStatusCode = http.StatusOK
	}
	msg.ResponseHeaders = flatten(w.Header())
	if isJSON(w.Header().Get("Content-Type")) {
		msg.ResponseBody = rm.body
	}
	err := c.ask(context.WithoutCancel(r.Context()), "AuthZPlugin.AuthZRes", msg)
	if rm.streaming {
		if err != nil {
			c.logger.WarnContext(r.Context(), "authorization plugin refused a response already streaming", "method", r.Method, "uri", r.RequestURI, "error", err)
		}
		rm.flushAll()
		return
	}
	if err != nil {
		// Nothing was sent yet: the refusal replaces the answer.
		writeErr(w, err)
		return
	}
	rm.flushAll()
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// flatten gives the last value of each header, without credentials.
func flatten(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "X-Registry-Config") || strings.EqualFold(k, "X-Registry-Auth") {
			continue
		}
		for _, v := range vs {
			m[k] = v
		}
	}
	return m
}

// responseModifier holds a response back until the plugins have seen it.
// Headers go straight to the real header map (nothing is written before
// WriteHeader reaches the wire); status and body wait.
type responseModifier struct {
	rw        http.ResponseWriter
	status    int
	body      []byte
	streaming bool // flushed at least once: writes go through
	hijacked  bool
}

func (m *responseModifier) Header() http.Header { return m.rw.Header() }

func (m *responseModifier) WriteHeader(code int) {
	if m.streaming || m.hijacked {
		m.rw.WriteHeader(code)
		return
	}
	if m.status == 0 {
		m.status = code
	}
}

func (m *responseModifier) Write(p []byte) (int, error) {
	if m.streaming || m.hijacked {
		return m.rw.Write(p)
	}
	if m.status == 0 {
		m.status = http.StatusOK
	}
	if len(m.body)+len(p) > MaxBodySize {
		// An answer this large (export, save, cp out write without
		// flushing) is streamed rather than held in memory; AuthZRes can
		// then no longer retract it, as for a flushed stream.
		m.flushAll()
		m.streaming = true
		return m.rw.Write(p)
	}
	m.body = append(m.body, p...)
	return len(p), nil
}

// flushAll sends what is held back.
func (m *responseModifier) flushAll() {
	if m.status != 0 {
		m.rw.WriteHeader(m.status)
		m.status = 0
	}
	if len(m.body) > 0 {
		m.rw.Write(m.body)
		m.body = nil
	}
}

// Flush starts streaming: a streamed answer cannot wait for AuthZRes.
func (m *responseModifier) Flush() {
	m.flushAll()
	m.streaming = true
	http.NewResponseController(m.rw).Flush()
}

// Hijack hands the connection over; AuthZRes is skipped for it.
func (m *responseModifier) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	m.hijacked = true
	m.flushAll()
	return http.NewResponseController(m.rw).Hijack()
}
