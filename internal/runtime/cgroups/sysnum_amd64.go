package cgroups

// sysBPF is the bpf(2) system call number, missing from package syscall.
const sysBPF = 321
