package nsinit

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n# comment\nbroken:x:zz:1\n"
const group = "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nstaff:x:50:user,other\naudio:x:29:user\n"

func TestResolveUser(t *testing.T) {
	for _, tc := range []struct {
		user  string
		extra []string
		want  execUser
		err   string
	}{
		// As dockerd (checked against dockerd 20.10): the groups listing
		// the user by name, then --group-add, then the primary group.
		{user: "", want: execUser{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}},
		{user: "user", want: execUser{UID: 1000, GID: 1000, Groups: []uint32{50, 29, 1000}, Home: "/home/user"}},
		{user: "user:staff", want: execUser{UID: 1000, GID: 50, Groups: []uint32{50}, Home: "/home/user"}},
		{user: "1000:0", want: execUser{UID: 1000, GID: 0, Groups: []uint32{0}, Home: "/home/user"}},
		{user: "4242", want: execUser{UID: 4242, GID: 0, Groups: []uint32{0}, Home: "/"}},
		{user: "4242:4343", extra: []string{"audio", "77"}, want: execUser{UID: 4242, GID: 4343, Groups: []uint32{29, 77, 4343}, Home: "/"}},
		{user: "user", extra: []string{"staff"}, want: execUser{UID: 1000, GID: 1000, Groups: []uint32{50, 29, 1000}, Home: "/home/user"}},
		{user: "nope", err: "unable to find user nope: no matching entries in passwd file"},
		{user: "user:nope", err: "unable to find group nope: no matching entries in group file"},
		{user: "root", extra: []string{"nope"}, err: "unable to find group nope: no matching entries in group file"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			got, err := resolveUser(tc.user, tc.extra, strings.NewReader(passwd), strings.NewReader(group))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("resolveUser(%q) error = %v, want %q", tc.user, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("resolveUser(%q) = %+v, %v; want %+v", tc.user, got, err, tc.want)
			}
		})
	}
}

func FuzzResolveUser(f *testing.F) {
	f.Add("user:staff", passwd, group)
	f.Add("1:2", "a:b:c", "::::")
	f.Fuzz(func(t *testing.T, user, pw, gr string) {
		u, err := resolveUser(user, nil, strings.NewReader(pw), strings.NewReader(gr))
		if err == nil && u.Home == "" {
			t.Errorf("resolveUser(%q) gave no home", user)
		}
	})
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	env := []string{"PATH=/nonexistent:" + dir}
	for _, tc := range []struct {
		name, want, err string
	}{
		{"tool", exe, ""},
		{exe, exe, ""},
		{"nope", "", `exec: "nope": executable file not found in $PATH`},
		{"plain", "", `exec: "plain": executable file not found in $PATH`},
		{plain, "", `exec: "` + plain + `": permission denied`},
		{dir + "/missing", "", `exec: "` + dir + `/missing": stat ` + dir + `/missing: no such file or directory`},
		{dir, "", `exec: "` + dir + `": is a directory`},
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
