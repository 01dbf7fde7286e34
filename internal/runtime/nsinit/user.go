package nsinit

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"skiffd/internal/userdb"
)

// execUser is the user init switches to, as userdb resolves it.
type execUser userdb.User

// maxDB bounds what is read of /etc/passwd or /etc/group.
const maxDB = userdb.MaxFileSize

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
// against the container's /etc/passwd and /etc/group (see userdb.Resolve,
// which the daemon's docker cp -a uses too).
func resolveUser(userSpec string, extra []string, passwd, group io.Reader) (*execUser, error) {
	u, err := userdb.Resolve(userSpec, extra, passwd, group)
	return (*execUser)(u), err
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
	// A directory is not executable, whatever its mode: execve says
	// EACCES, and so do Go's LookPath and runc.
	if st.IsDir() || st.Mode()&0o111 == 0 {
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
