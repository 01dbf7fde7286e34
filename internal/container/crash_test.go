package container

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"skiffd/internal/atomicfile"
)

// TestSaveCrashKeepsRecordWhole updates a container's config and host
// config in one Save and "crashes" the daemon after each possible number
// of completed file writes: the writes after the crash never happen and
// the store is abandoned, as kill -9 would leave it. The next Open must
// find the config and the host config of one and the same generation,
// never a new host config paired with an old config (issue 9, item 8).
func TestSaveCrashKeepsRecordWhole(t *testing.T) {
	errCrash := errors.New("crash")
	for crashAfter := range 3 {
		t.Run("after"+strconv.Itoa(crashAfter)+"writes", func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "containers")
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			c := addContainer(t, s, testID("e"+strconv.Itoa(crashAfter)), "torn")
			c.Config.Labels = map[string]string{"gen": "1"}
			c.HostConfig.CPUShares = 1
			save(t, s, c)

			writes := 0
			s.writeFile = func(path string, data []byte, perm os.FileMode) error {
				if writes == crashAfter {
					return errCrash
				}
				writes++
				return atomicfile.WriteFile(path, data, perm)
			}
			c.Lock()
			c.Config.Labels["gen"] = "2"
			c.HostConfig.CPUShares = 2
			err = s.Save(c)
			c.Unlock()
			if err != nil && !errors.Is(err, errCrash) {
				t.Fatalf("Save = %v, want nil or the crash", err)
			}

			s2, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			if errs := s2.LoadErrors(); len(errs) != 0 {
				t.Fatalf("LoadErrors after the crash = %v, want none", errs)
			}
			got, err := s2.Get("torn")
			if err != nil {
				t.Fatal(err)
			}
			gen, shares := got.Config.Labels["gen"], got.HostConfig.CPUShares
			if gen != strconv.FormatInt(shares, 10) {
				t.Errorf("after a crash with %d writes done: config of generation %s, host config of generation %d; want one generation", crashAfter, gen, shares)
			}
		})
	}
}

