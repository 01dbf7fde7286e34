// Package userdb resolves a container's user, as Docker's User and
// --group-add spell it, against the container's own /etc/passwd and
// /etc/group, with runc's rules and dockerd's error wording. It parses
// only; callers open the files where they are (init inside the container's
// root, docker cp -a from outside it) and read at most MaxFileSize of each,
// since the image that supplies them is untrusted.
//
// For example, with the image's files open as passwd and group:
//
//	u, err := userdb.Resolve("app:staff", nil, passwd, group)
//	if err != nil {
//		return err // unable to find user app: no matching entries in passwd file
//	}
//	// u.UID, u.GID, u.Groups (supplementary, primary last), u.Home
//
// It imports only the standard library, so that both the daemon and the
// container's init can use it.
package userdb

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// MaxFileSize bounds what is read of /etc/passwd or /etc/group.
const MaxFileSize = 4 << 20

// User is a resolved user: ids, supplementary groups and home.
type User struct {
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// passwdEntry and groupEntry are lines of /etc/passwd and /etc/group.
type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Split(s.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out
}

func parseGroup(r io.Reader) []groupEntry {
	var out []groupEntry
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Split(s.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out
}

// Resolve resolves Docker's user[:group] and --group-add values against
// the container's /etc/passwd and /etc/group, with runc's rules and
// dockerd's error wording: numeric ids need no entry; names must exist; a
// named user gets the groups that list it as a member. An empty userSpec
// is root. Lines that do not parse are skipped, as runc skips them.
func Resolve(userSpec string, extra []string, passwd, group io.Reader) (*User, error) {
	users := parsePasswd(passwd)
	groups := parseGroup(group)
	u := &User{Home: "/"}
	name, grp, hasGroup := strings.Cut(userSpec, ":")
	userName := ""
	if name == "" {
		name = "0"
	}
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		for _, e := range users {
			if e.uid == u.UID {
				u.GID, u.Home, userName = e.gid, e.home, e.name
				break
			}
		}
	} else {
		found := false
		for _, e := range users {
			if e.name == name {
				u.UID, u.GID, u.Home, userName = e.uid, e.gid, e.home, e.name
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("unable to find user %s: no matching entries in passwd file", name)
		}
	}
	if hasGroup {
		gid, err := lookupGroup(grp, groups)
		if err != nil {
			return nil, err
		}
		u.GID = gid
	} else if userName != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == userName && g.gid != u.GID && !slices.Contains(u.Groups, g.gid) {
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	for _, g := range extra {
		gid, err := lookupGroup(g, groups)
		if err != nil {
			// runc's and so dockerd's wording for an added group.
			return nil, fmt.Errorf("Unable to find group %s: no matching entries in group file", g)
		}
		// A group both in /etc/group and in --group-add is listed once.
		if !slices.Contains(u.Groups, gid) {
			u.Groups = append(u.Groups, gid)
		}
	}
	// dockerd lists the primary group among the supplementary ones too
	// (`id` shows groups=50(staff),1000(user) for -u 1000).
	if !slices.Contains(u.Groups, u.GID) {
		u.Groups = append(u.Groups, u.GID)
	}
	if u.Home == "" {
		u.Home = "/"
	}
	return u, nil
}

func lookupGroup(g string, groups []groupEntry) (uint32, error) {
	if id, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(id), nil
	}
	for _, e := range groups {
		if e.name == g {
			return e.gid, nil
		}
	}
	return 0, fmt.Errorf("unable to find group %s: no matching entries in group file", g)
}
