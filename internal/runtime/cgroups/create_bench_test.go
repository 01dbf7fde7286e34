package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCreate makes and removes a container's cgroups with Docker's
// default resources (the part of a start the daemon does in parallel with
// the shim's hand-over, and that the shim then waits for).
func BenchmarkCreate(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	parent := fmt.Sprintf("skiffd-bench-%d", os.Getpid())
	var mk, rm time.Duration
	var last *manager
	b.Cleanup(func() {
		if last != nil {
			for _, h := range last.hierarchies() {
				removeCgroup(filepath.Join(h.mountpoint, parent))
			}
			if last.v2Root != "" {
				removeCgroup(filepath.Join(last.v2Root, parent))
			}
		}
	})
	// As the daemon does: one loaded device program for all.
	progs := NewPrograms()
	defer progs.Close()
	for i := 0; b.Loop(); i++ {
		m := New(fmt.Sprintf("c%d", i), WithParent(parent), WithPrograms(progs))
		last = m.(*manager)
		t0 := time.Now()
		if err := m.Create(Resources{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
		mk, rm = mk+t1.Sub(t0), rm+time.Since(t1)
	}
	b.ReportMetric(float64(mk.Microseconds())/float64(b.N), "create-µs/op")
	b.ReportMetric(float64(rm.Microseconds())/float64(b.N), "destroy-µs/op")
}
