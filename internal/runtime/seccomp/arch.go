//go:generate go run mksysnum.go

package seccomp

import (
	"fmt"
	"runtime"
)

// archInfo describes one syscall ABI the filter can recognise.
type archInfo struct {
	scmp   string // libseccomp name, as in profiles' architectures
	goName string // the name profiles' includes/excludes arches use
	audit  uint32 // AUDIT_ARCH_* value in seccomp_data.arch
	bits64 bool   // arguments are 64 bits wide
	// x32Guard marks x86_64, whose AUDIT_ARCH value is shared with the x32
	// ABI; x32 syscall numbers carry bit 30 (__X32_SYSCALL_BIT).
	x32Guard bool
	sysnum   func() map[string]uint32
}

var (
	archX86_64  = &archInfo{scmp: "SCMP_ARCH_X86_64", goName: "amd64", audit: 0xc000003e, bits64: true, x32Guard: true, sysnum: sysnumX86_64}
	archI386    = &archInfo{scmp: "SCMP_ARCH_X86", goName: "x86", audit: 0x40000003, sysnum: sysnumI386}
	archAarch64 = &archInfo{scmp: "SCMP_ARCH_AARCH64", goName: "arm64", audit: 0xc00000b7, bits64: true, sysnum: sysnumAarch64}
)

// scmpArches maps every architecture name libseccomp knows to the ABI we can
// filter, or nil for ABIs without a syscall table here. A nil ABI is left
// out of the filter, so its processes meet the bad-architecture action.
var scmpArches = map[string]*archInfo{
	"SCMP_ARCH_X86":         archI386,
	"SCMP_ARCH_X86_64":      archX86_64,
	"SCMP_ARCH_X32":         nil, // refused by the x32 guard instead
	"SCMP_ARCH_ARM":         nil,
	"SCMP_ARCH_AARCH64":     archAarch64,
	"SCMP_ARCH_LOONGARCH64": nil,
	"SCMP_ARCH_M68K":        nil,
	"SCMP_ARCH_MIPS":        nil,
	"SCMP_ARCH_MIPS64":      nil,
	"SCMP_ARCH_MIPS64N32":   nil,
	"SCMP_ARCH_MIPSEL":      nil,
	"SCMP_ARCH_MIPSEL64":    nil,
	"SCMP_ARCH_MIPSEL64N32": nil,
	"SCMP_ARCH_PPC":         nil,
	"SCMP_ARCH_PPC64":       nil,
	"SCMP_ARCH_PPC64LE":     nil,
	"SCMP_ARCH_S390":        nil,
	"SCMP_ARCH_S390X":       nil,
	"SCMP_ARCH_PARISC":      nil,
	"SCMP_ARCH_PARISC64":    nil,
	"SCMP_ARCH_RISCV64":     nil,
	"SCMP_ARCH_SH":          nil,
	"SCMP_ARCH_SHEB":        nil,
}

// nativeArch is the ABI of the running binary.
func nativeArch() (*archInfo, error) {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64, nil
	case "386":
		return archI386, nil
	case "arm64":
		return archAarch64, nil
	}
	return nil, fmt.Errorf("seccomp: no syscall table for GOARCH %s", runtime.GOARCH)
}

// filterArches lists the ABIs the filter accepts for p on a native host:
// the native one first, then the profile's others that we have tables for.
// With an archMap only the host's entry counts, as in dockerd.
func filterArches(p *Profile, native *archInfo) []*archInfo {
	names := p.Architectures
	if len(p.ArchMap) != 0 {
		names = nil
		for _, m := range p.ArchMap {
			if m.Arch == native.scmp {
				names = append([]string{m.Arch}, m.SubArches...)
				break
			}
		}
	}
	out := []*archInfo{native}
	for _, n := range names {
		a := scmpArches[n]
		if a == nil {
			continue
		}
		dup := false
		for _, have := range out {
			dup = dup || have == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}
