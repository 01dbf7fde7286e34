package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/skifftest"
)

// mountSmallTmpfs mounts a tmpfs of size bytes at a new directory of the
// test's and unmounts it at cleanup (after the daemon's cleanup, which was
// registered later).
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	skifftest.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0711"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes path until the file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			return
		}
	}
}

// TestCLIContainerRecordsDiskFull runs a daemon whose data root is a small
// tmpfs and fills it up (issue 9, item 7). Operations that change a
// container record then fail with a clear error (a 500 naming the
// container) and change nothing — create, rename, update, pause, start —
// while stop and rm, which free resources, work. An exit that happens
// meanwhile, and the stop, are kept in memory, logged and saved as soon as
// there is room again. Killed and relaunched, the daemon finds the
// previous records intact and the exit and the stop recorded, and works
// normally.
func TestCLIContainerRecordsDiskFull(t *testing.T) {
	dataRoot := mountSmallTmpfs(t, "64m")
	sigDir := t.TempDir()
	// Without bridge networking: a start would otherwise fail earlier, at
	// its address allocation's write, and this test is about the record.
	d := skifftest.StartWith(t, skifftest.Options{DataRoot: dataRoot, Args: []string{"--bridge=none"}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	dockerOK(t, d, "create", "--name", "ca", "--label", "gen=1", "--cpu-shares", "512", "busybox", "true")
	dockerOK(t, d, "create", "--name", "cs", "busybox", "sleep", "1000")
	dockerOK(t, d, "run", "-d", "--name", "ck", "busybox", "sleep", "1000")
	dockerOK(t, d, "create", "--name", "cx", "busybox", "true")
	// cr runs until the test creates sigDir/go, then exits 3; it writes
	// nothing, so its log needs no room.
	dockerOK(t, d, "run", "-d", "--name", "cr", "--cpu-shares", "512", "-v", sigDir+":/sig",
		"busybox", "sh", "-c", "while [ ! -e /sig/go ]; do sleep 1; done; exit 3")

	fill := filepath.Join(dataRoot, "fill")
	fillUp(t, fill)

	// want names what could not be done: the container's record, or for a
	// create the files written before it.
	wantNoSpace := func(want string, args ...string) {
		t.Helper()
		res := d.Docker(t, args...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, want+" container ") || !strings.Contains(res.Stderr, "no space left on device") {
			t.Errorf("docker %s on a full disk: %v; want a failure saying %q ... no space left on device", strings.Join(args, " "), res, want)
		}
	}
	// Not a name of hex digits: `inspect` of a name that is gone falls
	// back to ID prefixes, and "cb" is the start of 1 ID in 256.
	wantNoSpace("create", "create", "--name", "cn", "busybox", "true")
	if out := dockerOK(t, d, "ps", "-a", "--filter", "name=^cn$", "--format", "{{.Names}}"); out != "" {
		t.Errorf("a create that failed left a container: %q", out)
	}
	wantNoSpace("save", "rename", "ca", "ca2")
	if got := inspectField(t, d, "ca", "{{.Name}}"); got != "/ca" {
		t.Errorf("name after a failed rename = %s, want /ca", got)
	}
	if res := d.Docker(t, "inspect", "ca2"); res.ExitCode == 0 {
		t.Errorf("the name of a failed rename is in use")
	}
	wantNoSpace("save", "update", "--cpu-shares", "1024", "cr")
	if got := inspectField(t, d, "cr", "{{.HostConfig.CPUShares}}"); got != "512" {
		t.Errorf("CpuShares after a failed update = %s, want 512", got)
	}
	wantNoSpace("save", "pause", "cr")
	if got := inspectField(t, d, "cr", "{{.State.Status}}"); got != "running" {
		t.Errorf("status after a failed pause = %s, want running", got)
	}
	// A start whose record cannot be saved is undone: the container does
	// not run, and its shim is gone.
	wantNoSpace("save", "start", "cs")
	if got := inspectField(t, d, "cs", "{{.State.Status}} {{.State.Running}} {{.State.Pid}}"); got != "created false 0" {
		t.Errorf("cs after a failed start = %q, want created false 0", got)
	}
	if shims := shimsUnder(d.ExecRoot); len(shims) != 2 {
		t.Errorf("shims after a failed start: %q, want cr's and ck's only", shims)
	}

	// An exit while the disk is full: recorded in memory, its save
	// retried.
	if err := os.WriteFile(filepath.Join(sigDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cr to exit", func() bool { return inspectField(t, d, "cr", "{{.State.Status}} {{.State.ExitCode}}") == "exited 3" })
	// Stopping frees resources, so it works on a full disk; the record
	// follows once there is room.
	dockerOK(t, d, "stop", "-t", "1", "ck")
	if got := inspectField(t, d, "ck", "{{.State.Status}}"); got != "exited" {
		t.Errorf("ck after stop on a full disk = %s, want exited", got)
	}
	// So does removing.
	dockerOK(t, d, "rm", "cx")
	waitFor(t, "the failed save of cr's exit to be logged", func() bool {
		return strings.Contains(d.Log(), "saving container record failed; retrying")
	})

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	// Other containers' changes may be retried too (cs's undone start):
	// wait for cr's and ck's saves by name, not for any two.
	crID, ckID := inspectField(t, d, "cr", "{{.Id}}"), inspectField(t, d, "ck", "{{.Id}}")
	waitFor(t, "the retried saves of the exits of cr and ck", func() bool {
		var cr, ck bool
		for _, l := range strings.Split(d.Log(), "\n") {
			if strings.Contains(l, "container record saved after an earlier failure") {
				cr = cr || strings.Contains(l, crID)
				ck = ck || strings.Contains(l, ckID)
			}
		}
		return cr && ck
	})

	// What is on disk is what a new daemon finds.
	d.Kill()
	d.Relaunch(t)
	if got := inspectField(t, d, "ca", "{{.Name}} {{index .Config.Labels \"gen\"}} {{.HostConfig.CPUShares}}"); got != "/ca 1 512" {
		t.Errorf("ca after relaunch = %q, want its previous record: /ca 1 512", got)
	}
	if got := inspectField(t, d, "cr", "{{.State.Status}} {{.State.ExitCode}} {{.HostConfig.CPUShares}}"); got != "exited 3 512" {
		t.Errorf("cr after relaunch = %q, want exited 3 512 (the exit saved once there was room)", got)
	}
	if got := inspectField(t, d, "ck", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 137" {
		t.Errorf("ck after relaunch = %q, want exited 137 (stopped on a full disk, saved once there was room)", got)
	}
	if res := d.Docker(t, "inspect", "cx"); res.ExitCode == 0 {
		t.Errorf("cx, removed on a full disk, is back after relaunch")
	}
	if res := d.Docker(t, "inspect", "cn"); res.ExitCode == 0 {
		t.Errorf("the container of a failed create exists after relaunch")
	}
	if got := inspectField(t, d, "cs", "{{.State.Status}}"); got != "created" {
		t.Errorf("cs after relaunch = %s, want created (its start was undone)", got)
	}
	// And it works again.
	dockerOK(t, d, "create", "--name", "cn", "busybox", "true")
	dockerOK(t, d, "rename", "ca", "ca2")
	dockerOK(t, d, "update", "--cpu-shares", "1024", "ca2")
	if got := inspectField(t, d, "ca2", "{{.Name}} {{.HostConfig.CPUShares}}"); got != "/ca2 1024" {
		t.Errorf("ca after rename and update = %q, want /ca2 1024", got)
	}
}

// tortureSlot is the test's model of one container that one worker owns:
// what the daemon acknowledged, and the operation in flight when the
// daemon was killed, whose outcome the next daemon decides.
type tortureSlot struct {
	exists  bool
	id      string
	name    string
	gen     int // label gen and env GEN (config); CpuShares/100 (host config)
	shares  int64
	running bool
	pid     int // 0 when not known yet

	pending *tortureOp
	// rmCut: a remove was cut short by the kill before the last check. Its
	// SIGKILL may have reached the shim and still be on its way to the
	// container when the next daemon first looked (a loaded machine takes
	// a while to schedule the shim), so the container may die by it later.
	rmCut bool
	// journal is what happened to the slot lately, for failure messages.
	journal []string
}

// note adds an entry to s's journal.
func (s *tortureSlot) note(format string, args ...any) {
	s.journal = append(s.journal, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	if len(s.journal) > 12 {
		s.journal = s.journal[1:]
	}
}

type tortureOp struct {
	kind   string // create, start, rename, update, rm
	name   string // create, rename: the new name
	gen    int    // create
	shares int64  // create, update
}

// tortureClient sends raw API requests; a daemon killed mid-request shows
// as err.
type tortureClient struct{ c *http.Client }

func (tc tortureClient) do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://skiffd/v1.50"+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tc.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type tortureInspect struct {
	ID    string
	Name  string
	State struct {
		Status   string
		Running  bool
		Pid      int
		ExitCode int
		Error    string
	}
	Config struct {
		Labels map[string]string
		Env    []string
	}
	HostConfig struct {
		CpuShares int64
	}
}

func (tc tortureClient) inspect(ref string) (*tortureInspect, int, error) {
	status, b, err := tc.do("GET", "/containers/"+ref+"/json", nil)
	if err != nil || status != http.StatusOK {
		return nil, status, err
	}
	var ci tortureInspect
	if err := json.Unmarshal(b, &ci); err != nil {
		return nil, status, fmt.Errorf("decode inspect of %s: %w: %s", ref, err, b)
	}
	return &ci, status, nil
}

// tortureStep runs one random operation of slot s; it returns false when
// the daemon did not answer (it was killed), leaving the operation
// pending.
func tortureStep(t *testing.T, tc tortureClient, rng *rand.Rand, s *tortureSlot, nextGen func() int, w int) bool {
	var op tortureOp
	switch {
	case !s.exists:
		g := nextGen()
		op = tortureOp{kind: "create", gen: g, name: fmt.Sprintf("w%d-g%d", w, g), shares: int64(g*100 + 2 + rng.Intn(90))}
	default:
		switch n := rng.Intn(10); {
		case n < 3 && !s.running:
			op = tortureOp{kind: "start"}
		case n < 5:
			op = tortureOp{kind: "rename", name: fmt.Sprintf("w%d-g%d-r%d", w, s.gen, rng.Intn(1<<30))}
		case n < 8:
			op = tortureOp{kind: "update", shares: int64(s.gen*100 + 2 + rng.Intn(90))}
		default:
			op = tortureOp{kind: "rm"}
		}
	}
	s.pending = &op
	s.note("send %+v", op)
	var (
		status int
		body   []byte
		err    error
		want   = http.StatusNoContent
	)
	switch op.kind {
	case "create":
		gen := strconv.Itoa(op.gen)
		status, body, err = tc.do("POST", "/containers/create?name="+op.name, map[string]any{
			"Image": "busybox", "Cmd": []string{"sleep", "1000"},
			"Labels": map[string]string{"gen": gen}, "Env": []string{"GEN=" + gen},
			"HostConfig": map[string]any{"CpuShares": op.shares},
		})
		want = http.StatusCreated
	case "start":
		status, body, err = tc.do("POST", "/containers/"+s.id+"/start", nil)
	case "rename":
		status, body, err = tc.do("POST", "/containers/"+s.id+"/rename?name="+op.name, nil)
	case "update":
		status, body, err = tc.do("POST", "/containers/"+s.id+"/update", map[string]any{"CpuShares": op.shares})
		want = http.StatusOK
	case "rm":
		status, body, err = tc.do("DELETE", "/containers/"+s.id+"?force=1", nil)
	}
	if err != nil {
		s.note("no answer: %v", err)
		return false // killed: the outcome is the next daemon's to tell
	}
	s.note("answer %d", status)
	if status != want {
		t.Errorf("%s of %s (%s): %d %s", op.kind, s.name, s.id, status, body)
		return false
	}
	s.pending = nil
	switch op.kind {
	case "create":
		var r struct{ ID string }
		if err := json.Unmarshal(body, &r); err != nil {
			t.Errorf("create response %s: %v", body, err)
			return false
		}
		*s = tortureSlot{exists: true, id: r.ID, name: "/" + op.name, gen: op.gen, shares: op.shares, journal: s.journal}
	case "start":
		s.running, s.pid = true, 0
		if ci, _, err := tc.inspect(s.id); err == nil && ci != nil {
			s.pid = ci.State.Pid
		}
	case "rename":
		s.name = "/" + op.name
	case "update":
		s.shares = op.shares
	case "rm":
		*s = tortureSlot{journal: s.journal}
	}
	return true
}

// tortureCheck compares what the daemon holds with the model: every
// container the daemon lists is a slot's and inspects whole and
// consistent, acknowledged operations all took effect, an operation in
// flight took effect or not (the model adopts what happened), and running
// containers run the same process as before.
func tortureCheck(t *testing.T, tc tortureClient, slots []*tortureSlot, seen map[string]bool) {
	t.Helper()
	status, b, err := tc.do("GET", "/containers/json?all=1", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("list: %d %v %s", status, err, b)
	}
	var list []struct {
		ID    string `json:"Id"`
		Names []string
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	listed := map[string]bool{}
	for _, c := range list {
		seen[c.ID] = true
		listed[c.ID] = true
		if len(c.Names) != 1 {
			t.Errorf("container %s listed with names %q", c.ID, c.Names)
			continue
		}
		if other, dup := byName[c.Names[0]]; dup {
			t.Errorf("name %s held by %s and %s", c.Names[0], other, c.ID)
		}
		byName[c.Names[0]] = c.ID
	}
	claimed := map[string]bool{}
	for _, s := range slots {
		failed := t.Failed()
		s.checkSlot(t, tc, byName, listed, claimed)
		if !failed && t.Failed() {
			t.Logf("journal of the slot:\n%s", strings.Join(s.journal, "\n"))
		}
	}
	for _, c := range list {
		if !claimed[c.ID] {
			t.Errorf("container %s (%q) that no acknowledged or pending create explains", c.ID, c.Names)
		}
	}
	for _, s := range slots {
		s.note("relaunched: exists %v id %.12s name %s shares %d running %v pid %d", s.exists, s.id, s.name, s.shares, s.running, s.pid)
	}
}

// checkSlot checks one slot against the daemon and adopts the outcome of
// its pending operation.
func (s *tortureSlot) checkSlot(t *testing.T, tc tortureClient, byName map[string]string, listed, claimed map[string]bool) {
	t.Helper()
	{
		p := s.pending
		s.pending = nil
		rmCut := s.rmCut
		s.rmCut = p != nil && p.kind == "rm"
		if p == nil {
			p = &tortureOp{}
		}
		switch p.kind {
		case "create":
			id, ok := byName["/"+p.name]
			if !ok {
				return // the create never happened
			}
			*s = tortureSlot{exists: true, id: id, name: "/" + p.name, gen: p.gen, shares: p.shares, journal: s.journal}
		case "rm":
			if !listed[s.id] {
				*s = tortureSlot{journal: s.journal} // the remove happened
				return
			}
		}
		if !s.exists {
			return
		}
		claimed[s.id] = true
		ci, status, err := tc.inspect(s.id)
		if err != nil || ci == nil {
			t.Errorf("inspect of %s (%s), which the daemon acknowledged: %d %v", s.id, s.name, status, err)
			return
		}
		gen := strconv.Itoa(s.gen)
		if ci.Config.Labels["gen"] != gen || !slices.Contains(ci.Config.Env, "GEN="+gen) || ci.HostConfig.CpuShares/100 != int64(s.gen) {
			t.Errorf("%s (%s): config of generation %q (env %q), host config of generation %d; want all %s",
				s.id, ci.Name, ci.Config.Labels["gen"], ci.Config.Env, ci.HostConfig.CpuShares/100, gen)
		}
		if ci.Name != s.name && !(p.kind == "rename" && ci.Name == "/"+p.name) {
			t.Errorf("%s: name %s, want %s", s.id, ci.Name, s.name)
		}
		if ci.HostConfig.CpuShares != s.shares && !(p.kind == "update" && ci.HostConfig.CpuShares == p.shares) {
			t.Errorf("%s (%s): CpuShares %d, want %d", s.id, ci.Name, ci.HostConfig.CpuShares, s.shares)
		}
		switch {
		case p.kind == "rm":
			// Cut short anywhere: killed or not.
		case rmCut && s.running && !ci.State.Running && ci.State.ExitCode == 137:
			// The earlier cut-short remove's SIGKILL landed after that check.
		case s.running && !ci.State.Running:
			t.Errorf("%s (%s) was running (pid %d) and is %s now (exit code %d, error %q)", s.id, ci.Name, s.pid, ci.State.Status, ci.State.ExitCode, ci.State.Error)
		case s.running && s.pid != 0 && ci.State.Pid != s.pid:
			t.Errorf("%s (%s) runs pid %d, was pid %d: not the same process", s.id, ci.Name, ci.State.Pid, s.pid)
		case !s.running && ci.State.Running && p.kind != "start":
			t.Errorf("%s (%s) is running but was never started", s.id, ci.Name)
		}
		if ci.State.Status != "running" && ci.State.Status != "created" && ci.State.Status != "exited" {
			t.Errorf("%s (%s) in state %s after a restart", s.id, ci.Name, ci.State.Status)
		}
		s.name, s.shares = ci.Name, ci.HostConfig.CpuShares
		s.running, s.pid = ci.State.Running, ci.State.Pid
	}
}

// TestCLIContainerRecordsKillTorture kills the daemon with SIGKILL 100
// times, each time at a random moment of a burst of creates, starts,
// renames, updates and removes that three clients send at once, and
// relaunches it on the same roots (issue 9, item 8). After every relaunch
// each record must read whole and consistent — its config and host config
// of one generation (the test writes the generation into a label and the
// environment, and into CpuShares/100), names unique — acknowledged
// operations all durable, and running containers still running the same
// process. At the end the running containers are reattached (exec works)
// and removing everything leaves no shim, mount or cgroup.
//
// The generation check cannot catch a torn record deterministically: a
// crash must land between two writes of one save. The unit test
// TestSaveCrashKeepsRecordWhole (internal/container) injects exactly that.
func TestCLIContainerRecordsKillTorture(t *testing.T) {
	seed := time.Now().UnixNano()
	if v := os.Getenv("SKIFFD_TORTURE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("SKIFFD_TORTURE_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (SKIFFD_TORTURE_SEED=%d repeats the choices; the timing is the machine's)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	d := skifftest.Start(t)
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	client := d.Client()
	client.Timeout = time.Minute
	tc := tortureClient{c: client}

	const workers, slotsPerWorker, kills = 3, 2, 100
	slots := make([]*tortureSlot, workers*slotsPerWorker)
	for i := range slots {
		slots[i] = &tortureSlot{}
	}
	var mu sync.Mutex
	gen := 0
	seen := map[string]bool{}
	nextGen := func() int {
		mu.Lock()
		defer mu.Unlock()
		gen++
		return gen
	}
	began := time.Now()
	ops := 0
	for k := range kills {
		if k > 0 {
			d.Relaunch(t)
			tortureCheck(t, tc, slots, seen)
			if t.Failed() {
				t.Fatalf("inconsistent after kill %d", k)
			}
		}
		var wg sync.WaitGroup
		for w := range workers {
			wr := rand.New(rand.NewSource(rng.Int63()))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					s := slots[w*slotsPerWorker+wr.Intn(slotsPerWorker)]
					ok := tortureStep(t, tc, wr, s, nextGen, w)
					mu.Lock()
					if s.id != "" {
						seen[s.id] = true
					}
					if ok {
						ops++
					}
					mu.Unlock()
					if !ok {
						return
					}
				}
			}()
		}
		// The crash lands at a random moment of the burst: not a
		// synchronisation, the point of the test.
		time.Sleep(time.Duration(2+rng.Intn(300)) * time.Millisecond)
		d.Kill()
		wg.Wait()
	}
	d.Relaunch(t)
	tortureCheck(t, tc, slots, seen)
	t.Logf("%d kills, %d acknowledged operations in %v", kills, ops, time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}

	running := 0
	for _, s := range slots {
		if s.exists && s.running {
			running++
			if res := d.Docker(t, "exec", s.id, "true"); res.ExitCode != 0 {
				t.Errorf("exec in %s (%s) after the kills: %v", s.id, s.name, res)
			}
		}
	}
	t.Logf("%d containers left, %d running", len(strings.Fields(dockerOK(t, d, "ps", "-aq"))), running)
	if ids := strings.Fields(dockerOK(t, d, "ps", "-aq")); len(ids) > 0 {
		dockerOK(t, d, append([]string{"rm", "-f"}, ids...)...)
	}
	if out := dockerOK(t, d, "ps", "-aq"); out != "" {
		t.Errorf("containers left after rm -f of all: %q", out)
	}
	for _, dir := range []string{filepath.Join(d.DataRoot, "containers"), filepath.Join(d.ExecRoot, "containers")} {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s holds %d entries after removing every container", dir, len(ents))
		}
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(d.DataRoot+"/containers/")) {
		t.Errorf("container mounts left after removing every container")
	}
	for id := range seen {
		for _, p := range cgroups.New(id).Paths() {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cgroup %s of container %s left behind", p, id)
			}
		}
	}
	if shims := shimsUnder(d.ExecRoot); len(shims) > 0 {
		t.Errorf("shim processes left behind: %v", shims)
	}
	t.Logf("%d containers in all", len(seen))
}

// shimsUnder lists, as "pid dir", the containers under execRoot that shim
// processes serve (a shim runs as "skiffd-shim shim <dir>...").
func shimsUnder(execRoot string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(args) < 3 || args[1] != "shim" {
			continue
		}
		// A shim names every container it serves.
		for _, dir := range args[2:] {
			if strings.HasPrefix(dir, execRoot+"/") {
				out = append(out, p.Name()+" "+dir)
			}
		}
	}
	return out
}
