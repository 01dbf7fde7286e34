package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// env returns a getenv over a fixed map, so no test sees the real
// environment.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// testHost is a machine with a "docker" group (when docker is true) and no
// default configuration file.
func testHost(t *testing.T, docker bool) host {
	return host{
		groupExists: func(name string) bool { return docker && name == "docker" },
		configFile:  filepath.Join(t.TempDir(), "absent", "daemon.json"),
	}
}

// defaults is the Config with no flags and no file, for HOME=/home/u.
func defaults(h host) Config {
	return Config{
		DataRoot:   "/var/lib/skiffd",
		ExecRoot:   "/var/run/skiffd",
		Pidfile:    "/var/run/skiffd/skiffd.pid",
		Group:      "docker",
		TLSCACert:  "/home/u/.docker/ca.pem",
		TLSCert:    "/home/u/.docker/cert.pem",
		TLSKey:     "/home/u/.docker/key.pem",
		LogLevel:   "info",
		ConfigFile: h.configFile,
		// skiffd keeps containers running across a daemon stop by default.
		Bridge:                 DefaultBridge,
		NFTable:                DefaultNFTable,
		MTU:                    DefaultMTU,
		IPTables:               true,
		IPForward:              true,
		ICC:                    true,
		IPMasq:                 true,
		LiveRestore:            true,
		ShutdownTimeout:        15,
		MaxConcurrentDownloads: 3,
		MaxConcurrentUploads:   5,

		AuditLogMaxSize:  100 << 20,
		AuditLogMaxFiles: 5,

		MaxStreams: 1024,
		LogDriver:  "json-file",
		LogFormat:  "text",
	}
}

