package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"skiffd/internal/sys"
)

// bpf(2) commands and constants (linux/bpf.h).
const (
	bpfProgLoad              = 5
	bpfProgAttach            = 8
	bpfProgTypeCgroupDevice  = 15
	bpfCgroupDevice          = 6 // enum bpf_attach_type BPF_CGROUP_DEVICE
	bpfFAllowMulti           = 2
	bpfAttrProgLoadSize      = 72 // up to and including expected_attach_type
	bpfAttrProgAttachSize    = 20 // target_fd .. replace_bpf_fd
	bpfVerifierLogSize       = 64 * 1024
	bpfVerifierLogLevelBasic = 1
)

// bpfLicense is the program's license string. The kernel only checks it
// for GPL-only helpers, which the device program does not call. It is a
// package variable so that its address, passed to the kernel as an integer,
// can never move: stack objects may move when a goroutine's stack grows.
var bpfLicense = []byte("Apache\x00")

// errBPFUnsupported marks a kernel without bpf(2) or without cgroup device
// programs.
var errBPFUnsupported = errors.New("cgroup device eBPF programs are not supported by this kernel")

// loadDeviceProgram loads prog as a BPF_PROG_TYPE_CGROUP_DEVICE program and
// returns its fd. When the verifier rejects it, the load is repeated with a
// log buffer so that the error says why.
func loadDeviceProgram(prog []insn) (int, error) {
	code := encodeProgram(prog)
	license := bpfLicense
	load := func(logBuf []byte) (int, error) {
		attr := make([]byte, bpfAttrProgLoadSize)
		ne := binary.NativeEndian
		ne.PutUint32(attr[0:], bpfProgTypeCgroupDevice)
		ne.PutUint32(attr[4:], uint32(len(prog)))
		ne.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&code[0]))))
		ne.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
		if logBuf != nil {
			ne.PutUint32(attr[24:], bpfVerifierLogLevelBasic)
			ne.PutUint32(attr[28:], uint32(len(logBuf)))
			ne.PutUint64(attr[32:], uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
		}
		ne.PutUint32(attr[68:], bpfCgroupDevice)
		fd, err := sys.Bpf(bpfProgLoad, attr)
		// code and logBuf are referenced only through integers in attr;
		// keep them alive across the system call. Both are heap objects
		// (sizes not known at compile time, checked with -gcflags=-m), and
		// Go's collector does not move heap objects.
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		runtime.KeepAlive(logBuf)
		return fd, err
	}
	// The verifier gives up with EAGAIN when a signal arrives while it
	// runs — and the Go runtime sends SIGURG for preemption at any time —
	// so the load is retried, as libbpf does.
	var fd int
	var err error
	for range 10 {
		if fd, err = load(nil); !errors.Is(err, syscall.EAGAIN) {
			break
		}
	}
	if err == nil {
		return fd, nil
	}
	if errors.Is(err, syscall.ENOSYS) {
		return -1, fmt.Errorf("load device program: %w (%w)", errBPFUnsupported, err)
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EACCES) {
		logBuf := make([]byte, bpfVerifierLogSize)
		if fd, err2 := load(logBuf); err2 == nil {
			return fd, nil
		}
		n := 0
		for n < len(logBuf) && logBuf[n] != 0 {
			n++
		}
		if n > 0 {
			return -1, fmt.Errorf("load device program: %w: verifier: %s", err, logBuf[:n])
		}
		if errors.Is(err, syscall.EINVAL) {
			// No log at all: the program type is unknown to this kernel
			// (built without CONFIG_CGROUP_BPF).
			return -1, fmt.Errorf("load device program: %w (%w)", errBPFUnsupported, err)
		}
	}
	return -1, fmt.Errorf("load device program: %w", err)
}

// attachDeviceProgram attaches the program in progFD to the v2 cgroup
// directory dirFD with BPF_F_ALLOW_MULTI, so that programs of ancestors keep
// running too. The attachment holds a reference, so the caller may close
// progFD afterwards; removing the cgroup detaches and frees the program.
func attachDeviceProgram(dirFD, progFD int) error {
	attr := make([]byte, bpfAttrProgAttachSize)
	ne := binary.NativeEndian
	ne.PutUint32(attr[0:], uint32(dirFD))
	ne.PutUint32(attr[4:], uint32(progFD))
	ne.PutUint32(attr[8:], bpfCgroupDevice)
	ne.PutUint32(attr[12:], bpfFAllowMulti)
	if _, err := sys.Bpf(bpfProgAttach, attr); err != nil {
		return fmt.Errorf("attach device program: %w", err)
	}
	return nil
}

// installDeviceProgram compiles p to eBPF and attaches it to the v2 cgroup
// directory dir, taking the loaded program from progs when it has it (nil:
// a load of its own).
func installDeviceProgram(dir string, p devicePolicy, progs *Programs) error {
	progFD, owned, err := progs.load(p.deviceProgram())
	if err != nil {
		return err
	}
	if owned {
		defer syscall.Close(progFD)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("attach device program: %w", err)
	}
	defer d.Close()
	if err := attachDeviceProgram(int(d.Fd()), progFD); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// Programs keeps device programs loaded, one per distinct program, for the
// managers given it (WithPrograms): the containers of a daemon nearly all
// have the same device rules, and each attaches the one program where it
// would load its own (the kernel's verifier takes some 0.25 ms a load, on
// the path of every start). An attached program is held by its cgroup as
// well, so Close, which lets go of the kept ones, detaches nothing. Safe
// for concurrent use.
type Programs struct {
	mu     sync.Mutex
	fds    map[string]int
	closed bool
}

// maxPrograms bounds what Programs keeps: rules that vary per container
// (--device) load their own past it.
const maxPrograms = 8

// NewPrograms returns an empty Programs.
func NewPrograms() *Programs { return &Programs{fds: map[string]int{}} }

// load returns an fd of prog loaded, and whether the caller owns it (must
// close it) or Programs does.
func (p *Programs) load(prog []insn) (fd int, owned bool, err error) {
	if p == nil {
		fd, err := loadDeviceProgram(prog)
		return fd, true, err
	}
	key := string(encodeProgram(prog))
	p.mu.Lock()
	defer p.mu.Unlock()
	if fd, ok := p.fds[key]; ok {
		return fd, false, nil
	}
	if fd, err = loadDeviceProgram(prog); err != nil {
		return -1, false, err
	}
	if p.closed || len(p.fds) >= maxPrograms {
		return fd, true, nil
	}
	p.fds[key] = fd
	return fd, false, nil
}

// Close lets go of the kept programs.
func (p *Programs) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, fd := range p.fds {
		syscall.Close(fd)
		delete(p.fds, k)
	}
	p.closed = true
}
