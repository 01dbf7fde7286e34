package cgroups

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Access bits, numbered as the kernel's BPF_DEVCG_ACC_* so that a policy's
// masks go straight into the eBPF program.
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite
)

// Device types as the kernel's BPF_DEVCG_DEV_*.
const (
	devBlock = 1
	devChar  = 2
)

// devicePolicy is a device rule list reduced to what the kernel's v1 device
// controller would hold after applying the rules one by one: a default
// (allow or deny everything) and exceptions to it. Reducing first gives the
// v1 files and the v2 program the same meaning, whatever order the rules
// came in.
type devicePolicy struct {
	defaultAllow bool
	exceptions   []deviceException
}

// deviceException is a rule that inverts the default for matching devices.
type deviceException struct {
	typ          byte // 'b' or 'c'
	major, minor int64
	access       uint8 // acc* bits
}

// compileDevicePolicy applies rules in order, starting from "deny all", with
// the v1 kernel semantics (security/device_cgroup.c): an "a" rule resets the
// default and drops all exceptions; a rule opposite to the default adds (or
// widens) an exception; a rule equal to the default removes its access bits
// from the exception with the same type and numbers, if any. Like v1, a
// deny rule cannot punch a hole into a wildcard exception.
func compileDevicePolicy(rules []DeviceRule) (devicePolicy, error) {
	var p devicePolicy
	for _, r := range rules {
		acc, err := parseAccess(r.Access)
		if err != nil {
			return devicePolicy{}, err
		}
		if r.Major < Wildcard || r.Minor < Wildcard || r.Major > 0xffffffff || r.Minor > 0xffffffff {
			return devicePolicy{}, fmt.Errorf("invalid device rule %s: bad device number", r)
		}
		switch r.Type {
		case 'a':
			p = devicePolicy{defaultAllow: r.Allow}
			continue
		case 'b', 'c':
		default:
			return devicePolicy{}, fmt.Errorf("invalid device rule %s: type must be a, b or c", r)
		}
		idx := -1
		for i, e := range p.exceptions {
			if e.typ == r.Type && e.major == r.Major && e.minor == r.Minor {
				idx = i
				break
			}
		}
		if r.Allow != p.defaultAllow {
			if idx >= 0 {
				p.exceptions[idx].access |= acc
			} else {
				p.exceptions = append(p.exceptions, deviceException{typ: r.Type, major: r.Major, minor: r.Minor, access: acc})
			}
			continue
		}
		if idx >= 0 {
			p.exceptions[idx].access &^= acc
			if p.exceptions[idx].access == 0 {
				p.exceptions = append(p.exceptions[:idx], p.exceptions[idx+1:]...)
			}
		}
	}
	return p, nil
}

// parseAccess turns "rwm" letters into acc* bits; empty means all.
func parseAccess(s string) (uint8, error) {
	if s == "" {
		return accAll, nil
	}
	var acc uint8
	for _, c := range s {
		switch c {
		case 'r':
			acc |= accRead
		case 'w':
			acc |= accWrite
		case 'm':
			acc |= accMknod
		default:
			return 0, fmt.Errorf("invalid device access %q: only r, w and m are allowed", s)
		}
	}
	return acc, nil
}

// String formats a rule as a devices.allow line with its polarity, e.g.
// "allow c 1:3 rwm".
func (r DeviceRule) String() string {
	verb := "deny"
	if r.Allow {
		verb = "allow"
	}
	if r.Type == 'a' {
		return verb + " a"
	}
	return fmt.Sprintf("%s %c %s:%s %s", verb, r.Type, devNum(r.Major), devNum(r.Minor), r.Access)
}

