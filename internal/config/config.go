// Package config turns skiffd's command line, its daemon.json and its
// environment into one Config, with dockerd's flag names, key names, defaults
// and error wording, so that scripts and unit files written for dockerd work
// unchanged:
//
//	cfg, err := config.Parse(os.Args[1:], os.Getenv, os.Stdout)
//	if errors.Is(err, flag.ErrHelp) {
//		return nil // usage was printed
//	}
//
// A setting comes from exactly one place: a flag, else the configuration
// file, else its default. Giving one both as a flag and in the file is an
// error, as in dockerd, rather than a silent precedence rule.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"skiffd/internal/units"
	"slices"
	"strconv"
	"strings"
)

// Defaults. The socket, roots and file live under skiffd's own names so that
// skiffd and dockerd can be installed side by side.
const (
	DefaultUnixSocket  = "/var/run/skiffd.sock"
	DefaultHost        = "unix://" + DefaultUnixSocket
	DefaultDataRoot    = "/var/lib/skiffd"
	DefaultExecRoot    = "/var/run/skiffd"
	DefaultConfigFile  = "/etc/skiffd/daemon.json"
	DefaultSocketGroup = "docker"
	DefaultLogLevel    = "info"
	// DefaultShutdownTimeout is dockerd's --shutdown-timeout default, in
	// seconds.
	DefaultShutdownTimeout = 15
	// DefaultBridge, DefaultNFTable and DefaultMTU are the host bridge of
	// the default network, skiffd's nf_tables table and the MTU.
	DefaultBridge  = "skiff0"
	DefaultNFTable = "skiffd"
	DefaultMTU     = 1500
	// DefaultMaxConcurrentDownloads and DefaultMaxConcurrentUploads are
	// dockerd's defaults for how many layers move at once.
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
	pidfileName                   = "skiffd.pid"

	// DefaultMaxStreams caps concurrent hijacked streams.
	DefaultMaxStreams = 1024

	// The certificate file names dockerd looks for in its certificate
	// directory.
	defaultCAFile   = "ca.pem"
	defaultCertFile = "cert.pem"
	defaultKeyFile  = "key.pem"
)

