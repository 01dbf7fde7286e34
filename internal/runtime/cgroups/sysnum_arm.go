package cgroups

// sysBPF is the bpf(2) system call number (EABI), missing from package
// syscall.
const sysBPF = 386
