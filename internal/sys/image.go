package sys

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// DropImagePages takes the pages of the running executable's read-only
// mappings (its code and read-only data) out of the process's page
// tables (madvise MADV_DONTNEED) and returns how many bytes of mappings
// it went over. The pages stay in the page cache: what runs next faults
// them back in (a minor fault each 64 KiB, no I/O), so the process's
// resident set is what it has used since, not all it touched while
// starting. Read-only file pages hold nothing but the file's contents, so
// nothing is lost; writable mappings (data, heap) are left alone.
//
// Why it matters (issue 13): a Go program's start-up runs the
// initialisation of every package, spread over the whole text, and the
// kernel maps 64 KiB around each page fault; an idle daemon kept most of
// its 11 MiB of code and read-only data mapped, unreclaimable as long as
// it stays mapped (executable mapped pages get extra protection from
// reclaim), though it runs a few kilobytes of it while idle.
func DropImagePages() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return 0, fmt.Errorf("stat the executable: %w", err)
	}
	// Read line by line: a whole read of a big mapping table (a race
	// build's has thousands of lines) is garbage for the trim that calls
	// this to leave behind.
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var dropped int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m, ok := parseMapping(sc.Bytes())
		if !ok || m.ino != st.Ino || m.dev != uint64(st.Dev) || m.writable {
			continue
		}
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); e != 0 {
			return dropped, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, e)
		}
		dropped += int64(m.end - m.start)
	}
	return dropped, sc.Err()
}

// mapping is one line of /proc/<pid>/maps, the fields DropImagePages
// needs.
type mapping struct {
	start, end uintptr
	writable   bool
	dev, ino   uint64
}

// parseMapping reads "start-end perms offset major:minor inode path".
func parseMapping(line []byte) (mapping, bool) {
	f := bytes.Fields(line)
	if len(f) < 5 {
		return mapping{}, false
	}
	r := bytes.SplitN(f[0], []byte("-"), 2)
	d := bytes.SplitN(f[3], []byte(":"), 2)
	if len(r) != 2 || len(d) != 2 || len(f[1]) < 2 {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(string(r[0]), 16, 64)
	end, err2 := strconv.ParseUint(string(r[1]), 16, 64)
	major, err3 := strconv.ParseUint(string(d[0]), 16, 32)
	minor, err4 := strconv.ParseUint(string(d[1]), 16, 32)
	ino, err5 := strconv.ParseUint(string(f[4]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil || end <= start {
		return mapping{}, false
	}
	return mapping{
		start:    uintptr(start),
		end:      uintptr(end),
		writable: f[1][1] == 'w',
		dev:      mkdev(major, minor),
		ino:      ino,
	}, true
}

// mkdev is the kernel's new_encode_dev, as stat's st_dev holds it.
func mkdev(major, minor uint64) uint64 {
	return (minor & 0xff) | (major << 8) | ((minor &^ 0xff) << 12)
}