// Config is the daemon's start-up configuration after flags, file and
// environment have been merged and defaults applied.
type Config struct {
	// Hosts are the -H/--host values as given, unparsed; empty means the
	// default (DefaultHost, or tcp://localhost:2376 with TLS, as dockerd).
	Hosts    []string
	DataRoot string // --data-root
	ExecRoot string // --exec-root
	Pidfile  string // -p/--pidfile; defaults to <ExecRoot>/skiffd.pid

	// Group owns the unix sockets (-G/--group). It defaults to "docker" only
	// when that group exists, else "" (root only). GroupExplicit records
	// that the group was asked for, so a missing one is an error rather
	// than a warning.
	Group         string
	GroupExplicit bool

	// TLS is --tls, implied by giving --tlsverify at all (true or false),
	// as in dockerd. TLSExplicit records that either was given, on the
	// command line or in the file: dockerd takes that as the operator's
	// informed choice when listening on TCP without client verification.
	TLS         bool
	TLSExplicit bool
	// TLSVerify requires clients to present a certificate signed by
	// TLSCACert. Like dockerd, --tls alone turns it on; only
	// --tlsverify=false turns it off.
	TLSVerify bool
	TLSCACert string // --tlscacert, default <certdir>/ca.pem
	TLSCert   string // --tlscert, default <certdir>/cert.pem
	TLSKey    string // --tlskey, default <certdir>/key.pem

	// LiveRestore is --live-restore: containers keep running while the
	// daemon is stopped, and the next daemon reconnects to them. Unlike
	// dockerd, where it is off by default, skiffd defaults to true, which is
	// how skiffd always behaved. When false, a clean stop of the daemon stops
	// the running containers, as dockerd does.
	LiveRestore bool
	// ShutdownTimeout is --shutdown-timeout in seconds: how long a clean
	// stop waits for the containers it stops (dockerd's rule: at least each
	// container's stop timeout plus 5 s; negative waits as long as it takes).
	ShutdownTimeout int

	// Networking (issue 14), dockerd's names: Bridge is the host bridge of
	// the default network (-b/--bridge; skiffd creates it, "none" turns
	// bridge networking off), BIP its gateway address and prefix (--bip),
	// FixedCIDR the range containers get addresses from (--fixed-cidr),
	// MTU the containers' MTU (--mtu), IPTables whether skiffd keeps NAT
	// and filter rules in its own nf_tables table NFTable (--iptables,
	// --nft-table), IPForward whether it turns on net.ipv4.ip_forward.
	// IPv6 gives the default network IPv6 too (--ipv6), with the subnet
	// FixedCIDRv6 (--fixed-cidr-v6) or one of the ULA pool.
	Bridge      string
	BIP         string
	FixedCIDR   string
	IPv6        bool
	FixedCIDRv6 string
	MTU         int
	IPTables    bool
	IPForward   bool
	NFTable     string
	// ICC and IPMasq (--icc, --ip-masq) are the default network's
	// inter-container communication and outbound NAT, both on by default.
	ICC, IPMasq bool
	// DefaultBindingIP (--ip, "ip") is where ports published without a
	// host address go; the zero Addr is every address (dockerd's 0.0.0.0).
	DefaultBindingIP netip.Addr
	// DefaultAddressPools (--default-address-pools, daemon.json's
	// "default-address-pools") are where networks without a subnet get
	// one, each "base=CIDR,size=N"; empty means dockerd's defaults.
	DefaultAddressPools []string
	// HostGatewayIPs are what "host-gateway" in --add-host stands for
	// (--host-gateway-ip, daemon.json's "host-gateway-ips" or the older
	// "host-gateway-ip"): at most one IPv4 and one IPv6 address; empty
	// means the default bridge's gateways, as in dockerd.
	HostGatewayIPs []netip.Addr
	// Registry settings, dockerd's names (issue 11): InsecureRegistries
	// (--insecure-registry, "insecure-registries"), RegistryMirrors
	// (--registry-mirror, "registry-mirrors"), and how many layers a pull
	// downloads and a push uploads at once.
	InsecureRegistries     []string
	RegistryMirrors        []string
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
	// Container defaults, dockerd's names: LogDriver and LogOpts
	// (--log-driver, --log-opt; "log-driver", "log-opts") for containers
	// that name no log driver, or name this one without these options;
	// DefaultShmSize (--default-shm-size, "default-shm-size") for those
	// without --shm-size, 0 meaning dockerd's 64 MiB.
	LogDriver      string
	LogOpts        map[string]string
	DefaultShmSize int64
	// More container defaults, dockerd's names: DNS, DNSSearch and
	// DNSOptions (--dns, --dns-search, --dns-opt) for containers that set
	// none; NoNewPrivileges (--no-new-privileges) unless a container's
	// security options say otherwise; DefaultUlimits (--default-ulimit
	// name=soft[:hard], daemon.json "default-ulimits") for the limits a
	// container does not set; Init (--init) for containers that do not
	// say; DefaultIpcMode and DefaultCgroupnsMode (--default-ipc-mode,
	// --default-cgroupns-mode) for those that set none.
	DNS                 []string
	DNSSearch           []string
	DNSOptions          []string
	NoNewPrivileges     bool
	DefaultUlimits      []Ulimit
	Init                bool
	DefaultIpcMode      string
	DefaultCgroupnsMode string
	// SeccompProfile (--seccomp-profile, "seccomp-profile") is the
	// seccomp profile of containers that name none: "" or "builtin" for
	// Docker's default, "unconfined" for none, else a JSON profile's
	// path, whose content SeccompProfileJSON holds.
	SeccompProfile     string
	SeccompProfileJSON []byte
	// LogFormat (--log-format, "log-format") is the daemon's log format:
	// "text" (the default) or "json".
	LogFormat string
	// CgroupParent (--cgroup-parent, "cgroup-parent") is the cgroup
	// parent of containers that name none.
	CgroupParent string
	// Features are daemon.json's "features" (--feature): dockerd's
	// feature switches, which skiffd records and names in a warning, as
	// none of them changes what it does (it builds nothing).
	Features map[string]bool

	// AuthorizationPlugins are --authorization-plugin values (daemon.json
	// "authorization-plugins"), in the order requests pass them.
	AuthorizationPlugins []string
	// PluginDir, when set, replaces dockerd's plugin directories
	// (/run/docker/plugins for sockets, /etc/docker/plugins and
	// /usr/lib/docker/plugins for specs) with one directory holding
	// NAME.sock, NAME.spec or NAME.json. It comes from $SKIFFD_PLUGIN_DIR,
	// for tests and for hosts that keep skiffd apart from a dockerd.
	PluginDir string
	// MaxStreams is --max-concurrent-streams: how many hijacked streams
	// (attach, websocket attach, exec start) may run at once; 0 is no cap.
	MaxStreams int

	CORSHeaders  string // --api-cors-header
	Experimental bool   // --experimental
	Debug        bool   // -D/--debug
	LogLevel     string // -l/--log-level, lower case

	// Labels are --label key=value pairs shown by /info; reloadable.
	Labels []string
	// MetricsAddr is --metrics-addr: where the Prometheus endpoint
	// listens ("" for nowhere), as in dockerd.
	MetricsAddr string
	// AuditLog is --audit-log: the file of the audit log ("" for none).
	// AuditLogReads also logs reads; AuditLogMaxSize (bytes, 0 for no
	// rotation) and AuditLogMaxFiles rotate it (issue 12).
	AuditLog         string
	AuditLogReads    bool
	AuditLogMaxSize  int64
	AuditLogMaxFiles int

	// ConfigFile is the daemon.json that was considered. A missing default
	// file is ignored; a missing explicit one (--config-file) is an error.
	ConfigFile string
	// ShowVersion is -v/--version. When set, Parse returns right after the
	// flags: no file is read and nothing is validated.
	ShowVersion bool
}

// logLevels maps the levels dockerd accepts to slog levels. slog has no
// trace or fatal; they sit one step beyond debug and error.
var logLevels = map[string]slog.Level{
	"trace": slog.LevelDebug - 4,
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
	"fatal": slog.LevelError + 4,
	"panic": slog.LevelError + 4,
}

// SlogLevel returns the level to log at. --debug forces at least debug.
func (c *Config) SlogLevel() slog.Level {
	level, ok := logLevels[strings.ToLower(c.LogLevel)]
	if !ok {
		level = slog.LevelInfo
	}
	if c.Debug && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	return level
}

// Parse parses args (without the program name), then the configuration
// file, then fills defaults from the environment (getenv). --help prints the
// usage to out and returns flag.ErrHelp. Parse does not parse -H values;
// the listeners do, because their defaults depend on TLS.
func Parse(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	return parse(args, getenv, out, host{groupExists: groupExists, configFile: DefaultConfigFile})
}

// host is what parse needs to know about the machine, apart from the
// environment; tests substitute it.
type host struct {
	groupExists func(name string) bool
	configFile  string // the configuration file read when none is named
}

// groupExists reports whether name is a group on this host. With the pure Go
// os/user (no cgo) that means a line in /etc/group.
func groupExists(name string) bool {
	_, err := user.LookupGroup(name)
	return err == nil
}

