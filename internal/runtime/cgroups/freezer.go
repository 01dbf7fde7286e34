package cgroups

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Freeze implements Manager.
func (m *manager) Freeze() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	if m.v2 != "" && exists(m.v2, "cgroup.freeze") {
		return setFrozenV2(m.v2, true)
	}
	if d, ok := m.v1["freezer"]; ok {
		return freezeV1(d)
	}
	return errors.New("freeze container: no freezer on this host")
}

// Thaw implements Manager.
func (m *manager) Thaw() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.resolve(); err != nil {
		return err
	}
	if m.v2 != "" && exists(m.v2, "cgroup.freeze") {
		return setFrozenV2(m.v2, false)
	}
	if d, ok := m.v1["freezer"]; ok {
		if err := writeFile(d, "freezer.state", "THAWED"); err != nil {
			return fmt.Errorf("thaw container: %w", err)
		}
		return nil
	}
	return errors.New("thaw container: no freezer on this host")
}

// setFrozenV2 writes cgroup.freeze and waits until cgroup.events reports the
// new state: the write only starts freezing, tasks stop at their next return
// to user space. A freeze that does not complete is undone.
func setFrozenV2(dir string, frozen bool) error {
	op, val := "thaw", "0"
	if frozen {
		op, val = "freeze", "1"
	}
	if err := writeFile(dir, "cgroup.freeze", val); err != nil {
		return fmt.Errorf("%s container: %w", op, err)
	}
	deadline := time.Now().Add(pollDeadline)
	wait := 100 * time.Microsecond
	for {
		ev, err := readFile(dir, "cgroup.events")
		if err != nil {
			return fmt.Errorf("%s container: %w", op, err)
		}
		if got, ok := isFrozenEvents(ev); !ok || got == frozen {
			// Kernels without "frozen" in cgroup.events (before 5.2) have
			// no cgroup.freeze either; treat a missing line as done.
			return nil
		}
		if time.Now().After(deadline) {
			if frozen {
				_ = writeFile(dir, "cgroup.freeze", "0")
			}
			return fmt.Errorf("%s container: cgroup.events did not report frozen %s within %v", op, val, pollDeadline)
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// isFrozenEvents reports the "frozen" value of a v2 cgroup.events file.
func isFrozenEvents(s string) (frozen, ok bool) {
	for line := range strings.SplitSeq(s, "\n") {
		if v, found := strings.CutPrefix(line, "frozen "); found {
			return strings.TrimSpace(v) == "1", true
		}
	}
	return false, false
}

// freezeV1 moves a v1 freezer cgroup to FROZEN. The v1 freezer can stay in
// FREEZING while tasks keep forking or joining, so, like runc's fs freezer,
// it writes FROZEN again and re-reads the state, with an occasional thaw and
// short sleeps that help on slow machines. It thaws back on failure: a
// cgroup left in FREEZING is neither usable nor paused.
func freezeV1(dir string) (err error) {
	defer func() {
		if err != nil {
			_ = writeFile(dir, "freezer.state", "THAWED")
			err = fmt.Errorf("freeze container: %w", err)
		}
	}()
	backoff := time.Second
	for i := range 1000 {
		if i%50 == 49 {
			_ = writeFile(dir, "freezer.state", "THAWED")
			time.Sleep(10 * time.Millisecond)
		}
		if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
			return err
		}
		if i%25 == 24 {
			time.Sleep(10 * time.Microsecond)
		}
		if i%200 == 199 {
			time.Sleep(backoff)
			backoff *= 2
		}
		s, err := readFile(dir, "freezer.state")
		if err != nil {
			return err
		}
		switch st := strings.TrimSpace(s); st {
		case "FROZEN":
			return nil
		case "FREEZING":
			continue
		default:
			return fmt.Errorf("unexpected freezer state %q", st)
		}
	}
	return errors.New("stuck in FREEZING")
}
