package spec

import "syscall"

// SeccompFilter wraps a compiled filter (from seccomp.Compile) for the
// spec; nil or empty means no filter (seccomp=unconfined).
func SeccompFilter(prog []syscall.SockFilter) *Seccomp {
	if len(prog) == 0 {
		return nil
	}
	s := &Seccomp{Filter: make([]SockFilter, len(prog))}
	for i, in := range prog {
		s.Filter[i] = SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return s
}