// flagValues holds what the command line said, before merging.
type flagValues struct {
	hosts                            stringList
	dataRoot, execRoot, pidfile      string
	group                            string
	tls, tlsVerify                   bool
	tlsCACert, tlsCert, tlsKey       string
	corsHeaders                      string
	experimental, debug, showVersion bool
	logLevel, configFile             string
	liveRestore                      bool
	shutdownTimeout                  int
	bridge, bip, fixedCIDR, nftTable string
	fixedCIDRv6                      string
	mtu                              int
	iptables, ipForward, ipv6        bool
	insecureRegistries, mirrors      stringList
	addressPools                     stringList
	hostGatewayIPs                   stringList
	logDriver, defaultShmSize        string
	storageDriver                    string
	logOpts, execOpts, features      stringList
	dns, dnsSearch, dnsOpts, ulimits stringList
	noNewPrivileges, init, userland  bool
	icc, ipMasq                      bool
	bindingIP                        string
	seccompProfile                   string
	logFormat, defaultRuntime        string
	cgroupParent                     string
	rawLogs, selinux, ip6tables      bool
	defaultIpcMode, defaultCgroupns  string
	maxDownloads, maxUploads         int
	labels                           stringList
	metricsAddr, auditLog            string
	auditLogReads                    bool
	auditLogMaxSize                  string
	auditLogMaxFiles                 int

	authzPlugins stringList
	maxStreams   int
}

// option describes one command-line option: its names, the daemon.json key
// it shares a value with ("" when it has no key), and its help text.
type option struct {
	short, long string
	key         string
	arg         string // argument type shown in the usage; "" for booleans
	usage       string
	value       func(v *flagValues) flag.Value
}

