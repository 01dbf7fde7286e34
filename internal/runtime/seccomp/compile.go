package seccomp

import (
	"fmt"
	"sort"
	"strings"
	"syscall"

	"skiffd/internal/sys"
)

// SECCOMP_RET_* values the filter returns (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
)

const (
	errnoEPERM  = 1
	errnoENOSYS = 38
	// x32SyscallBit marks x32-ABI syscall numbers on x86_64.
	x32SyscallBit = 0x40000000
	// seccomp_data layout: nr at 0, arch at 4, args[i] at 16+8i. The low
	// word of an argument comes first on the little-endian ABIs we support.
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Compile resolves p for a container with the given capabilities on this host
// (architecture and running kernel) and emits the classic BPF program that
// Load installs. Capability names may be given with or without "CAP_".
func Compile(p *Profile, caps []string) ([]syscall.SockFilter, error) {
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	uts, err := sys.Uname()
	if err != nil {
		return nil, fmt.Errorf("seccomp: uname: %w", err)
	}
	kv, err := parseRelease(uts.Release)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return compile(p, caps, native, kv)
}

// compile is Compile for a given host.
func compile(p *Profile, caps []string, native *archInfo, kv kernelVersion) ([]syscall.SockFilter, error) {
	if p == nil {
		return nil, fmt.Errorf("seccomp: no profile")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rules, err := resolve(p, caps, native, kv)
	if err != nil {
		return nil, err
	}
	def := actionValue(p.DefaultAction, p.DefaultErrno)
	arches := filterArches(p, native)

	var a assembler
	a.load(offArch)
	blocks := make([]label, len(arches))
	for i, arch := range arches {
		blocks[i] = a.newLabel()
		a.cond(opJeqK, arch.audit, blocks[i], next)
	}
	// Bad architecture: a process of another ABI would have its syscall
	// numbers read against the wrong table.
	a.ret(retKillProcess)
	for i, arch := range arches {
		a.place(blocks[i])
		compileArch(&a, arch, rules, p.DefaultAction, def)
	}
	return a.assemble()
}

// resolve keeps the rules whose includes/excludes hold for this container
// and host, the way dockerd turns a profile into an OCI seccomp config.
func resolve(p *Profile, caps []string, native *archInfo, kv kernelVersion) ([]Rule, error) {
	have := map[string]bool{}
	for _, c := range caps {
		have[normCap(c)] = true
	}
	var out []Rule
	for _, r := range p.Syscalls {
		keep := true
		if ex := r.Excludes; ex != nil {
			for _, a := range ex.Arches {
				keep = keep && a != native.goName
			}
			for _, c := range ex.Caps {
				keep = keep && !have[normCap(c)]
			}
			if ex.MinKernel != "" {
				min, err := parseMinKernel(ex.MinKernel)
				if err != nil {
					return nil, err
				}
				keep = keep && !kv.atLeast(min)
			}
		}
		if in := r.Includes; in != nil {
			if len(in.Arches) != 0 {
				found := false
				for _, a := range in.Arches {
					found = found || a == native.goName
				}
				keep = keep && found
			}
			for _, c := range in.Caps {
				keep = keep && have[normCap(c)]
			}
			if in.MinKernel != "" {
				min, err := parseMinKernel(in.MinKernel)
				if err != nil {
					return nil, err
				}
				keep = keep && kv.atLeast(min)
			}
		}
		if keep {
			out = append(out, r)
		}
	}
	return out, nil
}

func normCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// actionValue is the SECCOMP_RET_* value of an action; an absent errno
// means EPERM, as in runc.
func actionValue(a Action, errno *uint32) uint32 {
	data := uint32(errnoEPERM)
	if errno != nil {
		data = *errno & 0xffff
	}
	switch a {
	case ActKill, ActKillThread:
		return retKillThread
	case ActKillProcess:
		return retKillProcess
	case ActTrap:
		return retTrap
	case ActErrno:
		return retErrno | data
	case ActTrace:
		return retTrace | data
	case ActLog:
		return retLog
	case ActAllow:
		return retAllow
	}
	// Validate rejects everything else; deny if it ever gets here.
	return retKillProcess
}

// allowsUnknown reports whether an action lets a syscall run, in which case
// runc gives unknown syscalls no ENOSYS either.
func allowsUnknown(a Action) bool {
	return a == ActAllow || a == ActLog || a == ActTrace
}

// alternative is one way a syscall can match: all conds hold → ret.
type alternative struct {
	conds []Arg
	ret   uint32
}

// syscallRules is what the filter does for one syscall number.
type syscallRules struct {
	nr uint32
	// uncond is set when some rule had no argument checks; libseccomp then
	// ignores every conditional rule of the syscall, and the first
	// unconditional rule's action stands.
	uncond    bool
	uncondRet uint32
	alts      []alternative
}

// arrangeRules turns the resolved rules into per-syscall decisions for one
// ABI, with runc's and libseccomp's semantics:
//   - names the ABI does not know are skipped;
//   - a rule whose action equals the default action is dropped;
//   - comparisons repeating an argument index become separate
//     single-comparison alternatives (OR), the rest are ANDed.
//
// It also returns the highest syscall number the rules name, above which
// runc answers ENOSYS.
func arrangeRules(arch *archInfo, rules []Rule, def uint32) ([]*syscallRules, uint32) {
	byNr := map[uint32]*syscallRules{}
	var maxNr uint32
	for _, r := range rules {
		ret := actionValue(r.Action, r.Errno)
		for _, name := range r.names() {
			nr, ok := arch.sysnum()[name]
			if !ok {
				continue
			}
			maxNr = max(maxNr, nr)
			if ret == def {
				continue
			}
			sr := byNr[nr]
			if sr == nil {
				sr = &syscallRules{nr: nr}
				byNr[nr] = sr
			}
			if sr.uncond {
				continue
			}
			if len(r.Args) == 0 {
				sr.uncond, sr.uncondRet, sr.alts = true, ret, nil
				continue
			}
			var perIndex [6]int
			for _, c := range r.Args {
				perIndex[c.Index]++
			}
			var and []Arg
			for _, c := range r.Args {
				if perIndex[c.Index] > 1 {
					sr.alts = append(sr.alts, alternative{conds: []Arg{c}, ret: ret})
				} else {
					and = append(and, c)
				}
			}
			if len(and) != 0 {
				sr.alts = append(sr.alts, alternative{conds: and, ret: ret})
			}
		}
	}
	out := make([]*syscallRules, 0, len(byNr))
	for _, sr := range byNr {
		out = append(out, sr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nr < out[j].nr })
	return out, maxNr
}

// interval is a run of syscall numbers from lo up to the next interval's lo
// that share one outcome: a return value, or the argument checks of one
// syscall (rules != nil).
type interval struct {
	lo    uint32
	ret   uint32
	rules *syscallRules
}

// intervals covers [0, 2^32) with runs of equal outcome, so the dispatch is a
// binary search over few ranges instead of a comparison per syscall.
func intervals(srs []*syscallRules, def uint32) []interval {
	var raw []interval
	uncovered := uint64(0) // first number without an interval yet
	for _, sr := range srs {
		if uint64(sr.nr) > uncovered {
			raw = append(raw, interval{lo: uint32(uncovered), ret: def})
		}
		if sr.uncond {
			raw = append(raw, interval{lo: sr.nr, ret: sr.uncondRet})
		} else {
			raw = append(raw, interval{lo: sr.nr, rules: sr})
		}
		uncovered = uint64(sr.nr) + 1
	}
	if uncovered <= 0xffffffff {
		raw = append(raw, interval{lo: uint32(uncovered), ret: def})
	}
	out := raw[:0]
	for _, iv := range raw {
		if n := len(out); n > 0 && out[n-1].rules == nil && iv.rules == nil && out[n-1].ret == iv.ret {
			continue // the previous run goes on
		}
		out = append(out, iv)
	}
	return out
}

// compileArch emits the part of the program for one ABI. On entry the
// architecture has been checked; every path ends in a return.
func compileArch(a *assembler, arch *archInfo, rules []Rule, defAction Action, def uint32) {
	srs, maxNr := arrangeRules(arch, rules, def)
	stub := !allowsUnknown(defAction) && def != retErrno|errnoENOSYS && maxNr > 0

	tree := a.newLabel()
	a.load(offNr)
	var x32, enosys label
	if arch.x32Guard {
		x32 = a.newLabel()
		a.cond(opJgeK, x32SyscallBit, x32, next)
	}
	if stub {
		enosys = a.newLabel()
		a.cond(opJgtK, maxNr, enosys, tree)
	} else {
		a.jump(tree)
	}
	if arch.x32Guard {
		// x32 syscalls (numbers with bit 30) get the default action when it
		// refuses; a permissive default must not let the x32 ABI past the
		// profile's denials, so those are killed. -1, which tracers use to
		// skip a syscall, always gets the default action.
		a.place(x32)
		if allowsUnknown(defAction) {
			minusOne := a.newLabel()
			a.cond(opJeqK, ^uint32(0), minusOne, next)
			a.ret(retKillProcess)
			a.place(minusOne)
		}
		a.ret(def)
	}
	if stub {
		// Syscalls newer than anything the profile names get ENOSYS, so
		// that libcs fall back to older calls (runc's patchbpf).
		a.place(enosys)
		a.ret(retErrno | errnoENOSYS)
	}
	a.place(tree)
	emitTree(a, arch, intervals(srs, def), def)
}

// emitTree emits a binary search over ivs with the syscall number in the
// accumulator.
func emitTree(a *assembler, arch *archInfo, ivs []interval, def uint32) {
	if len(ivs) == 1 {
		iv := ivs[0]
		if iv.rules == nil {
			a.ret(iv.ret)
			return
		}
		emitArgChecks(a, arch, iv.rules, def)
		return
	}
	mid := len(ivs) / 2
	right := a.newLabel()
	a.cond(opJgeK, ivs[mid].lo, right, next)
	emitTree(a, arch, ivs[:mid], def)
	a.place(right)
	emitTree(a, arch, ivs[mid:], def)
}

// emitArgChecks tries each alternative of a syscall in turn; the first whose
// comparisons all hold decides, and none holding means the default action.
func emitArgChecks(a *assembler, arch *archInfo, sr *syscallRules, def uint32) {
	for _, alt := range sr.alts {
		fail := a.newLabel()
		for _, c := range alt.conds {
			emitCompare(a, arch.bits64, c, fail)
		}
		a.ret(alt.ret)
		a.place(fail)
	}
	a.ret(def)
}

// emitCompare falls through when argument c.Index satisfies c and jumps to
// fail otherwise. 64-bit arguments are compared as high word, then low word;
// on 32-bit ABIs only the low word exists, as in libseccomp.
func emitCompare(a *assembler, bits64 bool, c Arg, fail label) {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	v, m := c.Value, ^uint64(0)
	if c.Op == OpMaskedEqual {
		m, v = c.Value, c.ValueTwo&c.Value
	}
	vhi, vlo := uint32(v>>32), uint32(v)
	mhi, mlo := uint32(m>>32), uint32(m)
	pass := a.newLabel()
	switch c.Op {
	case OpEqualTo, OpMaskedEqual:
		if bits64 {
			a.load(hi)
			if c.Op == OpMaskedEqual {
				a.and(mhi)
			}
			a.cond(opJeqK, vhi, next, fail)
		}
		a.load(lo)
		if c.Op == OpMaskedEqual {
			a.and(mlo)
		}
		a.cond(opJeqK, vlo, next, fail)
	case OpNotEqual:
		if bits64 {
			a.load(hi)
			a.cond(opJeqK, vhi, next, pass)
		}
		a.load(lo)
		a.cond(opJeqK, vlo, fail, next)
	case OpGreaterThan, OpGreaterEqual:
		// arg > v: high word greater, or equal and low word greater.
		if bits64 {
			a.load(hi)
			a.cond(opJgtK, vhi, pass, next)
			a.cond(opJeqK, vhi, next, fail)
		}
		a.load(lo)
		op := uint16(opJgtK)
		if c.Op == OpGreaterEqual {
			op = opJgeK
		}
		a.cond(op, vlo, next, fail)
	case OpLessThan, OpLessEqual:
		// arg < v is !(arg >= v); arg <= v is !(arg > v).
		if bits64 {
			a.load(hi)
			a.cond(opJgtK, vhi, fail, next)
			a.cond(opJeqK, vhi, next, pass)
		}
		a.load(lo)
		op := uint16(opJgeK)
		if c.Op == OpLessEqual {
			op = opJgtK
		}
		a.cond(op, vlo, fail, next)
	}
	a.place(pass)
}
