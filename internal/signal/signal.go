// Package signal reads signals the way the Docker API gives them: a
// number, a name with or without "SIG" in any case, or RTMIN+n / RTMAX-n.
//
//	sig, err := signal.Parse("sigterm") // syscall.SIGTERM
package signal

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// names are the signals by name, without "SIG".
var names = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CLD": syscall.SIGCLD, "CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP,
	"ILL": syscall.SIGILL, "INT": syscall.SIGINT, "IO": syscall.SIGIO, "IOT": syscall.SIGIOT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "POLL": syscall.SIGPOLL, "PROF": syscall.SIGPROF,
	"PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV, "STKFLT": syscall.SIGSTKFLT,
	"STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH,
	"XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}

// Parse reads a signal as Docker accepts it (kill, stop, restart,
// StopSignal, STOPSIGNAL): a number, a name with
// or without "SIG" in any case, or RTMIN+n / RTMAX-n.
func Parse(s string) (syscall.Signal, error) {
	if n, err := parseUint(s); err == nil {
		if n == 0 || n > 64 {
			return 0, fmt.Errorf("Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := names[name]; ok {
		return sig, nil
	}
	const rtmin, rtmax = 34, 64
	if rest, ok := strings.CutPrefix(name, "RTMIN"); ok {
		off := 0
		if rest != "" {
			n, err := parseUint(strings.TrimPrefix(rest, "+"))
			if err != nil || !strings.HasPrefix(rest, "+") {
				return 0, fmt.Errorf("Invalid signal: %s", s)
			}
			off = n
		}
		if rtmin+off <= rtmax {
			return syscall.Signal(rtmin + off), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX"); ok {
		off := 0
		if rest != "" {
			n, err := parseUint(strings.TrimPrefix(rest, "-"))
			if err != nil || !strings.HasPrefix(rest, "-") {
				return 0, fmt.Errorf("Invalid signal: %s", s)
			}
			off = n
		}
		if rtmax-off >= rtmin {
			return syscall.Signal(rtmax - off), nil
		}
	}
	return 0, fmt.Errorf("Invalid signal: %s", s)
}

func parseUint(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, errors.New("not a number")
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(r-'0')
	}
	return n, nil
}
