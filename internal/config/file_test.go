package config

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// writeFile writes a daemon.json into a temp dir and returns its path.
func writeFile(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFileMerge(t *testing.T) {
	path := writeFile(t, []byte(`{
		"hosts": ["unix:///run/s.sock", "tcp://127.0.0.1:2376"],
		"data-root": "/srv/skiffd",
		"exec-root": "/run/skiffd",
		"pidfile": "/run/skiffd.pid",
		"group": "adm",
		"tlsverify": true,
		"tlscacert": "/pki/ca.pem",
		"tlscert": "/pki/cert.pem",
		"tlskey": "/pki/key.pem",
		"api-cors-header": "https://example.com",
		"experimental": true,
		"debug": true,
		"log-level": "Error",
		"live-restore": false,
		"shutdown-timeout": 30,
		"insecure-registries": ["reg.local:5000"],
		"registry-mirrors": ["https://mirror.local"],
		"max-concurrent-downloads": 4,
		"max-concurrent-uploads": 6,
		"authorization-plugins": ["opa", "audit"],
		"max-concurrent-streams": 7,
		"bridge": "br9", "bip": "10.9.0.1/24", "fixed-cidr": "10.9.0.128/25", "mtu": 1400,
		"ipv6": true, "fixed-cidr-v6": "fd00:9::/64",
		"iptables": false, "ip-forward": false, "nft-table": "t9", "icc": false,
		"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
		"storage-driver": "overlay2", "default-shm-size": "128M",
		"exec-opts": ["native.cgroupdriver=cgroupfs"], "features": {"buildkit": true}
	}`))
	// Flags the file does not set still apply alongside it.
	cfg, err := parse([]string{"--config-file", path}, env(nil), io.Discard, testHost(t, true))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Hosts:                  []string{"unix:///run/s.sock", "tcp://127.0.0.1:2376"},
		DataRoot:               "/srv/skiffd",
		ExecRoot:               "/run/skiffd",
		Pidfile:                "/run/skiffd.pid",
		Group:                  "adm",
		GroupExplicit:          true,
		TLS:                    true,
		TLSExplicit:            true,
		TLSVerify:              true,
		TLSCACert:              "/pki/ca.pem",
		TLSCert:                "/pki/cert.pem",
		TLSKey:                 "/pki/key.pem",
		CORSHeaders:            "https://example.com",
		Experimental:           true,
		Debug:                  true,
		LogLevel:               "error",
		ConfigFile:             path,
		LiveRestore:            false,
		ShutdownTimeout:        30,
		Bridge:                 "br9",
		BIP:                    "10.9.0.1/24",
		FixedCIDR:              "10.9.0.128/25",
		IPv6:                   true,
		FixedCIDRv6:            "fd00:9::/64",
		MTU:                    1400,
		NFTable:                "t9",
		IPMasq:                 true,
		InsecureRegistries:     []string{"reg.local:5000"},
		RegistryMirrors:        []string{"https://mirror.local"},
		MaxConcurrentDownloads: 4,
		MaxConcurrentUploads:   6,

		AuditLogMaxSize:  100 << 20,
		AuditLogMaxFiles: 5,

		AuthorizationPlugins: []string{"opa", "audit"},
		MaxStreams:           7,

		LogDriver:      "json-file",
		LogFormat:      "text",
		LogOpts:        map[string]string{"max-size": "10m", "max-file": "3"},
		DefaultShmSize: 128 << 20,
		Features:       map[string]bool{"buildkit": true},
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("Parse with file =\n%+v\nwant\n%+v", *cfg, want)
	}
}

func TestFileAndFlagsCombine(t *testing.T) {
	path := writeFile(t, []byte(`{"tls": false, "data-root": "/srv"}`))
	cfg, err := parse([]string{"--config-file=" + path, "-H", "tcp://0.0.0.0:2375", "-D"}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Hosts, []string{"tcp://0.0.0.0:2375"}) || !cfg.Debug || cfg.DataRoot != "/srv" {
		t.Errorf("Hosts, Debug, DataRoot = %q, %v, %q; want [tcp://0.0.0.0:2375], true, /srv", cfg.Hosts, cfg.Debug, cfg.DataRoot)
	}
	if cfg.TLS || cfg.TLSVerify || !cfg.TLSExplicit {
		t.Errorf(`file "tls": false gave TLS=%v TLSVerify=%v TLSExplicit=%v, want false false true`, cfg.TLS, cfg.TLSVerify, cfg.TLSExplicit)
	}
}

