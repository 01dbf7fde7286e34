package sys

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// exeRSS sums the RSS of this process's read-only mappings of its own
// executable, in KiB.
func exeRSS(t *testing.T) int {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && strings.Contains(fields[0], "-") {
			in = fields[4] == strconv.FormatUint(st.Ino, 10) && !strings.Contains(fields[1], "w")
		} else if in && len(fields) == 3 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			sum += n
		}
	}
	return sum
}

// TestTrimExeMappings checks that dropping unmaps the executable's
// read-only pages (most of them: the code running now faults back in)
// and that the process still runs afterwards. The code that runs between
// the trim and the count (more of it under -race) faults back in, so
// the test asks for a quarter gone, not for all of it.
func TestTrimExeMappings(t *testing.T) {
	before := exeRSS(t)
	TrimExeMappings(true)
	after := exeRSS(t)
	t.Logf("executable RSS %d KiB -> %d KiB", before, after)
	if after*4 > before*3 {
		t.Errorf("executable RSS after TrimExeMappings(true) = %d KiB, want at most 3/4 of %d KiB", after, before)
	}
}
