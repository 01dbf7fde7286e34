package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
)

// testID returns a valid 64-hex ID starting with prefix.
func testID(prefix string) string {
	return prefix + strings.Repeat("0", 64-len(prefix))
}

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "containers")
	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, root
}

func addContainer(t *testing.T, s *Store, id, name string) *Container {
	t.Helper()
	c := New(id)
	c.Name = name
	c.Config = &types.Config{Image: "busybox", Cmd: types.StrSlice{"true"}}
	c.HostConfig = &types.HostConfig{NetworkMode: "default"}
	if err := s.Add(c); err != nil {
		t.Fatalf("Add(%s, %q): %v", id, name, err)
	}
	return c
}

func save(t *testing.T, s *Store, c *Container) {
	t.Helper()
	c.Lock()
	defer c.Unlock()
	if err := s.Save(c); err != nil {
		t.Fatalf("Save(%s): %v", c.ID, err)
	}
}

// wantErr checks err's HTTP status and exact message.
func wantErr(t *testing.T, what string, err error, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil error, want %d %q", what, status, msg)
		return
	}
	if errdefs.Status(err) != status || err.Error() != msg {
		t.Errorf("%s = %d %q, want %d %q", what, errdefs.Status(err), err.Error(), status, msg)
	}
}

func TestStoreGet(t *testing.T) {
	s, _ := openStore(t)
	web := addContainer(t, s, testID("abc1"), "web")
	db := addContainer(t, s, testID("abc2"), "/db")
	// A container named like the other's ID prefix: names win over prefixes.
	tricky := addContainer(t, s, testID("ff"), "abc1")

	tests := []struct {
		ref  string
		want *Container
	}{
		{web.ID, web},
		{"web", web},
		{"/web", web},
		{"db", db},
		{"/db", db},
		{"abc2", db},
		{"abc1", tricky},
		{"abc10", web},
		{"f", tricky},
		{tricky.ID, tricky},
	}
	for _, tt := range tests {
		got, err := s.Get(tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("Get(%q) = %v, %v; want %v", tt.ref, got, err, tt.want)
		}
	}
	if web.Name != "/web" || db.Name != "/db" {
		t.Errorf("names = %q, %q; want the canonical /web and /db", web.Name, db.Name)
	}

	_, err := s.Get("abc")
	wantErr(t, `Get("abc")`, err, 400, "multiple IDs found with provided prefix: abc")
	_, err = s.Get("nope")
	wantErr(t, `Get("nope")`, err, 404, "No such container: nope")
	_, err = s.Get("sha256:abc2")
	wantErr(t, `Get("sha256:abc2")`, err, 404, "No such container: sha256:abc2")
	_, err = s.Get("")
	wantErr(t, `Get("")`, err, 400, `invalid name or ID supplied: ""`)
}

func TestStoreAddErrors(t *testing.T) {
	s, _ := openStore(t)
	first := addContainer(t, s, testID("1"), "busy")

	err := s.Add(&Container{ID: testID("2"), Name: "busy"})
	wantErr(t, "Add with a taken name", err, 409,
		`Conflict. The container name "/busy" is already in use by container "`+first.ID+`". You have to remove (or rename) that container to be able to reuse that name.`)
	err = s.Add(&Container{ID: testID("3"), Name: "/busy"})
	if errdefs.Status(err) != 409 {
		t.Errorf("Add with the taken name and a slash = %v, want 409", err)
	}
	for _, bad := range []string{"a", "-bad", "bad name", "b$d", "/_x", "//x"} {
		err := s.Add(&Container{ID: testID("4"), Name: bad})
		wantErr(t, fmt.Sprintf("Add(name %q)", bad), err, 400,
			fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", bad))
	}
	for _, good := range []string{"ab", "a.b-c_d", "/x9", "9x"} {
		if err := ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", good, err)
		}
	}
	if err := s.Add(&Container{ID: first.ID, Name: "other"}); errdefs.Status(err) != 409 {
		t.Errorf("Add with a taken ID = %v, want 409", err)
	}
	if err := s.Add(&Container{ID: "abc", Name: "short"}); errdefs.Status(err) != 400 {
		t.Errorf("Add with a short ID = %v, want 400", err)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d after failed adds, want 1", s.Len())
	}
}