func TestFileTLSVerifyFalse(t *testing.T) {
	path := writeFile(t, []byte(`{"tlsverify": false}`))
	cfg, err := parse([]string{"--config-file", path}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS || cfg.TLSVerify || !cfg.TLSExplicit {
		t.Errorf(`file "tlsverify": false gave TLS=%v TLSVerify=%v TLSExplicit=%v, want true false true`, cfg.TLS, cfg.TLSVerify, cfg.TLSExplicit)
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		args    []string
		want    string // after "unable to configure the Docker daemon with file <path>: "
	}{
		{"hosts conflict", `{"hosts": ["unix:///x.sock"]}`, []string{"-H", "tcp://a:1", "-H", "tcp://b:2"},
			"the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [tcp://a:1 tcp://b:2], from file: [unix:///x.sock])"},
		{"several conflicts, by flag name", `{"tls": true, "debug": false, "hosts": []}`, []string{"--tls=false", "-H", "fd://", "-D"},
			"the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false), hosts: (from flag: [fd://], from file: []), tls: (from flag: false, from file: true)"},
		{"string conflict via short flag", `{"pidfile": "/b"}`, []string{"-p", "/a"},
			"the following directives are specified both as a flag and in the configuration file: pidfile: (from flag: /a, from file: /b)"},
		{"live-restore conflict", `{"live-restore": true}`, []string{"--live-restore=false"},
			"the following directives are specified both as a flag and in the configuration file: live-restore: (from flag: false, from file: true)"},
		{"wrong shutdown-timeout type", `{"shutdown-timeout": "15s"}`, nil, "shutdown-timeout: json: cannot unmarshal string into Go value of type int"},
		{"unknown keys", `{"storage-driver": "overlay2", "userns-remap": "default", "bogus-opt": true, "debug": true}`, nil,
			"the following directives don't match any configuration option: bogus-opt, userns-remap"},
		{"unknown before conflicts", `{"bogus": 1, "debug": true}`, []string{"-D"},
			"the following directives don't match any configuration option: bogus"},
		{"malformed", `{"debug": true,}`, nil, "invalid character '}' looking for beginning of object key string"},
		{"not an object", `["debug"]`, nil, "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
		{"wrong type", `{"debug": "yes"}`, nil, "debug: json: cannot unmarshal string into Go value of type bool"},
		{"wrong list type", `{"hosts": "unix:///x"}`, nil, "hosts: json: cannot unmarshal string into Go value of type []string"},
		{"bad log level", `{"log-level": "chatty"}`, nil, ""}, // checked below: not a file error
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, []byte(tt.content))
			args := append([]string{"--config-file", path}, tt.args...)
			cfg, err := parse(args, env(nil), io.Discard, testHost(t, false))
			if err == nil {
				t.Fatalf("Parse(%q) with %s = %+v, want error", args, tt.content, cfg)
			}
			want := "unable to configure the Docker daemon with file " + path + ": " + tt.want
			if tt.want == "" {
				want = "invalid logging level: chatty"
			}
			if err.Error() != want {
				t.Errorf("Parse(%q) with %s error =\n%q\nwant\n%q", args, tt.content, err, want)
			}
		})
	}
}

func TestFileEncodings(t *testing.T) {
	const doc = `{"data-root": "/srv/é"}`
	utf16le := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(doc)) {
		utf16le = append(utf16le, byte(u), byte(u>>8))
	}
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"plain", []byte(doc), "/srv/é"},
		{"utf-8 bom", append([]byte{0xEF, 0xBB, 0xBF}, doc...), "/srv/é"},
		{"utf-16le bom", utf16le, "/srv/é"},
		{"empty", nil, DefaultDataRoot},
		{"blank", []byte(" \n\t"), DefaultDataRoot},
		{"empty object", []byte("{}"), DefaultDataRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			cfg, err := parse([]string{"--config-file", path}, env(nil), io.Discard, testHost(t, false))
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.content, err)
			}
			if cfg.DataRoot != tt.want {
				t.Errorf("Parse(%q).DataRoot = %q, want %q", tt.content, cfg.DataRoot, tt.want)
			}
		})
	}
	path := writeFile(t, []byte{'{', 0xff, '}'})
	if _, err := parse([]string{"--config-file", path}, env(nil), io.Discard, testHost(t, false)); err == nil || !strings.Contains(err.Error(), "invalid UTF-8") {
		t.Errorf("Parse of invalid UTF-8 error = %v, want one mentioning invalid UTF-8", err)
	}
}

