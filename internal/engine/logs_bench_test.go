package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/runtime/jsonlog"
	"skiffd/internal/stdcopy"
)

// BenchmarkContainerLogs drives GET /containers/{id}/logs' engine path
// (ContainerLogs over a 20 MB json-file log of 44-byte lines) into a sink
// that frames and batches as the API handler does; bytes are the framed
// output. Profile it with -cpuprofile (issue 13). distinct-times gives
// every record its own time; writer-times stamps 1500 records (a 64 KiB
// read of the shim's) alike, as the shim does.
func BenchmarkContainerLogs(b *testing.B) {
	b.Run("distinct-times", func(b *testing.B) { benchmarkContainerLogs(b, 1) })
	b.Run("writer-times", func(b *testing.B) { benchmarkContainerLogs(b, 1500) })
}

func benchmarkContainerLogs(b *testing.B, perStamp int) {
	e, err := New(context.Background(), Options{DataRoot: filepath.Join(b.TempDir(), "data"), ExecRoot: filepath.Join(b.TempDir(), "exec"), Build: BuildInfo{Version: "test"}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	path := filepath.Join(b.TempDir(), "log.json")
	var buf bytes.Buffer
	ts := time.Date(2026, 12, 7, 6, 0, 0, 123456789, time.UTC)
	line := []byte("the quick brown fox jumps over the lazy d\n")
	n := 0
	for buf.Len() < 20<<20 {
		jsonlog.AppendEntry(&buf, "stdout", line, ts.Add(time.Duration(n/perStamp)*time.Microsecond))
		n++
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o640); err != nil {
		b.Fatal(err)
	}
	c := container.New(strings.Repeat("cd", 32))
	c.Config = &types.Config{Image: "busybox"}
	c.HostConfig = &types.HostConfig{}
	c.LogPath = path
	if err := e.containers.Add(c); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n * (8 + len(line))))
	// The machine is shared: MB per CPU second of this process (reader,
	// framing and GC) says more than MB/s of wall time.
	cpu0 := processCPU()
	for b.Loop() {
		sink := &frameSink{}
		if err := e.ContainerLogs(context.Background(), c.ID, types.ContainerLogsOptions{Stdout: true, Stderr: true, Tail: -1}, sink); err != nil {
			b.Fatal(err)
		}
		sink.Idle() // the handler sends the last batch
		if sink.total != int64(n*(8+len(line))) {
			b.Fatalf("framed %d bytes, want %d", sink.total, n*(8+len(line)))
		}
	}
	b.ReportMetric(float64(b.N)*float64(n*(8+len(line)))/(processCPU()-cpu0).Seconds()/1e6, "MB/cpu-s")
}

// processCPU is the user and system time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// frameSink frames records into 64 KiB batches and drops them.
type frameSink struct {
	buf   []byte
	total int64
}

func (f *frameSink) Begin(bool) {}
func (f *frameSink) Record(stream string, line []byte, t time.Time) error {
	f.buf = stdcopy.AppendFrame(f.buf, stdcopy.Stdout, line)
	if len(f.buf) >= 64<<10 {
		f.Idle()
	}
	return nil
}
func (f *frameSink) Idle() error {
	f.total += int64(len(f.buf))
	f.buf = f.buf[:0]
	return nil
}
