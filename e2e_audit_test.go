package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/audit"
	"skiffd/internal/metrics/promtext"
	"skiffd/internal/skifftest"
)

// logAddr polls the daemon log for `msg="<msg>" addr=<addr>` whose addr
// matches prefix, and returns the address after the prefix.
func logAddr(t *testing.T, d *skifftest.Daemon, msg, prefix string) string {
	t.Helper()
	re := regexp.MustCompile(`msg="` + msg + `" addr=` + regexp.QuoteMeta(prefix) + `(\S+)`)
	var addr string
	waitFor(t, msg+" in the log", func() bool {
		m := re.FindStringSubmatch(d.Log())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// tlsClient returns a client with one reusable connection to addr.
func tlsClient(p *testPKI, addr string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{p.client}, ServerName: "127.0.0.1"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		MaxConnsPerHost: 1,
	}}
}

func readAudit(t *testing.T, path string) []audit.Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	// The log is read while the daemon writes it: a last line without its
	// newline is still being written, and is read on the next poll.
	lines := bytes.Split(b, []byte("\n"))
	var out []audit.Entry
	for _, line := range lines[:len(lines)-1] {
		var e audit.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// TestE2EAuditLogAndMetrics drives the real CLI over the unix socket and a
// client certificate over TLS, then checks the audit log (peer identity,
// objects, exec command line, no reads), /info's drop counter, and a
// scrape of the metrics endpoint through the strict parser.
func TestE2EAuditLogAndMetrics(t *testing.T) {
	pki := newTestPKI(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{
		"--audit-log", logPath, "--metrics-addr", "127.0.0.1:0",
		"-H", "tcp://127.0.0.1:0", "--tlsverify", "--tlscacert", pki.caFile, "--tlscert", pki.certFile, "--tlskey", pki.keyFile,
	}})
	removeAllAtEnd(t, d)
	importBusybox(t, d)
	tlsAddr := logAddr(t, d, "API listen", "tcp://")
	metricsAddr := logAddr(t, d, "metrics listen", "")

	id := strings.TrimSpace(dockerOK(t, d, "run", "-d", "--name", "aud", "busybox", "sleep", "1000"))
	dockerOK(t, d, "exec", "aud", "echo", "hi")
	dockerOK(t, d, "ps")
	dockerOK(t, d, "rm", "-f", "aud")
	dockerOK(t, d, "tag", "busybox", "other:1")
	dockerOK(t, d, "rmi", "other:1")

	c := tlsClient(pki, tlsAddr)
	resp, err := c.Post("https://127.0.0.1/v1.50/volumes/create", "application/json", strings.NewReader(`{"Name":"tlsvol"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("volume create over TLS: %d", resp.StatusCode)
	}

	var entries []audit.Entry
	find := func(method, pathSuffix string) *audit.Entry {
		for i := range entries {
			if entries[i].Method == method && strings.HasSuffix(entries[i].Path, pathSuffix) {
				return &entries[i]
			}
		}
		return nil
	}
	waitFor(t, "the TLS volume create in the audit log", func() bool {
		entries = readAudit(t, logPath)
		return find("POST", "/volumes/create") != nil
	})

	create := find("POST", "/containers/create")
	if create == nil || create.Object == nil || create.Object.ID != id || create.Object.Name != "/aud" || create.Status != 201 {
		t.Fatalf("container create entry = %+v", create)
	}
	p := create.Peer
	if p.UID == nil || *p.UID != 0 || p.GID == nil || p.PID == nil || *p.PID <= 0 || p.Comm != "docker" {
		t.Errorf("unix peer = %+v, want uid 0 and the docker CLI's pid and name", p)
	}
	if create.Listener != d.Host || create.APIVersion != "1.50" || create.Bytes == 0 || create.DurationMS <= 0 {
		t.Errorf("create entry = %+v", create)
	}
	if e := find("POST", "/exec"); e == nil || strings.Join(e.Cmd, " ") != "echo hi" || e.Object == nil || e.Object.ID != id {
		t.Errorf("exec create entry = %+v", e)
	}
	if e := find("POST", "/containers/"+id+"/start"); e == nil || e.Object == nil || e.Object.Name != "/aud" || e.Status != 204 {
		t.Errorf("start entry = %+v", e)
	}
	var execStart *audit.Entry
	for i := range entries {
		if strings.HasPrefix(entries[i].Path, "/exec/") && strings.HasSuffix(entries[i].Path, "/start") {
			execStart = &entries[i]
		}
	}
	// Recorded when the stream starts (hijack), with the command line.
	if execStart == nil || execStart.Status != 101 || execStart.Object == nil || execStart.Object.Kind != "exec" ||
		execStart.Object.Name != id || strings.Join(execStart.Cmd, " ") != "echo hi" {
		t.Errorf("exec start entry = %+v", execStart)
	}
	if e := find("DELETE", "/containers/"+id); e == nil && find("DELETE", "/containers/aud") == nil {
		t.Errorf("no container rm entry in %+v", entries)
	} else if e := find("DELETE", "/containers/aud"); e != nil && (e.Object == nil || e.Object.ID != id) {
		t.Errorf("rm entry object = %+v, want the container resolved before removal", e.Object)
	}
	if e := find("POST", "/images/busybox/tag"); e == nil || e.Object == nil || !strings.HasPrefix(e.Object.ID, "sha256:") || !strings.HasSuffix(e.Object.Name, "/other:1") {
		t.Errorf("tag entry = %+v", e)
	}
	for _, e := range entries {
		if e.Method == "GET" || e.Method == "HEAD" {
			t.Errorf("a read was audited without --audit-log-reads: %+v", e)
		}
	}
	vol := find("POST", "/volumes/create")
	leaf := pki.client.Leaf
	if vol.Peer.CertSubject != "CN=client" || vol.Peer.CertIssuer != "CN=skiffd test CA" || vol.Peer.CertSerial != leaf.SerialNumber.String() || vol.Peer.UID != nil {
		t.Errorf("TLS peer = %+v", vol.Peer)
	}
	if vol.Object == nil || vol.Object.Name != "tlsvol" || vol.Listener != "tcp://"+tlsAddr {
		t.Errorf("volume entry = %+v", vol)
	}

	out := dockerOK(t, d, "info", "--format", "{{json .SystemStatus}}")
	if !strings.Contains(out, `["Audit Log Dropped","0"]`) {
		t.Errorf("info SystemStatus = %s", out)
	}

	mresp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if ct := mresp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q", ct)
	}
	fams, err := promtext.Parse(string(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	value := func(name string, labels map[string]string) float64 {
		f := fams[name]
		if f == nil {
			f = fams[strings.TrimSuffix(name, "_count")]
		}
		if f == nil {
			t.Errorf("no family %s", name)
			return -1
		}
	next:
		for _, s := range f.Samples {
			if s.Name != name {
				continue
			}
			for k, v := range labels {
				if s.Labels[k] != v {
					continue next
				}
			}
			return s.Value
		}
		t.Errorf("%s%v: no such sample", name, labels)
		return -1
	}
	if v := value("engine_daemon_api_requests_total", map[string]string{"route": "POST /containers/create", "code": "201"}); v != 1 {
		t.Errorf("container create count = %v, want 1", v)
	}
	if v := value("engine_daemon_api_request_duration_seconds_count", map[string]string{"route": "POST /containers/create"}); v != 1 {
		t.Errorf("container create latency count = %v, want 1", v)
	}
	if v := value("skiffd_container_starts_total", nil); v != 1 {
		t.Errorf("starts = %v, want 1", v)
	}
	if v := value("skiffd_container_exits_total", nil); v != 1 {
		t.Errorf("exits = %v, want 1", v)
	}
	if v := value("engine_daemon_container_states_containers", map[string]string{"state": "running"}); v != 0 {
		t.Errorf("running = %v, want 0", v)
	}
	if v := value("skiffd_image_bytes", nil); v <= 0 {
		t.Errorf("image bytes = %v", v)
	}
	if v := value("skiffd_audit_dropped_total", nil); v != 0 {
		t.Errorf("audit drops = %v", v)
	}
	for _, name := range []string{"go_goroutines", "go_memory_total_bytes", "skiffd_shims", "skiffd_layer_bytes",
		"engine_daemon_events_subscribers_total", "skiffd_events_subscribers_dropped_total", "skiffd_container_ooms_total"} {
		if fams[name] == nil {
			t.Errorf("no metric %s", name)
		}
	}
}

// writeServerCert issues a new server certificate from the PKI's CA into
// its cert and key files and returns its serial.
func rotateServerCert(t *testing.T, p *testPKI, ca *x509.Certificate, caKey *ecdsa.PrivateKey) string {
	key := newKey(t)
	cert := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "skiffd-rotated"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey, key)
	writePEM(t, p.certFile, "CERTIFICATE", cert.Raw)
	writeKey(t, p.keyFile, key)
	return cert.SerialNumber.String()
}

// TestE2EReloadOnSIGHUP changes labels, the CORS origin and the TLS
// certificate in daemon.json's world and sends SIGHUP: /info shows the new
// labels, new TLS connections get the new certificate while an
// established one keeps working, the reload event is on the event stream,
// and an invalid file afterwards is refused with the old values kept.
func TestE2EReloadOnSIGHUP(t *testing.T) {
	pki := newTestPKI(t)
	// A CA whose key the test keeps, to issue the rotated certificate.
	ca, caKey := newCA(t, "reload CA")
	writePEM(t, pki.caFile, "CERTIFICATE", ca.Raw)
	pki.caPool = x509.NewCertPool()
	pki.caPool.AddCert(ca)
	pki.client = clientCert(t, "client", ca, caKey)
	first := rotateServerCert(t, pki, ca, caKey)

	cfgFile := filepath.Join(t.TempDir(), "daemon.json")
	writeCfg := func(s string) {
		if err := os.WriteFile(cfgFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(`{"labels": ["stage=one"], "tlsverify": true, "tlscacert": "` + pki.caFile + `", "tlscert": "` + pki.certFile + `", "tlskey": "` + pki.keyFile + `"}`)
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--config-file", cfgFile, "-H", "tcp://127.0.0.1:0"}})
	tlsAddr := logAddr(t, d, "API listen", "tcp://")

	// An established keep-alive connection, and which certificate it saw.
	old := tlsClient(pki, tlsAddr)
	get := func(c *http.Client, path string, header http.Header) (*http.Response, bool) {
		t.Helper()
		reused := false
		req, _ := http.NewRequest("GET", "https://127.0.0.1"+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, reused
	}
	resp, _ := get(old, "/_ping", nil)
	if s := resp.TLS.PeerCertificates[0].SerialNumber.String(); s != first {
		t.Fatalf("first serial %s, want %s", s, first)
	}
	if got := strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{json .Labels}}")); got != `["stage=one"]` {
		t.Fatalf("labels before reload = %s", got)
	}

	since := time.Now().Add(-time.Second).Unix()
	second := rotateServerCert(t, pki, ca, caKey)
	writeCfg(`{"labels": ["stage=two"], "registry-mirrors": ["https://mirror.example"], "api-cors-header": "https://ui.example", "tlsverify": true, "tlscacert": "` + pki.caFile + `", "tlscert": "` + pki.certFile + `", "tlskey": "` + pki.keyFile + `"}`)
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new labels", func() bool {
		return strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{json .Labels}}")) == `["stage=two"]`
	})
	// The registry hook reloads mirrors with the rest.
	if got := strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{json .RegistryConfig.Mirrors}}")); got != `["https://mirror.example/"]` {
		t.Errorf("registry mirrors after reload = %s", got)
	}
	resp, reused := get(old, "/_ping", http.Header{"Origin": {"https://x"}})
	if !reused || resp.StatusCode != 200 {
		t.Errorf("established connection after reload: reused=%v status=%d", reused, resp.StatusCode)
	}
	if s := resp.TLS.PeerCertificates[0].SerialNumber.String(); s != first {
		t.Errorf("established connection changed certificate: %s", s)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://ui.example" {
		t.Errorf("CORS origin after reload = %q", got)
	}
	resp, reused = get(tlsClient(pki, tlsAddr), "/_ping", nil)
	if reused || resp.TLS.PeerCertificates[0].SerialNumber.String() != second {
		t.Errorf("new connection: reused=%v serial %s, want new serial %s", reused, resp.TLS.PeerCertificates[0].SerialNumber, second)
	}
	out := dockerOK(t, d, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "type=daemon",
		"--format", "{{.Type}} {{.Action}} {{index .Actor.Attributes \"labels\"}}")
	if !strings.Contains(out, "daemon reload [stage=two]") {
		t.Errorf("docker events = %q, want the daemon reload event", out)
	}

	// An invalid file is refused whole.
	writeCfg(`{"labels": ["stage=three"], "no-such-key": 1}`)
	d.Signal(syscall.SIGHUP)
	waitFor(t, "the refused reload in the log", func() bool { return strings.Contains(d.Log(), "reload failed, keeping the old configuration") })
	if got := strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{json .Labels}}")); got != `["stage=two"]` {
		t.Errorf("labels after an invalid reload = %s", got)
	}
	// A certificate that does not load is refused too, TLS stays as it was.
	writeCfg(`{"labels": ["stage=four"], "tlsverify": true, "tlscacert": "` + pki.caFile + `", "tlscert": "` + pki.certFile + `", "tlskey": "` + pki.otherKeyFile + `"}`)
	n := strings.Count(d.Log(), "reload failed")
	d.Signal(syscall.SIGHUP)
	waitFor(t, "the second refused reload", func() bool { return strings.Count(d.Log(), "reload failed") > n })
	resp, _ = get(tlsClient(pki, tlsAddr), "/_ping", nil)
	if resp.TLS.PeerCertificates[0].SerialNumber.String() != second {
		t.Errorf("certificate after a refused reload changed")
	}
	if got := strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{json .Labels}}")); got != `["stage=two"]` {
		t.Errorf("labels after a refused TLS reload = %s", got)
	}
}