// options lists the flags in the order the usage shows them (dockerd sorts
// them by long name).
var options = []option{
	{long: "api-cors-header", key: "api-cors-header", arg: "string", usage: "Set CORS headers in the Engine API",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.corsHeaders) }},
	{long: "audit-log", key: "audit-log", arg: "string", usage: "Write an audit log of state-changing API requests to this file",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.auditLog) }},
	{long: "audit-log-max-files", key: "audit-log-max-files", arg: "int", usage: "Rotated audit log files to keep (default 5)",
		value: func(v *flagValues) flag.Value { return (*intValue)(&v.auditLogMaxFiles) }},
	{long: "audit-log-max-size", key: "audit-log-max-size", arg: "string", usage: "Rotate the audit log at this size, e.g. 100m (default \"100m\", 0 never)",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.auditLogMaxSize) }},
	{long: "audit-log-reads", key: "audit-log-reads", usage: "Also audit API reads",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.auditLogReads) }},
	{long: "authorization-plugin", key: "authorization-plugins", arg: "list", usage: "Authorization plugins to load",
		value: func(v *flagValues) flag.Value { return &v.authzPlugins }},
	{long: "bip", key: "bip", arg: "string", usage: "Specify default-bridge IPv4 network",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.bip) }},
	{short: "b", long: "bridge", key: "bridge", arg: "string", usage: "Attach containers to a network bridge (default \"" + DefaultBridge + "\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.bridge) }},
	{long: "cgroup-parent", key: "cgroup-parent", arg: "string", usage: "Set parent cgroup for all containers",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.cgroupParent) }},
	{long: "config-file", arg: "string", usage: "Daemon configuration file (default \"" + DefaultConfigFile + "\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.configFile) }},
	{long: "data-root", key: "data-root", arg: "string", usage: "Root directory of persistent skiffd state (default \"" + DefaultDataRoot + "\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.dataRoot) }},
	{short: "D", long: "debug", key: "debug", usage: "Enable debug mode",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.debug) }},
	{long: "default-address-pools", key: "default-address-pools", arg: "list", usage: "Default address pools for node specific local networks",
		value: func(v *flagValues) flag.Value { return &v.addressPools }},
	{long: "default-cgroupns-mode", key: "default-cgroupns-mode", arg: "string", usage: "Default mode for containers cgroup namespace (\"host\" | \"private\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.defaultCgroupns) }},
	{long: "default-ipc-mode", key: "default-ipc-mode", arg: "string", usage: "Default mode for containers ipc (\"shareable\" | \"private\") (default \"private\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.defaultIpcMode) }},
	{long: "default-runtime", key: "default-runtime", arg: "string", usage: "Default OCI runtime for containers (default \"runc\", skiffd's own)",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.defaultRuntime) }},
	{long: "default-shm-size", key: "default-shm-size", arg: "bytes", usage: "Default shm size for containers (default 64MiB)",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.defaultShmSize) }},
	{long: "default-ulimit", key: "default-ulimits", arg: "ulimit", usage: "Default ulimits for containers (name=soft[:hard])",
		value: func(v *flagValues) flag.Value { return &v.ulimits }},
	{long: "dns", key: "dns", arg: "list", usage: "DNS server to use",
		value: func(v *flagValues) flag.Value { return &v.dns }},
	{long: "dns-opt", key: "dns-opts", arg: "list", usage: "DNS options to use",
		value: func(v *flagValues) flag.Value { return &v.dnsOpts }},
	{long: "dns-search", key: "dns-search", arg: "list", usage: "DNS search domains to use",
		value: func(v *flagValues) flag.Value { return &v.dnsSearch }},
	{long: "exec-opt", key: "exec-opts", arg: "list", usage: "Runtime execution options (native.cgroupdriver=cgroupfs)",
		value: func(v *flagValues) flag.Value { return &v.execOpts }},
	{long: "exec-root", key: "exec-root", arg: "string", usage: "Root directory for execution state files (default \"" + DefaultExecRoot + "\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.execRoot) }},
	{long: "experimental", key: "experimental", usage: "Enable experimental features",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.experimental) }},
	{long: "feature", key: "features", arg: "map", usage: "Enable feature in the daemon",
		value: func(v *flagValues) flag.Value { return &v.features }},
	{long: "fixed-cidr", key: "fixed-cidr", arg: "string", usage: "IPv4 subnet for the default bridge network",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.fixedCIDR) }},
	{long: "fixed-cidr-v6", key: "fixed-cidr-v6", arg: "string", usage: "IPv6 subnet for the default bridge network",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.fixedCIDRv6) }},
	{short: "G", long: "group", key: "group", arg: "string", usage: "Group for the unix socket (default \"" + DefaultSocketGroup + "\" when it exists)",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.group) }},
	{short: "H", long: "host", key: "hosts", arg: "list", usage: "Daemon socket(s) to connect to",
		value: func(v *flagValues) flag.Value { return &v.hosts }},
	{long: "host-gateway-ip", key: "host-gateway-ips", arg: "list", usage: "IP addresses that the special 'host-gateway' string in --add-host resolves to. Defaults to the IP addresses of the default bridge",
		value: func(v *flagValues) flag.Value { return &v.hostGatewayIPs }},
	{long: "icc", key: "icc", usage: "Enable inter-container communication on the default network (default true)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.icc) }},
	{long: "init", key: "init", usage: "Run an init in the container to forward signals and reap processes",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.init) }},
	{long: "insecure-registry", key: "insecure-registries", arg: "list", usage: "Enable insecure registry communication",
		value: func(v *flagValues) flag.Value { return &v.insecureRegistries }},
	{long: "ip", key: "ip", arg: "ip", usage: "Default IP when binding container ports (default 0.0.0.0)",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.bindingIP) }},
	{long: "ip-forward", key: "ip-forward", usage: "Enable IP forwarding in system configuration (default true)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.ipForward) }},
	{long: "ip-masq", key: "ip-masq", usage: "Enable IP masquerading for the default network (default true)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.ipMasq) }},
	{long: "ip6tables", key: "ip6tables", usage: "Enable addition of ip6tables rules (skiffd keeps IPv6 rules in its ip6 nf_tables table whenever an IPv6 network exists) (default true)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.ip6tables) }},
	{long: "iptables", key: "iptables", usage: "Enable addition of nf_tables rules (default true)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.iptables) }},
	{long: "ipv6", key: "ipv6", usage: "Enable IPv6 networking on the default bridge network",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.ipv6) }},
	{long: "label", key: "labels", arg: "list", usage: "Set key=value labels to the daemon",
		value: func(v *flagValues) flag.Value { return &v.labels }},
	{long: "live-restore", key: "live-restore", usage: "Keep containers running while the daemon is stopped (default true)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.liveRestore) }},
	{long: "log-driver", key: "log-driver", arg: "string", usage: "Default driver for container logs (default \"json-file\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.logDriver) }},
	{long: "log-format", key: "log-format", arg: "string", usage: "Set the logging format (\"text\"|\"json\") (default \"text\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.logFormat) }},
	{short: "l", long: "log-level", key: "log-level", arg: "string", usage: "Set the logging level (\"debug\"|\"info\"|\"warn\"|\"error\"|\"fatal\") (default \"info\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.logLevel) }},
	{long: "log-opt", key: "log-opts", arg: "map", usage: "Default log driver options for containers",
		value: func(v *flagValues) flag.Value { return &v.logOpts }},
	{long: "max-concurrent-downloads", key: "max-concurrent-downloads", arg: "int", usage: "Set the max concurrent downloads (default 3)",
		value: func(v *flagValues) flag.Value { return (*intValue)(&v.maxDownloads) }},
	{long: "max-concurrent-streams", key: "max-concurrent-streams", arg: "int", usage: "Cap on concurrent attach and exec streams, 0 for none (default 1024)",
		value: func(v *flagValues) flag.Value { return (*intValue)(&v.maxStreams) }},
	{long: "max-concurrent-uploads", key: "max-concurrent-uploads", arg: "int", usage: "Set the max concurrent uploads (default 5)",
		value: func(v *flagValues) flag.Value { return (*intValue)(&v.maxUploads) }},
	{long: "metrics-addr", key: "metrics-addr", arg: "string", usage: "Set default address and port to serve the metrics api on",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.metricsAddr) }},
	{long: "mtu", key: "mtu", arg: "int", usage: "Set the MTU for the default \"bridge\" network (default 1500)",
		value: func(v *flagValues) flag.Value { return (*intValue)(&v.mtu) }},
	{long: "nft-table", key: "nft-table", arg: "string", usage: "nf_tables table holding skiffd's rules (default \"" + DefaultNFTable + "\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.nftTable) }},
	{long: "no-new-privileges", key: "no-new-privileges", usage: "Set no-new-privileges by default for new containers",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.noNewPrivileges) }},
	{short: "p", long: "pidfile", key: "pidfile", arg: "string", usage: "Path to use for daemon PID file (default \"" + DefaultExecRoot + "/" + pidfileName + "\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.pidfile) }},
	{long: "raw-logs", key: "raw-logs", usage: "Full timestamps without ANSI coloring (skiffd's logs are always so)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.rawLogs) }},
	{long: "registry-mirror", key: "registry-mirrors", arg: "list", usage: "Preferred registry mirror",
		value: func(v *flagValues) flag.Value { return &v.mirrors }},
	{long: "seccomp-profile", key: "seccomp-profile", arg: "string", usage: "Path to seccomp profile. Set to \"unconfined\" to disable the default seccomp profile (default \"builtin\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.seccompProfile) }},
	{long: "selinux-enabled", key: "selinux-enabled", usage: "Enable selinux support (not supported: false only)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.selinux) }},
	{long: "shutdown-timeout", key: "shutdown-timeout", arg: "int", usage: "Set the default shutdown timeout (default 15)",
		value: func(v *flagValues) flag.Value { return (*intValue)(&v.shutdownTimeout) }},
	{short: "s", long: "storage-driver", key: "storage-driver", arg: "string", usage: "Storage driver to use (overlay2, the only one)",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.storageDriver) }},
	{long: "tls", key: "tls", usage: "Use TLS; implied by --tlsverify",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.tls) }},
	{long: "tlscacert", key: "tlscacert", arg: "string", usage: "Trust certs signed only by this CA (default \"~/.docker/ca.pem\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.tlsCACert) }},
	{long: "tlscert", key: "tlscert", arg: "string", usage: "Path to TLS certificate file (default \"~/.docker/cert.pem\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.tlsCert) }},
	{long: "tlskey", key: "tlskey", arg: "string", usage: "Path to TLS key file (default \"~/.docker/key.pem\")",
		value: func(v *flagValues) flag.Value { return (*stringValue)(&v.tlsKey) }},
	{long: "tlsverify", key: "tlsverify", usage: "Use TLS and verify the remote",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.tlsVerify) }},
	{long: "userland-proxy", key: "userland-proxy", usage: "Use userland proxy for loopback traffic (skiffd publishes through nf_tables either way)",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.userland) }},
	{short: "v", long: "version", usage: "Print version information and quit",
		value: func(v *flagValues) flag.Value { return (*boolValue)(&v.showVersion) }},
}

