package shimclient

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"skiffd/internal/runtime/spec"
)

// TestNothingOfOursInside scans /proc inside a container while execs come
// and go: no process visible in the container may run our binary (the
// CVE-2019-5736 class needs one), and our binary is unchanged afterwards.
func TestNothingOfOursInside(t *testing.T) {
	rt := newRuntime(t)
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	sum := func() [32]byte {
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	// The scanner prints every exe link that is not busybox, and tries to
	// open each for writing.
	s := newSpec(t, "sh", "-c", `echo up; while [ ! -e /tmp/stop ]; do for e in /proc/[0-9]*/exe; do
		l=$(readlink $e 2>/dev/null) || continue
		[ "$l" = /bin/busybox ] || echo "foreign $e -> $l"
		( : >>$e ) 2>/dev/null && echo "writable $e"
	done; done; echo scanned`)
	l := startLive(t, rt, s)
	l.expect(t, "up")
	for i := range 8 {
		if _, _, exit, err := execProcess(t, l.c, execSpec("true"), ""); err != nil || exit.Code != 0 {
			t.Fatalf("exec %d: %+v, %v", i, exit, err)
		}
	}
	if err := os.WriteFile(s.Root+"/tmp/stop", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for line := range l.lines {
		if line == "scanned\n" {
			break
		}
		t.Errorf("inside the container: %s", strings.TrimSpace(line))
	}
	if sum() != before {
		t.Error("the binary changed")
	}
}

func TestDevicePolicy(t *testing.T) {
	rt := newRuntime(t)
	parent := cgroupParent(t)
	const script = `mknod /tmp/tun c 10 200 && echo made; cat /tmp/tun 2>&1 | grep -o 'Operation not permitted'; echo x > /dev/null && echo null-ok`
	s := newSpec(t, "sh", "-c", script)
	s.Cgroup = &spec.Cgroup{Parent: parent}
	res := run(t, rt, s)
	if want := "made\nOperation not permitted\nnull-ok\n"; res.stdout != want {
		t.Errorf("device cgroup: stdout %q (stderr %q), want %q", res.stdout, res.stderr, want)
	}
}

// TestConcurrentStart starts 50 containers at once (10 with -short).
func TestConcurrentStart(t *testing.T) {
	rt := newRuntime(t)
	n := 50
	if testing.Short() {
		n = 10
	}
	root := busyboxRoot(t)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			s := spec.Default(fmt.Sprintf("many-%d-%d", os.Getpid(), i), root)
			s.Process.Args = []string{"/bin/echo", strconv.Itoa(i)}
			c, err := rt.Create(ctx, s)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { cleanup(t, c) })
			st, err := c.Attach(ctx, AttachOptions{Stdout: true})
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			var out strings.Builder
			done := make(chan error, 1)
			go func() { done <- st.Copy(&out, nil) }()
			if err := c.Start(ctx); err != nil {
				errs[i] = err
				return
			}
			exit, err := c.Wait(ctx)
			<-done
			if err == nil && (exit.Code != 0 || out.String() != strconv.Itoa(i)+"\n") {
				err = fmt.Errorf("output %q, exit %d", out.String(), exit.Code)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("container %d: %v", i, err)
		}
	}
}

// TestInitReaperIsSealed attacks the one process of ours that lives inside
// a container, the --init reaper: container root may neither read its
// /proc/1/exe (it is not dumpable) nor write through it (it is sealed).
func TestInitReaperIsSealed(t *testing.T) {
	rt := staticRuntime(t)
	s := newSpec(t, "sh", "-c", `readlink /proc/1/exe >/dev/null 2>&1 && echo readlink-ok || echo readlink-denied
		( : >>/proc/1/exe ) 2>/dev/null && echo write-ok || echo write-denied
		grep -E '^(CapEff|Seccomp):' /proc/1/status | tr -d '\t'`)
	s.Process.Init = true
	s.Seccomp = defaultSeccomp(t)
	res := run(t, rt, s)
	if want := "readlink-denied\nwrite-denied\nCapEff:00000000a80425fb\nSeccomp:2\n"; res.stdout != want {
		t.Errorf("inside: %q (stderr %q), want %q", res.stdout, res.stderr, want)
	}
}
