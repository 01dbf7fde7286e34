package engine

import (
	"fmt"
	"strings"
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
