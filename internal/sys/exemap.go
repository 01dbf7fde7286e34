package sys

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// TrimExeMappings advises the kernel that this process reads its own
// executable's read-only mappings (text and rodata) at random: a page
// fault there then maps that one page instead of the fault-around window
// (64 KiB by default), so RSS counts the code that actually runs, not its
// neighbours. With drop, it also unmaps the pages mapped so far (start-up
// code, package initialisation); the ones still used fault back in from
// the page cache, one by one. Writable mappings are never touched: their
// private pages would be lost. Errors are ignored: this only saves memory.
func TrimExeMappings(drop bool) {
	var st syscall.Stat_t
	if syscall.Stat("/proc/self/exe", &st) != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[4] != strconv.FormatUint(st.Ino, 10) || strings.Contains(fields[1], "w") {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || hi <= lo {
			continue
		}
		madvise(uintptr(lo), uintptr(hi-lo), syscall.MADV_RANDOM)
		if drop {
			madvise(uintptr(lo), uintptr(hi-lo), syscall.MADV_DONTNEED)
		}
	}
}

func madvise(addr, length uintptr, advice int) {
	syscall.RawSyscall(syscall.SYS_MADVISE, addr, length, uintptr(advice))
}
