package shimclient

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/runtime/spec"
)

// benchRuntime is staticRuntime with the exec root on tmpfs, as in
// production (/run/skiffd): state files are written with fsync, which
// costs milliseconds on a disk and nothing on tmpfs.
func benchRuntime(b testing.TB) *Runtime {
	b.Helper()
	rt := staticRuntime(b)
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "skiffd-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		rt.root = dir
	}
	return rt
}

// BenchmarkRunTrue measures `docker run true` at the runtime level:
// create (shim + init + rootfs set-up), start, exit observed through Wait
// ("start-to-exit-ms"), then delete.
func BenchmarkRunTrue(b *testing.B) {
	rt := benchRuntime(b)
	root := busyboxRoot(b)
	ctx := context.Background()
	var startToExit time.Duration
	for i := 0; b.Loop(); i++ {
		s := spec.Default(fmt.Sprintf("bench-%d-%d", os.Getpid(), i), root)
		s.Process.Args = []string{"/bin/true"}
		t0 := time.Now()
		c, err := rt.Create(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 0 {
			b.Fatalf("Wait = %+v, %v", exit, err)
		}
		startToExit += time.Since(t0)
		if err := c.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(startToExit.Microseconds())/1000/float64(b.N), "start-to-exit-ms")
}

// BenchmarkExecTrue measures `docker exec c true`: create, start and wait
// for an exec'd process in a running container.
func BenchmarkExecTrue(b *testing.B) {
	rt := benchRuntime(b)
	ctx := context.Background()
	s := spec.Default(fmt.Sprintf("bench-exec-%d", os.Getpid()), busyboxRoot(b))
	s.Process.Args = []string{"sleep", "100000"}
	s.Process.Env = []string{"PATH=/bin"}
	c := create(b, rt, s)
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	p := &spec.Process{Args: []string{"/bin/true"}, Capabilities: spec.DefaultCapabilities()}
	for i := 0; b.Loop(); i++ {
		e, err := c.Exec(ctx, strconv.Itoa(i), p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if exit, err := e.Wait(ctx); err != nil || exit.Code != 0 {
			b.Fatalf("Wait = %+v, %v", exit, err)
		}
		e.Delete(ctx)
	}
}

// smapsRollup reads Rss and Pss (KiB) of pid.
func smapsRollup(pid int) (rss, pss int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fs[1])
		switch fs[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss, sc.Err()
}

// BenchmarkShimMemory starts 50 containers at once and reports the mean
// RSS and PSS of their shims (the only processes of ours left once the
// containers run) and the drop in MemAvailable per container.
func BenchmarkShimMemory(b *testing.B) {
	const n = 50
	rt := benchRuntime(b)
	root := busyboxRoot(b)
	ctx := context.Background()
	for b.Loop() {
		before := memAvailable(b)
		cs := make([]*Container, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := spec.Default(fmt.Sprintf("mem-%d-%d", os.Getpid(), i), root)
				s.Process.Args = []string{"/bin/sleep", "100000"}
				c, err := rt.Create(ctx, s)
				if err == nil {
					err = c.Start(ctx)
				}
				cs[i] = c
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for _, c := range cs {
			if c != nil {
				b.Cleanup(func() { cleanup(b, c) })
			}
		}
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		after := memAvailable(b)
		var rss, pss int
		for _, c := range cs {
			st, err := c.State(ctx)
			if err != nil {
				b.Fatal(err)
			}
			r, p, err := smapsRollup(st.ShimPid)
			if err != nil {
				b.Fatal(err)
			}
			rss += r
			pss += p
		}
		b.ReportMetric(float64(rss)/n/1024, "shim-rss-MiB")
		b.ReportMetric(float64(pss)/n/1024, "shim-pss-MiB")
		b.ReportMetric(float64(before-after)/n/1024, "memavail-drop-MiB/container")
		for _, c := range cs {
			cleanup(b, c)
		}
	}
}

func memAvailable(b testing.TB) int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	b.Fatal("no MemAvailable")
	return 0
}
