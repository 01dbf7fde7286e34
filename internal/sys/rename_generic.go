//go:build linux && (arm64 || riscv64)

package sys

// sysRenameat2 is renameat2's number in the asm-generic table
// (include/uapi/asm-generic/unistd.h), which package syscall lacks.
const sysRenameat2 = 276