func TestDefaultFileReadWhenPresent(t *testing.T) {
	h := testHost(t, false)
	h.configFile = writeFile(t, []byte(`{"debug": true}`))
	cfg, err := parse(nil, env(nil), io.Discard, h)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Debug || cfg.ConfigFile != h.configFile {
		t.Errorf("default file: Debug = %v, ConfigFile = %q; want true, %q", cfg.Debug, cfg.ConfigFile, h.configFile)
	}
	// An unreadable default file (here: a directory) is an error, unlike a
	// missing one.
	h.configFile = t.TempDir()
	if _, err := parse(nil, env(nil), io.Discard, h); err == nil {
		t.Errorf("Parse with a directory as the default file succeeded, want error")
	}
}

func FuzzReadFile(f *testing.F) {
	f.Add([]byte(`{"hosts": ["unix:///x"], "debug": true}`))
	f.Add([]byte(`{"tlsverify": false, "tls": true}`))
	f.Add([]byte("\xff\xfe{\x00}\x00"))
	f.Add([]byte(`{"log-level": 1}`))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "daemon.json")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := parse([]string{"--config-file", path, "-D"}, env(nil), io.Discard, testHost(t, false))
		if err != nil {
			return
		}
		if !cfg.Debug || cfg.DataRoot == "" || cfg.Pidfile == "" {
			t.Errorf("Parse accepted %q but gave Debug=%v DataRoot=%q Pidfile=%q", content, cfg.Debug, cfg.DataRoot, cfg.Pidfile)
		}
		if cfg.TLSVerify && !cfg.TLS {
			t.Errorf("Parse accepted %q with TLSVerify but not TLS", content)
		}
	})
}

// TestGuardKeys: issue 12's settings come from daemon.json or from flags,
// never both, with sizes in dockerd's k/m/g units.
func TestGuardKeys(t *testing.T) {
	path := writeFile(t, []byte(`{"labels": ["a=b", "c=d"], "metrics-addr": "127.0.0.1:9323",
		"audit-log": "/var/log/a.log", "audit-log-reads": true, "audit-log-max-size": "10m", "audit-log-max-files": 2}`))
	cfg, err := parse([]string{"--config-file", path}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Labels, ",") != "a=b,c=d" || cfg.MetricsAddr != "127.0.0.1:9323" || cfg.AuditLog != "/var/log/a.log" ||
		!cfg.AuditLogReads || cfg.AuditLogMaxSize != 10<<20 || cfg.AuditLogMaxFiles != 2 {
		t.Errorf("Parse with file = %+v", *cfg)
	}
	cfg, err = parse([]string{"--label", "x=1", "--audit-log", "/a", "--audit-log-max-size", "512k", "--metrics-addr", ":9323"}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Labels, ",") != "x=1" || cfg.AuditLog != "/a" || cfg.AuditLogMaxSize != 512<<10 || cfg.MetricsAddr != ":9323" || cfg.AuditLogMaxFiles != 5 {
		t.Errorf("Parse with flags = %+v", *cfg)
	}
	for _, args := range [][]string{
		{"--config-file", path, "--audit-log", "/b"},
		{"--label", "novalue"},
		{"--audit-log-max-size", "ten"},
	} {
		if _, err := parse(args, env(nil), io.Discard, testHost(t, false)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", args)
		}
	}
}

