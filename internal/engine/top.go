package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
)

// ContainerTop answers GET /containers/{id}/top. There is no ps binary to
// run: the table is computed from /proc for the processes of the
// container's cgroup, in the layout of procps' ps for the default
// arguments ("-ef"), for "aux" (BSD style) and for "-o field,...".
func (e *Engine) ContainerTop(ctx context.Context, name, psArgs string) (*types.ContainerTopResponse, error) {
	c, err := e.get(name)
	if err != nil {
		return nil, err
	}
	cols, err := topColumns(psArgs)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	c.Lock()
	cs := e.state(c.ID)
	rc := cs.run()
	running := c.State.Running && !c.State.Restarting
	c.Unlock()
	if !running || rc == nil {
		return nil, errdefs.Conflict(fmt.Errorf("Container %s is not running", c.ID))
	}
	pids, err := rc.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("top of container %s: %w", c.ID, err)
	}
	slices.Sort(pids)
	host := readHostInfo()
	out := &types.ContainerTopResponse{Processes: [][]string{}}
	for _, col := range cols {
		out.Titles = append(out.Titles, col.title)
	}
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = col.value(p, host)
		}
		out.Processes = append(out.Processes, row)
	}
	return out, nil
}

// psColumn is one column of the ps table.
type psColumn struct {
	title string
	value func(*procInfo, *hostInfo) string
}

var psColumns = map[string]psColumn{
	"uid":     {"UID", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.uid) }},
	"user":    {"USER", func(p *procInfo, h *hostInfo) string { return userName(p.uid) }},
	"euser":   {"EUSER", func(p *procInfo, h *hostInfo) string { return userName(p.uid) }},
	"pid":     {"PID", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.pid) }},
	"ppid":    {"PPID", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.ppid) }},
	"c":       {"C", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(int(p.cpuPercent(h))) }},
	"stime":   {"STIME", func(p *procInfo, h *hostInfo) string { return p.startString(h) }},
	"start":   {"START", func(p *procInfo, h *hostInfo) string { return p.startString(h) }},
	"tty":     {"TTY", func(p *procInfo, h *hostInfo) string { return p.ttyName() }},
	"tt":      {"TT", func(p *procInfo, h *hostInfo) string { return p.ttyName() }},
	"time":    {"TIME", func(p *procInfo, h *hostInfo) string { return cpuTime(p.cpuTicks()) }},
	"cmd":     {"CMD", func(p *procInfo, h *hostInfo) string { return p.command() }},
	"args":    {"COMMAND", func(p *procInfo, h *hostInfo) string { return p.command() }},
	"command": {"COMMAND", func(p *procInfo, h *hostInfo) string { return p.command() }},
	"comm":    {"COMMAND", func(p *procInfo, h *hostInfo) string { return p.comm }},
	"ucmd":    {"CMD", func(p *procInfo, h *hostInfo) string { return p.comm }},
	"stat":    {"STAT", func(p *procInfo, h *hostInfo) string { return p.stat() }},
	"s":       {"S", func(p *procInfo, h *hostInfo) string { return string(p.state) }},
	"rss":     {"RSS", func(p *procInfo, h *hostInfo) string { return strconv.FormatUint(p.rssKiB(h), 10) }},
	"vsz":     {"VSZ", func(p *procInfo, h *hostInfo) string { return strconv.FormatUint(p.vsize/1024, 10) }},
	"pcpu":    {"%CPU", func(p *procInfo, h *hostInfo) string { return fmt.Sprintf("%.1f", p.cpuPercent(h)) }},
	"%cpu":    {"%CPU", func(p *procInfo, h *hostInfo) string { return fmt.Sprintf("%.1f", p.cpuPercent(h)) }},
	"pmem":    {"%MEM", func(p *procInfo, h *hostInfo) string { return p.memPercent(h) }},
	"%mem":    {"%MEM", func(p *procInfo, h *hostInfo) string { return p.memPercent(h) }},
	"etime":   {"ELAPSED", func(p *procInfo, h *hostInfo) string { return elapsed(p.age(h)) }},
	"nlwp":    {"NLWP", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.threads) }},
	"pgid":    {"PGID", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.pgid) }},
	"sid":     {"SID", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.sid) }},
	"ni":      {"NI", func(p *procInfo, h *hostInfo) string { return strconv.Itoa(p.nice) }},
}

