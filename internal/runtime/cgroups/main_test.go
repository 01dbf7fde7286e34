package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the processes put into cgroups: with
// childRoleEnv set, TestMain runs a child role instead of the tests. Every
// role first waits for a line on stdin, so that the parent can finish v1
// placement (which happens after the fork) before the child does anything.
const childRoleEnv = "SKIFFD_CGROUPS_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChild(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func runChild(role string, args []string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "child: no go signal:", err)
		return 2
	}
	switch role {
	case "wait":
		// Lives until stdin closes.
		_, _ = io.Copy(io.Discard, in)
		return 0
	case "alloc":
		// Allocates and touches 200 MiB, one write per page.
		b := make([]byte, 200<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("allocated")
		return 0
	case "fork":
		// Starts up to 50 sleeping processes and reports each attempt on its
		// own line, so the parent can count even if the runtime dies.
		var started []*exec.Cmd
		for range 50 {
			c := exec.Command("/bin/sleep", "300")
			if err := c.Start(); err != nil {
				fmt.Printf("fail %v\n", err)
				continue
			}
			started = append(started, c)
			fmt.Println("ok")
		}
		for _, c := range started {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		return 0
	case "count":
		// Increments a counter in args[0] as fast as it can.
		f, err := os.OpenFile(args[0], os.O_WRONLY, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		var buf [8]byte
		for n := uint64(1); ; n++ {
			binary.LittleEndian.PutUint64(buf[:], n)
			if _, err := f.WriteAt(buf[:], 0); err != nil {
				return 2
			}
		}
	case "spin":
		// Holds 32 MiB and burns CPU.
		b := make([]byte, 32<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("spinning")
		x := 0
		for {
			x++
			if x < 0 {
				return int(b[0])
			}
		}
	case "devices":
		// Each argument is "open:<path>" or "mknod:<path>:<major>:<minor>";
		// prints "<arg> ok" or "<arg> <errno number>".
		for _, a := range args {
			fmt.Printf("%s %s\n", a, errnoString(deviceOp(a)))
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "child: unknown role", role)
	return 2
}

func deviceOp(a string) error {
	op, rest, _ := strings.Cut(a, ":")
	switch op {
	case "open":
		fd, err := syscall.Open(rest, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		if err == nil {
			syscall.Close(fd)
		}
		return err
	case "mknod":
		f := strings.Split(rest, ":")
		major, _ := strconv.Atoi(f[1])
		minor, _ := strconv.Atoi(f[2])
		dev := (major&0xfff)<<8 | (minor & 0xff) | (minor&^0xff)<<12
		return syscall.Mknod(f[0], syscall.S_IFCHR|0o600, dev)
	}
	return syscall.EINVAL
}

func errnoString(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strconv.Itoa(int(errno))
	}
	return "error"
}

// requireRoot skips tests that need real cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

// hostModes are the layouts a test can exercise on this host: the detected
// one and, on a hybrid host, Legacy too (which ignores the v2 mount).
func hostModes(t *testing.T) []Mode {
	t.Helper()
	switch DetectMode() {
	case Unified:
		return []Mode{Unified}
	case Hybrid:
		return []Mode{Legacy, Hybrid}
	}
	if fsMagic(DefaultRoot) == 0 {
		t.Skip("no cgroup filesystem under " + DefaultRoot)
	}
	return []Mode{Legacy}
}

// newTestManager returns a manager for container "c" under a parent of its
// own, and removes the container's and the parent's cgroups at the end of
// the test, whatever happened.
func newTestManager(t *testing.T, mode Mode) *manager {
	t.Helper()
	requireRoot(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	parent := "skiffd-test-" + hex.EncodeToString(rnd[:])
	m := NewAt(DefaultRoot, mode, "c", WithParent(parent)).(*manager)
	t.Cleanup(func() { removeTestCgroups(t, m) })
	return m
}

// removeTestCgroups kills what runs in m's cgroups and removes them and their
// parents. It only ever touches directories named after the test's parent.
func removeTestCgroups(t *testing.T, m *manager) {
	t.Helper()
	if err := m.Kill(); err != nil {
		t.Errorf("cleanup: Kill: %v", err)
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("cleanup: Destroy: %v", err)
	}
	roots := map[string]bool{}
	for _, h := range m.hierarchies() {
		roots[h.mountpoint] = true
	}
	if m.v2Root != "" {
		roots[m.v2Root] = true
	}
	for r := range roots {
		dir := filepath.Join(r, m.parent)
		if err := removeCgroup(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// child is a test-binary process running a role inside a container cgroup.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	waited bool
	state  *os.ProcessState
}

type placement int

const (
	placeBoth    placement = iota // CgroupFD when there is one, then Apply
	placeFD                       // CgroupFD only
	placeApply                    // Apply only
	placeNowhere                  // stays in the test's cgroups
	placeThread                   // CgroupFD, forked by a thread that did EnterThread
)

// startChild starts the test binary in role, places it and lets it go.
func startChild(t *testing.T, m Manager, how placement, role string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if how == placeBoth || how == placeFD || how == placeThread {
		fd, err := m.CgroupFD()
		if err != nil {
			t.Fatalf("CgroupFD() = %v", err)
		}
		if fd >= 0 {
			defer syscall.Close(fd)
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		} else if how == placeFD {
			t.Fatal("CgroupFD() = -1, want a v2 cgroup")
		}
	}
	if how == placeThread {
		// The thread moves, forks and moves back, as the shim's does.
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			leave, err := m.EnterThread()
			if err != nil {
				errc <- fmt.Errorf("EnterThread() = %w", err)
				return
			}
			err = cmd.Start()
			if lerr := leave(); lerr != nil && err == nil {
				err = fmt.Errorf("leave() = %w", lerr)
			}
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Fatalf("start child %s: %v", role, err)
		}
	} else if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", role, err)
	}
	c := &child{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(out)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		c.wait()
	})
	if how == placeBoth || how == placeApply {
		if err := m.Apply(cmd.Process.Pid); err != nil {
			t.Fatalf("Apply(%d) = %v", cmd.Process.Pid, err)
		}
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatalf("release child: %v", err)
	}
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// wait reaps the child once and returns its status.
func (c *child) wait() *os.ProcessState {
	if !c.waited {
		c.waited = true
		_ = c.stdin.Close()
		_ = c.cmd.Wait()
		c.state = c.cmd.ProcessState
	}
	return c.state
}

// line reads one line of the child's output.
func (c *child) line(t *testing.T) string {
	t.Helper()
	s, err := c.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("read child output: %v (got %q)", err, s)
	}
	return strings.TrimSpace(s)
}

// killedBy returns the signal that ended a process, or -1.
func killedBy(st *os.ProcessState) syscall.Signal {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return -1
}

// procCgroups parses /proc/<pid>/cgroup into controller -> path; the v2
// line has the key "".
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			t.Fatalf("bad /proc/%d/cgroup line %q", pid, line)
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for c := range strings.SplitSeq(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes. It waits for a
// condition, not for time: the interval only bounds the polling rate.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readTestFile(t *testing.T, dir, name string) string {
	t.Helper()
	s, err := readFile(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}
