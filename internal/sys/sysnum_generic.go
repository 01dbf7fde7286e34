//go:build linux && (arm64 || riscv64)

package sys

// Syscall numbers that package syscall does not define, from the kernel's
// asm-generic table (include/uapi/asm-generic/unistd.h), which arm64 and
// riscv64 share.
const (
	sysSetns       = 268
	sysMemfdCreate = 279
	sysSeccomp     = 277
	sysBpf         = 280
	sysCapget      = 90
	sysExecveat    = 281
	sysSyncfs      = 267
	sysCapset      = 91
)
