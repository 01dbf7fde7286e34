package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "new" {
		t.Fatalf("ReadFile = %q, %v; want \"new\"", got, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	assertNoTemps(t, dir)
}

func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o600, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want %v", err, boom)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "old" {
		t.Errorf("content after failed write = %q, want \"old\"", got)
	}
	assertNoTemps(t, dir)
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, TempPrefix+"x-123"), []byte("junk"), 0o600)
	os.Mkdir(filepath.Join(dir, TempPrefix+"dir"), 0o700)
	os.WriteFile(filepath.Join(dir, "keep"), []byte("k"), 0o600)
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	assertNoTemps(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Errorf("RemoveTemps removed a real file: %v", err)
	}
	if err := RemoveTemps(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("RemoveTemps(missing dir) = %v, want nil", err)
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Errorf("leftover temp file %s", e.Name())
		}
	}
}

// TestLoadDir: records written by WriteFile come back by id, the temporary
// file of an interrupted write is removed and ignored, and a record that
// does not decode names its file.
func TestLoadDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recs")
	type rec struct{ N int }
	if err := LoadDir(dir, func(string, *rec) error { t.Fatal("record in a new directory"); return nil }); err != nil {
		t.Fatalf("LoadDir of a new directory: %v", err)
	}
	for id, n := range map[string]int{"a": 1, "b": 2} {
		if err := WriteFile(filepath.Join(dir, id+".json"), []byte(`{"N":`+strconv.Itoa(n)+`}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	torn := filepath.Join(dir, TempPrefix+"c.json-123")
	if err := os.WriteFile(torn, []byte(`{"N":`), 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	if err := LoadDir(dir, func(id string, r *rec) error { got[id] = r.N; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != 1 || got["b"] != 2 {
		t.Errorf("LoadDir = %v, want map[a:1 b:2]", got)
	}
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Errorf("the temporary file of an interrupted write is still there: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := LoadDir(dir, func(string, *rec) error { return nil }); err == nil || !strings.Contains(err.Error(), "d.json") {
		t.Errorf("LoadDir with a broken record = %v, want an error naming d.json", err)
	}
}
