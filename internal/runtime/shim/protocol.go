package shim

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// ProtocolVersion is the version of the control protocol. A shim answers
// requests of its own version and older ones; a daemon talks to shims of
// the previous version too.
const ProtocolVersion = 1

// Files in a container's shim directory.
const (
	SpecFile   = "spec.json"
	StateFile  = "state.json"
	SocketFile = "shim.sock"
	LogFile    = "shim.log"
)

// Operations of the control protocol.
const (
	OpState  = "state"
	OpStart  = "start"
	OpExec   = "exec"
	OpAttach = "attach"
	OpKill   = "kill"
	OpWait   = "wait"
	OpResize = "resize"
	OpDelete = "delete"
)

// Request is one control request: a JSON line on a fresh connection.
type Request struct {
	Version int    `json:"v"`
	Op      string `json:"op"`
	// Exec names an exec'd process; "" is the container's init.
	Exec    string        `json:"exec,omitempty"`
	Process *spec.Process `json:"process,omitempty"`
	Signal  int           `json:"signal,omitempty"`
	Stdin   bool          `json:"stdin,omitempty"`
	Stdout  bool          `json:"stdout,omitempty"`
	Stderr  bool          `json:"stderr,omitempty"`
	Height  uint16        `json:"height,omitempty"`
	Width   uint16        `json:"width,omitempty"`
}

// Error kinds in a Response, for the daemon's errdefs mapping.
const (
	KindNotFound = "notfound"
	KindConflict = "conflict"
	KindInvalid  = "invalid"
)

// Response answers a Request with one JSON line. After a successful
// attach, the connection carries the process's output as frames (see
// WriteFrame) until the output ends; what the client writes is the
// process's stdin, and its half-close is stdin's EOF.
type Response struct {
	Error string      `json:"error,omitempty"`
	Kind  string      `json:"kind,omitempty"`
	State *State      `json:"state,omitempty"`
	Exit  *ExitStatus `json:"exit,omitempty"`
	Pid   int         `json:"pid,omitempty"`
}

// Container statuses.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// State is the shim's state file and its answer to OpState. The shim
// rewrites it atomically at every change, and writes a process's exit
// into it before reporting the exit to anyone.
type State struct {
	Version    int       `json:"version"`
	ID         string    `json:"id"`
	ShimPid    int       `json:"shimPid"`
	ShimStart  uint64    `json:"shimStart"`
	InitPid    int       `json:"initPid,omitempty"`
	InitStart  uint64    `json:"initStart,omitempty"`
	Status     string    `json:"status"`
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Error is why the container failed to start, in runc's wording.
	Error string `json:"error,omitempty"`
	// DirLock: the shim holds an exclusive flock on the container's
	// directory for as long as it serves the container, so the lock, not
	// ShimPid, tells whether it still does (a shim serves several
	// containers). Shims of older skiffd versions do not set it.
	DirLock bool `json:"dirLock,omitempty"`
}

// ExitStatus is how a process ended: the exit code, 128+n after signal
// n, and whether the OOM killer was involved.
type ExitStatus struct {
	Code      int       `json:"code"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
	ExitedAt  time.Time `json:"exitedAt"`
	// Error is set when the process never ran (start failed).
	Error string `json:"error,omitempty"`
}

// Stream ids in output frames, as in Docker's stdcopy.
const (
	StreamStdout = 1
	StreamStderr = 2
)

// WriteFrame writes one output frame: stdcopy's 8-byte header (stream,
// three zero bytes, big-endian length) and the payload.
func WriteFrame(w io.Writer, stream byte, p []byte) error {
	hdr := [8]byte{stream}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// maxFrame bounds a frame's payload on reading.
const maxFrame = 1 << 20

// ReadFrame reads one frame into buf (grown as needed) and returns its
// stream and payload.
func ReadFrame(r io.Reader, buf []byte) (stream byte, payload []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	if n > maxFrame {
		return 0, nil, errors.New("shim frame too large")
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], buf, nil
}

// SocketAddr returns a path that reaches dir/shim.sock for bind or
// connect. Unix socket paths are limited to 107 bytes; a longer one is
// reached through an O_PATH fd of dir (/proc/self/fd/N/shim.sock). The
// caller calls release once bound or connected.
func SocketAddr(dir string) (addr string, release func(), err error) {
	p := filepath.Join(dir, SocketFile)
	if len(p) < 100 {
		return p, func() {}, nil
	}
	fd, err := syscall.Open(dir, sys.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + SocketFile, func() { syscall.Close(fd) }, nil
}

// ReadState reads a shim directory's state file.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}