// TestDefaultAddressPools reads dockerd's daemon.json objects and the
// repeatable flag, the flag winning.
func TestDefaultAddressPools(t *testing.T) {
	path := writeFile(t, []byte(`{"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}, {"base": "10.20.0.0/16", "size": 26}]}`))
	cfg, err := parse([]string{"--config-file=" + path}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"base=10.10.0.0/16,size=24", "base=10.20.0.0/16,size=26"}; !reflect.DeepEqual(cfg.DefaultAddressPools, want) {
		t.Errorf("file: DefaultAddressPools = %q, want %q", cfg.DefaultAddressPools, want)
	}
	cfg, err = parse([]string{"--default-address-pools", "base=10.30.0.0/16,size=24", "--default-address-pools", "base=10.40.0.0/16,size=24"}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"base=10.30.0.0/16,size=24", "base=10.40.0.0/16,size=24"}; !reflect.DeepEqual(cfg.DefaultAddressPools, want) {
		t.Errorf("flags: DefaultAddressPools = %q, want %q", cfg.DefaultAddressPools, want)
	}
}

// TestHostGatewayIPs reads dockerd's list, its older single address and
// the repeatable flag (the flag winning), and refuses what dockerd
// refuses: a value that is no IP, two of one family, the flag and the
// file's key at once.
func TestHostGatewayIPs(t *testing.T) {
	ips := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, c := range []struct {
		name string
		file string
		args []string
		want []netip.Addr
		err  string
	}{
		{name: "none", want: nil},
		{name: "list", file: `{"host-gateway-ips": ["192.0.2.1", "2001:db8::1"]}`, want: ips("192.0.2.1", "2001:db8::1")},
		{name: "older single", file: `{"host-gateway-ip": "192.0.2.7"}`, want: ips("192.0.2.7")},
		{name: "list over single", file: `{"host-gateway-ip": "192.0.2.7", "host-gateway-ips": ["192.0.2.8"]}`, want: ips("192.0.2.8")},
		{name: "flags", args: []string{"--host-gateway-ip", "192.0.2.2", "--host-gateway-ip=2001:db8::2"}, want: ips("192.0.2.2", "2001:db8::2")},
		{name: "mapped", args: []string{"--host-gateway-ip", "::ffff:192.0.2.3"}, want: ips("192.0.2.3")},
		{name: "flag over older single", file: `{"host-gateway-ip": "192.0.2.7"}`, args: []string{"--host-gateway-ip", "192.0.2.9"}, want: ips("192.0.2.9")},
		{name: "not an IP", args: []string{"--host-gateway-ip", "gw.example"}, err: `invalid argument "gw.example" for "--host-gateway-ip" flag`},
		{name: "two IPv4", args: []string{"--host-gateway-ip", "192.0.2.1", "--host-gateway-ip", "192.0.2.2"}, err: "only one IPv4 host gateway IP address can be specified"},
		{name: "two IPv6", file: `{"host-gateway-ips": ["2001:db8::1", "2001:db8::2"]}`, err: "only one IPv6 host gateway IP address can be specified"},
		{name: "flag and file", file: `{"host-gateway-ips": ["192.0.2.1"]}`, args: []string{"--host-gateway-ip", "192.0.2.2"}, err: "host-gateway-ips"},
	} {
		args := c.args
		if c.file != "" {
			args = append([]string{"--config-file=" + writeFile(t, []byte(c.file))}, args...)
		}
		cfg, err := parse(args, env(nil), io.Discard, testHost(t, false))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want one with %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(cfg.HostGatewayIPs, c.want) {
			t.Errorf("%s: HostGatewayIPs = %v, want %v", c.name, cfg.HostGatewayIPs, c.want)
		}
	}
}

