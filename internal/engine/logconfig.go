package engine

// This file: a container's log configuration (HostConfig.LogConfig) as
// dockerd's json-file driver reads it: rotation, compression, and the
// extra attributes (labels, env, tag) every entry carries, which log
// shippers reading the files (Filebeat, Fluent Bit, Promtail) key on.

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/runtime/syslog"
	"skiffd/internal/units"
)

// dockerdLogDriver tells whether name is one of the logging drivers
// dockerd has built in besides json-file and none: asking for one is
// refused as missing in skiffd rather than as a typo.
func dockerdLogDriver(name string) bool {
	switch name {
	case "awslogs", "etwlogs", "gcplogs", "logentries", "splunk":
		return true
	}
	return false
}

// localLogDir is, in a container's directory, where the log of a
// container with the local driver is kept (as dockerd's "local-logs"),
// in the json-file format: the local driver's format is dockerd's
// private one (it hides the path from inspect for that reason), and
// skiffd keeps its logs in the one format its readers know, with the
// local driver's defaults: 20 MB files, five of them, compressed.
const localLogDir = "local-logs"

// logFiles is how a json-file log is kept: rotated at MaxSize bytes (0:
// never) into MaxFiles files, the older rotated ones gzipped with
// Compress.
type logFiles struct {
	MaxSize  int64
	MaxFiles int
	Compress bool
}

