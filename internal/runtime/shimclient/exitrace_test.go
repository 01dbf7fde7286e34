package shimclient

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/runtime/shim"
)

// TestStateFromFileShimLetGoMeanwhile: a daemon that finds a shim's socket
// gone reads the state file; if the shim records its container's exit and
// lets go of the directory between that read and the look at the lock, the
// exit it recorded is the answer, not "the container's shim died" written
// over it. (Seen under load: TestEngineRestore's exited container reported
// as killed by its shim's death, 4 times in 120.)
func TestStateFromFileShimLetGoMeanwhile(t *testing.T) {
	dir := t.TempDir()
	write := func(st shim.State) {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := atomicfile.Replace(filepath.Join(dir, shim.StateFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	running := shim.State{Version: shim.ProtocolVersion, ID: "c", ShimPid: os.Getpid(), Status: shim.StatusRunning,
		InitPid: 1 << 30, DirLock: true}
	write(running)
	// The shim, in the window: it records the exit (its directory lock,
	// not held here, is already let go when the daemon looks).
	afterStateRead = func() {
		stopped := running
		stopped.Status, stopped.ExitCode, stopped.FinishedAt = shim.StatusStopped, 9, time.Now().UTC()
		write(stopped)
	}
	t.Cleanup(func() { afterStateRead = nil })
	c := &Container{id: "c", dir: dir}
	st, err := c.stateFromFile()
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != shim.StatusStopped || st.ExitCode != 9 || st.Error != "" {
		t.Errorf("state = %+v, want the exit the shim recorded (stopped, 9, no error)", st)
	}
	if got, err := shim.ReadState(dir); err != nil || got.ExitCode != 9 || got.Error != "" {
		t.Errorf("state file after = %+v, %v: the shim's record was overwritten", got, err)
	}
}
