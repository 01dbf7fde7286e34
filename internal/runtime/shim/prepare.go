package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// preparedKinds are the namespaces a pre-started shim makes ahead of its
// container: the ones a locked thread can make for itself with unshare(2)
// and that init can be born in by inheriting them from the thread that
// forks it. A network namespace is the dear one: about 0.4 ms of a start
// on this kind of host, an IPC one 0.03 ms (BenchmarkCloneNamespace); made
// while the shim waits, at idle priority, they cost a start nothing. The
// mount, pid and cgroup namespaces stay clone flags: a thread cannot enter
// a pid namespace of its own making, and the other two are cheap and made
// relative to where init is at the fork.
var preparedKinds = [...]struct {
	typ  string
	flag int
}{
	{spec.NetworkNamespace, syscall.CLONE_NEWNET},
	{spec.IPCNamespace, syscall.CLONE_NEWIPC},
	{spec.UTSNamespace, syscall.CLONE_NEWUTS},
}

// nsThread is a locked OS thread of a pre-started shim that sits in fresh
// network, IPC and UTS namespaces of its own making. When the container
// comes, init is forked from it: for each kind the container gets fresh,
// without the clone flag (init inherits the thread's); for each it shares
// (a Path: --network container:x) or takes from the host (no entry:
// --network host, --uts host), the thread goes back to the shim's own
// namespace first, and joins as before. The daemon finds init's network
// namespace through init's pid, as always.
//
// The thread is never unlocked: when its goroutine ends, the runtime ends
// the thread, and namespaces nothing else holds go with it (the kernel
// frees a network namespace in a worker, asynchronously). Nothing else
// holds them: no fd to them is opened, so one left unused (no container
// came, the create failed, or the container shares them) cannot leak.
type nsThread struct {
	jobs chan func()
	// own are the shim's own namespaces of the prepared kinds, to go
	// back to, by type.
	own map[string]*os.File
}

// prepareNamespaces starts the thread and returns once its namespaces
// exist, or an error when the kernel refuses them (the shim then makes
// them at the fork, as a shim started with its directory does).
func prepareNamespaces() (*nsThread, error) {
	t := &nsThread{jobs: make(chan func()), own: map[string]*os.File{}}
	errc := make(chan error, 1)
	go t.serve(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

// serve is the thread's goroutine: it locks its thread, makes the
// namespaces, reports on errc and runs the job. The thread is never the
// process's main thread, which the runtime cannot end (it would park it
// for good, in the namespaces and the container's cgroups): a goroutine
// that finds itself there holds it while another one takes a thread of
// its own.
func (t *nsThread) serve(errc chan<- error) {
	runtime.LockOSThread()
	if syscall.Gettid() == syscall.Getpid() {
		inner := make(chan error, 1)
		go t.serve(inner)
		err := <-inner
		runtime.UnlockOSThread()
		errc <- err
		return
	}
	defer t.closeOwn()
	if err := t.unshare(); err != nil {
		errc <- err
		return
	}
	errc <- nil
	for job := range t.jobs {
		job()
	}
}

// unshare opens the thread's current namespaces and leaves them for fresh
// ones. It runs on the locked thread.
func (t *nsThread) unshare() error {
	flags := 0
	for _, k := range preparedKinds {
		f, err := os.Open("/proc/thread-self/ns/" + nsProcName(k.typ))
		if err != nil {
			return err
		}
		t.own[k.typ] = f
		flags |= k.flag
	}
	if err := syscall.Unshare(flags); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	return nil
}

func (t *nsThread) closeOwn() {
	for _, f := range t.own {
		f.Close()
	}
}

// nsProcName is the name of a namespace type in /proc/<pid>/ns.
func nsProcName(typ string) string {
	if typ == spec.NetworkNamespace {
		return "net"
	}
	return typ
}

// run runs f on the thread, which ends afterwards (one container per
// shim). It returns at once.
func (t *nsThread) run(f func()) {
	t.jobs <- f
	close(t.jobs)
}

// close ends the unused thread; the namespaces it made go with it.
func (t *nsThread) close() {
	close(t.jobs)
}

// fit readies the thread for forking init for sp: it returns the clone
// flags init no longer needs, having gone back to the shim's own
// namespace of each prepared kind the container does not get fresh. It
// runs on the thread.
func (t *nsThread) fit(sp *spec.Spec) (kept uintptr, err error) {
	for _, k := range preparedKinds {
		if p, ok := sp.HasNamespace(k.typ); ok && p == "" {
			kept |= uintptr(k.flag)
			continue
		}
		if err := sys.Setns(int(t.own[k.typ].Fd()), k.flag); err != nil {
			return 0, fmt.Errorf("leave the prepared %s namespace: %w", k.typ, err)
		}
	}
	return kept, nil
}

// warmSpec sets a value of every type of a spec, for warmJSON.
const warmSpec = `{"process":{"args":["x"],"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}],"oomScoreAdj":0},
"mounts":[{"destination":"/x","options":["ro"]}],"devices":[{"path":"/dev/x"}],"namespaces":[{"type":"pid"}],
"sysctl":{"a":"b"},"cgroup":{"resources":{"devices":[{"allow":true}],"memorySwappiness":1}},"seccomp":{"bpf":""},
"log":{"attrs":{"tag":"x"}},"annotations":{"a":"b"}}`

// warmJSON builds encoding/json's per-type decoders for every type of a
// spec while a pre-started shim waits: a start then decodes the spec file
// with them ready (their first use took some 0.25 ms in a fresh process).
// Nothing is encoded: init's config goes in binary form (nsinit), and
// encoders for the spec's types would be some 50 KiB a shim keeps for
// nothing.
func warmJSON() {
	json.Unmarshal([]byte(warmSpec), new(spec.Spec))
}
