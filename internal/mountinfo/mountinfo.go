// Package mountinfo reads the fields of /proc/<pid>/mountinfo lines.
//
//	// "36 35 98:0 /mnt1 /mnt\0402 rw,noatime master:1 - ext3 /dev/root rw"
//	point := mountinfo.Unescape(strings.Fields(line)[4]) // "/mnt 2"
package mountinfo

import (
	"strconv"
	"strings"
)

// Unescape decodes the octal escapes (\040 for a space, \134 for a
// backslash) the kernel writes in mountinfo paths. A backslash not
// followed by three octal digits stays as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Mount is the part of one mountinfo line that SourceMount needs.
type Mount struct {
	// Point is the mount point, unescaped.
	Point string
	// Optional are the optional fields ("shared:1", "master:2"), empty
	// for a private mount.
	Optional []string
}

// Shared tells whether the mount is a shared one (a peer group member).
func (m Mount) Shared() bool { return m.has("shared:") }

// Slave tells whether the mount receives propagation from a master.
func (m Mount) Slave() bool { return m.has("master:") }

func (m Mount) has(prefix string) bool {
	for _, o := range m.Optional {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

// Parse reads the mount point and optional fields of each line of a
// mountinfo file; malformed lines are skipped.
func Parse(data string) []Mount {
	var out []Mount
	for line := range strings.SplitSeq(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		m := Mount{Point: Unescape(f[4])}
		for _, o := range f[6:] {
			if o == "-" {
				break
			}
			m.Optional = append(m.Optional, o)
		}
		out = append(out, m)
	}
	return out
}

// Containing returns the mount that path (absolute, symbolic links
// resolved) lies on: the one with the longest mount point that is path or
// an ancestor of it, the last listed (the topmost) among mounts on the
// same point. ok is false when none is, which only a table without "/"
// allows.
func Containing(mounts []Mount, path string) (m Mount, ok bool) {
	best := -1
	for _, c := range mounts {
		p := c.Point
		if !(path == p || p == "/" || strings.HasPrefix(path, p+"/")) {
			continue
		}
		if len(p) >= best {
			m, best = c, len(p)
		}
	}
	return m, best >= 0
}
