package sys

// Syscall numbers that package syscall does not define for amd64.
const (
	sysSetns       = 308
	sysMemfdCreate = 319
	sysSeccomp     = 317
	sysBpf         = 321
	sysCapget      = 125
	sysExecveat    = 322
	sysSyncfs      = 306
	sysCapset      = 126
)
