// Package seccomp turns Docker seccomp profiles into classic BPF programs and
// installs them on the calling thread, without libseccomp.
//
// The flow is the one dockerd and runc follow together: a Profile (Docker's
// JSON format, or DefaultProfile) is resolved for the container's capability
// set, the host architecture and the running kernel (includes/excludes), then
// compiled with libseccomp's semantics: an architecture check, the x32 guard on
// amd64, per-syscall argument rules compared as two 32-bit halves, runc's
// ENOSYS answer for syscalls newer than the profile, and the default action for
// everything else. Load installs the result on the calling thread.
package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
)

// Action is what the filter does with a matching syscall, named as in
// libseccomp and Docker profiles.
type Action string

// The actions a profile may use. ActNotify needs a user-space listener,
// which skiffd does not provide, so profiles using it are rejected.
const (
	ActKill        Action = "SCMP_ACT_KILL" // kills the thread, as libseccomp does
	ActKillThread  Action = "SCMP_ACT_KILL_THREAD"
	ActKillProcess Action = "SCMP_ACT_KILL_PROCESS"
	ActTrap        Action = "SCMP_ACT_TRAP"
	ActErrno       Action = "SCMP_ACT_ERRNO"
	ActTrace       Action = "SCMP_ACT_TRACE"
	ActAllow       Action = "SCMP_ACT_ALLOW"
	ActLog         Action = "SCMP_ACT_LOG"
	ActNotify      Action = "SCMP_ACT_NOTIFY"
)

// Operator compares one syscall argument, named as in libseccomp.
type Operator string

// The comparison operators. For OpMaskedEqual, Value is the mask and ValueTwo
// the datum: the argument matches when arg&Value == ValueTwo&Value, as in
// libseccomp.
const (
	OpNotEqual     Operator = "SCMP_CMP_NE"
	OpLessThan     Operator = "SCMP_CMP_LT"
	OpLessEqual    Operator = "SCMP_CMP_LE"
	OpEqualTo      Operator = "SCMP_CMP_EQ"
	OpGreaterEqual Operator = "SCMP_CMP_GE"
	OpGreaterThan  Operator = "SCMP_CMP_GT"
	OpMaskedEqual  Operator = "SCMP_CMP_MASKED_EQ"
)

// Profile is a seccomp profile in Docker's JSON format.
type Profile struct {
	DefaultAction Action `json:"defaultAction"`
	// DefaultErrno is the errno of an ERRNO default action; nil means EPERM.
	DefaultErrno *uint32 `json:"defaultErrnoRet,omitempty"`
	// Architectures lists SCMP_ARCH_* names the filter accepts besides the
	// native one. A profile uses either this or ArchMap.
	Architectures []string `json:"architectures,omitempty"`
	// ArchMap lists, per native architecture, the sub-architectures its
	// processes may also use (i386 on amd64); only the entry for the host
	// counts.
	ArchMap []ArchMapEntry `json:"archMap,omitempty"`
	// Flags are seccomp(2) filter flags such as SECCOMP_FILTER_FLAG_LOG.
	// They are validated but not applied.
	Flags        []string `json:"flags,omitempty"`
	ListenerPath string   `json:"listenerPath,omitempty"`
	Syscalls     []Rule   `json:"syscalls"`
}

// ArchMapEntry is one native architecture and its sub-architectures.
type ArchMapEntry struct {
	Arch      string   `json:"architecture"`
	SubArches []string `json:"subArchitectures"`
}

// Rule applies Action to the named syscalls when all of Args match. A rule
// is only part of the filter when Includes matches and Excludes does not.
type Rule struct {
	Names []string `json:"names,omitempty"`
	// Name is the single-name form of older profiles.
	Name   string `json:"name,omitempty"`
	Action Action `json:"action"`
	// Errno is the errno of an ERRNO action (or the data of a TRACE action);
	// nil means EPERM.
	Errno    *uint32 `json:"errnoRet,omitempty"`
	Args     []Arg   `json:"args,omitempty"`
	Comment  string  `json:"comment,omitempty"`
	Includes *Filter `json:"includes,omitempty"`
	Excludes *Filter `json:"excludes,omitempty"`
}

// Arg is one comparison against syscall argument Index (0 to 5).
type Arg struct {
	Index    uint     `json:"index"`
	Value    uint64   `json:"value"`
	ValueTwo uint64   `json:"valueTwo,omitempty"`
	Op       Operator `json:"op"`
}

// Filter is a condition on the container and the host. In Includes every
// listed item must hold; in Excludes any listed item rules the rule out.
type Filter struct {
	// Caps are capability names such as CAP_SYS_ADMIN, matched against the
	// container's capabilities.
	Caps []string `json:"caps,omitempty"`
	// Arches are Go-style architecture names (amd64, arm64, x86, ...)
	// matched against the host's.
	Arches []string `json:"arches,omitempty"`
	// MinKernel is "<version>.<major>", such as "4.8".
	MinKernel string `json:"minKernel,omitempty"`
}

// maxErrno is the largest value SECCOMP_RET_DATA can carry.
const maxErrno = 0xffff

// ParseProfile decodes a profile in Docker's JSON format and checks it.
// A profile with neither a default action nor syscalls means "no seccomp"
// to dockerd; ParseProfile returns nil for it.
func ParseProfile(data []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Decoding seccomp profile failed: %w", err))
	}
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil
	}
	if err := p.Validate(); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return &p, nil
}

