//go:build ignore

// mksysnum writes the syscall name → number tables (zsysnum_*.go) from the
// kernel UAPI headers installed on the build machine. The headers may be
// older than the kernels skiffd runs on, so numbers added since are listed
// by hand in extra below (from the kernel's arch/*/syscall*.tbl files).
//
//	go run mksysnum.go
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type table struct {
	file    string // output file
	varName string
	header  string
	// conds evaluates the preprocessor conditions found in the header; a
	// condition missing from the map is a generator error, so a new header
	// cannot silently change the table.
	conds map[string]bool
	extra map[string]int
}

// Numbers from Linux 6.2 onwards, which the 6.1 headers lack.
var unified = map[string]int{
	"cachestat": 451, "fchmodat2": 452, "futex_wake": 454, "futex_wait": 455,
	"futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
	"lsm_set_self_attr": 460, "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463,
	"getxattrat": 464, "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467,
	"file_getattr": 468, "file_setattr": 469, "listns": 470,
}

func with(m map[string]int, more map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

var tables = []table{
	{
		file: "zsysnum_x86_64.go", varName: "sysnumX86_64",
		header: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
		conds:  map[string]bool{},
		extra:  with(unified, map[string]int{"uretprobe": 335, "uprobe": 336, "map_shadow_stack": 453}),
	},
	{
		file: "zsysnum_i386.go", varName: "sysnumI386",
		header: "/usr/include/x86_64-linux-gnu/asm/unistd_32.h",
		conds:  map[string]bool{},
		extra:  unified,
	},
	{
		file: "zsysnum_aarch64.go", varName: "sysnumAarch64",
		header: "/usr/include/asm-generic/unistd.h",
		// arm64 is a 64-bit asm-generic arch that wants renameat, the new
		// stat calls, get/setrlimit, clone3 and memfd_secret.
		conds: map[string]bool{
			"__BITS_PER_LONG == 32 || defined(__SYSCALL_COMPAT)":            false,
			"__BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)":           true,
			"defined(__ARCH_WANT_NEW_STAT) || defined(__ARCH_WANT_STAT64)":  true,
			"defined(__ARCH_WANT_TIME32_SYSCALLS) || __BITS_PER_LONG != 32": true,
			"defined(__SYSCALL_COMPAT) || __BITS_PER_LONG == 32":            false,
			"__ARCH_WANT_MEMFD_SECRET":                                      true,
			"__ARCH_WANT_RENAMEAT":                                          true,
			"__ARCH_WANT_SET_GET_RLIMIT":                                    true,
			"__ARCH_WANT_SYNC_FILE_RANGE2":                                  false,
			"__ARCH_WANT_SYS_CLONE3":                                        true,
			"__NR3264_stat":                                                 false,
			"__SYSCALL_COMPAT":                                              false,
			"!__ARCH_NOMMU":                                                 true,
			"!__SYSCALL":                                                    true,
		},
		extra: with(unified, map[string]int{"map_shadow_stack": 453}),
	},
}

var defineRE = regexp.MustCompile(`^#define\s+__NR(3264)?_(\w+)\s+(\S+)`)

func parse(t table) map[string]int {
	f, err := os.Open(t.header)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	nums := map[string]int{}
	aliases := map[string]int{} // __NR3264_x values
	// stack of "this branch is live" flags, one per open #if.
	type level struct{ cond, parentLive bool }
	var stack []level
	live := func() bool {
		for _, l := range stack {
			if !l.cond {
				return false
			}
		}
		return true
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "/*"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case strings.HasPrefix(line, "#ifndef"):
			c, ok := t.conds["!"+strings.TrimSpace(strings.TrimPrefix(line, "#ifndef"))]
			if !ok {
				if len(t.conds) == 0 { // include guards of the x86 headers
					c = true
				} else {
					log.Fatalf("%s: unknown condition %q", t.header, line)
				}
			}
			stack = append(stack, level{cond: c})
			continue
		case strings.HasPrefix(line, "#ifdef"), strings.HasPrefix(line, "#if "):
			expr := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "#ifdef"), "#if"))
			c, ok := t.conds[expr]
			if !ok {
				log.Fatalf("%s: unknown condition %q", t.header, line)
			}
			stack = append(stack, level{cond: c})
			continue
		case strings.HasPrefix(line, "#else"):
			stack[len(stack)-1].cond = !stack[len(stack)-1].cond
			continue
		case strings.HasPrefix(line, "#endif"):
			stack = stack[:len(stack)-1]
			continue
		case strings.HasPrefix(line, "#elif"):
			log.Fatalf("%s: #elif is not handled", t.header)
		}
		if !live() {
			continue
		}
		m := defineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, val := m[2], m[3]
		if name == "syscalls" || name == "arch_specific_syscall" {
			continue
		}
		var n int
		if strings.HasPrefix(val, "__NR3264_") {
			v, ok := aliases[strings.TrimPrefix(val, "__NR3264_")]
			if !ok {
				log.Fatalf("%s: unknown alias %s", t.header, val)
			}
			n = v
		} else {
			v, err := strconv.Atoi(val)
			if err != nil {
				// Expressions such as (__X32_SYSCALL_BIT + 0) do not occur in
				// the headers we read; fail rather than guess.
				log.Fatalf("%s: cannot parse %q", t.header, line)
			}
			n = v
		}
		if m[1] == "3264" {
			aliases[name] = n
			continue
		}
		nums[name] = n
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	for k, v := range t.extra {
		if old, ok := nums[k]; ok && old != v {
			log.Fatalf("%s: %s is %d in the header but %d by hand", t.header, k, old, v)
		}
		nums[k] = v
	}
	return nums
}

func main() {
	for _, t := range tables {
		nums := parse(t)
		names := make([]string, 0, len(nums))
		for k := range nums {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool {
			if nums[names[i]] != nums[names[j]] {
				return nums[names[i]] < nums[names[j]]
			}
			return names[i] < names[j]
		})
		var b bytes.Buffer
		fmt.Fprintf(&b, "// Code generated by mksysnum.go from %s; DO NOT EDIT.\n\npackage seccomp\n\nimport \"sync\"\n\n", t.header)
		// The table is built on first use: as a package-level map literal
		// it would be built by every process the binary runs as, each
		// shim included (issue 13).
		fmt.Fprintf(&b, "var %s = sync.OnceValue(func() map[string]uint32 {\n\treturn map[string]uint32{\n", t.varName)
		for _, n := range names {
			fmt.Fprintf(&b, "\t%q: %d,\n", n, nums[n])
		}
		b.WriteString("}\n})\n")
		src, err := format.Source(b.Bytes())
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(t.file, src, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d syscalls\n", t.file, len(nums))
	}
}
