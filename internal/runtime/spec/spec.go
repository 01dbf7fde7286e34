// Package spec is the runtime configuration of one container: what the
// daemon hands to the shim, and the shim to init and the exec helper. It is
// a small subset of the OCI runtime spec, independent of the Docker API
// types, encoded as JSON.
//
//	s := spec.Default("c1", "/srv/skiffd/containers/c1/rootfs")
//	s.Process.Args = []string{"/bin/sh", "-c", "echo hello"}
//	s.Hostname = "c1"
package spec

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Version is the version of this format. A shim refuses a spec of a newer
// version than it knows.
const Version = 1

// Spec describes one container.
type Spec struct {
	Version int `json:"version"`
	// ID is the container ID; it names the shim, its socket and the cgroup.
	ID string `json:"id"`
	// Root is the host path of the (already mounted) root file system.
	Root string `json:"root"`
	// ReadonlyRoot remounts the root read-only (--read-only).
	ReadonlyRoot bool    `json:"readonlyRoot,omitempty"`
	Hostname     string  `json:"hostname,omitempty"`
	Domainname   string  `json:"domainname,omitempty"`
	Process      Process `json:"process"`
	// Mounts are made in order, after the root is prepared and before
	// pivot_root; destinations are container paths.
	Mounts        []Mount  `json:"mounts,omitempty"`
	MaskedPaths   []string `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string `json:"readonlyPaths,omitempty"`
	// Devices are created in the container's /dev.
	Devices []Device `json:"devices,omitempty"`
	// Namespaces lists the namespaces the container gets: a new one when
	// Path is empty, else the one at Path (e.g. /proc/<pid>/ns/net).
	// Namespaces not listed are shared with the host.
	Namespaces []Namespace       `json:"namespaces,omitempty"`
	Sysctl     map[string]string `json:"sysctl,omitempty"`
	// Cgroup places the container in its own cgroups; nil leaves it in
	// the shim's.
	Cgroup      *Cgroup           `json:"cgroup,omitempty"`
	Seccomp     *Seccomp          `json:"seccomp,omitempty"`
	Log         Log               `json:"log"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Process is the container's first process, or an exec'd one.
type Process struct {
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"`
	// Cwd is an absolute container path; "" means "/".
	Cwd string `json:"cwd,omitempty"`
	// Init runs a minimal init as PID 1 that starts the process, forwards
	// signals to it and reaps orphans (docker run --init). Only init
	// honours it.
	Init bool `json:"init,omitempty"`
	// CreateCwd makes Cwd (mode 0755, owned by root) when it is missing,
	// as dockerd does for the image's or the user's WorkingDir. Only init
	// honours it; docker exec -w does not create directories.
	CreateCwd bool `json:"createCwd,omitempty"`
	// User is Docker's user[:group] form, names or numbers, resolved in
	// the container's /etc/passwd and /etc/group; "" is root.
	User string `json:"user,omitempty"`
	// AdditionalGroups are Docker's --group-add values, names or numbers.
	AdditionalGroups []string `json:"additionalGroups,omitempty"`
	Terminal         bool     `json:"terminal,omitempty"`
	// ConsoleHeight and ConsoleWidth are the initial TTY size.
	ConsoleHeight uint16 `json:"consoleHeight,omitempty"`
	ConsoleWidth  uint16 `json:"consoleWidth,omitempty"`
	// OpenStdin gives the process a stdin pipe that attach can write to;
	// without it stdin is /dev/null. StdinOnce closes it when the first
	// attached client closes its stdin.
	OpenStdin bool `json:"openStdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// Capabilities is the final set, CAP_-prefixed names; every other
	// capability is dropped from every set and the bounding set.
	Capabilities    []string `json:"capabilities"`
	NoNewPrivileges bool     `json:"noNewPrivileges,omitempty"`
	Rlimits         []Rlimit `json:"rlimits,omitempty"`
	OOMScoreAdj     *int     `json:"oomScoreAdj,omitempty"`
}

// ReadOnlyTopOnly is a bind mount option: read-only on the bound mount
// alone, its submounts keeping their flags (dockerd's
// BindOptions.ReadOnlyNonRecursive, runc's "ro"). Plain "ro" on a bind
// makes every submount read-only too (runc's "rro", dockerd's default
// since API 1.44).
const ReadOnlyTopOnly = "ro-toponly"

// Mount is one file system mounted into the container.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Device is a device node created in the container.
type Device struct {
	Path  string `json:"path"`
	Type  string `json:"type"` // "c" or "b"
	Major uint32 `json:"major"`
	Minor uint32 `json:"minor"`
	Mode  uint32 `json:"mode"`
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
}

// Namespace types, as in the OCI spec.
const (
	PIDNamespace     = "pid"
	NetworkNamespace = "network"
	MountNamespace   = "mount"
	IPCNamespace     = "ipc"
	UTSNamespace     = "uts"
	CgroupNamespace  = "cgroup"
)

// Namespace is one namespace of the container.
type Namespace struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"`
}

// Rlimit is one resource limit; Type is the RLIMIT_ name.
type Rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// Cgroup says where the container's cgroups are and what limits they have.
type Cgroup struct {
	// Parent is the cgroup (below each hierarchy's root) holding the
	// container's; "" is skiffd's default.
	Parent    string    `json:"parent,omitempty"`
	Resources Resources `json:"resources"`
}

// Resources are the cgroup limits, in Docker's units.
type Resources struct {
	Memory            int64  `json:"memory,omitempty"`
	MemorySwap        int64  `json:"memorySwap,omitempty"`
	MemoryReservation int64  `json:"memoryReservation,omitempty"`
	NanoCPUs          int64  `json:"nanoCpus,omitempty"`
	CPUShares         int64  `json:"cpuShares,omitempty"`
	CPUQuota          int64  `json:"cpuQuota,omitempty"`
	CPUPeriod         int64  `json:"cpuPeriod,omitempty"`
	CpusetCpus        string `json:"cpusetCpus,omitempty"`
	CpusetMems        string `json:"cpusetMems,omitempty"`
	// CPURealtimePeriod and CPURealtimeRuntime are the real-time budget
	// in microseconds (cgroup v1 with RT group scheduling only).
	CPURealtimePeriod  int64  `json:"cpuRealtimePeriod,omitempty"`
	CPURealtimeRuntime int64  `json:"cpuRealtimeRuntime,omitempty"`
	PidsLimit          int64  `json:"pidsLimit,omitempty"`
	BlkioWeight        uint16 `json:"blkioWeight,omitempty"`
	// MemorySwappiness (0..100, nil: the kernel's) and OomKillDisable
	// exist on cgroup v1 only; the engine discards them elsewhere.
	MemorySwappiness *int64 `json:"memorySwappiness,omitempty"`
	OomKillDisable   bool   `json:"oomKillDisable,omitempty"`
	// Devices is the device allow-list (cgroup device rules, in order);
	// nil is dockerd's default policy.
	Devices []DeviceRule `json:"devices,omitempty"`
	// BlkioThrottle are per-device rate limits and BlkioWeightDevice
	// per-device weights, by device number.
	BlkioThrottle     []ThrottleDevice `json:"blkioThrottle,omitempty"`
	BlkioWeightDevice []WeightDevice   `json:"blkioWeightDevice,omitempty"`
}

// ThrottleDevice is one per-device block IO rate limit: Kind is read_bps,
// write_bps, read_iops or write_iops.
type ThrottleDevice struct {
	Kind  string `json:"kind"`
	Major int64  `json:"major"`
	Minor int64  `json:"minor"`
	Rate  uint64 `json:"rate"`
}

// WeightDevice is one per-device block IO weight.
type WeightDevice struct {
	Major  int64  `json:"major"`
	Minor  int64  `json:"minor"`
	Weight uint16 `json:"weight"`
}

// DeviceRule is one device cgroup rule: Type 'a', 'b' or 'c'; Major and
// Minor -1 for any; Access a combination of r, w and m ("" is rwm).
type DeviceRule struct {
	Allow  bool   `json:"allow"`
	Type   string `json:"type"`
	Major  int64  `json:"major"`
	Minor  int64  `json:"minor"`
	Access string `json:"access,omitempty"`
}

// Seccomp is the system call filter. Filter is the compiled classic BPF
// program; the shim compiles nothing, so that no JSON parsing happens near
// the container.
//
// In JSON the program is {"bpf": "<base64>"}, 8 bytes an instruction
// (code, jt, jf, k; little-endian): Docker's default profile is some 1,600
// instructions, which as JSON objects took a millisecond to decode in the
// shim and again in init on every start. The older form, {"filter":
// [{"c":..,"t":..,"f":..,"k":..}, ...]}, is still read (the spec of a
// container started by an older skiffd).
type Seccomp struct {
	Filter []SockFilter
}

// seccompJSON is Seccomp's JSON form, old and new.
type seccompJSON struct {
	BPF    []byte       `json:"bpf,omitempty"`
	Filter []SockFilter `json:"filter,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (s Seccomp) MarshalJSON() ([]byte, error) {
	return json.Marshal(seccompJSON{BPF: appendProgram(make([]byte, 0, 8*len(s.Filter)), s.Filter)})
}

// appendProgram appends the program's instructions to b, 8 bytes each
// (code, jt, jf, k; little-endian): its form in JSON (base64) and in the
// binary form alike.
func appendProgram(b []byte, prog []SockFilter) []byte {
	for _, in := range prog {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return b
}

// decodeProgram reads what appendProgram wrote; false when bpf is not
// whole instructions.
func decodeProgram(bpf []byte) ([]SockFilter, bool) {
	if len(bpf)%8 != 0 {
		return nil, false
	}
	prog := make([]SockFilter, len(bpf)/8)
	for i := range prog {
		b := bpf[8*i:]
		prog[i] = SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return prog, true
}

// UnmarshalJSON implements json.Unmarshaler. The form MarshalJSON writes,
// {"bpf":"<base64>"} with nothing else, is decoded straight from its
// base64: through json.Unmarshal its text was scanned twice more and
// decoded by a fresh decoder, 70 of the 126 µs of decoding init's config,
// paid in the shim and again in init on every start (issue 13). Any other
// form (spacing, escapes, the old filter list) goes through json.Unmarshal.
func (s *Seccomp) UnmarshalJSON(data []byte) error {
	bpf, ok := directBPF(data)
	if !ok {
		var j seccompJSON
		if err := json.Unmarshal(data, &j); err != nil {
			return err
		}
		if j.BPF == nil {
			s.Filter = j.Filter
			return nil
		}
		bpf = j.BPF
	}
	prog, ok := decodeProgram(bpf)
	if !ok {
		return fmt.Errorf("seccomp program of %d bytes is not whole instructions", len(bpf))
	}
	s.Filter = prog
	return nil
}

// directBPF decodes the program when data is exactly {"bpf":"<base64>"},
// as MarshalJSON writes it.
func directBPF(data []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"bpf":"`))
	if !ok {
		return nil, false
	}
	b64, ok := bytes.CutSuffix(rest, []byte(`"}`))
	// (base64 skips CR and LF, which JSON refuses in a string.)
	if !ok || bytes.ContainsAny(b64, "\"\\\r\n") {
		return nil, false
	}
	bpf := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(bpf, b64)
	if err != nil {
		return nil, false
	}
	return bpf[:n], true
}

