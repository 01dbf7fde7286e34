package sys

import (
	"os"
	"syscall"
	"unsafe"
)

const (
	renameExchange = 1 << 1 // RENAME_EXCHANGE, include/uapi/linux/fs.h
	atFDCWD        = -100   // AT_FDCWD
)

// ExchangeFiles swaps the names a and b atomically (renameat2 with
// RENAME_EXCHANGE): both must exist. Unlike a rename over an existing
// file, ext4 does not flush the renamed file's data first (its
// auto_da_alloc heuristic applies to replacing renames only). A file
// system without the flag answers EINVAL.
func ExchangeFiles(a, b string) error {
	pa, err := syscall.BytePtrFromString(a)
	if err != nil {
		return err
	}
	pb, err := syscall.BytePtrFromString(b)
	if err != nil {
		return err
	}
	cwd := atFDCWD
	_, _, e := syscall.Syscall6(sysRenameat2, uintptr(cwd), uintptr(unsafe.Pointer(pa)),
		uintptr(cwd), uintptr(unsafe.Pointer(pb)), renameExchange, 0)
	if e != 0 {
		return &os.LinkError{Op: "renameat2", Old: a, New: b, Err: e}
	}
	return nil
}
