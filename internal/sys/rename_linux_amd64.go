package sys

// sysRenameat2 is renameat2's number on amd64, which package syscall
// lacks.
const sysRenameat2 = 316
