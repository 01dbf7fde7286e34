package sys

import (
	"syscall"
	"unsafe"
)

// MapBuffer returns n bytes (rounded up to whole pages) of anonymous
// memory outside the Go heap. Its pages cost nothing until written, and
// DropPages gives the written ones back to the system at once: no garbage
// collection is needed to reclaim them, unlike a buffer of the Go heap,
// which stays resident until a collection and a scavenge (issue 13: in a
// process that mostly sleeps, such as a shim, a forced collection costs
// more runtime metadata than it returns). The buffer must hold no Go
// pointers; UnmapBuffer releases it.
func MapBuffer(n int) ([]byte, error) {
	page := syscall.Getpagesize()
	return syscall.Mmap(-1, 0, (n+page-1)/page*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
}

// UnmapBuffer releases a buffer of MapBuffer (b as MapBuffer returned it).
func UnmapBuffer(b []byte) error {
	return syscall.Munmap(b[:cap(b)])
}

// DropPages hands the pages of a MapBuffer buffer back to the system
// (madvise MADV_DONTNEED): the mapping stays, and reads as zeros, page by
// page, until written again.
func DropPages(b []byte) error {
	b = b[:cap(b)]
	if len(b) == 0 {
		return nil
	}
	return syscall.Madvise(b, syscall.MADV_DONTNEED)
}

// ResidentPages reports how many of the pages under b are in memory
// (mincore(2)); b must start on a page boundary, as MapBuffer's do.
func ResidentPages(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	page := syscall.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	_, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return 0, e
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n, nil
}