func TestStoreRename(t *testing.T) {
	s, root := openStore(t)
	a := addContainer(t, s, testID("a"), "alpha")
	b := addContainer(t, s, testID("b"), "beta")
	save(t, s, a)
	save(t, s, b)

	rename := func(c *Container, name string) error {
		c.Lock()
		defer c.Unlock()
		return s.Rename(c, name)
	}
	wantErr(t, "Rename to the same name", rename(a, "alpha"), 400, "Renaming a container with the same name as its current name")
	wantErr(t, "Rename to the same name with slash", rename(a, "/alpha"), 400, "Renaming a container with the same name as its current name")
	wantErr(t, "Rename to empty", rename(a, ""), 400, "Neither old nor new names may be empty")
	wantErr(t, "Rename to a taken name", rename(a, "beta"), 409,
		`Error when allocating new name: Conflict. The container name "/beta" is already in use by container "`+b.ID+`". You have to remove (or rename) that container to be able to reuse that name.`)
	wantErr(t, "Rename to an invalid name", rename(a, "b$"), 400,
		"Error when allocating new name: Invalid container name (/b$), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")

	if err := rename(a, "gamma"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	if got, err := s.Get("gamma"); err != nil || got != a {
		t.Errorf("Get(gamma) = %v, %v; want the renamed container", got, err)
	}
	if _, err := s.Get("alpha"); errdefs.Status(err) != 404 {
		t.Errorf("Get(alpha) after rename = %v, want 404", err)
	}
	// The old name is free again.
	addContainer(t, s, testID("c"), "alpha")

	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get("gamma"); err != nil || got.ID != a.ID {
		t.Errorf("after reopen Get(gamma) = %v, %v; want %s", got, err, a.ID)
	}
}

func TestStorePersistence(t *testing.T) {
	s, root := openStore(t)
	c := addContainer(t, s, GenerateID(), "persist")
	c.Path, c.Args = "sh", []string{"-c", "exit 3"}
	c.ImageID = "sha256:" + strings.Repeat("ab", 32)
	c.HostConfig.Memory = 64 << 20
	c.HostConfig.RestartPolicy = types.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	c.Runtime = json.RawMessage(`{"shim":"/run/x.sock"}`)
	c.RestartCount = 2
	c.Lock()
	c.State.SetRunning(99, true)
	c.State.SetStopped(ExitStatus{ExitCode: 3, ExitedAt: now})
	c.State.SetRemovalInProgress("persist") // in memory only
	err := s.Save(c)
	c.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	dir := s.Dir(c.ID)
	cfg, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `"RestartPolicy"`) {
		t.Errorf("%s lacks the host config; want the whole record in one file", ConfigFile)
	}
	if _, err := os.Stat(filepath.Join(dir, HostConfigFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (%v); want the one-file record only", HostConfigFile, err)
	}

	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if errs := s2.LoadErrors(); len(errs) != 0 {
		t.Errorf("LoadErrors = %v, want none", errs)
	}
	got, err := s2.Get("persist")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"ID", got.ID, c.ID},
		{"Name", got.Name, "/persist"},
		{"Created", got.Created.Equal(c.Created), true},
		{"Path", got.Path, "sh"},
		{"Args", strings.Join(got.Args, "|"), "-c|exit 3"},
		{"Config.Image", got.Config.Image, "busybox"},
		{"ImageID", got.ImageID, c.ImageID},
		{"HostConfig.Memory", got.HostConfig.Memory, int64(64 << 20)},
		{"RestartPolicy", got.HostConfig.RestartPolicy, c.HostConfig.RestartPolicy},
		{"RestartCount", got.RestartCount, 2},
		{"Status", got.State.Status(), StatusExited},
		{"ExitCode", got.State.ExitCode, 3},
		{"FinishedAt", got.State.FinishedAt.Equal(now), true},
		{"Runtime", string(got.Runtime), `{"shim":"/run/x.sock"}`},
		{"Driver", got.Driver, "overlay2"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("reloaded %s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if v := s2.Snapshots(); len(v) != 1 || v[0] == got || v[0].Name != "/persist" ||
		v[0].State.Status() != StatusExited || v[0].HostConfig.Memory != 64<<20 {
		t.Errorf("Snapshots after reopen = %+v, want a copy of the reloaded record", v)
	}
	if got.State.RemovalInProgress {
		t.Errorf("RemovalInProgress survived a restart; it must not be persisted")
	}
	// The reloaded container is fully usable: lockable and saveable.
	save(t, s2, got)
}

func TestSaveSkipsUnchangedFiles(t *testing.T) {
	s, _ := openStore(t)
	c := addContainer(t, s, testID("5"), "skip")
	save(t, s, c)
	path := filepath.Join(s.Dir(c.ID), ConfigFile)
	before, _ := os.Stat(path)
	save(t, s, c)
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Errorf("an unchanged Save replaced %s", ConfigFile)
	}
	c.Lock()
	c.State.SetRunning(7, true)
	c.Unlock()
	save(t, s, c)
	if after, _ := os.Stat(path); os.SameFile(before, after) {
		t.Errorf("a state change did not replace %s", ConfigFile)
	}
}

func TestSnapshotsAreCopies(t *testing.T) {
	s, _ := openStore(t)
	c := addContainer(t, s, testID("6"), "snap")
	if v := s.Snapshots(); len(v) != 1 || v[0] == c || v[0].State.Status() != StatusCreated {
		t.Fatalf("Snapshots = %v, want one created copy", v)
	}
	c.Lock()
	c.State.SetRunning(1, true)
	c.Unlock()
	if v := s.Snapshots()[0]; v.State.Running {
		t.Errorf("snapshot changed before Save")
	}
	c.Lock()
	c.State.SetRemovalInProgress("snap")
	err := s.Save(c)
	c.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Snapshots()[0]; !v.State.Running || !v.State.RemovalInProgress {
		t.Errorf("snapshot after Save = %+v, want running with removal in progress", v.State)
	}
	if v := s.Snapshots()[0]; v.Config == c.Config || v.HostConfig == c.HostConfig {
		t.Errorf("snapshot shares Config or HostConfig with the live container")
	}
}

// TestListSummaryFollowsSaves: a snapshot's list summary, computed once,
// is Summary's: the status text follows the time asked for, and a Save's
// new snapshot shows what changed.
func TestListSummaryFollowsSaves(t *testing.T) {
	s, _ := openStore(t)
	c := addContainer(t, s, testID("7"), "lister")
	c.Lock()
	c.Config.Labels = map[string]string{"a": "1"}
	c.State.SetRunning(1, true)
	err := s.Save(c)
	c.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	v := s.Snapshots()[0]
	for _, at := range []time.Duration{time.Minute, time.Hour} {
		when := v.State.StartedAt.Add(at)
		if got, want := v.ListSummary(when), v.Summary(when); !reflect.DeepEqual(got, want) {
			t.Errorf("ListSummary(start+%v) = %+v, want %+v", at, got, want)
		}
	}
	c.Lock()
	c.Config.Labels = map[string]string{"a": "2"}
	c.State.SetStopped(ExitStatus{ExitCode: 3})
	err = s.Save(c)
	c.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got := s.Snapshots()[0].ListSummary(time.Now())
	if got.Labels["a"] != "2" || got.State != StatusExited || !strings.HasPrefix(got.Status, "Exited (3)") {
		t.Errorf("after Save: labels %v, state %q, status %q; want a=2, exited, Exited (3) ...", got.Labels, got.State, got.Status)
	}
}

func TestListNewestFirst(t *testing.T) {
	s, _ := openStore(t)
	base := now
	for i, id := range []string{"3", "1", "2"} {
		c := New(testID(id))
		c.Created = base.Add(time.Duration(i) * time.Second)
		if err := s.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, c := range s.List() {
		got = append(got, c.ID[:1])
	}
	if strings.Join(got, "") != "213" {
		t.Errorf("List order = %v, want 2 1 3 (newest first)", got)
	}
	got = got[:0]
	for _, c := range s.Snapshots() {
		got = append(got, c.ID[:1])
	}
	if strings.Join(got, "") != "213" {
		t.Errorf("Snapshots order = %v, want 2 1 3", got)
	}
}

func TestDelete(t *testing.T) {
	s, root := openStore(t)
	c := addContainer(t, s, testID("7"), "gone")
	save(t, s, c)
	if err := os.WriteFile(filepath.Join(s.Dir(c.ID), "hostname"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	removed := c.State.Wait(context.Background(), types.WaitConditionRemoved)

	c.Lock()
	err := s.Delete(c)
	c.Unlock()
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(s.Dir(c.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory after Delete: %v, want it gone", err)
	}
	if _, err := s.Get("gone"); errdefs.Status(err) != 404 {
		t.Errorf("Get after Delete = %v, want 404", err)
	}
	if len(s.Snapshots()) != 0 || len(s.List()) != 0 {
		t.Errorf("container still listed after Delete")
	}
	select {
	case <-removed:
	case <-time.After(10 * time.Second): // a deadline for failing, not a synchronisation
		t.Errorf("removed waiter not woken by Delete")
	}
	// A late Save must not bring the record back.
	c.Lock()
	err = s.Save(c)
	c.Unlock()
	if errdefs.Status(err) != 404 {
		t.Errorf("Save after Delete = %v, want 404", err)
	}
	if _, err := os.Stat(s.Dir(c.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save after Delete recreated the directory")
	}
	addContainer(t, s, testID("8"), "gone") // the name is free
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 0 {
		t.Errorf("reopened store has %d containers, want 0 (the new one was never saved)", s2.Len())
	}
}

// TestRemoveRecord: Delete's durable step alone. After it the container is
// gone for a store opened on the same root (the crash case) but stays in
// this one, its directory on disk; a Save writes the record back, and a
// Delete finishes the removal.
func TestRemoveRecord(t *testing.T) {
	s, root := openStore(t)
	c := addContainer(t, s, testID("9"), "rr")
	save(t, s, c)
	c.Lock()
	err := s.RemoveRecord(c)
	c.Unlock()
	if err != nil {
		t.Fatalf("RemoveRecord: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(c.ID), ConfigFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record after RemoveRecord: %v, want it gone", err)
	}
	if _, err := s.Get("rr"); err != nil {
		t.Errorf("Get after RemoveRecord: %v", err)
	}
	if s2, err := Open(root); err != nil || s2.Len() != 0 {
		t.Errorf("store reopened after RemoveRecord: %v, %d containers, want 0", err, s2.Len())
	}
	save(t, s, c)
	if s2, err := Open(root); err != nil || s2.Len() != 1 {
		t.Errorf("store reopened after a Save that followed RemoveRecord: %v, %d containers, want 1", err, s2.Len())
	}
	c.Lock()
	if err := s.RemoveRecord(c); err != nil {
		t.Fatalf("RemoveRecord: %v", err)
	}
	err = s.Delete(c)
	c.Unlock()
	if err != nil {
		t.Fatalf("Delete after RemoveRecord: %v", err)
	}
	if _, err := os.Stat(s.Dir(c.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory after Delete: %v, want it gone", err)
	}
	if _, err := s.Get("rr"); errdefs.Status(err) != 404 {
		t.Errorf("Get after Delete = %v, want 404", err)
	}
}

// TestDeleteKeepingDir: the container is gone from the store, and from a
// store opened on the same root, and its waiters are woken, before its
// directory is removed by the function returned.
func TestDeleteKeepingDir(t *testing.T) {
	s, root := openStore(t)
	c := addContainer(t, s, testID("a"), "later")
	save(t, s, c)
	removed := c.State.Wait(context.Background(), types.WaitConditionRemoved)
	c.Lock()
	removeDir, err := s.DeleteKeepingDir(c)
	c.Unlock()
	if err != nil {
		t.Fatalf("DeleteKeepingDir: %v", err)
	}
	select {
	case <-removed:
	case <-time.After(10 * time.Second): // a deadline for failing, not a synchronisation
		t.Errorf("removed waiter not woken by DeleteKeepingDir")
	}
	if _, err := s.Get("later"); errdefs.Status(err) != 404 {
		t.Errorf("Get after DeleteKeepingDir = %v, want 404", err)
	}
	if s2, err := Open(root); err != nil || s2.Len() != 0 {
		t.Errorf("store reopened after DeleteKeepingDir: %v, %d containers, want 0", err, s2.Len())
	}
	if _, err := os.Stat(s.Dir(c.ID)); err != nil {
		t.Errorf("directory before removeDir: %v", err)
	}
	if err := removeDir(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir(c.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory after removeDir: %v, want it gone", err)
	}
}

// TestOpenCrashLeftovers simulates what a crash leaves: temp files of
// interrupted atomic writes next to good records, a half-created container
// (its directory with only a temp file), a corrupt record, and two records
// claiming one name.
func TestOpenCrashLeftovers(t *testing.T) {
	s, root := openStore(t)
	good := addContainer(t, s, testID("a1"), "good")
	save(t, s, good)
	dup1 := addContainer(t, s, testID("b1"), "dup")
	save(t, s, dup1)
	dup2 := addContainer(t, s, testID("b2"), "dup2")
	save(t, s, dup2)

	// Interrupted rewrite of good's record: garbage under a temp name.
	goodDir := s.Dir(good.ID)
	tmp := filepath.Join(goodDir, ".tmp-"+ConfigFile+"-1234")
	if err := os.WriteFile(tmp, []byte(`{"ID":"`+good.ID+`","Name":"/evil"`), 0o600); err != nil {
		t.Fatal(err)
	}
	rootTmp := filepath.Join(root, ".tmp-stray")
	if err := os.WriteFile(rootTmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A create that crashed before its first record was renamed into place.
	halfID := testID("c1")
	if err := os.MkdirAll(filepath.Join(root, halfID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, halfID, ".tmp-"+ConfigFile+"-9"), []byte("{\"ID\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A corrupt record (not something atomic writes produce, but disks rot).
	badID := testID("d1")
	if err := os.MkdirAll(filepath.Join(root, badID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, badID, ConfigFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	// dup2's record edited to claim dup1's name.
	rec, err := os.ReadFile(filepath.Join(s.Dir(dup2.ID), ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	rec = []byte(strings.Replace(string(rec), `"/dup2"`, `"/dup"`, 1))
	if err := os.WriteFile(filepath.Join(s.Dir(dup2.ID), ConfigFile), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	// Not containers at all: left alone.
	if err := os.MkdirAll(filepath.Join(root, "not-a-container"), 0o700); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tmp, rootTmp} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("temp file %s survived Open", p)
		}
	}
	if c, err := s2.Get("good"); err != nil || c.ID != good.ID {
		t.Errorf("Get(good) = %v, %v; want the intact record", c, err)
	}
	if _, err := s2.Get("evil"); err == nil {
		t.Errorf("the half-written record was loaded")
	}
	if c, err := s2.Get("dup"); err != nil || c.ID != dup1.ID {
		t.Errorf("Get(dup) = %v, %v; want the first owner %s", c, err, dup1.ID)
	}
	if s2.Len() != 2 {
		t.Errorf("Len = %d, want 2 (good, dup)", s2.Len())
	}
	byDir := map[string]error{}
	for _, le := range s2.LoadErrors() {
		byDir[filepath.Base(le.Dir)] = le
	}
	if err := byDir[halfID]; !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("load error of the half-created dir = %v, want fs.ErrNotExist", err)
	}
	if err := byDir[badID]; err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("load error of the corrupt record = %v, want a decode error", err)
	}
	if err := byDir[dup2.ID]; errdefs.Status(err) != 409 {
		t.Errorf("load error of the name clash = %v, want a 409", err)
	}
	if len(byDir) != 3 {
		t.Errorf("LoadErrors = %v, want exactly 3", s2.LoadErrors())
	}
	if _, err := os.Stat(filepath.Join(root, "not-a-container")); err != nil {
		t.Errorf("Open touched a directory that is not a container: %v", err)
	}
}

func TestGenerateID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := GenerateID()
		if !isID(id) || allDigits(id[:12]) || seen[id] {
			t.Fatalf("GenerateID() = %q: want fresh 64 hex with a non-numeric short form", id)
		}
		seen[id] = true
	}
	if !allDigits("123456789012") || allDigits("12345678901a") || allDigits("") {
		t.Errorf("allDigits is wrong")
	}
}

func TestWordLists(t *testing.T) {
	for _, list := range [][]string{adjectives[:], surnames[:]} {
		seen := map[string]bool{}
		for _, w := range list {
			if seen[w] || !regexp.MustCompile(`^[a-z]+$`).MatchString(w) {
				t.Errorf("word %q duplicated or not lower-case letters", w)
			}
			seen[w] = true
		}
	}
	if len(adjectives) < 50 || len(surnames) < 100 {
		t.Errorf("%d adjectives and %d surnames, want at least 50 and 100", len(adjectives), len(surnames))
	}
}

// TestGeneratedNamesUnique adds 10k containers without names: every one
// gets a distinct valid name, the first ones plain adjective_surname, later
// ones with a digit or the short ID once the plain names run out.
func TestGeneratedNamesUnique(t *testing.T) {
	s, _ := openStore(t)
	pattern := regexp.MustCompile(`^/([a-z]+_[a-z]+[0-9]?|[0-9a-f]{12})$`)
	seen := map[string]bool{}
	for range 10000 {
		c := New(GenerateID())
		if err := s.Add(c); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if seen[c.Name] || !pattern.MatchString(c.Name) {
			t.Fatalf("generated name %q repeated or malformed", c.Name)
		}
		if err := ValidateName(c.Name); err != nil {
			t.Fatalf("generated name %q is invalid: %v", c.Name, err)
		}
		seen[c.Name] = true
	}
	name, err := s.GenerateName(GenerateID())
	if err != nil || seen[name] {
		t.Errorf("GenerateName = %q, %v; want a free name", name, err)
	}
}

// TestStoreConcurrent drives the store from many goroutines at once for the
// race detector: each creates, saves, renames, looks up, lists and deletes
// its own containers while the others do the same.
func TestStoreConcurrent(t *testing.T) {
	s, root := openStore(t)
	const workers, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c := New(GenerateID())
				c.Config = &types.Config{Labels: map[string]string{"w": fmt.Sprint(w)}}
				if err := s.Add(c); err != nil {
					errs <- err
					return
				}
				c.Lock()
				c.State.SetRunning(w*100+i, true)
				err := s.Save(c)
				if err == nil {
					err = s.Rename(c, fmt.Sprintf("w%d-c%d", w, i))
				}
				c.Unlock()
				if err != nil {
					errs <- err
					return
				}
				if got, err := s.Get(c.ID[:20]); err != nil || got != c {
					errs <- fmt.Errorf("Get(prefix) = %v, %v", got, err)
					return
				}
				for _, v := range s.Snapshots() {
					_ = v.Summary(now) // reads every field
				}
				if _, err := Filter(s.Snapshots(), mustArgs(t, `{"label":["w=1"]}`), FilterOptions{All: true}); err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					c.Lock()
					err := s.Delete(c)
					c.Unlock()
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if want := workers * each / 2; s.Len() != want {
		t.Errorf("Len = %d, want %d", s.Len(), want)
	}
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != s.Len() || len(s2.LoadErrors()) != 0 {
		t.Errorf("reopened: %d containers, errors %v; want %d and none", s2.Len(), s2.LoadErrors(), s.Len())
	}
}

// FuzzOpenRecord writes arbitrary bytes as a container's two record files:
// Open must never panic, and must either load a usable container or report
// the directory in LoadErrors.
func FuzzOpenRecord(f *testing.F) {
	id := testID("f")
	f.Add([]byte(`{"ID":"`+id+`","Name":"/x","State":{"Running":true}}`), []byte(`{"Memory":1}`))
	f.Add([]byte(`{"ID":"`+id+`","Name":"x"}`), []byte(`null`))
	f.Add([]byte(`{"ID":"`+id+`","State":null,"Config":null}`), []byte(``))
	f.Add([]byte(`{"ID":"`+id+`","Runtime":{"a":[1]}}`), []byte(`{"Binds":["a:b"]}`))
	f.Add([]byte(`{"ID":"other"}`), []byte(`{}`))
	f.Add([]byte(`[]`), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, cfg, hc []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, HostConfigFile), hc, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(root)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if s.Len()+len(s.LoadErrors()) != 1 {
			t.Fatalf("%d loaded and %d errors, want exactly one of them", s.Len(), len(s.LoadErrors()))
		}
		if s.Len() == 0 {
			return
		}
		c, err := s.Get(id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if !strings.HasPrefix(c.Name, "/") {
			t.Fatalf("loaded name %q lacks its slash", c.Name)
		}
		if got, err := s.Get(c.Name); err != nil || got != c {
			t.Fatalf("Get(%q) = %v, %v", c.Name, got, err)
		}
		if v := s.Snapshots(); len(v) != 1 || v[0].Name != c.Name {
			t.Fatalf("Snapshots = %v, want one view named %q", v, c.Name)
		}
		_ = s.Snapshots()[0].Summary(now)
		c.Lock()
		err = s.Save(c)
		c.Unlock()
		if err != nil {
			t.Fatalf("Save of a loaded container: %v", err)
		}
	})
}

// TestListEntryStatusFollowsTheClock: the status text a snapshot's list
// entry reuses within a second is StringAt's for every state and any time
// asked for, forwards and backwards, across each threshold of the text;
// and SortedSnapshots shows each Save's new snapshot.
func TestListEntryStatusFollowsTheClock(t *testing.T) {
	s, _ := openStore(t)
	c := addContainer(t, s, testID("8"), "clock")
	base := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	offsets := []time.Duration{0, 300 * time.Millisecond, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond,
		59*time.Second + 999*time.Millisecond, time.Minute, 90 * time.Second, 5 * time.Second, 89*time.Minute + 59*time.Second,
		90 * time.Minute, 47 * time.Hour, 15 * 24 * time.Hour, 3 * time.Second, 800 * 24 * time.Hour, -2 * time.Second}
	for _, tc := range []struct {
		name string
		set  func(st *State)
	}{
		{"created", func(st *State) {}},
		{"running", func(st *State) { st.Running, st.StartedAt = true, base }},
		{"paused", func(st *State) { st.Running, st.Paused, st.StartedAt = true, true, base }},
		{"restarting", func(st *State) {
			st.Running, st.Restarting, st.ExitCode, st.StartedAt, st.FinishedAt = true, true, 1, base.Add(-time.Hour), base
		}},
		{"healthy", func(st *State) {
			st.Running, st.StartedAt, st.Health = true, base, &types.Health{Status: types.HealthHealthy}
		}},
		{"exited", func(st *State) { st.ExitCode, st.StartedAt, st.FinishedAt = 3, base.Add(-time.Minute), base }},
		{"dead", func(st *State) { st.Dead, st.StartedAt, st.FinishedAt = true, base.Add(-time.Minute), base }},
		{"started, not finished", func(st *State) { st.StartedAt = base }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.SortedSnapshots()
			c.Lock()
			st := c.State
			st.Running, st.Paused, st.Restarting, st.Dead, st.RemovalInProgress = false, false, false, false, false
			st.ExitCode, st.StartedAt, st.FinishedAt, st.Health = 0, time.Time{}, time.Time{}, nil
			tc.set(st)
			c.Config.Labels = map[string]string{"case": tc.name} // so that the record changes
			err := s.Save(c)
			c.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			v := s.SortedSnapshots()[0]
			if v == before[0] {
				t.Fatal("SortedSnapshots still shows the snapshot before Save")
			}
			for _, off := range offsets {
				now := base.Add(off)
				sum, status, cache := v.ListEntry(now)
				if want := v.State.StringAt(now); status != want {
					t.Errorf("ListEntry(base%+v) status = %q, want %q", off, status, want)
				}
				if sum.Status != "" || sum.Labels["case"] != tc.name || cache == nil {
					t.Errorf("ListEntry(base%+v) = summary status %q, labels %v, cache %p", off, sum.Status, sum.Labels, cache)
				}
			}
		})
	}
}

// TestListAllocatesNothingPerContainer: once a store's snapshots were
// listed, listing them again (sorted snapshots, the walk without filters,
// each list entry, running containers' status texts within the same
// second) allocates as much for 60 containers as for 6 (issue 13, list
// rate).
func TestListAllocatesNothingPerContainer(t *testing.T) {
	allocs := func(n int) float64 {
		s, _ := openStore(t)
		for i := range n {
			c := addContainer(t, s, testID(fmt.Sprintf("a%02d", i)), fmt.Sprintf("c%d", i))
			if i%2 == 0 {
				c.Lock()
				c.State.SetRunning(1, true)
				err := s.Save(c)
				c.Unlock()
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		now := time.Now()
		list := func() {
			listed := 0
			err := Walk(s.SortedSnapshots(), filters.NewArgs(), FilterOptions{All: true, Sorted: true}, func(c *Container) {
				if _, status, _ := c.ListEntry(now); status != "" {
					listed++
				}
			})
			if err != nil || listed != n {
				t.Fatalf("listed %d of %d: %v", listed, n, err)
			}
		}
		list()
		return testing.AllocsPerRun(20, list)
	}
	if few, many := allocs(6), allocs(60); many > few {
		t.Errorf("a list allocates %v times for 60 containers, %v for 6", many, few)
	}
}