// TestContainerDefaults reads the daemon-wide container defaults and
// switches of dockerd's daemon.json and flags, and refuses a storage or
// cgroup driver skiffd does not have, naming it.
func TestContainerDefaults(t *testing.T) {
	cfg, err := parse([]string{"--log-driver", "none", "--log-opt", "max-size=1m", "--log-opt=tag={{.Name}}", "--default-shm-size", "8M", "-s", "overlay2",
		"--exec-opt", "native.cgroupdriver=cgroupfs", "--feature", "buildkit", "--feature", "containerd-snapshotter=false"}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogDriver != "none" || !reflect.DeepEqual(cfg.LogOpts, map[string]string{"max-size": "1m", "tag": "{{.Name}}"}) || cfg.DefaultShmSize != 8<<20 ||
		!reflect.DeepEqual(cfg.Features, map[string]bool{"buildkit": true, "containerd-snapshotter": false}) {
		t.Errorf("flags: %q %v %d %v", cfg.LogDriver, cfg.LogOpts, cfg.DefaultShmSize, cfg.Features)
	}
	path := writeFile(t, []byte(`{"dns": ["10.0.0.53"], "dns-search": ["corp.example"], "dns-opts": ["ndots:2"], "no-new-privileges": true,
		"init": true, "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}, "nproc": {"Hard": 99, "Soft": 99}},
		"default-ipc-mode": "shareable", "default-cgroupns-mode": "private", "userland-proxy": false,
		"log-format": "json", "default-runtime": "runc", "raw-logs": true, "selinux-enabled": false, "cgroup-parent": "/batch",
		"ip6tables": true}`))
	cfg, err = parse([]string{"--config-file", path}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.DNS, []string{"10.0.0.53"}) || !reflect.DeepEqual(cfg.DNSSearch, []string{"corp.example"}) || !reflect.DeepEqual(cfg.DNSOptions, []string{"ndots:2"}) ||
		!cfg.NoNewPrivileges || !cfg.Init || cfg.DefaultIpcMode != "shareable" || cfg.DefaultCgroupnsMode != "private" ||
		cfg.LogFormat != "json" || cfg.CgroupParent != "/batch" ||
		!reflect.DeepEqual(cfg.DefaultUlimits, []Ulimit{{"nofile", 2048, 1024}, {"nproc", 99, 99}}) {
		t.Errorf("file: %+v", cfg)
	}
	cfg, err = parse([]string{"--dns", "10.0.0.54", "--default-ulimit", "nofile=100:200", "--default-ulimit=core=0", "--init", "--no-new-privileges"}, env(nil), io.Discard, testHost(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.DNS, []string{"10.0.0.54"}) || !reflect.DeepEqual(cfg.DefaultUlimits, []Ulimit{{"nofile", 200, 100}, {"core", 0, 0}}) || !cfg.Init || !cfg.NoNewPrivileges {
		t.Errorf("flags: %+v", cfg)
	}
	for _, c := range []struct {
		args []string
		file string
		err  string
	}{
		{args: []string{"--dns", "resolver.local"}, err: "resolver.local is not an ip address"},
		{args: []string{"--log-format", "xml"}, err: "unknown log format: xml"},
		{file: `{"default-runtime": "nvidia"}`, err: `default runtime "nvidia" is not supported`},
		{file: `{"selinux-enabled": true}`, err: "selinux-enabled is not supported"},
		{args: []string{"--ip6tables=false"}, err: "ip6tables=false is not supported"},
		{args: []string{"--default-ulimit", "nofile=200:100"}, err: "ulimit soft limit must be less than or equal to hard limit"},
		{args: []string{"--default-ulimit", "nofile"}, err: "invalid ulimit argument: nofile"},
		{args: []string{"--default-ipc-mode", "host"}, err: "invalid default IPC mode: host"},
		{file: `{"default-cgroupns-mode": "shared"}`, err: "default cgroup namespace mode (shared) is invalid"},
		{args: []string{"--storage-driver", "btrfs"}, err: `storage driver "btrfs" is not supported`},
		{file: `{"storage-driver": "devicemapper"}`, err: `storage driver "devicemapper" is not supported`},
		{file: `{"exec-opts": ["native.cgroupdriver=systemd"]}`, err: "native.cgroupdriver=systemd is not supported"},
		{args: []string{"--exec-opt", "native.cgroupdriver=bogus"}, err: "native.cgroupdriver option bogus not supported"},
		{args: []string{"--log-opt", "max-size"}, err: "invalid key value pair format"},
		{args: []string{"--default-shm-size", "lots"}, err: `invalid default-shm-size "lots"`},
		{file: `{"log-opts": {"max-size": "1m"}}`, args: []string{"--log-opt", "max-size=2m"}, err: "log-opts"},
	} {
		args := c.args
		if c.file != "" {
			args = append([]string{"--config-file=" + writeFile(t, []byte(c.file))}, args...)
		}
		if _, err := parse(args, env(nil), io.Discard, testHost(t, false)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q %s: err %v, want %q", c.args, c.file, err, c.err)
		}
	}
}