// SockFilter is one classic BPF instruction.
type SockFilter struct {
	Code uint16 `json:"c"`
	Jt   uint8  `json:"t"`
	Jf   uint8  `json:"f"`
	K    uint32 `json:"k"`
}

// Log is where and how the shim writes the json-file log.
type Log struct {
	// Path is the log file; "" disables logging.
	Path     string `json:"path,omitempty"`
	MaxSize  int64  `json:"maxSize,omitempty"`  // bytes; 0 is unlimited
	MaxFiles int    `json:"maxFiles,omitempty"` // files kept, at least 1
	Compress bool   `json:"compress,omitempty"` // gzip rotated files
	// Attrs go into every entry as "attrs" (log-opt labels, env, tag).
	Attrs map[string]string `json:"attrs,omitempty"`
	// Syslog, for the syslog driver, is where every line is sent too;
	// the file is then dockerd's local cache of it, for docker logs.
	Syslog *Syslog `json:"syslog,omitempty"`
	// Gelf, for the gelf driver, is where every line is sent too, as
	// Syslog.
	Gelf *Gelf `json:"gelf,omitempty"`
	// Fluentd, for the fluentd driver, is where every line is sent too,
	// as Syslog.
	Fluentd *Fluentd `json:"fluentd,omitempty"`
	// Journald, for the journald driver, is where every line is sent
	// too, as Syslog.
	Journald *Journald `json:"journald,omitempty"`
}

