//go:build !amd64 && !arm64 && !riscv64 && !loong64 && !arm && !386 && !ppc64 && !ppc64le && !s390x

package cgroups

// sysBPF is unknown on this architecture: device programs report ENOSYS.
const sysBPF = -1
