package nsinit

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"skiffd/internal/runtime/spec"
)

const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n# comment\nbroken:x:zz:1\n"

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	env := []string{"PATH=/nonexistent:" + dir}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })
	for _, tc := range []struct {
		name, want, err string
	}{
		{"tool", exe, ""},
		{exe, exe, ""},
		{"nope", "", `exec: "nope": executable file not found in $PATH`},
		{"plain", "", `exec: "plain": executable file not found in $PATH`},
		{plain, "", `exec: "` + plain + `": permission denied`},
		{dir + "/missing", "", `exec: "` + dir + `/missing": stat ` + dir + `/missing: no such file or directory`},
		// As Go's LookPath and runc say (and execve: EACCES).
		{dir, "", `exec: "` + dir + `": permission denied`},
		// A relative path is the working directory's (init looks the
		// command up once it is in the container's).
		{"./tool", "./tool", ""},
	} {
		got, err := lookPath(tc.name, env)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("lookPath(%q) = %q, %v; want %q, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	p := parseOptions([]string{"nosuid", "noexec", "ro", "rw", "rbind", "rprivate", "mode=755", "size=65536k"})
	wantFlags := uintptr(syscall.MS_NOSUID | syscall.MS_NOEXEC | syscall.MS_BIND | syscall.MS_REC)
	if p.flags != wantFlags || p.data != "mode=755,size=65536k" || len(p.propagation) != 1 {
		t.Errorf("parseOptions = %+v, want flags %#x, data mode=755,size=65536k, one propagation", p, wantFlags)
	}
	if p.topOnly {
		t.Errorf("parseOptions of plain options: topOnly set")
	}
	p = parseOptions([]string{"bind", spec.ReadOnlyTopOnly})
	if p.flags != syscall.MS_BIND|syscall.MS_RDONLY || !p.topOnly || p.data != "" {
		t.Errorf("parseOptions(bind, %s) = %+v, want a read-only bind of the top mount only", spec.ReadOnlyTopOnly, p)
	}
}

func TestWithHome(t *testing.T) {
	if got := withHome([]string{"A=1"}, "/root"); !reflect.DeepEqual(got, []string{"A=1", "HOME=/root"}) {
		t.Errorf("withHome = %q", got)
	}
	if got := withHome([]string{"HOME=/x"}, "/root"); !reflect.DeepEqual(got, []string{"HOME=/x"}) {
		t.Errorf("withHome kept = %q", got)
	}
}

func TestReadDBRefusesOddFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "passwd")
	os.WriteFile(reg, []byte(passwd), 0o644)
	for _, tc := range []struct {
		path string
		want int
	}{{fifo, 0}, {"/dev/zero", 0}, {filepath.Join(dir, "missing"), 0}, {reg, len(passwd)}} {
		b, _ := io.ReadAll(readDB(tc.path))
		if len(b) != tc.want {
			t.Errorf("readDB(%s) read %d bytes, want %d", tc.path, len(b), tc.want)
		}
	}
}
