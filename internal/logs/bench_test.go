package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/jsonlog"
)

// BenchmarkRead reads a 20 MB log of 44-byte lines, as the writer writes
// them, through Read with a callback that keeps nothing: the reader's own
// cost per byte (bench/logs.sh measures the whole path through the API).
func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "log.json")
	var buf bytes.Buffer
	ts := time.Date(2026, 12, 7, 6, 0, 0, 123456789, time.UTC)
	line := []byte("the quick brown fox jumps over the lazy d\n")
	for buf.Len() < 20<<20 {
		jsonlog.AppendEntry(&buf, "stdout", line, ts)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o640); err != nil {
		b.Fatal(err)
	}
	// copy: each line its own; borrow: lines point into the reader's
	// buffer, as the API reads them.
	for _, borrow := range []bool{false, true} {
		b.Run(map[bool]string{false: "copy", true: "borrow"}[borrow], func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			// The machine may be shared: MB per CPU second of this
			// process says more than MB/s of wall time.
			cpu0 := processCPU()
			for b.Loop() {
				opts := ReadOptions{Tail: -1, Borrow: borrow}
				if err := Read(context.Background(), path, opts, nil, func(Message) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*float64(buf.Len())/(processCPU()-cpu0).Seconds()/1e6, "MB/cpu-s")
		})
	}
}

// processCPU is the user and system time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
