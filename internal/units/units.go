// Package units reads the human sizes of the Docker API and CLI options
// ("512", "64m", "1.5GiB", "2 GB") the way docker's go-units RAMInBytes
// does: binary multipliers, an optional space before the unit, an optional
// "i" and "b" after it.
//
//	n, err := units.RAMInBytes("64m") // 67108864
//
// Both of skiffd's size options use it: a tmpfs mount's size (as dockerd)
// and the json-file log driver's max-size (dockerd reads that one with
// FromHumanSize, decimal multipliers; skiffd keeps binary ones).
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// RAMInBytes reads a human size with binary multipliers (k = 1024) into
// bytes. A malformed size is an error "invalid size: '<s>'" and -1.
func RAMInBytes(s string) (int64, error) {
	bad := fmt.Errorf("invalid size: '%s'", s)
	num := s
	i := 0
	for i < len(num) && (num[i] >= '0' && num[i] <= '9' || num[i] == '.') {
		i++
	}
	if i == 0 {
		return -1, bad
	}
	num, unit := s[:i], strings.ToLower(strings.TrimPrefix(s[i:], " "))
	if strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") || strings.Contains(num, "..") {
		return -1, bad
	}
	value, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return -1, bad
	}
	unit = strings.TrimSuffix(unit, "b")
	unit = strings.TrimSuffix(unit, "i")
	var mul float64 = 1
	switch unit {
	case "":
	case "k":
		mul = 1 << 10
	case "m":
		mul = 1 << 20
	case "g":
		mul = 1 << 30
	case "t":
		mul = 1 << 40
	case "p":
		mul = 1 << 50
	default:
		return -1, bad
	}
	return int64(value * mul), nil
}