func devNum(n int64) string {
	if n == Wildcard {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

func accessString(acc uint8) string {
	var b strings.Builder
	if acc&accRead != 0 {
		b.WriteByte('r')
	}
	if acc&accWrite != 0 {
		b.WriteByte('w')
	}
	if acc&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// v1Writes returns what installs the policy into a fresh v1 devices cgroup:
// "a" written to defaultFile sets the default, then each line of exceptions
// is written to exceptionFile.
func (p devicePolicy) v1Writes() (defaultFile, exceptionFile string, exceptions []string) {
	defaultFile, exceptionFile = "devices.deny", "devices.allow"
	if p.defaultAllow {
		defaultFile, exceptionFile = "devices.allow", "devices.deny"
	}
	for _, e := range p.exceptions {
		exceptions = append(exceptions, fmt.Sprintf("%c %s:%s %s", e.typ, devNum(e.major), devNum(e.minor), accessString(e.access)))
	}
	return defaultFile, exceptionFile, exceptions
}

// allows evaluates the policy for one access, as the kernel would. typ is
// 'b' or 'c' and acc one or more acc* bits. Tests compare the eBPF program
// against it.
func (p devicePolicy) allows(typ byte, major, minor uint32, acc uint8) bool {
	for _, e := range p.exceptions {
		if e.typ != typ || (e.major != Wildcard && e.major != int64(major)) || (e.minor != Wildcard && e.minor != int64(minor)) {
			continue
		}
		if p.defaultAllow {
			// A deny exception blocks a request sharing any access bit.
			if acc&e.access != 0 {
				return false
			}
			continue
		}
		// An allow exception admits a request whose bits it all covers.
		if acc&^e.access == 0 {
			return true
		}
	}
	return p.defaultAllow
}

// eBPF opcodes used by the device program (linux/bpf.h, bpf_common.h).
const (
	bpfLdxMemW   = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	bpfMovImm64  = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	bpfMovReg64  = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X
	bpfAndImm64  = 0x57 // BPF_ALU64 | BPF_AND | BPF_K
	bpfRshImm64  = 0x77 // BPF_ALU64 | BPF_RSH | BPF_K
	bpfJeqImm    = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJneImm    = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	bpfExit      = 0x95 // BPF_JMP | BPF_EXIT
	bpfInsnBytes = 8
)

// insn is one eBPF instruction.
type insn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

// deviceProgram assembles the BPF_PROG_TYPE_CGROUP_DEVICE program for the
// policy. Its context is struct bpf_cgroup_dev_ctx { u32 access_type; u32
// major; u32 minor; }, where access_type is (access << 16) | type. The
// program loads the fields into r2 (type), r3 (access), r4 (major) and r5
// (minor), then has one block per exception that jumps to the next block on
// any mismatch and otherwise returns the exception's verdict; after the last
// block it returns the default. r0 = 1 allows, 0 denies.
func (p devicePolicy) deviceProgram() []insn {
	prog := []insn{
		{code: bpfLdxMemW, dst: 2, src: 1, off: 0},
		{code: bpfMovReg64, dst: 3, src: 2},
		{code: bpfAndImm64, dst: 2, imm: 0xffff},
		{code: bpfRshImm64, dst: 3, imm: 16},
		{code: bpfLdxMemW, dst: 4, src: 1, off: 4},
		{code: bpfLdxMemW, dst: 5, src: 1, off: 8},
	}
	verdict := int32(1)
	if p.defaultAllow {
		verdict = 0
	}
	for _, e := range p.exceptions {
		// Jumps are emitted with off = -1 and patched to the block's end once
		// its length is known.
		var block []insn
		typ := int32(devChar)
		if e.typ == 'b' {
			typ = devBlock
		}
		block = append(block, insn{code: bpfJneImm, dst: 2, off: -1, imm: typ})
		if p.defaultAllow {
			// Deny exception: matches when the request shares a bit.
			if e.access != accAll {
				block = append(block,
					insn{code: bpfMovReg64, dst: 1, src: 3},
					insn{code: bpfAndImm64, dst: 1, imm: int32(e.access)},
					insn{code: bpfJeqImm, dst: 1, off: -1, imm: 0})
			}
		} else if e.access != accAll {
			// Allow exception: matches when no requested bit is outside it.
			block = append(block,
				insn{code: bpfMovReg64, dst: 1, src: 3},
				insn{code: bpfAndImm64, dst: 1, imm: ^int32(e.access)},
				insn{code: bpfJneImm, dst: 1, off: -1, imm: 0})
		}
		if e.major != Wildcard {
			block = append(block, insn{code: bpfJneImm, dst: 4, off: -1, imm: int32(uint32(e.major))})
		}
		if e.minor != Wildcard {
			block = append(block, insn{code: bpfJneImm, dst: 5, off: -1, imm: int32(uint32(e.minor))})
		}
		block = append(block,
			insn{code: bpfMovImm64, dst: 0, imm: verdict},
			insn{code: bpfExit})
		for i := range block {
			if block[i].off == -1 {
				block[i].off = int16(len(block) - (i + 1))
			}
		}
		prog = append(prog, block...)
	}
	def := int32(0)
	if p.defaultAllow {
		def = 1
	}
	return append(prog, insn{code: bpfMovImm64, dst: 0, imm: def}, insn{code: bpfExit})
}

// encodeProgram lays instructions out as struct bpf_insn in host byte order.
// The register nibbles are C bitfields (dst_reg:4, src_reg:4), which the
// compiler packs from the low bits on little-endian and from the high bits
// on big-endian machines.
func encodeProgram(prog []insn) []byte {
	out := make([]byte, len(prog)*bpfInsnBytes)
	bigEndian := binary.NativeEndian.Uint16([]byte{0, 1}) == 1
	for i, in := range prog {
		b := out[i*bpfInsnBytes:]
		b[0] = in.code
		if bigEndian {
			b[1] = in.dst<<4 | in.src&0xf
		} else {
			b[1] = in.src<<4 | in.dst&0xf
		}
		binary.NativeEndian.PutUint16(b[2:], uint16(in.off))
		binary.NativeEndian.PutUint32(b[4:], uint32(in.imm))
	}
	return out
}
