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
		so.noNewPrivs = true
		return so, nil
	case "no-new-privileges:false", "no-new-privileges=false":
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

// logRotation reads the json-file options max-size and max-file.
func logRotation(lc types.LogConfig) (maxSize int64, maxFiles int, err error) {
	switch lc.Type {
	case "json-file", "none":
	default:
		return 0, 0, fmt.Errorf("skiffd does not support the %s logging driver yet (HostConfig.LogConfig)", lc.Type)
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
	if maxFiles > 1 && maxSize == 0 {
		return 0, 0, errors.New("max-file cannot be set when max-size is not set")
	}
	return maxSize, maxFiles, nil
}
