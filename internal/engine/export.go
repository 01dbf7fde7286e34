package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"skiffd/internal/errdefs"
)

// ContainerExport answers GET /containers/{id}/export: the container's
// merged file system (image layers and its own changes, whiteouts
// applied) as one tar, as dockerd's export writes it. A stopped container's
// file system is mounted for the duration; the container stays locked
// while it streams. Nothing is written before the file system is open.
func (e *Engine) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	c, err := e.get(name)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	if c.State.Dead {
		return errdefs.Conflict(fmt.Errorf("You cannot export container %s which is Dead", c.ID))
	}
	if c.State.RemovalInProgress {
		return errdefs.Conflict(fmt.Errorf("You cannot export container %s which is being removed", c.ID))
	}
	fs, done, err := e.openContainerFS(c, name)
	if err != nil {
		return fmt.Errorf("Error exporting container %s: %w", name, err)
	}
	defer done()
	if err := fs.PackRoot(ctx, w); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("Error exporting container %s: %w", name, err)
	}
	e.logEvent(c, "export", nil)
	return nil
}
