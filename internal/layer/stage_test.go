package layer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"skiffd/internal/errdefs"
)

func stage(t testing.TB, s *Store, b []byte) *Staged {
	t.Helper()
	st, err := s.Stage(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	t.Cleanup(func() { st.Discard() })
	return st
}

// TestStageThenCommit stages two layers before either's parent is known,
// commits them base first, and checks they equal registered layers.
func TestStageThenCommit(t *testing.T) {
	s := newStore(t)
	base := buildTar(t, dir("etc"), file("etc/os-release", "ID=skiff\n"), symlink("bin", "usr/bin"))
	top := buildTar(t, file("etc/motd", "hello\n"), whiteout("etc/os-release"))

	// Staged out of order, the top first, as an archive may hold them.
	stTop := stage(t, s, gzipBytes(t, top))
	stBase := stage(t, s, base)
	if got, want := stTop.DiffID(), digest(top); got != want {
		t.Errorf("DiffID() of the gzip-compressed top = %s, want %s (of the uncompressed tar)", got, want)
	}
	if stTop.TarSize() != int64(len(top)) || stTop.Size() != int64(len("hello\n")) {
		t.Errorf("top TarSize, Size = %d, %d, want %d, %d", stTop.TarSize(), stTop.Size(), len(top), len("hello\n"))
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("List() with two staged layers = %+v, want empty", l)
	}
	if n := len(leftovers(t, s)); n != 2 {
		t.Errorf("%d temporary directories while two layers are staged, want 2", n)
	}

	if _, err := stTop.Commit(digest([]byte("missing"))); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Commit(missing parent) = %v, want NotFound", err)
	}
	lb, err := stBase.Commit("")
	if err != nil {
		t.Fatalf("Commit(base): %v", err)
	}
	lt, err := stTop.Commit(lb.ChainID)
	if err != nil {
		t.Fatalf("Commit(top): %v", err)
	}
	want := Layer{ChainID: ChainID(lb.ChainID, digest(top)), DiffID: digest(top), Parent: lb.ChainID,
		Size: int64(len("hello\n")), TarSize: int64(len(top))}
	if lt != want {
		t.Errorf("Commit(top) = %+v, want %+v", lt, want)
	}
	if got := writeTar(t, s, lt.ChainID); !bytes.Equal(got, top) {
		t.Errorf("WriteTar of the committed top differs from the staged tar")
	}
	if got := writeTar(t, s, lb.ChainID); !bytes.Equal(got, base) {
		t.Errorf("WriteTar of the committed base differs from the staged tar")
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left after commits: %v", l)
	}
	if _, err := stTop.Commit(lb.ChainID); err == nil {
		t.Errorf("second Commit succeeded, want an error")
	}
	if err := stTop.Discard(); err != nil {
		t.Errorf("Discard after Commit = %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir(lt.ChainID), diffDirName, "etc", "motd")); err != nil {
		t.Errorf("Discard after Commit touched the layer: %v", err)
	}

	// Committing a stage of a chain that exists returns the existing layer
	// and drops the copy.
	again := stage(t, s, top)
	got, err := again.Commit(lb.ChainID)
	if err != nil || got != lt {
		t.Errorf("Commit(existing chain) = %+v, %v, want %+v", got, err, lt)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left after committing an existing chain: %v", l)
	}

	// The same content under another parent is another chain.
	other := stage(t, s, top)
	lo, err := other.Commit("")
	if err != nil || lo.ChainID != digest(top) || lo.Parent != "" {
		t.Errorf("Commit(top as a base) = %+v, %v, want chain %s", lo, err, digest(top))
	}
}

func TestStageDiscardAndErrors(t *testing.T) {
	s := newStore(t)
	st := stage(t, s, buildTar(t, file("a", "a")))
	if err := st.Discard(); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("temporary entries left after Discard: %v", l)
	}
	if err := st.Discard(); err != nil {
		t.Errorf("second Discard = %v, want nil", err)
	}
	if _, err := st.Commit(""); err == nil {
		t.Errorf("Commit after Discard succeeded, want an error")
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("List() = %+v after a discarded stage, want empty", l)
	}

	for name, input := range map[string][]byte{
		"not a tar":      bytes.Repeat([]byte("garbage!"), 200),
		"escaping entry": buildTar(t, file("../escape", "x")),
		"truncated gzip": gzipBytes(t, buildTar(t, file("a", "a")))[:30],
	} {
		t.Run(name, func(t *testing.T) {
			st, err := s.Stage(context.Background(), bytes.NewReader(input))
			if err == nil {
				st.Discard()
				t.Fatalf("Stage succeeded, want an error")
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("temporary entries left after a failed Stage: %v", l)
			}
		})
	}
}

// TestStageUncommittedIsRemovedByOpen: a stage never committed (the daemon
// died before the archive's manifest arrived) is only a temporary
// directory, gone after reopening.
func TestStageUncommittedIsRemovedByOpen(t *testing.T) {
	s := newStore(t)
	st := stage(t, s, buildTar(t, file("a", "a")))
	reopened, err := Open(s.root)
	if err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, reopened); len(l) != 0 {
		t.Errorf("temporary entries after Open: %v", l)
	}
	if l := reopened.List(); len(l) != 0 {
		t.Errorf("List() after Open = %+v, want empty", l)
	}
	if err := st.Discard(); err != nil {
		t.Errorf("Discard of a stage Open removed = %v, want nil", err)
	}
}
