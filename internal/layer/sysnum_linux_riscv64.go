package layer

// sysSyncfs is syncfs(2), which package syscall does not number.
const sysSyncfs = 267
