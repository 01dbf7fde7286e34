package nsinit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// execUser is a resolved user: ids, supplementary groups and home.
type execUser struct {
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

// maxDB bounds what is read of /etc/passwd or /etc/group.
const maxDB = 4 << 20

// readDB reads a user database of the image. The image is untrusted: the
// file must be a regular file (a FIFO would block init, /dev/zero would
// never end), and only its first 4 MiB are read. A missing or odd file
// reads as empty.
func readDB(path string) io.Reader {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return strings.NewReader("")
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return strings.NewReader("")
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxDB))
	return strings.NewReader(string(b))
}

// resolveUser resolves Docker's user[:group] and --group-add values
// against the container's /etc/passwd and /etc/group, with runc's rules
// and dockerd's error wording: numeric ids need no entry; names must
// exist; a named user gets the groups that list it as a member.
func resolveUser(userSpec string, extra []string, passwd, group io.Reader) (*execUser, error) {
	users := parsePasswd(passwd)
	groups := parseGroup(group)
	u := &execUser{Home: "/"}
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
			return nil, err
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

// defaultPath is used when the process has no PATH (dockerd adds it to
// every container's environment, so this is a fallback).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds the executable for argv[0] in the calling thread's root,
// with os/exec's rules and error text, which the CLI maps to exit codes
// 126 and 127:
//
//	exec: "nope": executable file not found in $PATH
//	exec: "/nope": stat /nope: no such file or directory
//	exec: "/etc/passwd": permission denied
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := findExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	pathEnv, ok := getenv(env, "PATH")
	if !ok {
		pathEnv = defaultPath
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if findExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

func findExecutable(file string) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}

func getenv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
