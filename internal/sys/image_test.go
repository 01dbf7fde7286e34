package sys

import (
	"bytes"
	"os"
	"syscall"
	"testing"
)

func TestParseMapping(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want mapping
	}{
		{"00400000-009bc000 r-xp 00000000 fe:00 9986256                            /tmp/skiffd", true,
			mapping{start: 0x400000, end: 0x9bc000, dev: 0xfe00, ino: 9986256}},
		{"00f4e000-00fb2000 rw-p 00b4e000 103:02 42 /a path/with spaces (deleted)", true,
			mapping{start: 0xf4e000, end: 0xfb2000, writable: true, dev: 259<<8 | 2, ino: 42}},
		// A minor number above 255 is split as the kernel encodes it.
		{"7f00-8f00 r--p 0 08:1ff 7 /x", true, mapping{start: 0x7f00, end: 0x8f00, dev: 0xff | 8<<8 | 0x100<<12, ino: 7}},
		{"221e65800000-221e66000000 rw-p 00000000 00:00 0 ", true,
			mapping{start: 0x221e65800000, end: 0x221e66000000, writable: true}},
		{"", false, mapping{}},
		{"zz-10 r-xp 0 00:00 0", false, mapping{}},
		{"20-10 r-xp 0 00:00 0", false, mapping{}},
		{"10-20 r-xp 0 0000 0", false, mapping{}},
		{"10-20 r-xp 0 00:00 x", false, mapping{}},
	} {
		got, ok := parseMapping([]byte(c.line))
		if ok != c.ok || got != c.want {
			t.Errorf("parseMapping(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestDropImagePages: the executable's code and read-only data leave the
// page tables, all of their mappings are gone over, and the program runs
// on (what it runs faults back in).
func TestDropImagePages(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	var image []mapping
	var size int64
	for _, line := range bytes.Split(maps, []byte("\n")) {
		// The device as stat gives it, through mkdev.
		if m, ok := parseMapping(line); ok && m.ino == st.Ino && m.dev == uint64(st.Dev) && !m.writable {
			image = append(image, m)
			size += int64(m.end - m.start)
		}
	}
	if len(image) == 0 {
		t.Fatalf("no read-only mapping of the executable (device %#x, inode %d) in:\n%s", st.Dev, st.Ino, maps)
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pagemap.Close()
	page := uintptr(syscall.Getpagesize())
	buf := make([]byte, size/int64(page)*8)
	// present counts the image's pages in the page tables (pagemap's bit
	// 63), reading into buf with one system call a mapping.
	present := func() int {
		n := 0
		for _, m := range image {
			b := buf[:(m.end-m.start)/page*8]
			if _, err := syscall.Pread(int(pagemap.Fd()), b, int64(m.start/page*8)); err != nil {
				t.Fatal(err)
			}
			for i := 7; i < len(b); i += 8 {
				n += int(b[i] >> 7)
			}
		}
		return n
	}
	// Every page of the image mapped, as a long start-up leaves it
	// (MADV_POPULATE_READ, Linux 5.14), then dropped. What else runs
	// meanwhile (a collection reading the runtime's tables) faults pages
	// back in: of three tries, one must find most of them gone; with
	// nothing dropped every try finds them all.
	const madvPopulateRead = 22
	var before, after int
	for try := 0; try < 3; try++ {
		for _, m := range image {
			if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, madvPopulateRead); e != 0 {
				t.Fatalf("populate %#x-%#x: %v", m.start, m.end, e)
			}
		}
		before = present()
		n, err := DropImagePages()
		after = present()
		if err != nil {
			t.Fatal(err)
		}
		if n != size {
			t.Fatalf("DropImagePages went over %d bytes, the read-only mappings are %d", n, size)
		}
		t.Logf("pages of the image mapped: %d of %d with all touched, %d after", before, size/int64(page), after)
		if int64(before) != size/int64(page) {
			t.Fatalf("only %d of the image's %d pages mapped after populating", before, size/int64(page))
		}
		if after <= before/2 {
			return
		}
	}
	t.Errorf("pages of the image mapped: %d of %d with all touched, %d after; want it mostly dropped", before, size/int64(page), after)
}
