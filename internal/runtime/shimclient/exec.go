package shimclient

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"skiffd/internal/errdefs"
	"skiffd/internal/runtime/shim"
	"skiffd/internal/runtime/spec"
)

// Process is an extra process run inside a running container (docker
// exec). It is created, optionally attached to, then started; the shim is
// its parent and reaps it.
type Process struct {
	c  *Container
	id string
}

// Exec registers a process to run in the container under id. Its
// Capabilities, NoNewPrivileges and user are the caller's to set (dockerd
// gives an exec the container's); the container's seccomp filter always
// applies. A paused container must be resumed first: an exec into a
// frozen cgroup would hang.
func (c *Container) Exec(ctx context.Context, id string, p *spec.Process) (*Process, error) {
	if paused, _ := c.Paused(ctx); paused {
		return nil, errdefs.Conflict(fmt.Errorf("Container %s is paused, unpause the container before exec", c.id))
	}
	if _, err := c.call(ctx, shim.Request{Op: shim.OpExec, Exec: id, Process: p}); err != nil {
		return nil, c.notRunning(err)
	}
	return &Process{c: c, id: id}, nil
}

// Process returns a handle on an exec'd process the shim already knows,
// for a daemon that restarted while it ran. Calls on it fail with not
// found if the shim does not know id.
func (c *Container) Process(id string) *Process { return &Process{c: c, id: id} }

// notRunning maps an unreachable shim to "not running".
func (c *Container) notRunning(err error) error {
	var gone errShimGone
	if errors.As(err, &gone) {
		return errNotRunning(c.id)
	}
	return err
}

// ID returns the exec id.
func (p *Process) ID() string { return p.id }

// Attach attaches to the process's stdio; call it before Start to see all
// of the output.
func (p *Process) Attach(ctx context.Context, opts AttachOptions) (*Stream, error) {
	return p.c.attach(ctx, p.id, opts)
}

// Start runs the process and returns its pid (in the host's pid
// namespace). Errors carry runc's wording (exec: "x": executable file not
// found in $PATH).
func (p *Process) Start(ctx context.Context) (int, error) {
	resp, err := p.c.call(ctx, shim.Request{Op: shim.OpStart, Exec: p.id})
	if err != nil {
		return 0, p.c.notRunning(err)
	}
	return resp.Pid, nil
}

// Signal sends sig to the process.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	_, err := p.c.call(ctx, shim.Request{Op: shim.OpKill, Exec: p.id, Signal: int(sig)})
	return p.c.notRunning(err)
}

// Resize sets the size of the process's terminal.
func (p *Process) Resize(ctx context.Context, height, width uint16) error {
	_, err := p.c.call(ctx, shim.Request{Op: shim.OpResize, Exec: p.id, Height: height, Width: width})
	return p.c.notRunning(err)
}

// Wait blocks until the process has exited and returns how.
func (p *Process) Wait(ctx context.Context) (shim.ExitStatus, error) {
	resp, err := p.c.call(ctx, shim.Request{Op: shim.OpWait, Exec: p.id})
	if err != nil {
		return shim.ExitStatus{}, p.c.notRunning(err)
	}
	return *resp.Exit, nil
}

// Delete forgets an exited (or never started) process.
func (p *Process) Delete(ctx context.Context) error {
	_, err := p.c.call(ctx, shim.Request{Op: shim.OpDelete, Exec: p.id})
	var gone errShimGone
	if errors.As(err, &gone) {
		return nil
	}
	return err
}