// logRotation checks a log config as dockerd's ValidateLogOpts and the
// json-file driver's New do, and returns how its files are kept. As in
// dockerd, max-file without max-size is accepted and means no rotation
// (one file that grows); a driver dockerd does not know either is
// refused with dockerd's text; "none" takes any options.
func logRotation(lc types.LogConfig) (logFiles, error) {
	switch {
	case lc.Type == "none":
		return logFiles{MaxFiles: 1}, nil
	case lc.Type == "json-file", lc.Type == "local", lc.Type == "syslog", lc.Type == "gelf", lc.Type == "fluentd", lc.Type == "journald":
	case dockerdLogDriver(lc.Type):
		return logFiles{}, fmt.Errorf("skiffd does not support the %s logging driver yet (HostConfig.LogConfig)", lc.Type)
	default:
		return logFiles{}, fmt.Errorf("logger: no log driver named '%s' is registered", lc.Type)
	}
	// The options of every driver. The shim writes to a local file and
	// never waits on a log reader, so non-blocking is what it does.
	mode := lc.Config["mode"]
	if mode != "" && mode != "blocking" && mode != "non-blocking" {
		return logFiles{}, fmt.Errorf("logger: logging mode not supported: %s", mode)
	}
	if v, ok := lc.Config["max-buffer-size"]; ok {
		if mode != "non-blocking" {
			return logFiles{}, errors.New("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
		}
		if _, err := units.RAMInBytes(v); err != nil {
			return logFiles{}, fmt.Errorf("error parsing option max-buffer-size: %w", err)
		}
	}
	switch lc.Type {
	case "local":
		return localRotation(lc.Config)
	case "syslog":
		return syslogCache(lc.Config)
	case "gelf":
		return gelfCache(lc.Config)
	case "fluentd":
		return fluentdCache(lc.Config)
	case "journald":
		return journaldCache(lc.Config)
	}
	lf := logFiles{MaxFiles: 1}
	var err error
	for k, v := range lc.Config {
		switch k {
		case "mode", "max-buffer-size":
		case "max-size":
			if lf.MaxSize, err = units.RAMInBytes(v); err != nil || lf.MaxSize <= 0 {
				return logFiles{}, fmt.Errorf("invalid max-size for log: %s", v)
			}
		case "max-file":
			if lf.MaxFiles, err = strconv.Atoi(v); err != nil || lf.MaxFiles < 1 {
				return logFiles{}, errors.New("max-file cannot be less than 1")
			}
		case "compress":
			if lf.Compress, err = strconv.ParseBool(v); err != nil {
				return logFiles{}, fmt.Errorf("invalid compress for log: %s", v)
			}
		case "labels-regex", "env-regex":
			if _, err := regexp.Compile(v); err != nil {
				return logFiles{}, fmt.Errorf("invalid %s for log: %w", k, err)
			}
		case "tag":
			if _, err := expandLogTag(v, logTagFields{}); err != nil {
				return logFiles{}, err
			}
		case "labels", "env":
		default:
			return logFiles{}, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if lf.Compress && (lf.MaxFiles == 1 || lf.MaxSize == 0) {
		return logFiles{}, errors.New("compress cannot be true when max-file is less than 2 or max-size is not set")
	}
	if lf.MaxSize == 0 {
		// dockerd's json-file: without a size there is nothing to rotate.
		lf.MaxFiles = 1
	}
	return lf, nil
}

// logFile is where c's log is kept: its LogPath, or for the local driver
// (whose path dockerd keeps out of inspect) its file under localLogDir.
func (e *Engine) logFile(c *container.Container) string {
	if c.HostConfig != nil {
		switch c.HostConfig.LogConfig.Type {
		case "local":
			return filepath.Join(e.containerDir(c.ID), localLogDir, "container.log")
		case "syslog", "gelf", "fluentd", "journald":
			if cacheDisabled(c.HostConfig.LogConfig) {
				return ""
			}
			// dockerd's local cache of a driver that cannot read.
			return filepath.Join(e.containerDir(c.ID), "container-cached.log")
		}
	}
	return c.LogPath
}

// cacheDisabled reports whether a syslog log config turns the local cache
// (and so docker logs) off.
func cacheDisabled(lc types.LogConfig) bool {
	b, _ := strconv.ParseBool(lc.Config["cache-disabled"])
	return b
}

// localRotation checks the options of the local driver as dockerd's, and
// returns its rotation: its defaults, max-size, max-file and compress.
func localRotation(cfg map[string]string) (logFiles, error) {
	lf := logFiles{MaxSize: 20 << 20, MaxFiles: 5, Compress: true}
	var err error
	for k, v := range cfg {
		switch k {
		case "mode", "max-buffer-size":
		case "max-size":
			if lf.MaxSize, err = units.RAMInBytes(v); err != nil {
				return logFiles{}, fmt.Errorf("invalid value for max-size: %s: %w", v, err)
			}
		case "max-file":
			if lf.MaxFiles, err = strconv.Atoi(v); err != nil {
				return logFiles{}, fmt.Errorf("invalid value for max-file: %s: %w", v, err)
			}
		case "compress":
			if lf.Compress, err = strconv.ParseBool(v); err != nil {
				return logFiles{}, fmt.Errorf("invalid boolean value for compress: %w", err)
			}
		default:
			return logFiles{}, fmt.Errorf("unknown log opt '%s' for log driver local", k)
		}
	}
	switch {
	case lf.MaxSize < 0:
		return logFiles{}, errors.New("max-size must not be negative")
	case lf.MaxFiles < 0:
		return logFiles{}, errors.New("max-file must not be negative")
	case lf.Compress && lf.MaxFiles <= 1:
		return logFiles{}, errors.New("compression cannot be enabled when max file count is 1")
	}
	if lf.MaxSize == 0 || lf.MaxFiles == 0 {
		// dockerd's local driver: no size (or no count) is no rotation.
		lf.MaxSize, lf.MaxFiles, lf.Compress = 0, 1, false
	}
	return lf, nil
}

// syslogCache checks the options of the syslog driver as dockerd's
// ValidateLogOpt does, and returns the rotation of its local cache, which
// docker logs reads (dockerd's "dual logging": 20 MB files, five of them,
// compressed, unless cache-* options say otherwise).
func syslogCache(cfg map[string]string) (logFiles, error) {
	return senderCache(cfg, "unknown log opt '%s' for syslog log driver", func(k, v string) (bool, error) {
		switch k {
		case "syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify":
		case "syslog-address":
			if _, _, err := syslogTarget(v); err != nil {
				return true, err
			}
		case "syslog-facility":
			if _, err := syslogFacility(v); err != nil {
				return true, err
			}
		case "syslog-format":
			if !syslog.ValidFormat(v) {
				return true, errors.New("Invalid syslog format")
			}
		default:
			return false, nil
		}
		return true, nil
	})
}

// senderCache checks the options of a driver that sends elsewhere: those
// each such driver takes (mode, max-buffer-size, labels, env, their
// regular expressions, tag, and dual logging's cache-*), and through own
// the driver's own, own saying false for a key it does not know (refused
// with unknown, the driver's text, which names the key). It returns the
// rotation of the local cache.
func senderCache(cfg map[string]string, unknown string, own func(k, v string) (known bool, err error)) (logFiles, error) {
	cache := map[string]string{}
	for k, v := range cfg {
		switch k {
		case "mode", "max-buffer-size", "env", "env-regex", "labels", "labels-regex":
		case "tag":
			if _, err := expandLogTag(v, logTagFields{}); err != nil {
				return logFiles{}, err
			}
		case "cache-disabled", "cache-max-size", "cache-max-file", "cache-compress":
			if err := cacheOption(cache, k, v); err != nil {
				return logFiles{}, err
			}
		default:
			known, err := own(k, v)
			if err != nil {
				return logFiles{}, err
			}
			if !known {
				return logFiles{}, fmt.Errorf(unknown, k)
			}
		}
	}
	return attrsAndCache(cfg, cache)
}

// cacheOption checks one option of dockerd's local cache (dual logging)
// and keeps those of its rotation in cache, as the local driver's.
func cacheOption(cache map[string]string, k, v string) error {
	if k == "cache-disabled" {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("invalid value for cache-disabled: %s", v)
		}
		return nil
	}
	cache[strings.TrimPrefix(k, "cache-")] = v
	return nil
}

// attrsAndCache checks the regular expressions of the attributes a
// driver that sends elsewhere may take, and returns the rotation of its
// local cache.
func attrsAndCache(cfg, cache map[string]string) (logFiles, error) {
	for _, k := range []string{"labels-regex", "env-regex"} {
		if v := cfg[k]; v != "" {
			if _, err := regexp.Compile(v); err != nil {
				return logFiles{}, fmt.Errorf("invalid %s for log: %w", k, err)
			}
		}
	}
	return localRotation(cache)
}

// gelfCache checks the options of the gelf driver as dockerd's
// ValidateLogOpt does, and returns the rotation of its local cache.
func gelfCache(cfg map[string]string) (logFiles, error) {
	proto, _, err := gelfTarget(cfg["gelf-address"])
	if err != nil {
		return logFiles{}, err
	}
	return senderCache(cfg, "unknown log opt %q for gelf log driver", func(k, v string) (bool, error) {
		switch k {
		case "gelf-address":
		case "gelf-compression-level":
			if proto != "udp" {
				return true, errors.New("compression is only supported on UDP")
			}
			if i, err := strconv.Atoi(v); err != nil || i < -1 || i > 9 {
				return true, fmt.Errorf("unknown value %q for log opt %q for gelf log driver", v, k)
			}
		case "gelf-compression-type":
			if proto != "udp" {
				return true, errors.New("compression is only supported on UDP")
			}
			if v != "gzip" && v != "zlib" && v != "none" {
				return true, fmt.Errorf("unknown value %q for log opt %q for gelf log driver", v, k)
			}
		case "gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay":
			if proto != "tcp" {
				return true, fmt.Errorf("%q is only valid for TCP", k)
			}
			if i, err := strconv.Atoi(v); err != nil || i < 0 {
				return true, fmt.Errorf("%q must be a positive integer", k)
			}
		default:
			return false, nil
		}
		return true, nil
	})
}

// gelfTarget is the protocol and host:port of a gelf-address, as dockerd
// reads it.
func gelfTarget(address string) (proto, addr string, err error) {
	if address == "" {
		return "", "", errors.New("gelf-address is a required parameter")
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", "", err
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" {
		return "", "", errors.New("gelf: endpoint needs to be TCP or UDP")
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", "", errors.New("gelf: please provide gelf-address as proto://host:port")
	}
	return u.Scheme, u.Host, nil
}

// gelfSpec is where the shim sends c's lines with the gelf driver, with
// dockerd's fields of the container; nil for other drivers.
func gelfSpec(c *container.Container) (*spec.Gelf, error) {
	lc := c.HostConfig.LogConfig
	if lc.Type != "gelf" {
		return nil, nil
	}
	proto, addr, err := gelfTarget(lc.Config["gelf-address"])
	if err != nil {
		return nil, err
	}
	tag, err := driverTag(c)
	if err != nil {
		return nil, err
	}
	g := &spec.Gelf{Proto: proto, Address: addr, Compression: "gzip", Level: 1, Host: hostName(), Extra: map[string]string{
		"_container_id": c.ID, "_container_name": strings.TrimPrefix(c.Name, "/"), "_image_id": c.ImageID,
		"_command": strings.TrimSpace(c.Path + " " + strings.Join(c.Args, " ")), "_tag": tag,
		"_created": c.Created.Format(time.RFC3339Nano)}}
	if c.Config != nil {
		g.Extra["_image_name"] = c.Config.Image
	}
	if v := lc.Config["gelf-compression-type"]; v != "" {
		g.Compression = v
	}
	if v := lc.Config["gelf-compression-level"]; v != "" {
		g.Level, _ = strconv.Atoi(v)
	}
	attrs := map[string]string{}
	if err := containerAttrs(attrs, c, lc.Config); err != nil {
		return nil, err
	}
	for k, v := range attrs {
		if !strings.HasPrefix(k, "_") {
			k = "_" + k
		}
		g.Extra[k] = v
	}
	return g, nil
}

// syslogTarget is the protocol and address of a syslog-address, as
// dockerd's parseAddress reads it: unix and unixgram paths must exist,
// udp, tcp and tcp+tls take port 514 when none is given; "" is the local
// syslog daemon.
func syslogTarget(address string) (proto, addr string, err error) {
	if address == "" {
		return "", "", nil
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "unix", "unixgram":
		if _, err := os.Stat(u.Path); err != nil {
			return "", "", err
		}
		return u.Scheme, u.Path, nil
	case "udp", "tcp", "tcp+tls":
	default:
		return "", "", fmt.Errorf("unsupported scheme: '%s'", u.Scheme)
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		if !strings.Contains(err.Error(), "missing port in address") {
			return "", "", err
		}
		host = net.JoinHostPort(host, "514")
	}
	return u.Scheme, host, nil
}

// syslogFacility is the facility number of a syslog-facility: a name, or
// a number from 0 to 23; "" is daemon.
func syslogFacility(f string) (int, error) {
	names := []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"}
	switch {
	case f == "":
		return 3, nil
	case strings.HasPrefix(f, "local") && len(f) == 6 && f[5] >= '0' && f[5] <= '7':
		return 16 + int(f[5]-'0'), nil
	}
	for i, n := range names {
		if f == n {
			return i, nil
		}
	}
	if n, err := strconv.Atoi(f); err == nil && n >= 0 && n <= 23 {
		return n, nil
	}
	return 0, errors.New("invalid syslog facility")
}

// syslogSpec is where the shim sends c's lines with the syslog driver;
// nil for other drivers. The tag defaults to the short container ID, as
// dockerd's.
func syslogSpec(c *container.Container) (*spec.Syslog, error) {
	lc := c.HostConfig.LogConfig
	if lc.Type != "syslog" {
		return nil, nil
	}
	proto, addr, err := syslogTarget(lc.Config["syslog-address"])
	if err != nil {
		return nil, err
	}
	fac, err := syslogFacility(lc.Config["syslog-facility"])
	if err != nil {
		return nil, err
	}
	tag, err := driverTag(c)
	if err != nil {
		return nil, err
	}
	_, skip := lc.Config["syslog-tls-skip-verify"]
	return &spec.Syslog{Proto: proto, Address: addr, Facility: fac, Format: lc.Config["syslog-format"], Tag: tag, Hostname: hostName(),
		TLSCA: lc.Config["syslog-tls-ca-cert"], TLSCert: lc.Config["syslog-tls-cert"], TLSKey: lc.Config["syslog-tls-key"], TLSSkipVerify: skip}, nil
}

// logAttrs are the extra attributes of c's log entries, as dockerd's
// json-file driver writes them ("attrs"): the container labels the
// labels option names or labels-regex matches, the environment variables
// of env and env-regex, and the tag when one is asked for (no default).
// nil when there are none.
func logAttrs(c *container.Container) (map[string]string, error) {
	cfg := c.HostConfig.LogConfig.Config
	if cfg["labels"] == "" && cfg["labels-regex"] == "" && cfg["env"] == "" && cfg["env-regex"] == "" && cfg["tag"] == "" {
		return nil, nil
	}
	out := map[string]string{}
	if err := containerAttrs(out, c, cfg); err != nil {
		return nil, err
	}
	if v := cfg["tag"]; v != "" {
		tag, err := containerLogTag(c, v)
		if err != nil {
			return nil, err
		}
		if tag != "" {
			out["tag"] = tag
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// containerAttrs adds to out the container labels and environment
// variables the labels, labels-regex, env and env-regex options pick, as
// dockerd's ExtraAttributes.
func containerAttrs(out map[string]string, c *container.Container, cfg map[string]string) error {
	var labels map[string]string
	var env []string
	if c.Config != nil {
		labels, env = c.Config.Labels, c.Config.Env
	}
	envs := map[string]string{}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			envs[k] = v
		}
	}
	if err := pickAttrs(out, labels, cfg["labels"], cfg["labels-regex"]); err != nil {
		return err
	}
	return pickAttrs(out, envs, cfg["env"], cfg["env-regex"])
}

// pickAttrs copies into out the entries of from that names (a comma
// list) names or pattern (a regular expression) matches, as dockerd's
// ExtraAttributes does for labels and environment variables.
func pickAttrs(out, from map[string]string, names, pattern string) error {
	if names != "" {
		for _, k := range strings.Split(names, ",") {
			if v, ok := from[k]; ok {
				out[k] = v
			}
		}
	}
	if pattern == "" {
		return nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return err
	}
	for k, v := range from {
		if re.MatchString(k) {
			out[k] = v
		}
	}
	return nil
}

// driverTag is the tag of c's messages for a driver that sends them
// elsewhere (syslog, gelf): its tag option, by default the short
// container ID, as dockerd's DefaultTemplate.
func driverTag(c *container.Container) (string, error) {
	tmpl := c.HostConfig.LogConfig.Config["tag"]
	if tmpl == "" {
		tmpl = "{{.ID}}"
	}
	return containerLogTag(c, tmpl)
}

// containerLogTag is log tag template tmpl expanded for container c.
func containerLogTag(c *container.Container, tmpl string) (string, error) {
	f := logTagFields{id: c.ID, name: strings.TrimPrefix(c.Name, "/"), imageID: c.ImageID, hostname: hostName(),
		command: strings.TrimSpace(c.Path + " " + strings.Join(c.Args, " "))}
	if c.Config != nil {
		f.imageName = c.Config.Image
	}
	return expandLogTag(tmpl, f)
}

// logTagFields are what a log tag's placeholders stand for.
type logTagFields struct {
	id, name, imageID, imageName, command, hostname string
}

// expandLogTag replaces the placeholders of dockerd's log tag templates
// in tag: {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageID}},
// {{.ImageFullID}}, {{.ImageName}}, {{.Command}}, {{.Hostname}} and
// {{.DaemonName}}, anywhere in the text. Other template actions (pipes,
// functions) are refused: skiffd has no template engine.
func expandLogTag(tag string, f logTagFields) (string, error) {
	short := func(id string) string {
		id = strings.TrimPrefix(id, "sha256:")
		if len(id) > 12 {
			return id[:12]
		}
		return id
	}
	var b strings.Builder
	for {
		i := strings.Index(tag, "{{")
		if i < 0 {
			b.WriteString(tag)
			return b.String(), nil
		}
		j := strings.Index(tag[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("invalid log tag %q: unclosed action", tag)
		}
		b.WriteString(tag[:i])
		var v string
		switch action := strings.TrimSpace(tag[i+2 : i+j]); action {
		case ".ID":
			v = short(f.id)
		case ".FullID":
			v = f.id
		case ".Name":
			v = f.name
		case ".ImageID":
			v = short(f.imageID)
		case ".ImageFullID":
			v = f.imageID
		case ".ImageName":
			v = f.imageName
		case ".Command":
			v = f.command
		case ".Hostname":
			v = f.hostname
		case ".DaemonName":
			v = "docker"
		default:
			return "", fmt.Errorf("skiffd does not support the log tag action {{%s}} (only {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageID}}, {{.ImageFullID}}, {{.ImageName}}, {{.Command}}, {{.Hostname}}, {{.DaemonName}})", action)
		}
		b.WriteString(v)
		tag = tag[i+j+2:]
	}
}

// hostName is the host's name for log tags ({{.Hostname}}), "" when the
// kernel will not say.
func hostName() string {
	h, _ := os.Hostname()
	return h
}
