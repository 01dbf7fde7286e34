package seccomp

import (
	"fmt"
	"syscall"
)

// seccompData mirrors struct seccomp_data, the input of a filter.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

// word reads the 32-bit word at off as the kernel's BPF_LD|BPF_W|BPF_ABS
// does on a little-endian machine.
func (d *seccompData) word(off uint32) (uint32, error) {
	switch {
	case off == 0:
		return d.nr, nil
	case off == 4:
		return d.arch, nil
	case off == 8:
		return uint32(d.ip), nil
	case off == 12:
		return uint32(d.ip >> 32), nil
	case off >= 16 && off < 64 && off%4 == 0:
		a := d.args[(off-16)/8]
		if (off-16)%8 == 0 {
			return uint32(a), nil
		}
		return uint32(a >> 32), nil
	}
	return 0, fmt.Errorf("load from bad offset %d", off)
}

// run interprets a classic BPF seccomp program the way the kernel does,
// failing on anything the kernel's checker would reject.
func run(prog []syscall.SockFilter, d seccompData) (uint32, error) {
	if len(prog) == 0 || len(prog) > maxInsns {
		return 0, fmt.Errorf("program length %d", len(prog))
	}
	var acc uint32
	pc := 0
	for steps := 0; steps <= len(prog); steps++ {
		if pc < 0 || pc >= len(prog) {
			return 0, fmt.Errorf("pc %d out of program", pc)
		}
		in := prog[pc]
		jump := func(cond bool) {
			if cond {
				pc += 1 + int(in.Jt)
			} else {
				pc += 1 + int(in.Jf)
			}
		}
		switch in.Code {
		case opLdAbsW:
			w, err := d.word(in.K)
			if err != nil {
				return 0, fmt.Errorf("insn %d: %w", pc, err)
			}
			acc = w
			pc++
		case opAndK:
			acc &= in.K
			pc++
		case opJa:
			pc += 1 + int(in.K)
		case opJeqK:
			jump(acc == in.K)
		case opJgtK:
			jump(acc > in.K)
		case opJgeK:
			jump(acc >= in.K)
		case syscall.BPF_JMP | syscall.BPF_JSET | syscall.BPF_K:
			jump(acc&in.K != 0)
		case opRetK:
			return in.K, nil
		default:
			return 0, fmt.Errorf("insn %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	return 0, fmt.Errorf("program did not return")
}

// checkProgram verifies what the kernel verifies statically: known opcodes,
// every jump inside the program, and a return at the end.
func checkProgram(prog []syscall.SockFilter) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("program length %d", len(prog))
	}
	for pc, in := range prog {
		switch in.Code {
		case opLdAbsW, opAndK, opRetK:
		case opJa:
			if pc+1+int(in.K) >= len(prog) {
				return fmt.Errorf("insn %d: ja past the end", pc)
			}
		case opJeqK, opJgtK, opJgeK:
			if pc+1+int(in.Jt) >= len(prog) || pc+1+int(in.Jf) >= len(prog) {
				return fmt.Errorf("insn %d: jump past the end", pc)
			}
		default:
			return fmt.Errorf("insn %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	if prog[len(prog)-1].Code != opRetK {
		return fmt.Errorf("last instruction is not a return")
	}
	return nil
}
