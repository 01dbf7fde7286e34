package sys

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Utsname is uname(2)'s answer as strings.
type Utsname struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

// Uname returns the running kernel's names. Package syscall gives them as
// NUL-terminated arrays whose element type differs between architectures
// (int8 on amd64 and arm64, uint8 on riscv64); this is the one place that
// turns them into strings.
func Uname() (Utsname, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return Utsname{}, err
	}
	return Utsname{
		Sysname:    cstring(u.Sysname[:]),
		Nodename:   cstring(u.Nodename[:]),
		Release:    cstring(u.Release[:]),
		Version:    cstring(u.Version[:]),
		Machine:    cstring(u.Machine[:]),
		Domainname: cstring(u.Domainname[:]),
	}, nil
}

// cstring is b up to its first NUL (all of b when there is none).
func cstring[T int8 | uint8](b []T) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// ParseKernelRelease reads the leading "major.minor" of a kernel release
// such as "6.18.44-fc-v769", "3.12-1-amd64" or "6.1rc2": the digits before
// the first dot and the digits right after it. What follows is not looked
// at. It fails when either number is missing.
func ParseKernelRelease(release string) (major, minor int, err error) {
	ma, rest, ok := strings.Cut(release, ".")
	mi := leadingDigits(rest)
	if !ok || ma == "" || mi == "" {
		return 0, 0, fmt.Errorf("kernel release %q does not start with <major>.<minor>", release)
	}
	if major, err = strconv.Atoi(ma); err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", release, err)
	}
	if minor, err = strconv.Atoi(mi); err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", release, err)
	}
	return major, minor, nil
}

// leadingDigits is the longest prefix of s made of ASCII digits.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
