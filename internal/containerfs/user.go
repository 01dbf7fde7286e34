package containerfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/sys"
	"skiffd/internal/userdb"
)

// containerUser resolves a container's User ("name", "uid", with an
// optional ":group") to numeric ids with the container's own /etc/passwd
// and /etc/group, read inside its root, by the rules the container's init
// uses (userdb). A file that cannot be read counts as empty.
func containerUser(rootfd int, user string) (int, int, error) {
	passwd, _ := readInRoot(rootfd, "etc/passwd")
	group, _ := readInRoot(rootfd, "etc/group")
	u, err := userdb.Resolve(user, nil, bytes.NewReader(passwd), bytes.NewReader(group))
	if err != nil {
		return 0, 0, errdefs.InvalidParameter(err)
	}
	return int(u.UID), int(u.GID), nil
}

// readInRoot reads a small file at rel inside the root, at most
// userdb.MaxFileSize.
func readInRoot(rootfd int, rel string) ([]byte, error) {
	fd, err := sys.Openat2(rootfd, rel, &sys.OpenHow{Flags: uint64(syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NONBLOCK), Resolve: resolveFlags})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	return io.ReadAll(io.LimitReader(f, userdb.MaxFileSize))
}
