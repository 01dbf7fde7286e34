package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"syscall"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/runtime/shimclient"
)

// dockerd's health check defaults and limits.
const (
	defaultProbeInterval      = 30 * time.Second
	defaultProbeTimeout       = 30 * time.Second
	defaultStartInterval      = 5 * time.Second
	defaultProbeRetries       = 3
	maxHealthLogEntries       = 5
	maxProbeOutput            = 4096
	exitStatusHealthy         = 0
	healthProbeTimedOutExitCd = -1
)

// healthcheck returns the container's effective health check: nil when it
// has none or it is disabled (NONE).
func healthcheck(c *container.Container) *types.HealthConfig {
	hc := c.Config.Healthcheck
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	return hc
}

// probeArgs turns a Test into the command to run: CMD runs its arguments,
// CMD-SHELL runs them through /bin/sh -c.
func probeArgs(test []string) ([]string, error) {
	if len(test) < 2 {
		return nil, fmt.Errorf("invalid health check: %q", test)
	}
	switch test[0] {
	case "CMD":
		return test[1:], nil
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", test[1]}, nil
	}
	return nil, fmt.Errorf("unknown health check type %q", test[0])
}

// startHealthMonitor runs the container's health check while this run
// lasts (until done is closed), as dockerd does: the first probe after the
// start interval during the start period and after the interval
// otherwise, a failure counting only after the start period, unhealthy
// after Retries failures in a row. c's lock is held.
func (e *Engine) startHealthMonitor(c *container.Container, rc *shimclient.Container, done <-chan struct{}) {
	hcfg := healthcheck(c)
	if hcfg == nil {
		c.State.Health = nil
		return
	}
	args, err := probeArgs(hcfg.Test)
	if err != nil {
		return
	}
	c.State.Health = &types.Health{Status: types.HealthStarting, Log: []*types.HealthcheckResult{}}
	interval, timeout, startInterval := hcfg.Interval, hcfg.Timeout, hcfg.StartInterval
	if interval <= 0 {
		interval = defaultProbeInterval
	}
	if timeout <= 0 {
		timeout = defaultProbeTimeout
	}
	if startInterval <= 0 {
		startInterval = defaultStartInterval
	}
	retries := hcfg.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	startPeriodEnd := time.Now().Add(hcfg.StartPeriod)
	go func() {
		for {
			wait := interval
			if hcfg.StartPeriod > 0 && time.Now().Before(startPeriodEnd) {
				wait = startInterval
			}
			select {
			case <-done:
				return
			case <-e.monitorCtx.Done():
				return
			case <-time.After(wait):
			}
			res := e.probe(rc, args, timeout)
			select {
			case <-done:
				return
			default:
			}
			e.recordProbe(c, res, retries, time.Now().Before(startPeriodEnd))
		}
	}()
}

// probe runs one health check command in the container with its
// process settings.
func (e *Engine) probe(rc *shimclient.Container, args []string, timeout time.Duration) *types.HealthcheckResult {
	res := &types.HealthcheckResult{Start: time.Now().UTC()}
	defer func() { res.End = time.Now().UTC() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	p := rc.Spec().Process
	p.Args = args
	p.Terminal, p.OpenStdin, p.StdinOnce, p.Init, p.CreateCwd = false, false, false, false, false
	var idb [16]byte
	rand.Read(idb[:])
	proc, err := rc.Exec(ctx, "health-"+hex.EncodeToString(idb[:]), &p)
	if err != nil {
		res.ExitCode, res.Output = -1, err.Error()
		return res
	}
	defer proc.Delete(context.Background())
	st, err := proc.Attach(ctx, shimclient.AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		res.ExitCode, res.Output = -1, err.Error()
		return res
	}
	defer st.Close()
	var out limitedBuffer
	copied := make(chan struct{})
	go func() {
		st.Copy(&out, &out)
		close(copied)
	}()
	if _, err := proc.Start(ctx); err != nil {
		res.ExitCode, res.Output = -1, err.Error()
		return res
	}
	type waited struct {
		code int
		err  error
	}
	wc := make(chan waited, 1)
	go func() {
		ex, err := proc.Wait(ctx)
		wc <- waited{ex.Code, err}
	}()
	select {
	case w := <-wc:
		<-copied
		res.ExitCode, res.Output = w.code, out.String()
		if w.err != nil {
			res.ExitCode, res.Output = -1, w.err.Error()
		}
	case <-time.After(timeout):
		proc.Signal(context.Background(), syscall.SIGKILL)
		res.ExitCode = healthProbeTimedOutExitCd
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	}
	return res
}

// recordProbe adds a probe's result to the container's health.
func (e *Engine) recordProbe(c *container.Container, res *types.HealthcheckResult, retries int, inStartPeriod bool) {
	c.Lock()
	h := c.State.Health
	if h == nil || !c.State.Running || c.State.IsRemoved() {
		c.Unlock()
		return
	}
	old := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > maxHealthLogEntries {
		h.Log = h.Log[len(h.Log)-maxHealthLogEntries:]
	}
	if res.ExitCode == exitStatusHealthy {
		h.FailingStreak = 0
		h.Status = types.HealthHealthy
	} else if !inStartPeriod || h.Status != types.HealthStarting {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = types.HealthUnhealthy
		}
	}
	e.saveOrRetry(c)
	changed := h.Status != old
	status := h.Status
	c.Unlock()
	if changed {
		e.logEvent(c, "health_status: "+status, nil)
	}
}

// limitedBuffer keeps the first maxProbeOutput bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxProbeOutput - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
