package sys

import (
	"os"
	"testing"
)

// TestWaitChild reaps a child that exits about when the wait starts and
// one that exited before the call, with their exit codes.
func TestWaitChild(t *testing.T) {
	start := func(script string) *os.Process {
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", script}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	later := start("exit 7")
	ws, err := WaitChild(later.Pid)
	if err != nil || ws.ExitStatus() != 7 {
		t.Fatalf("WaitChild = %v, %v; want exit 7", ws.ExitStatus(), err)
	}
	done := start("exit 3")
	// A pidfd of an exited, unreaped child is readable at once.
	for {
		st, _, err := ProcStat(done.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if st == 'Z' {
			break
		}
	}
	ws, err = WaitChild(done.Pid)
	if err != nil || ws.ExitStatus() != 3 {
		t.Fatalf("WaitChild of an exited child = %v, %v; want exit 3", ws.ExitStatus(), err)
	}
	if _, err := WaitChild(done.Pid); err == nil {
		t.Fatal("a second WaitChild of a reaped child did not fail")
	}
}
