package sys

import (
	"os"
	"syscall"
	"testing"
)

func TestFileMode(t *testing.T) {
	for _, tc := range []struct {
		mode uint32
		want uint32
	}{
		{syscall.S_IFDIR | 0o755, 2147484141}, // dockerd's trace: a 0755 directory
		{syscall.S_IFREG | 0o644, 420},
		{syscall.S_IFLNK | 0o777, uint32(os.ModeSymlink | 0o777)},
		{syscall.S_IFDIR | 0o1777, uint32(os.ModeDir | os.ModeSticky | 0o777)},
		{syscall.S_IFREG | 0o4755, uint32(os.ModeSetuid | 0o755)},
		{syscall.S_IFCHR | 0o600, uint32(os.ModeDevice | os.ModeCharDevice | 0o600)},
	} {
		if got := uint32(FileMode(tc.mode)); got != tc.want {
			t.Errorf("FileMode(%o) = %d, want %d", tc.mode, got, tc.want)
		}
	}
}