// Journald is the journal's socket and the container's fields of every
// message (internal/runtime/journald).
type Journald struct {
	Socket string            `json:"socket"`
	Vars   map[string]string `json:"vars,omitempty"`
}

// Fluentd is the fluentd driver's destination and options
// (internal/runtime/fluentd); durations in nanoseconds.
type Fluentd struct {
	Network           string            `json:"network"`
	Address           string            `json:"address"`
	Tag               string            `json:"tag"`
	Record            map[string]string `json:"record,omitempty"`
	SubSecond         bool              `json:"subSecond,omitempty"`
	RequestAck        bool              `json:"requestAck,omitempty"`
	Async             bool              `json:"async,omitempty"`
	BufferLimit       int64             `json:"bufferLimit,omitempty"`
	RetryWait         int64             `json:"retryWait,omitempty"`
	MaxRetries        int               `json:"maxRetries,omitempty"`
	ReconnectInterval int64             `json:"reconnectInterval,omitempty"`
	WriteTimeout      int64             `json:"writeTimeout,omitempty"`
	ReadTimeout       int64             `json:"readTimeout,omitempty"`
}

// Gelf is the gelf driver's destination (internal/runtime/gelf).
type Gelf struct {
	Proto       string            `json:"proto"`
	Address     string            `json:"address"`
	Compression string            `json:"compression,omitempty"`
	Level       int               `json:"level"`
	Host        string            `json:"host,omitempty"`
	Extra       map[string]string `json:"extra,omitempty"`
}

