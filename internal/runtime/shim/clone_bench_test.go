package shim

import (
	"os"
	"runtime"
	"syscall"
	"testing"
)

// BenchmarkCloneNamespace measures what each namespace init is born in
// costs a start (issue 13): a locked thread unshares one kind, as a clone
// with that flag makes it, and exits, which frees it (a network
// namespace's teardown goes on in a kernel worker afterwards). "none" is
// the thread's own cost. On this kind of host (2 cores, cgroup v1 +
// unified) a network namespace is the dear one; see prepare.go.
//
//	go test -run '^$' -bench CloneNamespace ./internal/runtime/shim
func BenchmarkCloneNamespace(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for _, c := range []struct {
		name string
		flag int
	}{
		{"none", 0},
		{"uts", syscall.CLONE_NEWUTS},
		{"ipc", syscall.CLONE_NEWIPC},
		{"cgroup", syscall.CLONE_NEWCGROUP},
		{"pid", syscall.CLONE_NEWPID},
		{"mnt", syscall.CLONE_NEWNS},
		{"net", syscall.CLONE_NEWNET},
		{"net+ipc+uts", syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				errc := make(chan error, 1)
				go func() {
					// Never unlocked: the thread ends with the
					// goroutine, and its namespaces with it.
					runtime.LockOSThread()
					if c.flag == 0 {
						errc <- nil
						return
					}
					errc <- syscall.Unshare(c.flag)
				}()
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
