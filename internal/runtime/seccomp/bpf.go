package seccomp

import (
	"errors"
	"fmt"
	"syscall"
)

// Classic BPF opcodes used by the compiler (linux/bpf_common.h).
const (
	opLdAbsW = syscall.BPF_LD | syscall.BPF_W | syscall.BPF_ABS
	opAndK   = syscall.BPF_ALU | syscall.BPF_AND | syscall.BPF_K
	opJa     = syscall.BPF_JMP | syscall.BPF_JA
	opJeqK   = syscall.BPF_JMP | syscall.BPF_JEQ | syscall.BPF_K
	opJgtK   = syscall.BPF_JMP | syscall.BPF_JGT | syscall.BPF_K
	opJgeK   = syscall.BPF_JMP | syscall.BPF_JGE | syscall.BPF_K
	opRetK   = syscall.BPF_RET | syscall.BPF_K
)

// maxInsns is the kernel's BPF_MAXINSNS limit for one classic program.
const maxInsns = 4096

// label names a position in the program. next means "the instruction that
// follows", which is what a conditional jump offset of 0 reaches.
type label int

const next label = -1

// insn is an instruction whose jump targets are still labels.
type insn struct {
	code   uint16
	k      uint32
	jt, jf label // conditional jumps
	target label // ja
	mark   label // >= 0 for a pseudo-instruction that places a label
}

// assembler collects instructions with symbolic forward jumps. Conditional
// jumps reach at most 255 instructions; assemble inserts an unconditional
// jump (ja, 32-bit offset) after any that would reach further.
type assembler struct {
	ins    []insn
	labels int
}

func (a *assembler) newLabel() label {
	a.labels++
	return label(a.labels - 1)
}

func (a *assembler) place(l label)   { a.ins = append(a.ins, insn{mark: l}) }
func (a *assembler) load(off uint32) { a.ins = append(a.ins, insn{code: opLdAbsW, k: off, mark: -1}) }
func (a *assembler) and(k uint32)    { a.ins = append(a.ins, insn{code: opAndK, k: k, mark: -1}) }
func (a *assembler) ret(k uint32)    { a.ins = append(a.ins, insn{code: opRetK, k: k, mark: -1}) }
func (a *assembler) jump(l label)    { a.ins = append(a.ins, insn{code: opJa, target: l, mark: -1}) }
func (a *assembler) cond(code uint16, k uint32, jt, jf label) {
	a.ins = append(a.ins, insn{code: code, k: k, jt: jt, jf: jf, mark: -1})
}

// assemble resolves labels into offsets.
func (a *assembler) assemble() ([]syscall.SockFilter, error) {
	n := len(a.ins)
	// farT/farF record conditional jumps that need a ja trampoline. They
	// only ever turn on, so the loop below ends.
	farT := make([]bool, n)
	farF := make([]bool, n)
	pos := make([]int, n)       // position of each instruction
	at := make([]int, a.labels) // position of each label
	for {
		p := 0
		for i, in := range a.ins {
			pos[i] = p
			if in.mark >= 0 {
				at[in.mark] = p
				continue
			}
			p++
			if farT[i] {
				p++
			}
			if farF[i] {
				p++
			}
		}
		if p > maxInsns {
			return nil, fmt.Errorf("seccomp filter needs %d instructions, more than the kernel's limit of %d", p, maxInsns)
		}
		changed := false
		for i, in := range a.ins {
			if in.mark >= 0 || !isCond(in.code) {
				continue
			}
			if !farT[i] && in.jt != next && at[in.jt]-pos[i]-1 > 255 {
				farT[i], changed = true, true
			}
			if !farF[i] && in.jf != next && at[in.jf]-pos[i]-1 > 255 {
				farF[i], changed = true, true
			}
		}
		if changed {
			continue
		}

		out := make([]syscall.SockFilter, 0, p)
		for i, in := range a.ins {
			if in.mark >= 0 {
				continue
			}
			here := pos[i]
			switch {
			case in.code == opJa:
				off := at[in.target] - here - 1
				if in.target == next {
					off = 0
				}
				if off < 0 {
					return nil, errors.New("seccomp: backward jump")
				}
				out = append(out, syscall.SockFilter{Code: in.code, K: uint32(off)})
			case isCond(in.code):
				extra := 0
				if farT[i] {
					extra++
				}
				if farF[i] {
					extra++
				}
				offset := func(l label) (int, error) {
					if l == next {
						return extra, nil // skip our own trampolines
					}
					off := at[l] - here - 1
					if off < 0 || off > 255 {
						return 0, fmt.Errorf("seccomp: jump offset %d out of range", off)
					}
					return off, nil
				}
				var jt, jf int
				var err error
				if farT[i] {
					jt = 0
				} else if jt, err = offset(in.jt); err != nil {
					return nil, err
				}
				if farF[i] {
					jf = extra - 1
				} else if jf, err = offset(in.jf); err != nil {
					return nil, err
				}
				out = append(out, syscall.SockFilter{Code: in.code, Jt: uint8(jt), Jf: uint8(jf), K: in.k})
				if farT[i] {
					out = append(out, syscall.SockFilter{Code: opJa, K: uint32(at[in.jt] - (here + 1) - 1)})
				}
				if farF[i] {
					out = append(out, syscall.SockFilter{Code: opJa, K: uint32(at[in.jf] - (here + extra) - 1)})
				}
			default:
				out = append(out, syscall.SockFilter{Code: in.code, K: in.k})
			}
		}
		return out, nil
	}
}

func isCond(code uint16) bool {
	return code&0x07 == syscall.BPF_JMP && code != opJa
}
