package features

import (
	"strings"
	"testing"
)

func TestKernelVersion(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
	}{{"6.18.44-fc-v769", 6, 18}, {"5.4.0-150-generic", 5, 4}, {"4.19", 4, 19}, {"6.1rc2", 6, 1}, {"junk", 0, 0}} {
		if ma, mi := kernelVersion(tc.in); ma != tc.major || mi != tc.minor {
			t.Errorf("kernelVersion(%q) = %d.%d, want %d.%d", tc.in, ma, mi, tc.major, tc.minor)
		}
	}
}

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