// TestOpenMigratesTwoFileRecords: a data root written before issue 9 keeps
// each record in two files (config.v2.json without the host config, and
// hostconfig.json). Open reads them and rewrites each record as one file;
// a migration cut short after the new record was written (a stale host
// config file next to it) loads the new record and drops the stale file.
func TestOpenMigratesTwoFileRecords(t *testing.T) {
	root := filepath.Join(t.TempDir(), "containers")
	oldID, halfID := testID("01"), testID("02")
	write := func(id, name string, files map[string]string) {
		t.Helper()
		dir := filepath.Join(root, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for f, content := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(oldID, "old", map[string]string{
		ConfigFile:     `{"ID":"` + oldID + `","Name":"/old","Config":{"Image":"busybox","Labels":{"gen":"7"}},"State":{"Running":true,"Pid":42}}`,
		HostConfigFile: `{"CpuShares":7,"RestartPolicy":{"Name":"always"}}`,
	})
	write(halfID, "half", map[string]string{
		ConfigFile:     `{"ID":"` + halfID + `","Name":"/half","Config":{"Image":"busybox","Labels":{"gen":"3"}},"HostConfig":{"CpuShares":3},"State":{}}`,
		HostConfigFile: `{"CpuShares":2}`,
	})

	for round := range 2 { // the migration, then a start on the migrated root
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		if errs := s.LoadErrors(); len(errs) != 0 {
			t.Fatalf("round %d: LoadErrors = %v", round, errs)
		}
		for _, want := range []struct {
			name   string
			gen    string
			shares int64
		}{{"old", "7", 7}, {"half", "3", 3}} {
			c, err := s.Get(want.name)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if c.Config.Labels["gen"] != want.gen || c.HostConfig == nil || c.HostConfig.CPUShares != want.shares {
				t.Errorf("round %d: %s loaded with gen %q and host config %+v; want gen %s, CpuShares %d", round, want.name, c.Config.Labels["gen"], c.HostConfig, want.gen, want.shares)
			}
			if _, err := os.Stat(filepath.Join(root, c.ID, HostConfigFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("round %d: %s still has %s (%v)", round, want.name, HostConfigFile, err)
			}
			rec, err := os.ReadFile(filepath.Join(root, c.ID, ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(rec, []byte(`"HostConfig":{`)) {
				t.Errorf("round %d: %s's %s lacks the host config: %s", round, want.name, ConfigFile, rec)
			}
		}
		if c, _ := s.Get("old"); c.HostConfig.RestartPolicy.Name != "always" || !c.State.Running || c.State.Pid != 42 {
			t.Errorf("round %d: old lost its restart policy or state: %+v %+v", round, c.HostConfig.RestartPolicy, c.State)
		}
	}
}

// TestSaveFailureKeepsPreviousRecord: a Save that cannot write (a full
// disk) returns the error and leaves the previous record whole on disk;
// the next Save after the disk recovers writes the current state.
func TestSaveFailureKeepsPreviousRecord(t *testing.T) {
	s, root := openStore(t)
	c := addContainer(t, s, testID("fa"), "full")
	save(t, s, c)
	errFull := errors.New("no space left on device")
	s.writeFile = func(string, []byte, os.FileMode) error { return errFull }
	c.Lock()
	c.HostConfig.CPUShares = 9
	err := s.Save(c)
	c.Unlock()
	if !errors.Is(err, errFull) {
		t.Fatalf("Save on a full disk = %v, want the write's error", err)
	}
	if v := s.Snapshots(); len(v) != 1 || v[0].HostConfig.CPUShares != 0 {
		t.Errorf("the listing shows an unsaved change: %+v", v[0].HostConfig)
	}
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get("full"); err != nil || got.HostConfig.CPUShares != 0 {
		t.Fatalf("record after a failed save = %+v, %v; want the previous one", got, err)
	}
	s.writeFile = atomicfile.WriteFile
	save(t, s, c)
	s3, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s3.Get("full"); err != nil || got.HostConfig.CPUShares != 9 {
		t.Fatalf("record after the disk recovered = %+v, %v; want CpuShares 9", got, err)
	}
}

// TestMigrationFinishedBySave: a two-file record whose rewrite fails at
// Open (a full disk) still loads, and the next Save writes the one-file
// form and drops the host config file.
func TestMigrationFinishedBySave(t *testing.T) {
	root := filepath.Join(t.TempDir(), "containers")
	id := testID("03")
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"ID":"`+id+`","Name":"/late","Config":{"Image":"busybox"},"State":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HostConfigFile), []byte(`{"CpuShares":5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	errFull := errors.New("no space left on device")
	s, err := open(root, func(string, []byte, os.FileMode) error { return errFull })
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Get("late")
	if err != nil || c.HostConfig == nil || c.HostConfig.CPUShares != 5 {
		t.Fatalf("Get(late) after a failed migration = %+v, %v; want it loaded with CpuShares 5", c, err)
	}
	if v := s.Snapshots(); len(v) != 1 || v[0].HostConfig == nil || v[0].HostConfig.CPUShares != 5 {
		t.Errorf("the listing of a record not migrated yet lacks its host config: %+v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, HostConfigFile)); err != nil {
		t.Fatalf("a failed migration removed %s: %v", HostConfigFile, err)
	}
	s.writeFile = atomicfile.WriteFile
	save(t, s, c) // unchanged, but not in the one-file form yet
	if _, err := os.Stat(filepath.Join(dir, HostConfigFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after Save (%v)", HostConfigFile, err)
	}
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s2.Get("late"); err != nil || c.HostConfig == nil || c.HostConfig.CPUShares != 5 {
		t.Errorf("after the migration by Save: %+v, %v; want CpuShares 5", c, err)
	}
}
