package skifftest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RegistryBinary is where Debian's docker-registry package (the CNCF
// distribution registry) installs the server; .ci/run installs it.
const RegistryBinary = "/usr/bin/docker-registry"

// RegistryOptions configures a registry started by StartRegistry.
type RegistryOptions struct {
	// CertFile and KeyFile make it serve HTTPS; ClientCAFile then also
	// requires client certificates signed by that CA.
	CertFile, KeyFile, ClientCAFile string
	// ClientCert is presented by the readiness probe when ClientCAFile is set.
	ClientCert []tls.Certificate
	// Htpasswd turns on basic authentication with these users (hashed
	// with htpasswd from apache2-utils).
	Htpasswd map[string]string
	// ExtraAuth is a raw "auth:" section (indented two spaces), e.g. token
	// authentication; it is ignored when Htpasswd is set.
	ExtraAuth string
}

// StartRegistry starts the real registry on a free loopback port, storing
// in a temporary directory, and waits until GET /v2/ answers. It returns
// "127.0.0.1:port"; the registry is killed at cleanup, and its log is
// shown when the test failed.
func StartRegistry(t testing.TB, o RegistryOptions) string {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Fatalf("%s missing (apt-get install docker-registry; .ci/run installs it): %v", RegistryBinary, err)
	}
	dir := t.TempDir()
	addr := FreeAddr(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&cfg, "http:\n  addr: %s\n  secret: testsecret\n", addr)
	if o.CertFile != "" {
		fmt.Fprintf(&cfg, "  tls:\n    certificate: %s\n    key: %s\n", o.CertFile, o.KeyFile)
		if o.ClientCAFile != "" {
			fmt.Fprintf(&cfg, "    clientcas:\n      - %s\n", o.ClientCAFile)
		}
	}
	switch {
	case o.Htpasswd != nil:
		var lines []byte
		for user, pass := range o.Htpasswd {
			out, err := exec.Command("htpasswd", "-Bbn", user, pass).Output()
			if err != nil {
				t.Fatalf("htpasswd (apt-get install apache2-utils): %v", err)
			}
			lines = append(lines, bytes.TrimSpace(out)...)
			lines = append(lines, '\n')
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, lines, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: basic-realm\n    path: %s\n", pw)
	case o.ExtraAuth != "":
		cfg.WriteString("auth:\n" + o.ExtraAuth)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd := exec.Command(RegistryBinary, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("registry log:\n%s", logs.String())
		}
	})
	scheme := "http"
	hc := &http.Client{Timeout: 2 * time.Second}
	if o.CertFile != "" {
		scheme = "https"
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: o.ClientCert}}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(scheme + "://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("registry exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// FreeAddr returns a loopback address with a port free at the time.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
