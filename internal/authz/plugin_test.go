package authz

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestLocate finds plugins where dockerd's v1 registry does, sockets first.
func TestLocate(t *testing.T) {
	dir := t.TempDir()
	socks := filepath.Join(dir, "run")
	specs := filepath.Join(dir, "etc")
	os.MkdirAll(filepath.Join(socks, "nested"), 0o755)
	os.MkdirAll(specs, 0o755)
	listen := func(path string) {
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	listen(filepath.Join(socks, "flat.sock"))
	listen(filepath.Join(socks, "nested", "nested.sock"))
	listen(filepath.Join(socks, "both.sock"))
	os.WriteFile(filepath.Join(specs, "both.spec"), []byte("tcp://127.0.0.1:1\n"), 0o644)
	os.WriteFile(filepath.Join(specs, "viaspec.spec"), []byte("unix:///x/y.sock\n"), 0o644)
	os.WriteFile(filepath.Join(specs, "viatcp.spec"), []byte("tcp://127.0.0.1:8080"), 0o644)
	os.WriteFile(filepath.Join(specs, "viajson.json"), []byte(`{"Name":"viajson","Addr":"tcp://10.0.0.1:9"}`), 0o644)
	os.WriteFile(filepath.Join(specs, "noproto.spec"), []byte("/x.sock"), 0o644)
	os.WriteFile(filepath.Join(socks, "notasocket.sock"), nil, 0o644)

	tests := []struct {
		name, network, addr string
		err                 string
	}{
		{"flat", "unix", filepath.Join(socks, "flat.sock"), ""},
		{"nested", "unix", filepath.Join(socks, "nested", "nested.sock"), ""},
		{"both", "unix", filepath.Join(socks, "both.sock"), ""},
		{"viaspec", "unix", "/x/y.sock", ""},
		{"viatcp", "tcp", "127.0.0.1:8080", ""},
		{"viajson", "tcp", "10.0.0.1:9", ""},
		{"noproto", "", "", "Unknown protocol"},
		{"notasocket", "", "", ErrNotFound.Error()},
		{"absent", "", "", ErrNotFound.Error()},
	}
	for _, tt := range tests {
		p, err := newPlugin(tt.name, Dirs{Sockets: socks, Specs: []string{specs}})
		if err != nil {
			t.Fatal(err)
		}
		network, addr, err := p.locate()
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("locate(%q) = %q %q %v, want error %q", tt.name, network, addr, err, tt.err)
			}
			continue
		}
		if err != nil || network != tt.network || addr != tt.addr {
			t.Errorf("locate(%q) = %q %q %v, want %q %q", tt.name, network, addr, err, tt.network, tt.addr)
		}
	}
	if _, err := newPlugin("../evil", Dirs{}); err == nil {
		t.Errorf("a plugin name with a path was accepted")
	}
}

// FuzzValidNameMatchesPattern: validName accepts exactly the names the
// pattern ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ does.
func FuzzValidNameMatchesPattern(f *testing.F) {
	pattern := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	for _, s := range []string{"", "a", "ab", "a/b", "_a", "a_", "a.b-c_d", "0", "ä", "a\n", "-a", ".a", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := validName(name), pattern.MatchString(name); got != want {
			t.Errorf("validName(%q) = %v, the pattern says %v", name, got, want)
		}
	})
}