// Syslog is the syslog driver's destination (internal/runtime/syslog).
type Syslog struct {
	Proto    string `json:"proto,omitempty"`
	Address  string `json:"address,omitempty"`
	Facility int    `json:"facility"`
	Format   string `json:"format,omitempty"`
	Tag      string `json:"tag,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// TLS of tcp+tls: files of the CA, certificate and key.
	TLSCA         string `json:"tlsCA,omitempty"`
	TLSCert       string `json:"tlsCert,omitempty"`
	TLSKey        string `json:"tlsKey,omitempty"`
	TLSSkipVerify bool   `json:"tlsSkipVerify,omitempty"`
}

// HasNamespace reports whether the container gets a namespace of type t,
// and its path if it joins an existing one.
func (s *Spec) HasNamespace(t string) (path string, ok bool) {
	for _, n := range s.Namespaces {
		if n.Type == t {
			return n.Path, true
		}
	}
	return "", false
}

// Validate checks what the runtime relies on. It does not look at the
// file system.
func (s *Spec) Validate() error {
	if s.Version > Version {
		return fmt.Errorf("runtime spec version %d is newer than this runtime (%d)", s.Version, Version)
	}
	if s.ID == "" || strings.ContainsAny(s.ID, "/\x00") || s.ID == "." || s.ID == ".." {
		return fmt.Errorf("invalid container id %q", s.ID)
	}
	if !path.IsAbs(s.Root) {
		return fmt.Errorf("root %q is not an absolute path", s.Root)
	}
	if p, ok := s.HasNamespace(MountNamespace); !ok || p != "" {
		return errors.New("a container needs a mount namespace of its own")
	}
	for _, n := range s.Namespaces {
		switch n.Type {
		case PIDNamespace, NetworkNamespace, MountNamespace, IPCNamespace, UTSNamespace, CgroupNamespace:
		default:
			return fmt.Errorf("unsupported namespace type %q", n.Type)
		}
		if n.Path != "" && !path.IsAbs(n.Path) {
			return fmt.Errorf("namespace path %q is not absolute", n.Path)
		}
	}
	if err := s.Process.Validate(); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q is not an absolute path", m.Destination)
		}
	}
	return nil
}

// Validate checks a process description.
func (p *Process) Validate() error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("no command specified")
	}
	if p.Cwd != "" && !path.IsAbs(p.Cwd) {
		return fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", p.Cwd)
	}
	return nil
}
