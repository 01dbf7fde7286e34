package sys

// Syscall numbers that package syscall does not define for riscv64.
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
