package sys

import (
	"os/signal"
	"syscall"
	"testing"
)

func TestDefaultIgnoredSignals(t *testing.T) {
	signal.Ignore(syscall.SIGUSR2, syscall.SIGWINCH)
	t.Cleanup(func() { signal.Reset(syscall.SIGUSR2, syscall.SIGWINCH) })
	for _, sig := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGWINCH} {
		if ign, err := SignalIgnored(sig); err != nil || !ign {
			t.Fatalf("after signal.Ignore, %v ignored = %v, %v", sig, ign, err)
		}
	}
	if err := DefaultIgnoredSignals(); err != nil {
		t.Fatal(err)
	}
	for sig := syscall.Signal(1); sig <= numSignals; sig++ {
		if ign, err := SignalIgnored(sig); err != nil || ign {
			t.Errorf("signal %d ignored = %v, %v", sig, ign, err)
		}
	}
}
