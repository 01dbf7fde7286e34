package caps

import (
	"testing"
)

func TestDefaultMask(t *testing.T) {
	list := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	m, err := Mask(list)
	if err != nil {
		t.Fatal(err)
	}
	if m != 0xa80425fb {
		t.Errorf("Mask(docker defaults) = %#x, want 0xa80425fb", m)
	}
	if got := Names(m); len(got) != len(list) {
		t.Errorf("Names(%#x) = %v, want %d names", m, got, len(list))
	}
}

func TestBit(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
		ok   bool
	}{
		{"CAP_CHOWN", 0, true},
		{"chown", 0, true},
		{"sys_admin", 21, true},
		{"CAP_CHECKPOINT_RESTORE", 40, true},
		{"CAP_NOPE", 0, false},
		{"", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Bit(tc.name)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("Bit(%q) = %d, %v, want %d, ok=%v", tc.name, got, err, tc.want, tc.ok)
			}
		})
	}
}
