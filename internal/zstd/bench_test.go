package zstd

import (
	"bytes"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDecode measures decode throughput on a 64 MiB layer-like input
// compressed at level 3, the default of BuildKit and the zstd tool, and
// reports the zstd tool's own decode speed on the same frame as tool-MB/s.
func BenchmarkDecode(b *testing.B) {
	in := mixed(64<<20, 99)
	c := compress(b, in, "-3")
	b.SetBytes(int64(len(in)))
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		zr, err := NewReader(bytes.NewReader(c))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil || n != int64(len(in)) {
			b.Fatalf("decoded %d bytes, %v", n, err)
		}
	}
	b.StopTimer()
	// CPU time per byte is steadier than wall time on a shared machine.
	b.ReportMetric(float64(len(in))*float64(b.N)/(cpuTime()-cpu0).Seconds()/1e6, "cpu-MB/s")

	// The reference: the tool decompressing from memory to /dev/null, best
	// of three runs (the machine is shared). Metrics go after the loop:
	// ResetTimer discards earlier ones.
	var best, bestCPU time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		cmd := exec.Command(zstdTool(b), "-d", "-c", "-q")
		cmd.Stdin = bytes.NewReader(c)
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
		if d := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(); bestCPU == 0 || d < bestCPU {
			bestCPU = d
		}
	}
	b.ReportMetric(float64(len(in))/best.Seconds()/1e6, "tool-MB/s")
	b.ReportMetric(float64(len(in))/bestCPU.Seconds()/1e6, "tool-cpu-MB/s")
	b.ReportMetric(float64(len(in))/float64(len(c)), "ratio")
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