func parse(args []string, getenv func(string) string, out io.Writer, h host) (*Config, error) {
	var fv flagValues
	fs := flag.NewFlagSet("skiffd", flag.ContinueOnError)
	// The flag package's own messages and usage are silenced: errors are
	// returned for the caller to print once, and --help prints ours.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	byName := make(map[string]*option, 2*len(options))
	for i := range options {
		o := &options[i]
		val := o.value(&fv)
		fs.Var(val, o.long, o.usage)
		byName[o.long] = o
		if o.short != "" {
			fs.Var(val, o.short, o.usage)
			byName[o.short] = o
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out)
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("%w\nSee 'skiffd --help'.", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("\"skiffd\" accepts no argument(s).\nSee 'skiffd --help'.\n\nUsage:  skiffd [OPTIONS]\n\nA self-sufficient runtime for containers.")
	}

	// changed maps each option given on the command line to its long name,
	// whichever spelling was used.
	changed := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { changed[byName[f.Name].long] = true })

	cfg := &Config{ShowVersion: fv.showVersion}
	if cfg.ShowVersion {
		return cfg, nil
	}

	cfg.ConfigFile = h.configFile
	if changed["config-file"] {
		cfg.ConfigFile = fv.configFile
	}
	file, err := readFile(cfg.ConfigFile, changed["config-file"], changed, &fv)
	if err != nil {
		return nil, fmt.Errorf("unable to configure the Docker daemon with file %s: %w", cfg.ConfigFile, err)
	}
	if file == nil {
		file = &fileConfig{}
	}

	// Each setting comes from the flag if given, else the file if set,
	// else its default; findConflicts has ruled out both.
	cfg.Hosts = pickList(changed["host"], fv.hosts, file.Hosts)
	cfg.DataRoot = pickString(changed["data-root"], fv.dataRoot, file.DataRoot, DefaultDataRoot)
	cfg.ExecRoot = pickString(changed["exec-root"], fv.execRoot, file.ExecRoot, DefaultExecRoot)
	cfg.Pidfile = pickString(changed["pidfile"], fv.pidfile, file.Pidfile, "")
	cfg.CORSHeaders = pickString(changed["api-cors-header"], fv.corsHeaders, file.CORSHeaders, "")
	cfg.Experimental = pickBool(changed["experimental"], fv.experimental, file.Experimental)
	cfg.Debug = pickBool(changed["debug"], fv.debug, file.Debug)
	cfg.LogLevel = strings.ToLower(pickString(changed["log-level"], fv.logLevel, file.LogLevel, DefaultLogLevel))
	cfg.LiveRestore = pickBoolOr(changed["live-restore"], fv.liveRestore, file.LiveRestore, true)
	cfg.AuthorizationPlugins = pickList(changed["authorization-plugin"], fv.authzPlugins, file.AuthorizationPlugins)
	cfg.PluginDir = getenv("SKIFFD_PLUGIN_DIR")
	cfg.MaxStreams = DefaultMaxStreams
	if changed["max-concurrent-streams"] {
		cfg.MaxStreams = fv.maxStreams
	} else if file.MaxStreams != nil {
		cfg.MaxStreams = *file.MaxStreams
	}
	cfg.ShutdownTimeout = DefaultShutdownTimeout
	if changed["shutdown-timeout"] {
		cfg.ShutdownTimeout = fv.shutdownTimeout
	} else if file.ShutdownTimeout != nil {
		cfg.ShutdownTimeout = *file.ShutdownTimeout
	}

	cfg.Bridge = pickString(changed["bridge"], fv.bridge, file.Bridge, DefaultBridge)
	if cfg.Bridge == "" {
		// As dockerd's: an empty bridge is the default one, not
		// networking off (the engine's zero value).
		cfg.Bridge = DefaultBridge
	}
	cfg.BIP = pickString(changed["bip"], fv.bip, file.BIP, "")
	cfg.FixedCIDR = pickString(changed["fixed-cidr"], fv.fixedCIDR, file.FixedCIDR, "")
	cfg.FixedCIDRv6 = pickString(changed["fixed-cidr-v6"], fv.fixedCIDRv6, file.FixedCIDRv6, "")
	cfg.IPv6 = pickBool(changed["ipv6"], fv.ipv6, file.IPv6)
	cfg.NFTable = pickString(changed["nft-table"], fv.nftTable, file.NFTable, DefaultNFTable)
	cfg.MTU = DefaultMTU
	if changed["mtu"] {
		cfg.MTU = fv.mtu
	} else if file.MTU != nil {
		cfg.MTU = *file.MTU
	}
	if v := pickString(changed["ip"], fv.bindingIP, file.IP, ""); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--ip\" flag: %s is not an ip address", v, v)
		}
		if !a.IsUnspecified() {
			cfg.DefaultBindingIP = a.Unmap()
		}
	}
	cfg.ICC = pickBoolOr(changed["icc"], fv.icc, file.ICC, true)
	cfg.IPMasq = pickBoolOr(changed["ip-masq"], fv.ipMasq, file.IPMasq, true)
	cfg.IPTables = pickBoolOr(changed["iptables"], fv.iptables, file.IPTables, true)
	cfg.IPForward = pickBoolOr(changed["ip-forward"], fv.ipForward, file.IPForward, true)
	if changed["default-address-pools"] {
		cfg.DefaultAddressPools = append([]string(nil), fv.addressPools...)
	} else {
		for _, p := range file.DefaultAddressPools {
			cfg.DefaultAddressPools = append(cfg.DefaultAddressPools, fmt.Sprintf("base=%s,size=%d", p.Base, p.Size))
		}
	}
	if cfg.HostGatewayIPs, err = hostGatewayIPs(changed["host-gateway-ip"], fv.hostGatewayIPs, file); err != nil {
		return nil, err
	}
	if err := containerDefaults(cfg, changed, &fv, file); err != nil {
		return nil, err
	}
	cfg.InsecureRegistries = pickList(changed["insecure-registry"], fv.insecureRegistries, file.InsecureRegistries)
	cfg.RegistryMirrors = pickList(changed["registry-mirror"], fv.mirrors, file.RegistryMirrors)
	cfg.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	if changed["max-concurrent-downloads"] {
		cfg.MaxConcurrentDownloads = fv.maxDownloads
	} else if file.MaxConcurrentDownloads != nil {
		cfg.MaxConcurrentDownloads = *file.MaxConcurrentDownloads
	}
	cfg.MaxConcurrentUploads = DefaultMaxConcurrentUploads
	if changed["max-concurrent-uploads"] {
		cfg.MaxConcurrentUploads = fv.maxUploads
	} else if file.MaxConcurrentUploads != nil {
		cfg.MaxConcurrentUploads = *file.MaxConcurrentUploads
	}
	if cfg.MaxConcurrentDownloads < 0 {
		return nil, fmt.Errorf("invalid max concurrent downloads: %d", cfg.MaxConcurrentDownloads)
	}
	if cfg.MaxConcurrentUploads < 0 {
		return nil, fmt.Errorf("invalid max concurrent uploads: %d", cfg.MaxConcurrentUploads)
	}
	cfg.Labels = pickList(changed["label"], fv.labels, file.Labels)
	cfg.MetricsAddr = pickString(changed["metrics-addr"], fv.metricsAddr, file.MetricsAddr, "")
	cfg.AuditLog = pickString(changed["audit-log"], fv.auditLog, file.AuditLog, "")
	cfg.AuditLogReads = pickBool(changed["audit-log-reads"], fv.auditLogReads, file.AuditLogReads)
	maxSize := pickString(changed["audit-log-max-size"], fv.auditLogMaxSize, file.AuditLogMaxSize, "100m")
	if cfg.AuditLogMaxSize, err = units.RAMInBytes(maxSize); err != nil {
		return nil, fmt.Errorf("audit-log-max-size: %w", err)
	}
	cfg.AuditLogMaxFiles = 5
	if changed["audit-log-max-files"] {
		cfg.AuditLogMaxFiles = fv.auditLogMaxFiles
	} else if file.AuditLogMaxFiles != nil {
		cfg.AuditLogMaxFiles = *file.AuditLogMaxFiles
	}
	for _, l := range cfg.Labels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			return nil, fmt.Errorf("bad attribute format: %s", l)
		}
	}

	cfg.GroupExplicit = changed["group"] || file.Group != nil
	if cfg.GroupExplicit {
		cfg.Group = pickString(changed["group"], fv.group, file.Group, "")
	} else if h.groupExists(DefaultSocketGroup) {
		cfg.Group = DefaultSocketGroup
	}

	certDir := defaultCertDir(getenv)
	cfg.TLSCACert = pickString(changed["tlscacert"], fv.tlsCACert, file.TLSCACert, filepath.Join(certDir, defaultCAFile))
	cfg.TLSCert = pickString(changed["tlscert"], fv.tlsCert, file.TLSCert, filepath.Join(certDir, defaultCertFile))
	cfg.TLSKey = pickString(changed["tlskey"], fv.tlsKey, file.TLSKey, filepath.Join(certDir, defaultKeyFile))

	// dockerd's TLS rules: giving tlsverify at all (true or false) turns
	// TLS on; TLS on without an explicit tlsverify verifies clients.
	tlsSet := changed["tls"] || file.TLS != nil
	verifySet := changed["tlsverify"] || file.TLSVerify != nil
	cfg.TLS = pickBool(changed["tls"], fv.tls, file.TLS)
	if verifySet {
		cfg.TLS = true
		cfg.TLSVerify = pickBool(changed["tlsverify"], fv.tlsVerify, file.TLSVerify)
	} else {
		cfg.TLSVerify = cfg.TLS
	}
	cfg.TLSExplicit = tlsSet || verifySet

	if err := cfg.finish(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// finish validates the merged values and fills the defaults that depend on
// other settings.
func (c *Config) finish() error {
	for _, m := range c.RegistryMirrors {
		if err := validateMirror(m); err != nil {
			return err
		}
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		return fmt.Errorf("invalid logging level: %s", c.LogLevel)
	}
	if c.MaxStreams < 0 {
		return fmt.Errorf("max-concurrent-streams cannot be negative: %d", c.MaxStreams)
	}
	for _, p := range []struct {
		name string
		path *string
	}{{"data-root", &c.DataRoot}, {"exec-root", &c.ExecRoot}, {"pidfile", &c.Pidfile}} {
		if *p.path == "" {
			if p.name == "pidfile" {
				*p.path = filepath.Join(c.ExecRoot, pidfileName)
				continue
			}
			return fmt.Errorf("%s cannot be empty", p.name)
		}
		// Relative roots would silently follow the daemon's working
		// directory; pin them down once, at start.
		abs, err := filepath.Abs(*p.path)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		*p.path = abs
	}
	return nil
}

// defaultCertDir is where dockerd looks for ca.pem, cert.pem and key.pem:
// $DOCKER_CERT_PATH, else $DOCKER_CONFIG, else ~/.docker.
func defaultCertDir(getenv func(string) string) string {
	if dir := getenv("DOCKER_CERT_PATH"); dir != "" {
		return dir
	}
	if dir := getenv("DOCKER_CONFIG"); dir != "" {
		return dir
	}
	return filepath.Join(homeDir(getenv), ".docker")
}

// homeDir is $HOME, else the current user's home from the password file,
// as moby's pkg/homedir.
func homeDir(getenv func(string) string) string {
	if home := getenv("HOME"); home != "" {
		return home
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

func pickString(fromFlag bool, flagValue string, fileValue *string, def string) string {
	switch {
	case fromFlag:
		return flagValue
	case fileValue != nil:
		return *fileValue
	}
	return def
}

func pickBool(fromFlag bool, flagValue bool, fileValue *bool) bool {
	return pickBoolOr(fromFlag, flagValue, fileValue, false)
}

// pickBoolOr is pickBool for a setting whose default is def.
func pickBoolOr(fromFlag bool, flagValue bool, fileValue *bool, def bool) bool {
	switch {
	case fromFlag:
		return flagValue
	case fileValue != nil:
		return *fileValue
	}
	return def
}

func pickList(fromFlag bool, flagValue []string, fileValue []string) []string {
	if fromFlag {
		return append([]string(nil), flagValue...)
	}
	return append([]string(nil), fileValue...)
}

// containerDefaults reads the daemon-wide defaults and switches that
// dockerd's daemon.json files commonly carry: the log driver and its
// options, the shm size, the storage driver and cgroup driver (skiffd has
// one of each: overlay2 and cgroupfs; asking for another is an error
// naming it, not a setting ignored), and feature switches.
func containerDefaults(cfg *Config, changed map[string]bool, fv *flagValues, file *fileConfig) error {
	cfg.LogDriver = pickString(changed["log-driver"], fv.logDriver, file.LogDriver, "json-file")
	if changed["log-opt"] {
		cfg.LogOpts = map[string]string{}
		for _, kv := range fv.logOpts {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("invalid argument %q for \"--log-opt\" flag: invalid key value pair format: %s", kv, kv)
			}
			cfg.LogOpts[k] = v
		}
	} else if len(file.LogOpts) > 0 {
		cfg.LogOpts = maps.Clone(file.LogOpts)
	}
	switch sd := pickString(changed["storage-driver"], fv.storageDriver, file.StorageDriver, ""); sd {
	case "", "overlay2", "overlay":
	default:
		return fmt.Errorf("storage driver %q is not supported: skiffd stores images and containers on overlayfs (overlay2)", sd)
	}
	if v := pickString(changed["default-shm-size"], fv.defaultShmSize, file.DefaultShmSize, ""); v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid default-shm-size %q", v)
		}
		cfg.DefaultShmSize = n
	}
	for _, o := range pickList(changed["exec-opt"], fv.execOpts, file.ExecOpts) {
		k, v, _ := strings.Cut(o, "=")
		if strings.TrimSpace(strings.ToLower(k)) != "native.cgroupdriver" {
			continue // dockerd reads only the options it knows too
		}
		switch strings.TrimSpace(v) {
		case "cgroupfs":
		case "systemd":
			return errors.New("native.cgroupdriver=systemd is not supported: skiffd manages container cgroups itself (the cgroupfs driver, as docker info says)")
		default:
			return fmt.Errorf("native.cgroupdriver option %s not supported", v)
		}
	}
	cfg.DNS = pickList(changed["dns"], fv.dns, file.DNS)
	for _, a := range cfg.DNS {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("%s is not an ip address", a)
		}
	}
	cfg.DNSSearch = pickList(changed["dns-search"], fv.dnsSearch, file.DNSSearch)
	cfg.DNSOptions = pickList(changed["dns-opt"], fv.dnsOpts, file.DNSOptions)
	cfg.NoNewPrivileges = pickBool(changed["no-new-privileges"], fv.noNewPrivileges, file.NoNewPrivileges)
	cfg.Init = pickBool(changed["init"], fv.init, file.Init)
	if changed["default-ulimit"] {
		for _, u := range fv.ulimits {
			ul, err := parseUlimit(u)
			if err != nil {
				return err
			}
			cfg.DefaultUlimits = append(cfg.DefaultUlimits, ul)
		}
	} else {
		for _, name := range slices.Sorted(maps.Keys(file.DefaultUlimits)) {
			u := file.DefaultUlimits[name]
			if u.Name == "" {
				u.Name = name
			}
			if u.Soft > u.Hard {
				return fmt.Errorf("default-ulimits %s: soft limit %d is more than the hard limit %d", name, u.Soft, u.Hard)
			}
			cfg.DefaultUlimits = append(cfg.DefaultUlimits, u)
		}
	}
	switch cfg.DefaultIpcMode = pickString(changed["default-ipc-mode"], fv.defaultIpcMode, file.DefaultIpcMode, ""); cfg.DefaultIpcMode {
	case "", "private", "shareable":
	default:
		return fmt.Errorf("invalid default IPC mode: %s", cfg.DefaultIpcMode)
	}
	switch cfg.DefaultCgroupnsMode = pickString(changed["default-cgroupns-mode"], fv.defaultCgroupns, file.DefaultCgroupnsMode, ""); cfg.DefaultCgroupnsMode {
	case "", "private", "host":
	default:
		return fmt.Errorf("default cgroup namespace mode (%v) is invalid", cfg.DefaultCgroupnsMode)
	}
	switch cfg.SeccompProfile = pickString(changed["seccomp-profile"], fv.seccompProfile, file.SeccompProfile, ""); cfg.SeccompProfile {
	case "", "builtin", "unconfined":
	default:
		b, err := os.ReadFile(cfg.SeccompProfile)
		if err != nil {
			return fmt.Errorf("opening seccomp profile (%s) failed: %w", cfg.SeccompProfile, err)
		}
		cfg.SeccompProfileJSON = b
	}
	switch cfg.LogFormat = pickString(changed["log-format"], fv.logFormat, file.LogFormat, "text"); cfg.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("unknown log format: %s", cfg.LogFormat)
	}
	switch rt := pickString(changed["default-runtime"], fv.defaultRuntime, file.DefaultRuntime, ""); rt {
	case "", "runc", "skiffd":
	default:
		return fmt.Errorf("default runtime %q is not supported: skiffd runs containers itself (its runtime is named runc)", rt)
	}
	if !pickBoolOr(changed["ip6tables"], fv.ip6tables, file.IP6Tables, true) {
		return errors.New("ip6tables=false is not supported: skiffd keeps NAT and isolation rules for IPv6 networks in its own ip6 nf_tables table")
	}
	if pickBool(changed["selinux-enabled"], fv.selinux, file.SELinuxEnabled) {
		return errors.New("selinux-enabled is not supported: skiffd has no SELinux support")
	}
	cfg.CgroupParent = pickString(changed["cgroup-parent"], fv.cgroupParent, file.CgroupParent, "")
	if changed["feature"] {
		cfg.Features = map[string]bool{}
		for _, f := range fv.features {
			name, v, ok := strings.Cut(f, "=")
			on := true
			if ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("invalid argument %q for \"--feature\" flag: %w", f, err)
				}
				on = b
			}
			cfg.Features[name] = on
		}
	} else if len(file.Features) > 0 {
		cfg.Features = maps.Clone(file.Features)
	}
	return nil
}

