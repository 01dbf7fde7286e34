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