// Validate reports the first thing in p that Compile cannot honour.
func (p *Profile) Validate() error {
	if len(p.Architectures) != 0 && len(p.ArchMap) != 0 {
		return errors.New("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	if err := checkAction(p.DefaultAction, p.DefaultErrno); err != nil {
		return fmt.Errorf("seccomp profile defaultAction: %w", err)
	}
	if p.ListenerPath != "" {
		return errors.New("seccomp profile: listenerPath (SCMP_ACT_NOTIFY) is not supported")
	}
	for _, a := range p.Architectures {
		if _, ok := scmpArches[a]; !ok {
			return fmt.Errorf("seccomp profile: unknown architecture %q", a)
		}
	}
	for _, m := range p.ArchMap {
		for _, a := range append([]string{m.Arch}, m.SubArches...) {
			if _, ok := scmpArches[a]; !ok {
				return fmt.Errorf("seccomp profile: unknown architecture %q", a)
			}
		}
	}
	for _, f := range p.Flags {
		if _, ok := filterFlags[f]; !ok {
			return fmt.Errorf("seccomp profile: unknown flag %q", f)
		}
	}
	for i := range p.Syscalls {
		r := &p.Syscalls[i]
		if r.Name != "" && len(r.Names) != 0 {
			return errors.New("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'")
		}
		if err := checkAction(r.Action, r.Errno); err != nil {
			return fmt.Errorf("seccomp profile rule for %s: %w", r.describe(), err)
		}
		for _, a := range r.Args {
			if a.Index > 5 {
				return fmt.Errorf("seccomp profile rule for %s: argument index %d out of range (0-5)", r.describe(), a.Index)
			}
			if !validOp(a.Op) {
				return fmt.Errorf("seccomp profile rule for %s: unknown operator %q", r.describe(), a.Op)
			}
		}
		for _, f := range []*Filter{r.Includes, r.Excludes} {
			if f == nil || f.MinKernel == "" {
				continue
			}
			if _, err := parseMinKernel(f.MinKernel); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Rule) names() []string {
	if r.Name != "" {
		return []string{r.Name}
	}
	return r.Names
}

func (r *Rule) describe() string {
	n := r.names()
	switch {
	case len(n) == 0:
		return "(no names)"
	case len(n) == 1:
		return strconv.Quote(n[0])
	default:
		return strconv.Quote(n[0]) + ", ..."
	}
}

func checkAction(a Action, errno *uint32) error {
	switch a {
	case ActKill, ActKillThread, ActKillProcess, ActTrap, ActAllow, ActLog:
		if errno != nil {
			return fmt.Errorf("errnoRet is only valid with %s and %s, not %s", ActErrno, ActTrace, a)
		}
	case ActErrno, ActTrace:
		if errno != nil && *errno > maxErrno {
			return fmt.Errorf("errnoRet %d is out of range", *errno)
		}
	case ActNotify:
		return fmt.Errorf("action %s is not supported", a)
	case "":
		return errors.New("no action given")
	default:
		return fmt.Errorf("unknown action %q", string(a))
	}
	return nil
}

func validOp(op Operator) bool {
	switch op {
	case OpNotEqual, OpLessThan, OpLessEqual, OpEqualTo, OpGreaterEqual, OpGreaterThan, OpMaskedEqual:
		return true
	}
	return false
}

// kernelVersion is the "version.major" pair minKernel compares; minor
// revisions and distribution suffixes do not count, as in dockerd.
type kernelVersion struct{ version, major uint64 }

func (k kernelVersion) atLeast(min kernelVersion) bool {
	return k.version > min.version || (k.version == min.version && k.major >= min.major)
}

// parseMinKernel reads a profile's "<kernel>.<major>" with dockerd's rules.
func parseMinKernel(s string) (kernelVersion, error) {
	bad := func(why error) error {
		if why != nil {
			return fmt.Errorf(`invalid kernel version: %q, expected "<kernel>.<major>": %w`, s, why)
		}
		return fmt.Errorf(`invalid kernel version: %q, expected "<kernel>.<major>"`, s)
	}
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 2 {
		return kernelVersion{}, bad(nil)
	}
	v, err := strconv.ParseUint(parts[0], 10, 8)
	if err != nil {
		return kernelVersion{}, bad(err)
	}
	m, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil {
		return kernelVersion{}, bad(err)
	}
	if v == 0 && m == 0 {
		return kernelVersion{}, bad(errors.New("version cannot be 0.0"))
	}
	return kernelVersion{v, m}, nil
}

// parseRelease reads the leading "version.major" of a uname release such as
// "6.18.44-fc-v769" or "3.12-1-amd64".
func parseRelease(release string) (kernelVersion, error) {
	v, m, err := sys.ParseKernelRelease(release)
	if err != nil {
		return kernelVersion{}, fmt.Errorf("failed to parse kernel version %q: %w", release, err)
	}
	return kernelVersion{uint64(v), uint64(m)}, nil
}

// filterFlags are the seccomp(2) flag names Docker profiles may carry.
var filterFlags = map[string]bool{
	"SECCOMP_FILTER_FLAG_TSYNC":              true,
	"SECCOMP_FILTER_FLAG_LOG":                true,
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW":         true,
	"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": true,
}