// Ulimit is a default ulimit, as daemon.json's "default-ulimits" values
// spell it.
type Ulimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

// parseUlimit reads --default-ulimit's name=soft[:hard] (hard defaults to
// soft), as dockerd's units.ParseUlimit.
func parseUlimit(v string) (Ulimit, error) {
	name, limits, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return Ulimit{}, fmt.Errorf("invalid ulimit argument: %s", v)
	}
	softStr, hardStr, hasHard := strings.Cut(limits, ":")
	soft, err := strconv.ParseInt(softStr, 10, 64)
	if err != nil {
		return Ulimit{}, fmt.Errorf("invalid ulimit soft value %s: %w", softStr, err)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardStr, 10, 64); err != nil {
			return Ulimit{}, fmt.Errorf("invalid ulimit hard value %s: %w", hardStr, err)
		}
	}
	if soft > hard {
		return Ulimit{}, fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", soft, hard)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// hostGatewayIPs reads the addresses "host-gateway" stands for: the
// flag's, else the file's list, else its older single address; each an
// IP, at most one of each family (dockerd's rule).
func hostGatewayIPs(fromFlag bool, flagValue []string, file *fileConfig) ([]netip.Addr, error) {
	list := pickList(fromFlag, flagValue, file.HostGatewayIPs)
	if len(list) == 0 && file.HostGatewayIP != nil && *file.HostGatewayIP != "" {
		list = []string{*file.HostGatewayIP}
	}
	var out []netip.Addr
	var have4, have6 bool
	for _, v := range list {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--host-gateway-ip\" flag: %w", v, err)
		}
		a = a.Unmap()
		if a.Is4() {
			if have4 {
				return nil, errors.New("only one IPv4 host gateway IP address can be specified")
			}
			have4 = true
		} else {
			if have6 {
				return nil, errors.New("only one IPv6 host gateway IP address can be specified")
			}
			have6 = true
		}
		out = append(out, a)
	}
	return out, nil
}