// topColumns chooses the columns for ps_args: "" or -ef/-f style gives
// UID PID PPID C STIME TTY TIME CMD; aux gives BSD's USER PID %CPU %MEM
// VSZ RSS TTY STAT START TIME COMMAND; -o (or o) lists fields.
func topColumns(psArgs string) ([]psColumn, error) {
	args := strings.Fields(psArgs)
	pick := func(names ...string) []psColumn {
		out := make([]psColumn, len(names))
		for i, n := range names {
			out[i] = psColumns[n]
		}
		return out
	}
	full := pick("uid", "pid", "ppid", "c", "stime", "tty", "time", "cmd")
	full[0] = psColumn{"UID", psColumns["user"].value}
	if len(args) == 0 {
		return full, nil
	}
	var cols []psColumn
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "o" || a == "--format":
			if i+1 >= len(args) {
				return nil, errors.New("ps: option -o requires an argument")
			}
			i++
			more, err := fieldColumns(args[i])
			if err != nil {
				return nil, err
			}
			cols = append(cols, more...)
		case strings.HasPrefix(a, "-o"):
			more, err := fieldColumns(a[2:])
			if err != nil {
				return nil, err
			}
			cols = append(cols, more...)
		case strings.TrimLeft(a, "-") != "" && strings.Trim(strings.TrimLeft(a, "-"), "aefAxlwu") == "":
			bsd := !strings.HasPrefix(a, "-")
			switch {
			case bsd && strings.Contains(a, "u"):
				cols = append(cols, pick("user", "pid", "%cpu", "%mem", "vsz", "rss", "tty", "stat", "start", "time", "command")...)
			case strings.Contains(a, "f"):
				cols = append(cols, full...)
			}
		default:
			return nil, fmt.Errorf("ps: unsupported arguments %q (skiffd's top knows -ef, aux and -o)", psArgs)
		}
	}
	if len(cols) == 0 {
		if strings.Contains(psArgs, "e") || strings.Contains(psArgs, "A") {
			return full, nil
		}
		cols = pick("pid", "tty", "time", "cmd")
	}
	for _, c := range cols {
		if c.title == "PID" {
			return cols, nil
		}
	}
	return nil, errors.New("Couldn't find PID field in ps output")
}

// fieldColumns reads a -o list: comma or space separated names, each
// optionally with =HEADER.
func fieldColumns(list string) ([]psColumn, error) {
	var out []psColumn
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' }) {
		name, header, hasHeader := strings.Cut(f, "=")
		col, ok := psColumns[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("ps: unknown user-defined format specifier %q", name)
		}
		if hasHeader {
			col.title = header
		}
		out = append(out, col)
	}
	return out, nil
}

// procInfo is what top reads about one process.
type procInfo struct {
	pid, ppid, pgid, sid int
	uid                  int
	comm                 string
	cmdline              []string
	state                byte
	ttyNr                int
	utime, stime         uint64 // clock ticks
	startTicks           uint64 // since boot
	vsize                uint64
	rssPages             uint64
	threads, nice        int
}

// hostInfo is what the columns need about the host, read once per call.
type hostInfo struct {
	now      time.Time
	uptime   float64 // seconds
	boot     time.Time
	memTotal uint64 // KiB
	pageSize uint64
}

func readHostInfo() *hostInfo {
	h := &hostInfo{now: time.Now(), pageSize: uint64(os.Getpagesize())}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			h.uptime, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	h.boot = h.now.Add(-time.Duration(h.uptime * float64(time.Second)))
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				h.memTotal, _ = strconv.ParseUint(f[1], 10, 64)
			}
		}
	}
	return h
}

// readProc reads /proc/<pid>/stat, status and cmdline.
func readProc(pid int) (*procInfo, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, err
	}
	p, err := parseStat(b)
	if err != nil {
		return nil, err
	}
	p.pid = pid
	if st, err := os.ReadFile(dir + "/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 1 {
					p.uid, _ = strconv.Atoi(f[1]) // effective
				}
			}
		}
	}
	if cl, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cl) > 0 {
		cl = bytes.TrimRight(cl, "\x00")
		p.cmdline = strings.Split(string(cl), "\x00")
	}
	return p, nil
}

