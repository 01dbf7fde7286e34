package signal

import (
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		err  bool
	}{
		{"9", syscall.SIGKILL, false},
		{"KILL", syscall.SIGKILL, false},
		{"SIGKILL", syscall.SIGKILL, false},
		{"sigterm", syscall.SIGTERM, false},
		{"usr1", syscall.SIGUSR1, false},
		{"HUP", syscall.SIGHUP, false},
		{"RTMIN", 34, false},
		{"RTMIN+3", 37, false},
		{"RTMAX-1", 63, false},
		{"0", 0, true},
		{"65", 0, true},
		{"NOPE", 0, true},
		{"", 0, true},
		{"RTMIN+40", 0, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"9", "SIGKILL", "rtmin+2", "RTMAX-3", "", "SIG"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := Parse(s)
		if err == nil && (sig < 1 || sig > 64) {
			t.Fatalf("Parse(%q) = %d, out of range", s, sig)
		}
	})
}