// printUsage writes a dockerd-style help text.
func printUsage(out io.Writer) {
	var b strings.Builder
	b.WriteString("Usage:  skiffd [OPTIONS]\n\nA self-sufficient runtime for containers.\n\nOptions:\n")
	type line struct{ left, usage string }
	var lines []line
	width := 0
	for _, o := range options {
		left := "    "
		if o.short != "" {
			left = "-" + o.short + ", "
		}
		left = "  " + left + "--" + o.long
		if o.arg != "" {
			left += " " + o.arg
		}
		width = max(width, len(left))
		lines = append(lines, line{left, o.usage})
	}
	lines = append(lines, line{"  -h, --help", "Print usage"})
	for _, l := range lines {
		fmt.Fprintf(&b, "%-*s   %s\n", width, l.left, l.usage)
	}
	io.WriteString(out, b.String())
}

// stringValue is a flag.Value for a string setting.
type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string {
	if s == nil {
		return ""
	}
	return string(*s)
}

// boolValue is a flag.Value for a boolean setting; IsBoolFlag lets it be
// given bare (--tls) or with a value (--tls=false).
type boolValue bool

func (b *boolValue) Set(v string) error {
	parsed, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("parse error")
	}
	*b = boolValue(parsed)
	return nil
}
func (b *boolValue) String() string {
	if b == nil {
		return "false"
	}
	return strconv.FormatBool(bool(*b))
}
func (b *boolValue) IsBoolFlag() bool { return true }

