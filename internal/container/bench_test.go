package container

import (
	"fmt"
	"path/filepath"
	"testing"

	"skiffd/internal/api/types"
)

func benchStore(b *testing.B, n int) (*Store, string) {
	b.Helper()
	root := filepath.Join(b.TempDir(), "containers")
	s, err := Open(root)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		c := New(GenerateID())
		c.Name = fmt.Sprintf("c%d", i)
		c.Config = &types.Config{Image: "busybox", Cmd: types.StrSlice{"sleep", "1000"}, Labels: map[string]string{"i": fmt.Sprint(i)}}
		c.HostConfig = &types.HostConfig{NetworkMode: "default", MaskedPaths: []string{"/proc/kcore", "/proc/keys"}}
		if err := s.Add(c); err != nil {
			b.Fatal(err)
		}
		c.Lock()
		c.State.SetRunning(1000+i, true)
		err := s.Save(c)
		c.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
	return s, root
}

// BenchmarkOpen100 measures loading 100 containers, the store's share of a
// daemon's cold start.
func BenchmarkOpen100(b *testing.B) {
	_, root := benchStore(b, 100)
	for b.Loop() {
		s, err := Open(root)
		if err != nil || s.Len() != 100 {
			b.Fatalf("Open: %v, %d containers", err, s.Len())
		}
	}
}

// BenchmarkList100 measures what GET /containers/json costs the store with
// 100 containers: snapshots, filtering and summaries, no disk and no
// container locks.
func BenchmarkList100(b *testing.B) {
	s, _ := benchStore(b, 100)
	args := mustArgs(b, `{"label":["i"]}`)
	for b.Loop() {
		list, err := Filter(s.Snapshots(), args, FilterOptions{All: true})
		if err != nil || len(list) != 100 {
			b.Fatalf("Filter: %v, %d", err, len(list))
		}
		for _, c := range list {
			_ = c.Summary(now)
		}
	}
}

// BenchmarkSaveStateChange measures persisting one state change (one
// atomic, durable write of config.v2.json).
func BenchmarkSaveStateChange(b *testing.B) {
	s, _ := benchStore(b, 1)
	c := s.List()[0]
	i := 0
	for b.Loop() {
		i++
		c.Lock()
		c.State.SetRunning(i, true)
		err := s.Save(c)
		c.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}
