package userdb

import (
	"reflect"
	"strings"
	"testing"
)

const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n# comment\nbroken:x:zz:1\n"
const group = "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\nstaff:x:50:user,other\naudio:x:29:user\n"

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		user  string
		extra []string
		want  User
		err   string
	}{
		// As dockerd (checked against dockerd 20.10): the groups listing
		// the user by name, then --group-add, then the primary group.
		{user: "", want: User{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}},
		{user: "user", want: User{UID: 1000, GID: 1000, Groups: []uint32{50, 29, 1000}, Home: "/home/user"}},
		{user: "user:staff", want: User{UID: 1000, GID: 50, Groups: []uint32{50}, Home: "/home/user"}},
		{user: "1000:0", want: User{UID: 1000, GID: 0, Groups: []uint32{0}, Home: "/home/user"}},
		{user: "4242", want: User{UID: 4242, GID: 0, Groups: []uint32{0}, Home: "/"}},
		{user: "4242:4343", extra: []string{"audio", "77"}, want: User{UID: 4242, GID: 4343, Groups: []uint32{29, 77, 4343}, Home: "/"}},
		{user: "user", extra: []string{"staff"}, want: User{UID: 1000, GID: 1000, Groups: []uint32{50, 29, 1000}, Home: "/home/user"}},
		{user: "nope", err: "unable to find user nope: no matching entries in passwd file"},
		{user: "user:nope", err: "unable to find group nope: no matching entries in group file"},
		{user: "root", extra: []string{"nope"}, err: "Unable to find group nope: no matching entries in group file"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			got, err := Resolve(tc.user, tc.extra, strings.NewReader(passwd), strings.NewReader(group))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("Resolve(%q) error = %v, want %q", tc.user, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("Resolve(%q) = %+v, %v; want %+v", tc.user, got, err, tc.want)
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("user:staff", passwd, group)
	f.Add("1:2", "a:b:c", "::::")
	f.Fuzz(func(t *testing.T, user, pw, gr string) {
		u, err := Resolve(user, nil, strings.NewReader(pw), strings.NewReader(gr))
		if err == nil && u.Home == "" {
			t.Errorf("Resolve(%q) gave no home", user)
		}
	})
}
