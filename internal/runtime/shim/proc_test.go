package shim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/runtime/jsonlog"
	"skiffd/internal/runtime/spec"
	"skiffd/internal/sys"
)

// newLoggedProc makes an init-like process whose output is logged to a
// json-file log in a temp dir, with its child ends of stdio.
func newLoggedProc(t testing.TB) (*proc, *childStdio, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := jsonlog.Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	p, c, err := newProc("c", &spec.Process{}, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return p, c, path
}

// TestCopyOutputLogs checks that what a process writes, in chunks that cut
// lines anywhere, is logged line by line with the stream it came from.
func TestCopyOutputLogs(t *testing.T) {
	p, c, path := newLoggedProc(t)
	p.startCopiers()
	var want []string
	out := strings.Repeat("the quick brown fox jumps over the lazy d\n", 50000)
	for len(out) > 0 {
		n := min(len(out), 4093)
		if _, err := c.stdout.Write([]byte(out[:n])); err != nil {
			t.Fatal(err)
		}
		out = out[n:]
	}
	c.stderr.Write([]byte("oops\nno newline"))
	c.close()
	<-p.drained
	for range 50000 {
		want = append(want, "stdout:the quick brown fox jumps over the lazy d\n")
	}
	want = append(want, "stderr:oops\n", "stderr:no newline")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var e struct{ Log, Stream string }
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("entry %q: %v", l, err)
		}
		got = append(got, e.Stream+":"+e.Log)
	}
	if len(got) != len(want) {
		t.Fatalf("logged %d entries, want %d", len(got), len(want))
	}
	// The streams are copied concurrently: compare each stream in order.
	for _, s := range []string{"stdout:", "stderr:"} {
		if g, w := filter(got, s), filter(want, s); strings.Join(g, "") != strings.Join(w, "") {
			t.Errorf("%s entries differ: got %d, want %d", s, len(g), len(w))
		}
	}
}

func filter(l []string, prefix string) []string {
	var out []string
	for _, s := range l {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestOutputPipeSize checks that a process's output pipes are big (issue
// 13: with the default 64 KiB a fast writer stalls on the shim at every
// 64 KiB), where the kernel allows it: the limit for an unprivileged user
// is /proc/sys/fs/pipe-max-size.
func TestOutputPipeSize(t *testing.T) {
	_, c, _ := newLoggedProc(t)
	want := pipeSize
	if os.Geteuid() != 0 {
		b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
		if err != nil {
			t.Fatal(err)
		}
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && max < want {
			want = max
		}
	}
	for _, f := range []*os.File{c.stdout, c.stderr} {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var size int
		var serr error
		rc.Control(func(fd uintptr) { size, serr = sys.Fcntl(int(fd), sys.F_GETPIPE_SZ, 0) })
		if serr != nil {
			t.Fatal(serr)
		}
		if size < want {
			t.Errorf("%s pipe holds %d bytes, want at least %d", f.Name(), size, want)
		}
	}
}

// BenchmarkCopyOutput logs 44-byte lines that a process writes 4 KiB at a
// time (as busybox head does) through its stdout pipe: the shim's side of
// bench/logs.sh's writer figure, pipe read to json-file lines.
func BenchmarkCopyOutput(b *testing.B) {
	chunk := bytes.Repeat([]byte("the quick brown fox jumps over the lazy d\n"), 4096/42)
	const total = 64 << 20
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		p, c, path := newLoggedProc(b)
		b.StartTimer()
		p.startCopiers()
		go func() {
			for n := 0; n < total; n += len(chunk) {
				c.stdout.Write(chunk)
			}
			c.close()
		}()
		<-p.drained
		os.Remove(path)
	}
}

// TestQuietOutputNeedsNoCollection checks that after a burst of output,
// once the streams are quiet, the pages the burst wrote into the copiers'
// read buffers are given back to the system, without a forced garbage
// collection (issue 13: in a shim that mostly sleeps, a collection costs
// more runtime metadata than it frees: 1,340 KiB of anonymous memory
// became 1,664 after one and 1,976 after two).
func TestQuietOutputNeedsNoCollection(t *testing.T) {
	p, c, path := newLoggedProc(t)
	forced := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := forced()
	p.startCopiers()
	line := strings.Repeat("x", 99) + "\n"
	burst := []byte(strings.Repeat(line, 20000)) // 2 MB, several full reads
	if _, err := c.stdout.Write(burst); err != nil {
		t.Fatal(err)
	}
	c.stderr.Write([]byte("oops\n"))
	resident := func() int {
		n := 0
		for _, o := range p.outputs {
			if !o.mapped {
				t.Fatalf("the %s copier's buffer is on the heap: the system refused a mapping", o.name)
			}
			r, err := sys.ResidentPages(o.buf)
			if err != nil {
				t.Fatal(err)
			}
			n += r
		}
		return n
	}
	logged := func() int {
		b, _ := os.ReadFile(path)
		return bytes.Count(b, []byte("\n"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for logged() < 20001 || resident() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the burst: %d of 20001 entries logged, %d pages of the read buffers resident", logged(), resident())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := forced() - before; n != 0 {
		t.Errorf("%d garbage collections forced by the burst, want none", n)
	}
	// The streams still work after the quiet.
	c.stdout.Write([]byte("after\n"))
	c.close()
	<-p.drained
	if n := logged(); n != 20002 {
		t.Errorf("%d entries logged, want 20002", n)
	}
}

// TestWarmSpecDecodes: the spec warmJSON decodes is valid, so the warm-up
// reaches every type.
func TestWarmSpecDecodes(t *testing.T) {
	var sp spec.Spec
	if err := json.Unmarshal([]byte(warmSpec), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.Cgroup == nil || sp.Cgroup.Resources.MemorySwappiness == nil || sp.Process.OOMScoreAdj == nil || sp.Seccomp == nil || len(sp.Log.Attrs) == 0 {
		t.Errorf("warm spec leaves types out: %+v", sp)
	}
}