// intValue is a flag.Value for an integer setting.
type intValue int

func (i *intValue) Set(v string) error {
	parsed, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("parse error")
	}
	*i = intValue(parsed)
	return nil
}
func (i *intValue) String() string {
	if i == nil {
		return "0"
	}
	return strconv.Itoa(int(*i))
}

// stringList is a repeatable flag (-H a -H b).
type stringList []string

func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// String formats the list as dockerd's list options do, which is what the
// conflict message shows: [a b].
func (l *stringList) String() string {
	if l == nil {
		return "[]"
	}
	return fmt.Sprintf("%v", []string(*l))
}

// validateMirror checks a registry mirror as dockerd does: an http or
// https URL without query, fragment or credentials.
func validateMirror(val string) error {
	uri, err := url.Parse(val)
	if err != nil {
		return fmt.Errorf("invalid mirror: %q is not a valid URI", val)
	}
	switch {
	case uri.Scheme != "http" && uri.Scheme != "https":
		return fmt.Errorf("invalid mirror: unsupported scheme %q in %q", uri.Scheme, uri)
	case uri.RawQuery != "" || uri.Fragment != "":
		return fmt.Errorf("invalid mirror: query or fragment at end of the URI %q", uri)
	case uri.User != nil:
		return fmt.Errorf("invalid mirror: username/password not allowed in URI %q", uri)
	}
	return nil
}