// parseStat parses /proc/<pid>/stat; the command name is in parentheses
// and may contain anything, so the fields after it are found from the last
// ')'.
func parseStat(b []byte) (*procInfo, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return nil, errors.New("malformed stat")
	}
	p := &procInfo{comm: string(b[open+1 : end])}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state).
	if len(f) < 22 {
		return nil, errors.New("short stat")
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
	inum := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
	p.state = f[0][0]
	p.ppid = inum(1)
	p.pgid = inum(2)
	p.sid = inum(3)
	p.ttyNr = inum(4)
	p.utime = num(11)
	p.stime = num(12)
	p.nice = inum(16)
	p.threads = inum(17)
	p.startTicks = num(19)
	p.vsize = num(20)
	p.rssPages = num(21)
	return p, nil
}

func (p *procInfo) cpuTicks() uint64 { return p.utime + p.stime }

func (p *procInfo) age(h *hostInfo) float64 {
	return h.uptime - float64(p.startTicks)/clockTicks
}

// cpuPercent is ps's C and %CPU: CPU time over elapsed time.
func (p *procInfo) cpuPercent(h *hostInfo) float64 {
	age := p.age(h)
	if age <= 0 {
		return 0
	}
	return float64(p.cpuTicks()) / clockTicks / age * 100
}

func (p *procInfo) rssKiB(h *hostInfo) uint64 { return p.rssPages * h.pageSize / 1024 }

func (p *procInfo) memPercent(h *hostInfo) string {
	if h.memTotal == 0 {
		return "0.0"
	}
	return fmt.Sprintf("%.1f", float64(p.rssKiB(h))*100/float64(h.memTotal))
}

// startString is ps's STIME: the time of day within the last 24 hours,
// else month and day within the year, else the year.
func (p *procInfo) startString(h *hostInfo) string {
	start := h.boot.Add(time.Duration(float64(p.startTicks) / clockTicks * float64(time.Second))).Local()
	switch {
	case h.now.Sub(start) < 24*time.Hour:
		return start.Format("15:04")
	case start.Year() == h.now.Year():
		return start.Format("Jan02")
	}
	return start.Format("2006")
}

// ttyName decodes tty_nr: pts/N for the Unix 98 pty majors, ttyN for
// virtual consoles, "?" for none.
func (p *procInfo) ttyName() string {
	if p.ttyNr == 0 {
		return "?"
	}
	major := (p.ttyNr >> 8) & 0xfff
	minor := (p.ttyNr & 0xff) | ((p.ttyNr >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return "pts/" + strconv.Itoa((major-136)*256+minor)
	case major == 4 && minor < 64:
		return "tty" + strconv.Itoa(minor)
	case major == 4:
		return "ttyS" + strconv.Itoa(minor-64)
	}
	return "?"
}

// stat is ps's STAT: the state, then < or N for the priority, s for a
// session leader, l when multi-threaded, + in the foreground group.
func (p *procInfo) stat() string {
	s := string(p.state)
	if p.nice < 0 {
		s += "<"
	} else if p.nice > 0 {
		s += "N"
	}
	if p.sid == p.pid {
		s += "s"
	}
	if p.threads > 1 {
		s += "l"
	}
	return s
}

// command is the command line, or [comm] for a process without one.
func (p *procInfo) command() string {
	if len(p.cmdline) == 0 {
		return "[" + p.comm + "]"
	}
	return strings.Join(p.cmdline, " ")
}

// cpuTime formats ticks as ps's TIME, [DD-]HH:MM:SS.
func cpuTime(ticks uint64) string {
	s := ticks / clockTicks
	days := s / 86400
	out := fmt.Sprintf("%02d:%02d:%02d", s%86400/3600, s%3600/60, s%60)
	if days > 0 {
		return fmt.Sprintf("%d-%s", days, out)
	}
	return out
}

// elapsed formats seconds as ps's ELAPSED, [[DD-]HH:]MM:SS.
func elapsed(sec float64) string {
	s := int64(sec)
	if s < 0 {
		s = 0
	}
	d, h, m := s/86400, s%86400/3600, s%3600/60
	switch {
	case d > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s%60)
	case h > 0:
		return fmt.Sprintf("%02d:%02d:%02d", h, m, s%60)
	}
	return fmt.Sprintf("%02d:%02d", m, s%60)
}

// userName is the host's name for uid, or the number.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}
