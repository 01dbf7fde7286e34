package features

import (
	"strings"
	"testing"
)

func TestProbeThisHost(t *testing.T) {
	f := Probe()
	t.Log(f)
	// The machines skiffd targets (and CI) have all of it.
	if err := f.Check(); err != nil {
		t.Error(err)
	}
}

func TestCheckNamesWhatIsMissing(t *testing.T) {
	err := Features{Overlay: true, Seccomp: true, CgroupMode: "unified"}.Check()
	if err == nil {
		t.Fatal("Check passed without openat2, pidfd and bpf")
	}
	for _, want := range []string{"openat2", "pidfd", "bpf(2)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want it to name %s", err, want)
		}
	}
}
