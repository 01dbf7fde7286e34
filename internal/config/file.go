package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// fileConfig is daemon.json. Pointers tell "absent" from a zero value,
// because an absent key falls back to the default and a present one must
// not also be given as a flag.
type fileConfig struct {
	Hosts        []string `json:"hosts"`
	DataRoot     *string  `json:"data-root"`
	ExecRoot     *string  `json:"exec-root"`
	Pidfile      *string  `json:"pidfile"`
	Group        *string  `json:"group"`
	TLS          *bool    `json:"tls"`
	TLSVerify    *bool    `json:"tlsverify"`
	TLSCACert    *string  `json:"tlscacert"`
	TLSCert      *string  `json:"tlscert"`
	TLSKey       *string  `json:"tlskey"`
	CORSHeaders  *string  `json:"api-cors-header"`
	Experimental *bool    `json:"experimental"`
	Debug        *bool    `json:"debug"`
	LogLevel     *string  `json:"log-level"`

	LiveRestore     *bool `json:"live-restore"`
	ShutdownTimeout *int  `json:"shutdown-timeout"`

	Bridge                 *string  `json:"bridge"`
	BIP                    *string  `json:"bip"`
	FixedCIDR              *string  `json:"fixed-cidr"`
	IPv6                   *bool    `json:"ipv6"`
	FixedCIDRv6            *string  `json:"fixed-cidr-v6"`
	MTU                    *int     `json:"mtu"`
	IPTables               *bool    `json:"iptables"`
	IPForward              *bool    `json:"ip-forward"`
	NFTable                *string  `json:"nft-table"`
	InsecureRegistries     []string `json:"insecure-registries"`
	RegistryMirrors        []string `json:"registry-mirrors"`
	MaxConcurrentDownloads *int     `json:"max-concurrent-downloads"`
	MaxConcurrentUploads   *int     `json:"max-concurrent-uploads"`
	Labels                 []string `json:"labels"`
	MetricsAddr            *string  `json:"metrics-addr"`
	AuditLog               *string  `json:"audit-log"`
	AuditLogReads          *bool    `json:"audit-log-reads"`
	AuditLogMaxSize        *string  `json:"audit-log-max-size"`
	AuditLogMaxFiles       *int     `json:"audit-log-max-files"`

	AuthorizationPlugins []string `json:"authorization-plugins"`
	MaxStreams           *int     `json:"max-concurrent-streams"`

	// DefaultAddressPools is dockerd's list of {"base": CIDR, "size": n}.
	DefaultAddressPools []AddressPool `json:"default-address-pools"`

	// HostGatewayIPs is dockerd's list; HostGatewayIP the single
	// address older daemon.json files give.
	HostGatewayIPs []string `json:"host-gateway-ips"`
	HostGatewayIP  *string  `json:"host-gateway-ip"`

	LogDriver      *string           `json:"log-driver"`
	LogOpts        map[string]string `json:"log-opts"`
	StorageDriver  *string           `json:"storage-driver"`
	DefaultShmSize *string           `json:"default-shm-size"`
	ExecOpts       []string          `json:"exec-opts"`
	Features       map[string]bool   `json:"features"`

	DNS                 []string          `json:"dns"`
	DNSSearch           []string          `json:"dns-search"`
	DNSOptions          []string          `json:"dns-opts"`
	NoNewPrivileges     *bool             `json:"no-new-privileges"`
	Init                *bool             `json:"init"`
	DefaultUlimits      map[string]Ulimit `json:"default-ulimits"`
	DefaultIpcMode      *string           `json:"default-ipc-mode"`
	DefaultCgroupnsMode *string           `json:"default-cgroupns-mode"`
	UserlandProxy       *bool             `json:"userland-proxy"`
	ICC                 *bool             `json:"icc"`
	IPMasq              *bool             `json:"ip-masq"`
	IP                  *string           `json:"ip"`
	SeccompProfile      *string           `json:"seccomp-profile"`
	LogFormat           *string           `json:"log-format"`
	DefaultRuntime      *string           `json:"default-runtime"`
	RawLogs             *bool             `json:"raw-logs"`
	SELinuxEnabled      *bool             `json:"selinux-enabled"`
	CgroupParent        *string           `json:"cgroup-parent"`
	IP6Tables           *bool             `json:"ip6tables"`
}

