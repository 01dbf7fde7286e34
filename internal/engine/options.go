package engine

import (
	"errors"
	"fmt"
	"skiffd/internal/units"
	"strconv"
	"strings"

	"skiffd/internal/api/types"
)

// securityOpts is what HostConfig.SecurityOpt asks for.
type securityOpts struct {
	noNewPrivs        bool
	noNewPrivsSet     bool // the option says true or false
	seccompUnconfined bool
	seccompProfile    string // JSON, "" for the default
}

// parseSecurityOpt reads one --security-opt value into a securityOpts
// (only the set fields matter); anything that would need a security
// module skiffd lacks is refused.
func parseSecurityOpt(opt string) (securityOpts, error) {
	var so securityOpts
	switch opt {
	case "no-new-privileges", "no-new-privileges:true", "no-new-privileges=true":
		so.noNewPrivs, so.noNewPrivsSet = true, true
		return so, nil
	case "no-new-privileges:false", "no-new-privileges=false":
		so.noNewPrivsSet = true
		return so, nil
	case "label=disable", "label:disable", "apparmor=unconfined", "apparmor:unconfined":
		return so, nil
	}
	key, val, ok := strings.Cut(opt, "=")
	if !ok {
		key, val, ok = strings.Cut(opt, ":")
	}
	if !ok {
		return so, fmt.Errorf("Invalid --security-opt: %q", opt)
	}
	switch key {
	case "seccomp":
		if val == "unconfined" {
			so.seccompUnconfined = true
		} else {
			so.seccompProfile = val
		}
		return so, nil
	case "label", "apparmor":
		return so, fmt.Errorf("skiffd does not support %s security options yet (HostConfig.SecurityOpt %q)", key, opt)
	}
	return so, fmt.Errorf("Invalid --security-opt: %q", opt)
}

// dockerdLogDriver tells whether name is one of the logging drivers
// dockerd has built in besides json-file and none: asking for one is
// refused as missing in skiffd rather than as a typo.
func dockerdLogDriver(name string) bool {
	switch name {
	case "awslogs", "etwlogs", "fluentd", "gcplogs", "gelf", "journald", "local", "logentries", "splunk", "syslog":
		return true
	}
	return false
}

// logRotation checks a log config as dockerd's ValidateLogOpts and the
// json-file driver's New do, and returns what json-file rotation it
// asks for. As in dockerd, max-file without max-size is accepted and
// means no rotation (one file that grows); a driver dockerd does not know
// either is refused with dockerd's text; "none" takes any options.
func logRotation(lc types.LogConfig) (maxSize int64, maxFiles int, err error) {
	switch {
	case lc.Type == "none":
		return 0, 1, nil
	case lc.Type == "json-file":
	case dockerdLogDriver(lc.Type):
		return 0, 0, fmt.Errorf("skiffd does not support the %s logging driver yet (HostConfig.LogConfig)", lc.Type)
	default:
		return 0, 0, fmt.Errorf("logger: no log driver named '%s' is registered", lc.Type)
	}
	maxFiles = 1
	for k, v := range lc.Config {
		switch k {
		case "max-size":
			if maxSize, err = units.RAMInBytes(v); err != nil || maxSize <= 0 {
				return 0, 0, fmt.Errorf("invalid max-size for log: %s", v)
			}
		case "max-file":
			if maxFiles, err = strconv.Atoi(v); err != nil || maxFiles < 1 {
				return 0, 0, errors.New("max-file cannot be less than 1")
			}
		case "compress", "labels", "labels-regex", "env", "env-regex", "tag":
		default:
			return 0, 0, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if maxSize == 0 {
		// dockerd's json-file: without a size there is nothing to rotate.
		maxFiles = 1
	}
	return maxSize, maxFiles, nil
}
