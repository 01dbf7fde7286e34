package volume

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/units"
)

// mountFlag is one fstab-style keyword: the flag it sets, or clears.
type mountFlag struct {
	flag  uintptr
	clear bool
}

// mountFlags are the keywords mount(8) turns into mount(2) flags; anything
// else in an option string is file-system data ("size=1m", "uid=1000").
var mountFlags = map[string]mountFlag{
	"ro":            {flag: syscall.MS_RDONLY},
	"rw":            {flag: syscall.MS_RDONLY, clear: true},
	"suid":          {flag: syscall.MS_NOSUID, clear: true},
	"nosuid":        {flag: syscall.MS_NOSUID},
	"dev":           {flag: syscall.MS_NODEV, clear: true},
	"nodev":         {flag: syscall.MS_NODEV},
	"exec":          {flag: syscall.MS_NOEXEC, clear: true},
	"noexec":        {flag: syscall.MS_NOEXEC},
	"sync":          {flag: syscall.MS_SYNCHRONOUS},
	"async":         {flag: syscall.MS_SYNCHRONOUS, clear: true},
	"dirsync":       {flag: syscall.MS_DIRSYNC},
	"remount":       {flag: syscall.MS_REMOUNT},
	"mand":          {flag: syscall.MS_MANDLOCK},
	"nomand":        {flag: syscall.MS_MANDLOCK, clear: true},
	"atime":         {flag: syscall.MS_NOATIME, clear: true},
	"noatime":       {flag: syscall.MS_NOATIME},
	"diratime":      {flag: syscall.MS_NODIRATIME, clear: true},
	"nodiratime":    {flag: syscall.MS_NODIRATIME},
	"bind":          {flag: syscall.MS_BIND},
	"rbind":         {flag: syscall.MS_BIND | syscall.MS_REC},
	"unbindable":    {flag: syscall.MS_UNBINDABLE},
	"runbindable":   {flag: syscall.MS_UNBINDABLE | syscall.MS_REC},
	"private":       {flag: syscall.MS_PRIVATE},
	"rprivate":      {flag: syscall.MS_PRIVATE | syscall.MS_REC},
	"shared":        {flag: syscall.MS_SHARED},
	"rshared":       {flag: syscall.MS_SHARED | syscall.MS_REC},
	"slave":         {flag: syscall.MS_SLAVE},
	"rslave":        {flag: syscall.MS_SLAVE | syscall.MS_REC},
	"relatime":      {flag: syscall.MS_RELATIME},
	"norelatime":    {flag: syscall.MS_RELATIME, clear: true},
	"strictatime":   {flag: syscall.MS_STRICTATIME},
	"nostrictatime": {flag: syscall.MS_STRICTATIME, clear: true},
}

// propagationFlags change a mount's propagation type; mount(2) takes them
// in a call of their own.
const propagationFlags = syscall.MS_SHARED | syscall.MS_PRIVATE | syscall.MS_SLAVE | syscall.MS_UNBINDABLE

// ParseMountOptions splits an fstab-style option string ("ro,size=1m,noexec")
// into mount(2) flags and the file-system data string. Propagation keywords
// ("rprivate") come back separately in propagation (with MS_REC when
// recursive), since the kernel applies them in a second mount call.
// Unknown keywords are data, as mount(8) passes them on.
func ParseMountOptions(options string) (flags, propagation uintptr, data string) {
	var rest []string
	for _, o := range strings.Split(options, ",") {
		if o == "" || o == "defaults" {
			continue
		}
		f, ok := mountFlags[o]
		if !ok {
			rest = append(rest, o)
			continue
		}
		if f.flag&propagationFlags != 0 {
			propagation = f.flag
			continue
		}
		if f.clear {
			flags &^= f.flag
		} else {
			flags |= f.flag
		}
	}
	return flags, propagation, strings.Join(rest, ",")
}

// tmpfsDataKeys are the key=value options a tmpfs mount accepts.
var tmpfsDataKeys = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true}

// isPropagationKeyword reports whether o is a bind or propagation keyword;
// a tmpfs option list keeps only the last of those.
func isPropagationKeyword(o string) bool {
	switch o {
	case "bind", "rbind", "unbindable", "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave":
		return true
	}
	return false
}

// MergeTmpfsOptions removes duplicates from a tmpfs option list, later
// entries winning ("size=1m,size=2m" keeps size=2m, "exec" after "noexec"
// keeps exec), and refuses what tmpfs does not take, with dockerd's error
// `Invalid tmpfs option ["x"]`.
func MergeTmpfsOptions(options []string) ([]string, error) {
	seenFlags := map[uintptr]bool{}
	seenData := map[string]bool{}
	var merged []string
	for i := len(options) - 1; i >= 0; i-- {
		o := options[i]
		if o == "defaults" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			key := f.flag
			if isPropagationKeyword(o) {
				key = 0 // one propagation mode, whichever keyword it is
			}
			if !seenFlags[key] {
				merged = append(merged, o)
				seenFlags[key] = true
			}
			continue
		}
		k, _, ok := strings.Cut(o, "=")
		if !ok || !tmpfsDataKeys[k] {
			parts := strings.SplitN(o, "=", 2)
			q := make([]string, len(parts))
			for j, p := range parts {
				q[j] = strconv.Quote(p)
			}
			return nil, fmt.Errorf("Invalid tmpfs option [%s]", strings.Join(q, " "))
		}
		if !seenData[k] {
			merged = append(merged, o)
			seenData[k] = true
		}
	}
	for i, j := 0, len(merged)-1; i < j; i, j = i+1, j-1 {
		merged[i], merged[j] = merged[j], merged[i]
	}
	return merged, nil
}

// validDriverOptions are the options of the local driver: a mount(8)-like
// type, device and option string, and a quota size.
var validDriverOptions = map[string]bool{"type": true, "device": true, "o": true, "size": true}

// validateOptions checks local driver options the way dockerd does: known
// keys only, type and device together, o only with both, and no size quota
// (skiffd has no project quota support).
func validateOptions(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	for k := range opts {
		if !validDriverOptions[k] {
			return errdefs.InvalidParameter(fmt.Errorf("invalid option: %q", k))
		}
	}
	if s, ok := opts["size"]; ok {
		n, err := units.RAMInBytes(s)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		if n > 0 {
			return errdefs.InvalidParameter(errors.New("quota size requested but no quota support"))
		}
	}
	for _, need := range []struct{ opt, requires string }{
		{"device", "type"}, {"type", "device"}, {"o", "device"}, {"o", "type"},
	} {
		if _, ok := opts[need.opt]; !ok {
			continue
		}
		if _, ok := opts[need.requires]; !ok {
			return errdefs.InvalidParameter(fmt.Errorf("missing required option: %q", need.requires))
		}
	}
	return nil
}