// fields maps each daemon.json key to the field that decodes it.
func (f *fileConfig) fields() map[string]any {
	return map[string]any{
		"hosts":            &f.Hosts,
		"data-root":        &f.DataRoot,
		"exec-root":        &f.ExecRoot,
		"pidfile":          &f.Pidfile,
		"group":            &f.Group,
		"tls":              &f.TLS,
		"tlsverify":        &f.TLSVerify,
		"tlscacert":        &f.TLSCACert,
		"tlscert":          &f.TLSCert,
		"tlskey":           &f.TLSKey,
		"api-cors-header":  &f.CORSHeaders,
		"experimental":     &f.Experimental,
		"debug":            &f.Debug,
		"log-level":        &f.LogLevel,
		"live-restore":     &f.LiveRestore,
		"shutdown-timeout": &f.ShutdownTimeout,
		"bridge":           &f.Bridge,
		"bip":              &f.BIP,
		"fixed-cidr":       &f.FixedCIDR,
		"ipv6":             &f.IPv6,
		"fixed-cidr-v6":    &f.FixedCIDRv6,
		"mtu":              &f.MTU,
		"iptables":         &f.IPTables,
		"ip-forward":       &f.IPForward,
		"nft-table":        &f.NFTable,

		"insecure-registries":      &f.InsecureRegistries,
		"registry-mirrors":         &f.RegistryMirrors,
		"max-concurrent-downloads": &f.MaxConcurrentDownloads,
		"max-concurrent-uploads":   &f.MaxConcurrentUploads,
		// Issue 12.
		"labels":              &f.Labels,
		"metrics-addr":        &f.MetricsAddr,
		"audit-log":           &f.AuditLog,
		"audit-log-reads":     &f.AuditLogReads,
		"audit-log-max-size":  &f.AuditLogMaxSize,
		"audit-log-max-files": &f.AuditLogMaxFiles,

		"authorization-plugins":  &f.AuthorizationPlugins,
		"max-concurrent-streams": &f.MaxStreams,

		"default-address-pools": &f.DefaultAddressPools,
		"host-gateway-ips":      &f.HostGatewayIPs,
		"host-gateway-ip":       &f.HostGatewayIP,

		"log-driver":       &f.LogDriver,
		"log-opts":         &f.LogOpts,
		"storage-driver":   &f.StorageDriver,
		"default-shm-size": &f.DefaultShmSize,
		"exec-opts":        &f.ExecOpts,
		"features":         &f.Features,

		"dns":                   &f.DNS,
		"dns-search":            &f.DNSSearch,
		"dns-opts":              &f.DNSOptions,
		"no-new-privileges":     &f.NoNewPrivileges,
		"init":                  &f.Init,
		"default-ulimits":       &f.DefaultUlimits,
		"default-ipc-mode":      &f.DefaultIpcMode,
		"default-cgroupns-mode": &f.DefaultCgroupnsMode,
		"userland-proxy":        &f.UserlandProxy,
		"icc":                   &f.ICC,
		"ip-masq":               &f.IPMasq,
		"ip":                    &f.IP,
		"seccomp-profile":       &f.SeccompProfile,
		"log-format":            &f.LogFormat,
		"default-runtime":       &f.DefaultRuntime,
		"raw-logs":              &f.RawLogs,
		"selinux-enabled":       &f.SELinuxEnabled,
		"cgroup-parent":         &f.CgroupParent,
		"ip6tables":             &f.IP6Tables,
	}
}

// readFile loads and checks the configuration file against the flags that
// were given. It returns nil, nil when the default file does not exist. The
// order of checks is dockerd's: unknown keys, then flag conflicts, then the
// types of the values.
func readFile(path string, explicit bool, changed map[string]bool, fv *flagValues) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	b, err = decodeText(b)
	if err != nil {
		return nil, err
	}
	file := &fileConfig{}
	// An empty (or all-blank) file is an empty configuration, as in dockerd.
	if b = bytes.TrimSpace(b); len(b) == 0 {
		return file, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	fields := file.fields()

	var unknown []string
	for key := range raw {
		if _, ok := fields[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}

	if err := findConflicts(raw, changed, fv); err != nil {
		return nil, err
	}

	keys := make([]string, 0, len(raw))
	for key := range raw {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if err := json.Unmarshal(raw[key], fields[key]); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return file, nil
}

// findConflicts reports every option given both as a flag and in the file,
// in dockerd's words, ordered by flag name as dockerd's flag library visits
// them.
func findConflicts(raw map[string]json.RawMessage, changed map[string]bool, fv *flagValues) error {
	var conflicts []string
	for _, o := range options { // options is sorted by long name
		if o.key == "" || !changed[o.long] {
			continue
		}
		fileValue, ok := raw[o.key]
		if !ok {
			continue
		}
		var shown any
		if err := json.Unmarshal(fileValue, &shown); err != nil {
			shown = string(fileValue)
		}
		conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %v)", o.key, o.value(fv).String(), shown))
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))
	}
	return nil
}

// decodeText returns the file as UTF-8 without a byte order mark. Like
// dockerd it accepts UTF-8 with or without a BOM and UTF-16 LE with a BOM,
// which is what Windows editors and PowerShell write.
func decodeText(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		b = b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		le := b[0] == 0xFF
		b = b[2:]
		if len(b)%2 != 0 {
			return nil, errors.New("failed to decode configuration JSON: odd number of bytes in UTF-16 text")
		}
		units := make([]uint16, len(b)/2)
		for i := range units {
			if le {
				units[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
		}
		return []byte(string(utf16.Decode(units))), nil
	}
	if !utf8.Valid(b) {
		return nil, errors.New("failed to decode configuration JSON: invalid UTF-8")
	}
	return b, nil
}

// AddressPool is one entry of daemon.json's default-address-pools.
type AddressPool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}
