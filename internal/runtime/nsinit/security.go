package nsinit

import (
	"fmt"
	"syscall"
	"unsafe"

	"skiffd/internal/runtime/caps"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// finalize applies the process's security settings to the calling thread,
// in runc's order: no_new_privs; seccomp early when it may not rely on
// NNP (loading then needs CAP_SYS_ADMIN, which is still there); the
// bounding set; the user and groups (per-thread syscalls, keeping
// capabilities across the uid change); the working directory, as the user;
// the final capability sets. The executable is looked up after this (as
// the user, from the working directory: runc's order), and seccomp loaded
// last, when NNP allows it, by finalizeSeccomp.
func finalize(p *spec.Process, u *execUser, filter *spec.Seccomp, cwd string) error {
	mask, err := caps.Mask(p.Capabilities)
	if err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := sys.Prctl(sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if filter != nil && !p.NoNewPrivileges {
		if err := loadSeccomp(filter); err != nil {
			return err
		}
	}
	if err := caps.DropBounding(mask); err != nil {
		return err
	}
	if err := sys.Prctl(sys.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	if err := sys.Setgroups(u.Groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := sys.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := sys.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	if cwd != "" {
		if err := syscall.Chdir(cwd); err != nil {
			return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", cwd, err)
		}
	}
	if err := sys.Prctl(sys.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("drop keep-capabilities: %w", err)
	}
	return caps.Set(mask)
}

// finalizeSeccomp loads the filter that finalize left for last (with
// NNP), as close to execve as it can be: after it, only the syscalls the
// filter allows may run.
func finalizeSeccomp(p *spec.Process, filter *spec.Seccomp) error {
	if filter != nil && p.NoNewPrivileges {
		return loadSeccomp(filter)
	}
	return nil
}

// loadSeccomp installs a compiled filter on the calling thread.
func loadSeccomp(s *spec.Seccomp) error {
	if len(s.Filter) == 0 {
		return nil
	}
	prog := make([]syscall.SockFilter, len(s.Filter))
	for i, in := range s.Filter {
		prog[i] = syscall.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := syscall.SockFprog{Len: uint16(len(prog)), Filter: (*syscall.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := sys.Seccomp(&fprog); err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	return nil
}

// setOOMScoreAdj writes the process's oom_score_adj.
func setOOMScoreAdj(v *int) error {
	if v == nil {
		return nil
	}
	fd, err := syscall.Open("/proc/self/oom_score_adj", syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set oom_score_adj: %w", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.Write(fd, []byte(fmt.Sprint(*v))); err != nil {
		return fmt.Errorf("set oom_score_adj: %w", err)
	}
	return nil
}