func TestParseFlags(t *testing.T) {
	h := testHost(t, true)
	tests := []struct {
		name   string
		args   []string
		modify func(c *Config)
	}{
		{"defaults", nil, func(c *Config) {}},
		{"hosts repeat across spellings", []string{"-H", "unix:///a.sock", "--host", "tcp://0.0.0.0:2375", "-host=fd://"}, func(c *Config) {
			c.Hosts = []string{"unix:///a.sock", "tcp://0.0.0.0:2375", "fd://"}
		}},
		{"short debug", []string{"-D"}, func(c *Config) { c.Debug = true }},
		{"registry flags", []string{"--insecure-registry", "10.0.0.0/8", "--insecure-registry=reg:5000", "--registry-mirror", "https://m.example",
			"--max-concurrent-downloads", "7", "--max-concurrent-uploads=2"}, func(c *Config) {
			c.InsecureRegistries = []string{"10.0.0.0/8", "reg:5000"}
			c.RegistryMirrors = []string{"https://m.example"}
			c.MaxConcurrentDownloads, c.MaxConcurrentUploads = 7, 2
		}},

		{"authorization plugins in order", []string{"--authorization-plugin", "opa", "--authorization-plugin=audit"}, func(c *Config) {
			c.AuthorizationPlugins = []string{"opa", "audit"}
		}},
		{"stream cap off", []string{"--max-concurrent-streams", "0"}, func(c *Config) { c.MaxStreams = 0 }},
		{"long debug", []string{"--debug"}, func(c *Config) { c.Debug = true }},
		{"debug false", []string{"--debug=false"}, func(c *Config) {}},
		{"tls implies verify", []string{"--tls"}, func(c *Config) { c.TLS, c.TLSVerify, c.TLSExplicit = true, true, true }},
		{"tlsverify implies tls", []string{"--tlsverify"}, func(c *Config) { c.TLS, c.TLSVerify, c.TLSExplicit = true, true, true }},
		{"tlsverify false still means tls", []string{"--tlsverify=false"}, func(c *Config) { c.TLS, c.TLSExplicit = true, true }},
		{"tls false is explicit", []string{"--tls=false"}, func(c *Config) { c.TLSExplicit = true }},
		{"tlsverify overrides tls false", []string{"--tls=false", "--tlsverify"}, func(c *Config) { c.TLS, c.TLSVerify, c.TLSExplicit = true, true, true }},
		{"tls files", []string{"--tlscacert", "/c/ca", "--tlscert=/c/cert", "-tlskey", "/c/key"}, func(c *Config) {
			c.TLSCACert, c.TLSCert, c.TLSKey = "/c/ca", "/c/cert", "/c/key"
		}},
		{"roots and pidfile", []string{"--data-root", "/d", "--exec-root", "/e", "-p", "/run/x.pid"}, func(c *Config) {
			c.DataRoot, c.ExecRoot, c.Pidfile = "/d", "/e", "/run/x.pid"
		}},
		{"pidfile follows exec-root", []string{"--exec-root", "/e"}, func(c *Config) { c.ExecRoot, c.Pidfile = "/e", "/e/skiffd.pid" }},
		{"pidfile long", []string{"--pidfile=/p"}, func(c *Config) { c.Pidfile = "/p" }},
		{"group", []string{"-G", "adm"}, func(c *Config) { c.Group, c.GroupExplicit = "adm", true }},
		{"group long", []string{"--group=adm"}, func(c *Config) { c.Group, c.GroupExplicit = "adm", true }},
		{"group empty means root only", []string{"-G", ""}, func(c *Config) { c.Group, c.GroupExplicit = "", true }},
		{"log level", []string{"-l", "WARN"}, func(c *Config) { c.LogLevel = "warn" }},
		{"log level long", []string{"--log-level=debug"}, func(c *Config) { c.LogLevel = "debug" }},
		{"live restore off", []string{"--live-restore=false"}, func(c *Config) { c.LiveRestore = false }},
		{"live restore bare", []string{"--live-restore"}, func(c *Config) {}},
		{"shutdown timeout", []string{"--shutdown-timeout", "40"}, func(c *Config) { c.ShutdownTimeout = 40 }},
		{"shutdown timeout negative", []string{"--shutdown-timeout=-1"}, func(c *Config) { c.ShutdownTimeout = -1 }},
		{"cors and experimental", []string{"--api-cors-header=*", "--experimental"}, func(c *Config) {
			c.CORSHeaders, c.Experimental = "*", true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.args, env(map[string]string{"HOME": "/home/u"}), io.Discard, h)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.args, err)
			}
			want := defaults(h)
			tt.modify(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse(%q) =\n%+v\nwant\n%+v", tt.args, *got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	h := testHost(t, true)
	tests := []struct {
		name string
		args []string
		want string // the whole message, or a prefix ending in "..."
	}{
		{"positional", []string{"run"}, "\"skiffd\" accepts no argument(s).\nSee 'skiffd --help'.\n\nUsage:  skiffd [OPTIONS]\n\nA self-sufficient runtime for containers."},
		{"positional after flags", []string{"-D", "extra", "-H", "x"}, "\"skiffd\" accepts no argument(s)..."},
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined: -bogus\nSee 'skiffd --help'."},
		{"missing value", []string{"-H"}, "flag needs an argument: -H\nSee 'skiffd --help'."},
		{"bad bool", []string{"--tls=maybe"}, "invalid boolean value \"maybe\" for -tls: parse error\nSee 'skiffd --help'."},
		{"bad log level", []string{"--log-level", "loud"}, "invalid logging level: loud"},
		{"bad shutdown timeout", []string{"--shutdown-timeout", "soon"}, "invalid value \"soon\" for flag -shutdown-timeout: parse error\nSee 'skiffd --help'."},
		{"empty data root", []string{"--data-root="}, "data-root cannot be empty"},
		{"mirror without scheme", []string{"--registry-mirror", "mirror.local"}, `invalid mirror: unsupported scheme "" in "mirror.local"`},
		{"mirror with credentials", []string{"--registry-mirror", "https://u:p@m.local"}, `invalid mirror: username/password not allowed in URI "https://u:p@m.local"`},
		{"mirror with query", []string{"--registry-mirror", "https://m.local/?x=1"}, `invalid mirror: query or fragment at end of the URI "https://m.local/?x=1"`},
		{"empty exec root", []string{"--exec-root", ""}, "exec-root cannot be empty"},
		{"explicit missing file", []string{"--config-file", "/nonexistent/daemon.json"},
			"unable to configure the Docker daemon with file /nonexistent/daemon.json: open /nonexistent/daemon.json: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.args, env(nil), io.Discard, h)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %q", tt.args, got, tt.want)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("Parse(%q) error = %q, want prefix %q", tt.args, err, prefix)
				}
			} else if err.Error() != tt.want {
				t.Errorf("Parse(%q) error = %q, want %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		var out bytes.Buffer
		_, err := parse([]string{"-D", arg}, env(nil), &out, testHost(t, true))
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("Parse(%q) error = %v, want flag.ErrHelp", arg, err)
		}
		for _, want := range []string{"Usage:  skiffd [OPTIONS]", "  -H, --host list", "      --tlsverify", "  -D, --debug", "--config-file string"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("Parse(%q) usage lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}

func TestParseVersionSkipsFile(t *testing.T) {
	// -v answers without reading (or needing) the configuration file.
	for _, args := range [][]string{{"-v"}, {"--version", "--config-file", "/nonexistent/daemon.json"}} {
		cfg, err := parse(args, env(nil), io.Discard, testHost(t, true))
		if err != nil {
			t.Fatalf("Parse(%q) error: %v", args, err)
		}
		if !cfg.ShowVersion {
			t.Errorf("Parse(%q).ShowVersion = false, want true", args)
		}
	}
}

func TestParseDefaultGroup(t *testing.T) {
	for _, exists := range []bool{true, false} {
		cfg, err := parse(nil, env(nil), io.Discard, testHost(t, exists))
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if exists {
			want = "docker"
		}
		if cfg.Group != want || cfg.GroupExplicit {
			t.Errorf("docker group exists=%v: Group = %q (explicit %v), want %q (not explicit)", exists, cfg.Group, cfg.GroupExplicit, want)
		}
	}
}

// TestParseBridge: an empty --bridge is the default bridge, as dockerd's;
// none is kept for the engine (no default network).
func TestParseBridge(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, DefaultBridge},
		{[]string{"--bridge", ""}, DefaultBridge},
		{[]string{"-b", "none"}, "none"},
		{[]string{"--bridge=br7"}, "br7"},
	} {
		cfg, err := parse(tc.args, env(nil), io.Discard, testHost(t, false))
		if err != nil || cfg.Bridge != tc.want {
			t.Errorf("Parse(%q).Bridge = %q, %v; want %q", tc.args, cfg.Bridge, err, tc.want)
		}
	}
}

func TestParseRelativePathsMadeAbsolute(t *testing.T) {
	cfg, err := parse([]string{"--data-root", "data", "--exec-root", "./exec"}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "data"); cfg.DataRoot != want {
		t.Errorf("DataRoot = %q, want %q", cfg.DataRoot, want)
	}
	if want := filepath.Join(wd, "exec", "skiffd.pid"); cfg.Pidfile != want {
		t.Errorf("Pidfile = %q, want %q", cfg.Pidfile, want)
	}
}

func TestCertDirFromEnvironment(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		dir  string
	}{
		{"DOCKER_CERT_PATH wins", map[string]string{"DOCKER_CERT_PATH": "/certs", "DOCKER_CONFIG": "/cfg", "HOME": "/home/u"}, "/certs"},
		{"DOCKER_CONFIG next", map[string]string{"DOCKER_CONFIG": "/cfg", "HOME": "/home/u"}, "/cfg"},
		{"HOME last", map[string]string{"HOME": "/home/u"}, "/home/u/.docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(nil, env(tt.env), io.Discard, testHost(t, false))
			if err != nil {
				t.Fatal(err)
			}
			got := []string{cfg.TLSCACert, cfg.TLSCert, cfg.TLSKey}
			want := []string{tt.dir + "/ca.pem", tt.dir + "/cert.pem", tt.dir + "/key.pem"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("env %v: cert files = %q, want %q", tt.env, got, want)
			}
		})
	}
	// Flags still beat the environment.
	cfg, err := parse([]string{"--tlscert", "/mine.pem"}, env(map[string]string{"DOCKER_CERT_PATH": "/certs"}), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCert != "/mine.pem" || cfg.TLSKey != "/certs/key.pem" {
		t.Errorf("TLSCert, TLSKey = %q, %q; want /mine.pem, /certs/key.pem", cfg.TLSCert, cfg.TLSKey)
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		level string
		debug bool
		want  slog.Level
	}{
		{"info", false, slog.LevelInfo},
		{"debug", false, slog.LevelDebug},
		{"warn", false, slog.LevelWarn},
		{"error", false, slog.LevelError},
		{"fatal", false, slog.LevelError + 4},
		{"trace", false, slog.LevelDebug - 4},
		{"error", true, slog.LevelDebug},
		{"trace", true, slog.LevelDebug - 4},
		{"", false, slog.LevelInfo},
	}
	for _, tt := range tests {
		c := &Config{LogLevel: tt.level, Debug: tt.debug}
		if got := c.SlogLevel(); got != tt.want {
			t.Errorf("Config{LogLevel: %q, Debug: %v}.SlogLevel() = %v, want %v", tt.level, tt.debug, got, tt.want)
		}
	}
}

// TestOptionTable keeps the flag table and the file keys in step: every key
// a flag names must be decodable from the file, and every file key must
// have a flag (otherwise conflicts could not be detected), but for older
// keys a newer one replaced, whose flag wins over them.
func TestOptionTable(t *testing.T) {
	fields := (&fileConfig{}).fields()
	older := map[string]bool{"host-gateway-ip": true}
	seen := map[string]bool{}
	prev := ""
	for _, o := range options {
		if o.long <= prev {
			t.Errorf("options not sorted by long name: %q after %q", o.long, prev)
		}
		prev = o.long
		if o.key == "" {
			continue
		}
		if _, ok := fields[o.key]; !ok {
			t.Errorf("flag --%s names key %q, which the file cannot hold", o.long, o.key)
		}
		seen[o.key] = true
	}
	for key := range fields {
		if !seen[key] && !older[key] {
			t.Errorf("file key %q has no flag", key)
		}
	}
}
