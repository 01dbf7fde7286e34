package engine

import (
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name may contain spaces and parentheses.
	line := "4242 (a (b) c) S 1 4242 4242 34816 4242 4194560 100 0 0 0 150 50 0 0 20 0 1 0 12345 2293760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	p, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	p.pid = 4242
	if p.comm != "a (b) c" || p.state != 'S' || p.ppid != 1 || p.sid != 4242 || p.ttyNr != 34816 ||
		p.utime != 150 || p.stime != 50 || p.startTicks != 12345 || p.vsize != 2293760 || p.rssPages != 300 || p.threads != 1 {
		t.Errorf("parseStat = %+v", p)
	}
	if got := p.ttyName(); got != "pts/0" {
		t.Errorf("ttyName(34816) = %q, want pts/0", got)
	}
	if got := p.stat(); got != "Ss" {
		t.Errorf("stat = %q, want Ss", got)
	}
	if got := p.command(); got != "[a (b) c]" {
		t.Errorf("command without cmdline = %q", got)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestPsFormatting(t *testing.T) {
	for _, tc := range []struct {
		ticks uint64
		want  string
	}{{0, "00:00:00"}, {100 * 61, "00:01:01"}, {100 * 3723, "01:02:03"}, {100 * (86400 + 5), "1-00:00:05"}} {
		if got := cpuTime(tc.ticks); got != tc.want {
			t.Errorf("cpuTime(%d) = %q, want %q", tc.ticks, got, tc.want)
		}
	}
	for _, tc := range []struct {
		sec  float64
		want string
	}{{5, "00:05"}, {3725, "01:02:05"}, {90000, "1-01:00:00"}} {
		if got := elapsed(tc.sec); got != tc.want {
			t.Errorf("elapsed(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
	for _, tc := range []struct {
		nr   int
		want string
	}{{0, "?"}, {34816 + 3, "pts/3"}, {(137 << 8) | 2, "pts/258"}, {(4 << 8) | 1, "tty1"}, {(4 << 8) | 65, "ttyS1"}} {
		if got := (&procInfo{ttyNr: tc.nr}).ttyName(); got != tc.want {
			t.Errorf("ttyName(%d) = %q, want %q", tc.nr, got, tc.want)
		}
	}
	h := &hostInfo{now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local), uptime: 200000}
	h.boot = h.now.Add(-200000 * time.Second)
	recent := &procInfo{startTicks: uint64((200000 - 3600) * clockTicks)}
	if got := recent.startString(h); got != "11:00" {
		t.Errorf("STIME an hour ago = %q, want 11:00", got)
	}
	old := &procInfo{startTicks: 0}
	if got := old.startString(h); got != h.boot.Format("Jan02") {
		t.Errorf("STIME two days ago = %q, want %q", got, h.boot.Format("Jan02"))
	}
}

func TestTopColumns(t *testing.T) {
	for _, tc := range []struct {
		args string
		want string
		err  bool
	}{
		{"", "UID PID PPID C STIME TTY TIME CMD", false},
		{"-ef", "UID PID PPID C STIME TTY TIME CMD", false},
		{"aux", "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND", false},
		{"-o pid,comm", "PID COMMAND", false},
		{"-opid,args", "PID COMMAND", false},
		{"-e -o pid,user=WHO", "PID WHO", false},
		{"-o comm", "", true},
		{"-o bogus", "", true},
		{"--forest", "", true},
	} {
		cols, err := topColumns(tc.args)
		var titles []string
		for _, c := range cols {
			titles = append(titles, c.title)
		}
		if (err != nil) != tc.err || strings.Join(titles, " ") != tc.want {
			t.Errorf("topColumns(%q) = %q, %v; want %q (error %v)", tc.args, titles, err, tc.want, tc.err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (sh) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5 1000 10 0 0 0"))
	f.Add([]byte("2 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseStat(b)
		if err != nil {
			return
		}
		// Every column must render without panicking.
		h := readHostInfo()
		for _, c := range psColumns {
			_ = c.value(p, h)
		}
	})
}
