package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// prctl(PR_SET_MM) options (linux/prctl.h).
const (
	PR_SET_MM     = 35
	PR_SET_MM_MAP = 14
)

// prctlMmMap is struct prctl_mm_map (linux/prctl.h), the same on every
// architecture.
type prctlMmMap struct {
	StartCode, EndCode, StartData, EndData uint64
	StartBrk, Brk, StartStack              uint64
	ArgStart, ArgEnd, EnvStart, EnvEnd     uint64
	Auxv                                   uint64
	AuxvSize                               uint32
	ExeFd                                  uint32
}

// SetCmdline makes /proc/self/cmdline (what ps -ef shows) read args, as
// if the process had been started with them. It copies them into a new
// mapping that stays for the life of the process and points the kernel's
// argument area at it with prctl(PR_SET_MM_MAP), giving every other field
// its current value; os.Args is unchanged. PR_SET_MM_MAP needs no
// capability (unlike the single-field PR_SET_MM calls, which need
// CAP_SYS_RESOURCE) but a kernel built with CONFIG_CHECKPOINT_RESTORE.
// The caller must not run it concurrently with brk(2), which Go never
// calls.
func SetCmdline(args []string) error {
	return new(ArgArea).Set(args)
}

// ArgArea is a process's own argument area, for a process that changes
// its command line more than once (a shim naming the containers it
// serves): Set reuses its mapping while the arguments fit, so that the
// changes do not each leave a page behind. The zero value has no mapping
// yet. Calls must not be concurrent.
type ArgArea struct {
	b []byte
}

// Set is SetCmdline in a.
func (a *ArgArea) Set(args []string) error {
	s := strings.Join(args, "\x00") + "\x00"
	if strings.Count(s, "\x00") != len(args) {
		return errors.New("set command line: an argument contains a NUL byte")
	}
	m, err := currentMmMap()
	if err != nil {
		return fmt.Errorf("set command line: %w", err)
	}
	b := a.b
	if len(s) > len(b) {
		page := syscall.Getpagesize()
		if b, err = syscall.Mmap(-1, 0, (len(s)+page-1)/page*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS); err != nil {
			return fmt.Errorf("set command line: %w", err)
		}
	}
	// While the kernel's area is b itself, a reader may see the new
	// bytes under the old length for a moment: cosmetic.
	copy(b, s)
	m.ArgStart = uint64(uintptr(unsafe.Pointer(&b[0])))
	m.ArgEnd = m.ArgStart + uint64(len(s))
	if err := Prctl(PR_SET_MM, PR_SET_MM_MAP, uintptr(unsafe.Pointer(&m)), unsafe.Sizeof(m), 0); err != nil {
		if len(a.b) == 0 || &b[0] != &a.b[0] {
			syscall.Munmap(b)
		}
		return fmt.Errorf("set command line: %w", err)
	}
	// From here on the mapping is the process's argument area: it is
	// never unmapped (an older, smaller one is left as it was: the
	// kernel may still be reading it).
	a.b = b
	return nil
}

// currentMmMap reads the process's memory layout from /proc/self/stat
// (fields 26-28 and 45-51, proc(5)) and its break from brk(0).
func currentMmMap() (prctlMmMap, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return prctlMmMap{}, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return prctlMmMap{}, errors.New("malformed /proc/self/stat")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 51-2 {
		return prctlMmMap{}, errors.New("/proc/self/stat has no memory layout")
	}
	var perr error
	field := func(n int) uint64 {
		v, err := strconv.ParseUint(f[n-3], 10, 64)
		if err != nil && perr == nil {
			perr = fmt.Errorf("/proc/self/stat field %d: %w", n, err)
		}
		return v
	}
	brk, _, _ := syscall.RawSyscall(syscall.SYS_BRK, 0, 0, 0)
	m := prctlMmMap{
		StartCode: field(26), EndCode: field(27), StartStack: field(28),
		StartData: field(45), EndData: field(46), StartBrk: field(47), Brk: uint64(brk),
		ArgStart: field(48), ArgEnd: field(49), EnvStart: field(50), EnvEnd: field(51),
		ExeFd: ^uint32(0), // keep /proc/self/exe
	}
	return m, perr
}
